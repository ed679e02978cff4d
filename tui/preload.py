"""Start-up: get torch (about 1-2 s to import, most of the time to the first plot) off the first frame's path.

`initscope` (the app) calls `start(spec)` as soon as its flags are valid. `INITSCOPE_PRELOAD` picks how:

- `process` (the default on Linux and macOS when a CPU is free, see `spare_cpu`): a child process imports torch and
  runs the first spec while this process imports Textual and draws the first frame. The child is a fork
  of this process (`can_fork`: Linux, one thread, torch not loaded, as at launch), so it skips an interpreter's
  start and the imports this process has made (numpy, the spec); elsewhere it is a fresh interpreter
  (`python -m initscope.tui.preload --first-run`, the spec pickled on its stdin). The app's engine is
  a `FirstRunInChild`, which hands the child's `RunResult` to the app's first run of that spec (with its
  progress) and delegates every other run to the engine. Once the app has drawn that result, it calls
  `warm()`, and this process starts importing torch in the background for the runs that follow.
  Should the child fail, the run is simply done here, so any error is the engine's own. The child runs
  at niceness 5: with a CPU to itself that changes nothing; on a busy machine it lets the first frame go
  first.
- `thread`: a background thread imports torch, the runner and the theory from the start. Python runs
  one thread at a time (the GIL), so this only fills the time the app's thread waits; while it runs,
  the thread switch interval is 0.5 ms, so Textual's thread is not starved of the interpreter.
- `0` (or off, the default on a busy machine): nothing; torch loads with the first run, after the
  first frame.

Either way the first frame never waits for torch (tests/tui/test_startup.py), and
benchmarks/bench_startup.py compares the modes (`--compare INITSCOPE_PRELOAD=0`). Whatever the mode, the
app first calls `calm_openmp` (torch's idle threads sleep instead of spinning). Where the time goes:
INITSCOPE_TRACE_STARTUP (tui/startup_trace.py).
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from initscope.engine import RunResult, RunSpec

MODULES = ("torch", "initscope.engine.runner", "initscope.engine.theory")
SWITCH_INTERVAL_S = 0.0005  # how long a thread may hold the interpreter while the background import runs
done = threading.Event()  # set when the background import has finished (or failed, or was never started)
_thread: threading.Thread | None = None

# the child's messages on its stdout: b"P" + (done, total) as two uint64, then b"R" + length + pickle
_PROGRESS = struct.Struct("<QQ")
_LENGTH = struct.Struct("<Q")
# the child yields to this process where they share a CPU (a busy machine), so the first frame is not
# slowed by it; with a CPU to itself (what the child is for) its niceness changes nothing
CHILD_NICENESS = 5


def mode() -> str:
    """`process`, `thread` or `off`, from INITSCOPE_PRELOAD; unset: process when a CPU is free, else off."""
    value = os.environ.get("INITSCOPE_PRELOAD", "").strip().lower()
    if value in ("0", "off", "false", "no"):
        return "off"
    if value in ("thread", "process"):
        return value
    if os.name == "posix" and spare_cpu():  # (the parent waits on the child's pipe with select)
        return "process"
    return "off"


def spare_cpu() -> bool:
    """Whether a CPU is free for the child: two or more CPUs and a 1-minute load average below the CPUs.

    On a machine already busy the child cannot run beside the app; it would only add a second import
    of torch (measured under a load of 6-11 on 2 CPUs: first frame and first plot no better, often
    worse, than loading torch with the first run). At a load of about 1 on 2 CPUs (one busy process)
    the child still took the first plot from 3.7 s to 2.6 s (benchmarks/bench_startup.py).
    """
    cpus = _cpus()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return cpus >= 2 and load < cpus


def _cpus() -> int:
    """CPUs this process may run on (the affinity mask where the platform has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def start(spec: RunSpec | None = None):
    """Begin loading the engine; returns the engine object the app should use, or None for the default.

    In process mode with a spec (the app's first run) that is a FirstRunInChild; in thread mode the
    background import starts; otherwise nothing happens. Except for the child, the app keeps the plain
    engine.
    """
    how = mode()
    if how == "off":
        done.set()
        return None
    if how == "process":
        if spec is None:  # a preset's several runs: torch loads with the first of them, as with `0`
            done.set()
            return None
        from initscope import engine

        return FirstRunInChild(spec, engine)
    start_import()
    return None


def start_import(delay_s: float = 0.0) -> threading.Thread:
    """Import torch, the runner and the theory in a daemon thread (once), after delay_s seconds."""
    global _thread
    if _thread is None:
        done.clear()
        _thread = threading.Thread(target=_load, args=(delay_s,), name="initscope-preload", daemon=True)
        _thread.start()
    return _thread


def _load(delay_s: float = 0.0) -> None:
    if delay_s > 0:
        time.sleep(delay_s)
    interval = sys.getswitchinterval()
    # Textual's thread wakes often for short work; with the default 5 ms interval each wake waits up to
    # 5 ms for the import to hand over the interpreter, so the screen would crawl meanwhile
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        for name in MODULES:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - the run imports the same modules and reports the failure
        pass
    finally:
        sys.setswitchinterval(interval)
        done.set()


class FirstRunInChild:
    """The engine, except that the first run of `spec` is computed by a child process started now.

    run(spec, progress=, cancelled=) has engine.run's contract: the child's progress is passed on, a
    cancel stops the child and raises Cancelled, and if the child fails (or the spec differs, or it
    was used already) the engine runs the spec in this process.
    """

    def __init__(self, spec: RunSpec, engine, command: list[str] | None = None, after_first=None) -> None:
        self.spec = spec
        self.engine = engine
        self.after_first = after_first or start_import  # warm(): torch here, for the runs that follow
        self.served_by_child = False  # whether the first run's result came from the child (tests)
        self._pending = True
        self.forked = command is None and can_fork()  # a fork of this process (else a fresh interpreter)
        self._proc: subprocess.Popen | ForkedChild | None = None
        atexit.register(self.close)
        try:
            if self.forked:
                self._proc = ForkedChild.start(spec)
                return
            self._proc = subprocess.Popen(
                command or [sys.executable, "-m", "initscope.tui.preload", "--first-run"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self._proc.stdin.write(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
            self._proc.stdin.close()
        except OSError:  # no child (no process or memory left) or it died at once: the first run happens here
            self.close()

    def preview(self, spec: RunSpec):
        """The engine's preview (numpy only: drawn while the child measures)."""
        return self.engine.preview(spec)

    def run(self, spec: RunSpec, *, progress=None, cancelled=None) -> RunResult:
        if self._pending and spec == self.spec:
            self._pending = False
            result = self._take(progress, cancelled)
            if result is not None:
                self.served_by_child = True
                return result
        elif self._pending:  # the first run is another spec: the child's work is not needed
            self._pending = False
            self.close()
        return self.engine.run(spec, progress=progress, cancelled=cancelled)  # (torch loads here if need be)

    def warm(self) -> None:
        """The app calls this once the first result is on the screen: this process then imports torch in
        the background (after_first) for the runs that follow. Not before: an import begun while the
        result is drawn (it used to start 0.3 s after the result came) shares the interpreter with the
        drawing and, on a busy machine, doubled the time from the result to the plot on the screen."""
        self.after_first()

    def _take(self, progress, cancelled) -> RunResult | None:
        """The child's result (passing on its progress), None if it failed; Cancelled if cancelled."""
        from initscope.engine.errors import Cancelled

        proc = self._proc
        if proc is None:
            return None
        buf = b""
        fd = proc.stdout.fileno()
        try:
            while True:
                if cancelled is not None and cancelled():
                    raise Cancelled("run cancelled")
                if not select.select([fd], [], [], 0.05)[0]:
                    continue
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return None  # the child ended without a result
                buf += chunk
                while buf[:1] == b"P" and len(buf) >= 1 + _PROGRESS.size:
                    if progress is not None:
                        progress(*_PROGRESS.unpack_from(buf, 1))
                    buf = buf[1 + _PROGRESS.size:]
                if buf[:1] == b"R" and len(buf) >= 1 + _LENGTH.size:
                    (length,) = _LENGTH.unpack_from(buf, 1)
                    body = buf[1 + _LENGTH.size:]
                    while len(body) < length:
                        chunk = os.read(fd, 1 << 20)
                        if not chunk:
                            return None
                        body += chunk
                    from initscope.tui.startup_trace import stamp

                    stamp("parent has child result")
                    return pickle.loads(body[:length])  # our own child's RunResult, over a private pipe
                if buf[:1] not in (b"", b"P", b"R"):
                    return None
        except (OSError, EOFError, pickle.UnpicklingError):
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Stop the child if it is still running (at exit, after a cancel or once its result is in)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        proc.wait()


def can_fork() -> bool:
    """Whether this process may fork its first-run child: Linux, one thread, torch not loaded yet.

    A fork copies only the calling thread (another thread's locks would stay held in the child), and a
    forked torch whose thread pool already ran hangs in its first parallel operation; with neither, the
    fork is an interpreter with this process's modules already imported, minus a fresh interpreter's start.
    Linux only: on macOS the system frameworks numpy may have loaded (Accelerate) are not safe to use in a
    forked child (Python's multiprocessing spawns there for that reason), so the child is a fresh interpreter.
    """
    return sys.platform.startswith("linux") and threading.active_count() == 1 and "torch" not in sys.modules


class ForkedChild:
    """A forked first-run child, with the part of subprocess.Popen that FirstRunInChild uses: stdin (None),
    stdout (the child's messages), poll, kill, wait."""

    stdin = None

    def __init__(self, pid: int, stdout) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    @classmethod
    def start(cls, spec: RunSpec) -> ForkedChild:
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the child: never returns into the caller's code
            status = 1
            try:
                os.close(read_end)
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):  # the terminal is the app's
                    os.dup2(null, fd)
                status = _serve_first_run(spec, os.fdopen(write_end, "wb"))
            except BaseException:  # noqa: BLE001 - the parent runs the spec itself
                pass
            finally:
                os._exit(status)
        os.close(write_end)
        return cls(pid, os.fdopen(read_end, "rb", buffering=0))

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        if self.returncode is None:
            try:
                _pid, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = -1
        return self.returncode


def calm_openmp() -> None:
    """Make torch's CPU threads sleep while they wait for work (OMP_WAIT_POLICY=PASSIVE) unless the user chose.

    By default they spin, which on a shared machine starves whatever else wants the CPU (the app drawing,
    other processes) and stalls the run itself: the default spec took 4-12 s per run on 2 CPUs at a load
    of 8, against 0.7-1.0 s with PASSIVE (the same threads, so the same numbers, bit for bit). OpenMP reads
    the variable once, when torch loads: this must run before the first `import torch` of this process
    (and of a forked child, which inherits the environment)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _serve_first_run(spec: RunSpec, out) -> int:
    """Run spec, writing progress and then the pickled RunResult to out (the protocol FirstRunInChild reads)."""
    from initscope.tui.startup_trace import stamp

    stamp("child started")
    try:
        os.nice(CHILD_NICENESS)
    except (AttributeError, OSError):
        pass
    import torch  # noqa: F401 - imported here to stamp its end

    stamp("child torch imported")
    from initscope import engine

    def progress(done_steps: int, total: int) -> None:
        out.write(b"P" + _PROGRESS.pack(done_steps, total))
        out.flush()

    try:
        result = engine.run(spec, progress=progress)
    except Exception:  # noqa: BLE001 - the parent runs the spec itself and shows the engine's error
        return 1
    stamp("child run done")
    body = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(b"R" + _LENGTH.pack(len(body)) + body)
    out.flush()  # (no stamp after this: the app may stop the child as soon as it has read the result)
    return 0


def _first_run_child() -> int:
    """The child as a fresh interpreter: read a pickled RunSpec on stdin, then as _serve_first_run."""
    spec = pickle.load(sys.stdin.buffer)
    return _serve_first_run(spec, sys.stdout.buffer)


if __name__ == "__main__" and sys.argv[1:] == ["--first-run"]:
    sys.exit(_first_run_child())
