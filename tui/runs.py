"""The app's engine runs: one at a time in a thread worker, a queue of runs to pin, cancellation.

The worker posts messages up to the app (tui/messages.py): PreviewReady, RunProgress, then one of
RunFinished, RunFailed, RunCancelled; the app routes them and asks `is_active(run_id)` to drop those of
a stale run. A new run cancels the stale one (an exclusive worker group; the engine polls `cancelled`
per layer). The engine is whatever the app was given: by default the one tui/preload.py hands over
(its first run may come from a child interpreter), else initscope.engine itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from initscope.engine.errors import Cancelled, InitscopeError, SpecError
from textual.worker import get_current_worker

from .messages import PreviewReady, RunCancelled, RunFailed, RunFinished, RunProgress, TrainFinished
from .pins import MAX_PINS

if TYPE_CHECKING:
    from initscope.engine.spec import RunSpec
    from textual.app import App

GROUP = "engine"
BatchEntry = tuple["RunSpec", "str | None", bool]  # (spec, pin name or None, is the main one)


def failure_text(e: BaseException) -> str:
    """What the app says about a failed run: the engine's own sentence (a suggested fix worded for the
    form, not the command line); only an unexpected exception is named by its class."""
    if isinstance(e, SpecError):
        return e.message("app")
    if isinstance(e, InitscopeError):
        return str(e)
    if isinstance(e, MemoryError):
        return "Out of memory: the run is too large for this machine; lower batch, width or depth."
    text = f"{type(e).__name__}: {e}" if not str(e).startswith(type(e).__name__) else str(e)
    if "out of memory" in text.lower():
        text = "Out of memory on the device: lower batch, width or depth. (" + text[:200] + ")"
    return text


def pins_full_text(free: int, wanted: int, main_unpinned: bool, skipped: list[str | None]) -> str:
    """What a batch does when the pin slots run out, in one or two sentences."""
    slots = f"All {MAX_PINS} pin slots are taken" if free == 0 else f"Only {free} of {wanted} runs fit in the pins"
    parts = [slots + (": the main run is shown as the current run, not pinned" if main_unpinned else "")]
    if skipped:
        parts.append("not run: " + ", ".join(str(n) for n in skipped))
    return "; ".join(parts) + ". Remove pins (d in the Runs tab) to compare them all."


def fit_batch(entries: list[BatchEntry], free: int) -> tuple[list[BatchEntry], str | None]:
    """The entries that fit in `free` pin slots, and the warning when some do not. Pins are never
    evicted: entries beyond the free slots are not run, except the main one (a preset's first variant),
    which then runs unpinned as the current run, so the screen shows the preset that was asked for."""
    if len(entries) <= free:
        return entries, None
    left_out = entries[free:]
    unpinned_main = [(spec, None, True) for spec, _name, is_main in left_out if is_main]
    skipped = [name for _spec, name, is_main in left_out if not is_main]
    return unpinned_main + entries[:free], pins_full_text(free, len(entries), bool(unpinned_main), skipped)


class RunQueue:
    """The run in progress (`running`, `active_run`, `progress`) and the ones queued after it (`batch`).

    `batch_main`: the run in progress is a batch's main one (it becomes the current run as well as a pin).
    """

    def __init__(self, app: App, engine) -> None:
        self.app = app
        self.engine = engine
        self.run_id = 0
        self.active_run: int | None = None
        self.running = False
        self.progress: tuple[int, int] = (0, 0)
        self.batch: list[BatchEntry] = []
        self.batch_main = False

    def start(self, spec: RunSpec, pin_as: str | None = None, keep_batch: bool = False,
              with_preview: bool = False) -> int:
        """Start a run of `spec` (cancelling the one in progress); `with_preview`: post the prediction first."""
        if not keep_batch:
            self.batch = []
        self.run_id += 1
        self.active_run = self.run_id
        self.running = True
        self.progress = (0, spec.depth)
        run_id = self.run_id
        self.app.run_worker(lambda: self._work(spec, run_id, pin_as, with_preview), thread=True, exclusive=True,
                            group=GROUP, exit_on_error=False, description="engine run")
        return run_id

    def start_training(self, spec, pin_as: str | None = None, keep_batch: bool = False) -> int:
        """Start a training run of `spec` (a TrainSpec, engine/trainspec.py) the same way: one at a time in
        the engine group, progress in optimizer steps (trials x steps), escape cancels; TrainFinished at the end."""
        if not keep_batch:
            self.batch = []
        self.run_id += 1
        self.active_run = self.run_id
        self.running = True
        self.progress = (0, spec.trials * spec.steps)
        run_id = self.run_id
        self.app.run_worker(lambda: self._train_work(spec, run_id, pin_as), thread=True, exclusive=True,
                            group=GROUP, exit_on_error=False, description="training run")
        return run_id

    def train_function(self):
        """The engine's training entry point: the app's engine's `train_run` (the tests' fake), else
        initscope.engine.train.train (imported here: torch loads with it)."""
        fn = getattr(self.engine, "train_run", None)
        if fn is None:
            from initscope.engine.train import train as fn
        return fn

    def _train_work(self, spec, run_id: int, pin_as: str | None) -> None:
        """The worker thread's body for a training run: train, one closing message."""
        self._finish(run_id, spec, lambda **kw: self.train_function()(spec, **kw),
                     lambda result: TrainFinished(run_id, result, pin_as))

    def queue_batch(self, entries: list[BatchEntry]) -> BatchEntry:
        """Queue all but the first of `entries` (each to be pinned under its name); the first is to start
        now (start(..., keep_batch=True))."""
        first = entries[0]
        self.batch = list(entries[1:])
        self.batch_main = first[2]
        return first

    def _work(self, spec: RunSpec, run_id: int, pin_as: str | None, with_preview: bool) -> None:
        """The worker thread's body: preview, run, one closing message."""
        post = self.app.post_message
        preview = getattr(self.engine, "preview", None) if with_preview else None
        if preview is not None:
            try:
                post(PreviewReady(run_id, preview(spec)))
            except Exception:  # noqa: BLE001 - a preview is a courtesy: the run below says what went wrong
                pass
        self._finish(run_id, spec, lambda **kw: self.engine.run(spec, **kw),
                     lambda result: RunFinished(run_id, result, pin_as))

    def _finish(self, run_id: int, spec, compute, finished) -> None:
        """Call compute(progress=..., cancelled=...) in this worker and post one closing message: the
        finished(result) message, RunCancelled or RunFailed."""
        worker = get_current_worker()
        post = self.app.post_message

        def progress(done: int, total: int) -> None:
            post(RunProgress(run_id, done, total))

        try:
            result = compute(progress=progress, cancelled=lambda: worker.is_cancelled)
        except Cancelled:
            post(RunCancelled(run_id))
            return
        except BaseException as e:  # noqa: BLE001 - every failure is shown, never fatal
            post(RunFailed(run_id, spec, e))
            return
        post(RunCancelled(run_id) if worker.is_cancelled else finished(result))

    def is_active(self, run_id: int) -> bool:
        """Whether a message of run `run_id` is for the run in progress (else a stale run's: dropped)."""
        return run_id == self.active_run

    def cancel(self) -> None:
        """Cancel the run in progress and drop the queue (the worker then posts RunCancelled)."""
        self.app.workers.cancel_group(self.app, GROUP)
        self.batch = []

    def stopped(self) -> None:
        """The run in progress failed or was cancelled: nothing runs, nothing is queued."""
        self.batch = []
        self.idle()

    def idle(self) -> None:
        self.active_run = None
        self.running = False

    def pop_next(self) -> BatchEntry | None:
        """The next queued run (and whether it is the main one becomes `batch_main`), or None: idle."""
        if self.batch:
            entry = self.batch.pop(0)
            self.batch_main = entry[2]
            return entry
        self.idle()
        return None
