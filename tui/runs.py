"""The app's engine jobs: runs and training runs, each kind one at a time in its own thread worker group
(a lane), a chain of jobs to pin (presets, sessions), cancellation.

The worker posts messages up to the app (tui/messages.py): PreviewReady, RunProgress, then one of
RunFinished (TrainFinished), RunFailed, RunCancelled; the app routes them and asks `is_active(run_id)`
to drop those of a stale job. A new run cancels the stale run, a new training run the stale training run
(exclusive worker groups; the engine polls `cancelled` per layer or step); a run (the form's live re-run
after an edit) leaves a training run going. The engine is whatever the app was given: by default the
one tui/preload.py hands over (its first run may come from a child interpreter), else initscope.engine
itself.
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

GROUP = "engine"  # runs
TRAIN_GROUP = "training"  # training runs: a run in GROUP does not cancel them
GROUPS = (GROUP, TRAIN_GROUP)
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


class Lane:
    """One kind of job in its own exclusive worker group: the job in progress (`active`, its id) and its
    progress. A new job of the lane cancels the lane's stale one; the other lane's job goes on."""

    def __init__(self, name: str, group: str) -> None:
        self.name = name
        self.group = group
        self.active: int | None = None
        self.progress: tuple[int, int] = (0, 0)

    @property
    def running(self) -> bool:
        return self.active is not None


class RunQueue:
    """Two lanes, each one job at a time: `runs` (engine runs: the form's live re-run, pins, presets) and
    `train` (training runs, which take seconds to minutes). A form edit re-runs in the runs lane and leaves
    a training run going; escape cancels both. Job ids are unique over both lanes (`run_id` counts them).

    `batch`: the entries queued after the one in progress of a chain (a preset's variants, a session);
    `chain`: the lane whose job is the chain's entry in progress (None: no chain); `batch_main`: that
    entry is the chain's main one (it becomes the current run as well as a pin).
    """

    def __init__(self, app: App, engine) -> None:
        self.app = app
        self.engine = engine
        self.run_id = 0
        self.runs = Lane("run", GROUP)
        self.train = Lane("training", TRAIN_GROUP)
        self.batch: list[BatchEntry] = []
        self.batch_main = False
        self.chain: Lane | None = None

    # what the status line, the tests and the benchmarks read
    @property
    def running(self) -> bool:
        """Something runs or trains."""
        return self.runs.running or self.train.running

    @property
    def active_run(self) -> int | None:
        return self.runs.active

    @property
    def progress(self) -> tuple[int, int]:
        """The progress of the run in progress, else of the training run."""
        return self.runs.progress if self.runs.running else self.train.progress

    def lane_of(self, run_id: int) -> Lane | None:
        return next((lane for lane in (self.runs, self.train) if lane.active == run_id), None)

    def _begin(self, lane: Lane, total: int, keep_batch: bool) -> int:
        if keep_batch:
            self.chain = lane
        elif self.chain is lane or self.chain is None:  # the chain's entry in this lane is superseded
            self.batch = []
            self.chain = None
        self.run_id += 1
        lane.active = self.run_id
        lane.progress = (0, total)
        return self.run_id

    def start(self, spec: RunSpec, pin_as: str | None = None, keep_batch: bool = False,
              with_preview: bool = False) -> int:
        """Start a run of `spec` (cancelling the run in progress, not a training run);
        `with_preview`: post the prediction first."""
        run_id = self._begin(self.runs, spec.depth, keep_batch)
        self.app.run_worker(lambda: self._work(spec, run_id, pin_as, with_preview), thread=True, exclusive=True,
                            group=GROUP, exit_on_error=False, description="engine run")
        return run_id

    def start_training(self, spec, pin_as: str | None = None, keep_batch: bool = False) -> int:
        """Start a training run of `spec` (a TrainSpec, engine/trainspec.py) in the training lane: progress in
        optimizer steps (trials x steps), a new training run cancels the stale one (runs do not), escape
        cancels; TrainFinished at the end."""
        if not keep_batch:
            self.batch, self.chain = [], None  # a training run the user started replaces any chain
        run_id = self._begin(self.train, spec.trials * spec.steps, keep_batch)
        self.app.run_worker(lambda: self._train_work(spec, run_id, pin_as), thread=True, exclusive=True,
                            group=TRAIN_GROUP, exit_on_error=False, description="training run")
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
        now (start(..., keep_batch=True) or start_training(..., keep_batch=True))."""
        first = entries[0]
        self.batch = list(entries[1:])
        self.batch_main = first[2]
        return first

    def attach_batch(self, entries: list[BatchEntry]) -> None:
        """Queue `entries` after the run in progress (a session's pins after its current configuration)."""
        self.batch = list(entries)
        self.batch_main = False
        self.chain = self.runs

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
        """Whether a message of job `run_id` is for a job in progress (else a stale job's: dropped)."""
        return self.lane_of(run_id) is not None

    def set_progress(self, run_id: int, done: int, total: int) -> None:
        lane = self.lane_of(run_id)
        if lane is not None:
            lane.progress = (done, total)

    def cancel(self) -> None:
        """Cancel the run and the training run in progress and drop the queue (each worker then posts
        RunCancelled)."""
        for group in GROUPS:
            self.app.workers.cancel_group(self.app, group)
        self.batch, self.chain = [], None

    def cancel_runs(self) -> None:
        """Cancel the run in progress only (escape in the form); a training run goes on."""
        self.app.workers.cancel_group(self.app, GROUP)
        if self.chain is self.runs:
            self.batch, self.chain = [], None

    def stopped(self, run_id: int) -> None:
        """Job `run_id` failed or was cancelled: its lane is idle; a chain it was part of ends."""
        lane = self.lane_of(run_id)
        if lane is None:
            return
        lane.active = None
        if self.chain is lane:
            self.batch, self.chain = [], None

    def finished(self, run_id: int) -> BatchEntry | None:
        """Job `run_id` finished: its lane is idle; when it was a chain's entry, the chain's next entry (to
        start now with keep_batch=True; `batch_main` says whether it is the main one), else None."""
        lane = self.lane_of(run_id)
        if lane is None:
            return None
        lane.active = None
        if self.chain is not lane:
            return None
        if self.batch:
            entry = self.batch.pop(0)
            self.batch_main = entry[2]
            return entry
        self.chain = None
        return None

    def queued(self, lane: Lane) -> int:
        """How many entries wait after `lane`'s job (0 unless it is a chain's)."""
        return len(self.batch) if self.chain is lane else 0
