"""Where a sweep's cells run: one interface, several backends.

    Backend.run(tasks) -> iterator of CellResult, yielded as cells finish (any order)
    Backend.close()    -> release workers (idempotent)

- InProcess: every cell in this process, in order (tests, debugging).
- LocalProcesses (the default): a pool of worker processes on this machine. Started with "spawn" (torch with
  fork is unsafe); each worker imports torch once (the pool's initializer) and sets torch.set_num_threads so that
  workers x threads <= the cores this process may use. Ctrl-C reaches only the driver (workers ignore SIGINT):
  it stops submitting, cancels the cells not started and ends the running ones (they rerun on --resume).
- RayBackend (engine/sweep/ray_backend.py, the optional extra initscope[ray]): one Ray task per cell.

Closing the iterator early (generator close, or an exception in the consumer such as KeyboardInterrupt) cancels
what has not finished: the iterator's own cleanup does it, so every consumer gets it for free.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Protocol

from ..errors import SpecError
from .cell import CellResult, CellTask

BACKENDS = ("local", "inprocess", "ray")
IN_FLIGHT_PER_WORKER = 2  # tasks queued per worker: keeps every worker busy, and little to cancel on Ctrl-C


class Backend(Protocol):
    """Runs cell tasks and yields their results as they finish, in any order."""

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]: ...

    def close(self) -> None: ...


class InProcess:
    """Every cell in this process, in order: no workers, no pickling (tests, debugging)."""

    name = "inprocess"

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]:
        from .cell import run_cell

        for task in tasks:
            yield run_cell(task)

    def close(self) -> None:
        pass


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def split_cores(workers: int | None, cores: int | None = None) -> tuple[int, int]:
    """(workers, torch threads per worker) with workers x threads <= cores: by default one thread per worker and
    one worker per core; with `workers` given, the cores shared among them (at least one thread each)."""
    cores = usable_cores() if cores is None else cores
    if workers is None:
        return cores, 1
    return workers, max(1, cores // workers)


PARENT_POLL_S = 1.0


def _init_worker(threads: int) -> None:
    """A worker's start: ignore Ctrl-C (the driver decides), exit when the driver is gone (killed: nobody is left
    to read the results), set torch's threads, import the engine once."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    from .. import runner  # noqa: F401 - the first cell should not pay the engine's import


def _exit_with_parent(parent: int) -> None:
    """Poll the parent's pid; when the worker has been re-parented (the driver died), end the process."""
    import time

    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


class LocalProcesses:
    """A pool of `workers` processes on this machine (default: one per usable core, one torch thread each)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise SpecError("workers", workers, "expected a whole number of worker processes, at least 1")
        self.workers, self.threads = split_cores(workers)
        self._pool = None

    def _start(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.threads,))
        return self._pool

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        from .cell import run_cell

        queue = list(reversed(tasks))
        running: dict = {}
        limit = self.workers * IN_FLIGHT_PER_WORKER
        finished = False
        try:
            while queue or running:
                while queue and len(running) < limit:
                    task = queue.pop()
                    running[self._start().submit(run_cell, task)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    task = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        yield CellResult(task.index, [], 0.0, error="its worker process died (out of memory, or "
                                         "killed); the cell was not finished")
                    except Exception as e:  # noqa: BLE001 - e.g. a result that would not unpickle
                        yield CellResult(task.index, [], 0.0, error=f"{type(e).__name__}: {e}")
                if broken:  # the pool is unusable: the other running cells are lost too; start a new pool
                    queue.extend(running.values())
                    running.clear()
                    self._kill()
            finished = True
        finally:
            if not finished:
                for future in running:
                    future.cancel()
                self._kill()

    def _kill(self) -> None:
        """End the pool now: pending cells cancelled, running workers terminated and reaped.

        The pool has no public way to stop a worker, so this reads two private attributes: the workers, and the
        pool's manager thread. That thread reaps the workers itself once they die; it is waited for before
        anyone else waits on them: two threads waiting on one child race (the loser's os.waitpid finds no
        child, and multiprocessing then reports a dead worker as alive)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.exitcode is None:
                p.terminate()
        if manager is not None:
            manager.join(timeout=10)
        for p in processes:
            p.join(timeout=5)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def make_backend(name: str, *, address: str | None = None, workers: int | None = None,
                 gpus_per_cell: float = 0) -> Backend:
    """The backend called `name`: "local" (default of the CLI), "inprocess" or "ray" (needs initscope[ray])."""
    if name not in BACKENDS:
        raise SpecError("backend", name, "choose one of " + ", ".join(BACKENDS))
    if gpus_per_cell < 0 or gpus_per_cell != gpus_per_cell:
        raise SpecError("gpus-per-cell", gpus_per_cell, "expected a number >= 0 (a fraction shares a GPU)")
    if name != "ray" and address is not None:
        raise SpecError("address", address, "only the ray backend connects to a cluster; add --backend ray")
    if name != "ray" and gpus_per_cell:
        raise SpecError("gpus-per-cell", gpus_per_cell, "only the ray backend places cells on GPUs; add --backend ray "
                        "(the local backend uses the spec's --device)")
    if name != "local" and workers is not None:
        raise SpecError("workers", workers, "only the local backend has worker processes (ray runs one task per cell "
                        "on the cluster's CPUs); leave out --workers or use --backend local")
    if name == "inprocess":
        return InProcess()
    if name == "local":
        return LocalProcesses(workers)
    from .ray_backend import RayBackend

    return RayBackend(address=address, gpus_per_cell=gpus_per_cell)


__all__ = ["Backend", "InProcess", "LocalProcesses", "make_backend", "split_cores", "usable_cores", "BACKENDS"]
