"""The Ray backend: every cell of a sweep (all its trials) one Ray task, on this machine or on a cluster.

    RayBackend(address=None, gpus_per_cell=0.0, cpus_per_cell=1)

Ray is an optional dependency (`pip install 'initscope[ray]'`), imported only when this backend is built: without it
the sweep says so in one sentence (SpecError on the field "backend", exit 2). Where the cells run:

- address None (and no RAY_ADDRESS in the environment): a private local cluster, started here with every core
  (os.cpu_count()), Ray's own GPU detection, a small object store (LOCAL_OBJECT_STORE_BYTES: a cell's task and its
  rows are a few kB, so nothing big travels), no dashboard, usage statistics off and token authentication on
  without Ray's start-up warning; close() shuts it down.
- address "auto": the cluster this machine already belongs to (`ray start --head` here, or `ray start --address=...`);
  "host:port": the head node of a cluster, probed first so a dead address fails in seconds instead of Ray's endless
  retries (a cluster that does not answer is a RunError: exit 1, a failure of the environment, not of the command);
  "ray://host:10001": Ray Client (needs `pip install 'ray[client]'`). close() only disconnects from such a cluster.
- ray already initialised by the caller (a notebook, the tests): its connection is used as it is and left open.

Each task asks Ray for `cpus_per_cell` CPUs and `gpus_per_cell` GPUs (a fraction such as 0.25 packs four cells on
one GPU; Ray sets CUDA_VISIBLE_DEVICES for the task) and sets torch's thread count to cpus_per_cell, so Ray's CPU
accounting is the real load: tasks x threads <= cores. Tasks with no GPU run in workers started with
CUDA_VISIBLE_DEVICES="" (a task runtime environment): Ray no longer hides the GPUs from zero-GPU tasks (its
issue 54868), and a cell on device "auto" would otherwise put itself on a GPU that other cells were given.

Results stream back with ray.wait as the cells finish. Ctrl-C (KeyboardInterrupt) or the caller stopping early
(closing the generator) cancels the cells not yet finished; the ones already finished are yielded first on Ctrl-C,
then the interrupt goes on to the caller. An exception inside a cell, or a worker that dies, becomes that cell's
CellResult.error (one line) and the sweep goes on. Workers on a remote cluster need initscope (and torch) installed.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Iterator, Sequence

from ..errors import RunError, SpecError
from .cell import CellResult, CellTask

LOCAL_OBJECT_STORE_BYTES = 100 * 2**20  # a local cluster's shared-memory object store; Ray's minimum is 75 MiB
CONNECT_TIMEOUT_S = 5.0  # how long the TCP probe of a "host:port" address waits for the head node
AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"  # logs "Token authentication is enabled"
MAX_RETRIES = 1  # a cell whose worker died is run once more (a lost node); a cell that kills its worker fails


def import_ray():
    """The ray module, with usage statistics off unless the user set RAY_USAGE_STATS_ENABLED (Ray reads it from the
    environment of the driver and of the processes it starts); a SpecError sentence when ray is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as e:
        raise SpecError("backend", "ray", f"the Ray backend needs the ray package, which is not installed ({e}); "
                        "install it with pip install 'initscope[ray]'", fix=("backend", "local")) from None
    return ray


def start_local_cluster(ray, num_cpus: int | None = None, num_gpus: int | None = None) -> None:
    """Start a private local Ray cluster for this process: `num_cpus` CPUs (default: every core), `num_gpus` GPUs
    (default: Ray's own detection), an object store of LOCAL_OBJECT_STORE_BYTES, no dashboard, workers' output
    not copied here.
    Token authentication stays on (Ray's default for a new local cluster; a user's RAY_AUTH_MODE wins): only Ray's
    warning that it is on is kept off the terminal."""
    auth_log = logging.getLogger(AUTH_LOGGER)
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    try:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, num_gpus=num_gpus,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    finally:
        auth_log.setLevel(level)


def _probe(address: str) -> None:
    """Fail fast (RunError) when a "host:port" address has nothing listening: ray.init would retry for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://...", or a form Ray itself will judge
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise RunError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one there with "
                       "`ray start --head`, or leave out --address to start a local one") from None


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _cell_error(ray, error: BaseException) -> str:
    """One line for a cell that raised inside its task (the original exception, not Ray's wrapper and traceback) or
    whose worker died."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            return f"{type(cause).__name__}: {_first_line(cause)}"
    return f"{type(error).__name__}: {_first_line(error)}"


def limit_threads(threads: int) -> None:
    """torch in this worker uses `threads` threads: the CPUs Ray gave the task."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def run_cell_in_task(task: CellTask, threads: int) -> CellResult:
    """What a Ray worker runs for one cell: torch limited to the task's CPUs, then the normal run_cell."""
    limit_threads(threads)
    from .cell import run_cell

    return run_cell(task)


class RayBackend:
    """The cells as Ray tasks, one per cell, results yielded as they finish (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, gpus_per_cell: float = 0.0, cpus_per_cell: int = 1) -> None:
        self.gpus_per_cell = _gpus(gpus_per_cell)
        self.cpus_per_cell = _cpus(cpus_per_cell)
        self.address = address
        self._cell = run_cell_in_task  # what a task runs (module level, so workers import it rather than unpickle it)
        self._pending: list = []  # the refs of cells submitted and not yet yielded
        self._ray = ray = import_ray()
        if ray.is_initialized():
            self._owns = None  # the caller's connection: used as it is, left open
        elif address is None and not os.environ.get("RAY_ADDRESS"):
            start_local_cluster(ray)
            self._owns = "cluster"
        else:
            self._connect(address or os.environ["RAY_ADDRESS"])
            self._owns = "connection"
        try:
            self._check_resources()
        except SpecError:
            self.close()
            raise

    def _connect(self, address: str) -> None:
        _probe(address)
        try:
            self._ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise RunError(f"could not connect to a Ray cluster at {address} ({_first_line(e)}); start one with "
                           "`ray start --head`, or leave out --address to start a local one") from None

    def _check_resources(self) -> None:
        """A task that asks for more than the cluster has would wait forever: refuse it now (a cluster that scales
        itself up reports only what it has at the moment: start it with the resources a cell needs)."""
        have = self._ray.cluster_resources()
        if self.gpus_per_cell > 0 and have.get("GPU", 0) < self.gpus_per_cell:
            raise SpecError("gpus-per-cell", self.gpus_per_cell,
                            f"the Ray cluster has {have.get('GPU', 0):g} GPUs; use 0 for CPU-only cells")
        if have.get("CPU", 0) < self.cpus_per_cell:
            raise SpecError("cpus-per-cell", self.cpus_per_cell,
                            f"the Ray cluster has {have.get('CPU', 0):g} CPUs; a cell may ask for at most that many")

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]:
        """Submit every cell now (Ray queues what does not fit) and return the iterator of their results."""
        if self.gpus_per_cell == 0:
            on_gpu = sorted({d for t in tasks if (d := str(t.spec_json.get("device", "auto"))).startswith("cuda")})
            if on_gpu:
                raise SpecError("gpus-per-cell", 0, f"cells on device {on_gpu[0]} need a share of a GPU; give a "
                                "fraction such as 0.25 (four cells per GPU)")
        options = {"num_cpus": self.cpus_per_cell, "num_gpus": self.gpus_per_cell, "max_retries": MAX_RETRIES}
        if self.gpus_per_cell == 0:
            options["runtime_env"] = {"env_vars": {"CUDA_VISIBLE_DEVICES": ""}}
        remote = self._ray.remote(**options)(self._cell)
        task_of = {remote.remote(task, self.cpus_per_cell): task for task in tasks}
        self._pending = list(task_of)
        return self._stream(task_of)

    def _stream(self, task_of: dict) -> Iterator[CellResult]:
        ray = self._ray
        try:
            while self._pending:
                ready, self._pending = ray.wait(self._pending, num_returns=1)
                for ref in ready:
                    yield self._result(ref, task_of[ref])
        except KeyboardInterrupt:
            done = ray.wait(self._pending, num_returns=len(self._pending), timeout=0)[0] if self._pending else []
            self._cancel_pending()
            for ref in done:
                yield self._result(ref, task_of[ref])
            raise
        finally:
            self._cancel_pending()  # the caller stopped early (GeneratorExit) or something failed here

    def _cancel_pending(self) -> None:
        """Cancel the cells not yet finished: queued ones never start, running ones have their worker process
        killed (force: a plain cancel's KeyboardInterrupt left a cell in time.sleep holding its CPU for a minute)."""
        pending, self._pending = self._pending, []
        for ref in pending:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # finished or gone in the meantime: nothing left to cancel
                pass

    def _result(self, ref, task: CellTask) -> CellResult:
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as e:  # the cell raised, was cancelled, or its worker died
            return CellResult(task.index, [], 0.0, _cell_error(ray, e))

    def close(self) -> None:
        """Shut down the local cluster this backend started, or disconnect from the one it connected to; a
        connection the caller made stays open. Idempotent."""
        if self._ray.is_initialized():
            self._cancel_pending()
            if self._owns is not None:
                self._ray.shutdown()
        self._owns = None


def _gpus(value: object) -> float:
    try:
        gpus = float(value)
    except (TypeError, ValueError):
        gpus = math.nan
    if not (math.isfinite(gpus) and gpus >= 0 and (gpus <= 1 or gpus.is_integer())):
        raise SpecError("gpus-per-cell", value, "give a number of GPUs per cell: 0 (CPU only), a fraction up to 1 "
                        "such as 0.25 (cells share a GPU), or a whole number")
    return gpus


def _cpus(value: object) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise SpecError("cpus-per-cell", value, "give a whole number of CPUs (torch threads) per cell, at least 1")
    return int(text)
