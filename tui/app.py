"""The initscope app: the spec form on the left, the results as tabs on the right. The App routes.

Data flow (docs/design.md): form text -> RunSpec -> engine run in a thread worker (tui/runs.py) ->
RunResult -> views. Messages come up (tui/messages.py: from the worker, the form, the runs table); the
app keeps the state (current run, pins, tensor shown, log y) and pushes it down to the views as one
Scene (tui/views.py: the tab registry). The keys and the help/palette table are tui/keys.py; each view
draws itself (the curves: widgets/curves.py). torch is imported by the first run, after the first frame.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from initscope.engine.errors import SpecError
from initscope.engine.spec import RunSpec, default_spec
from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.lazy import Lazy
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, ProgressBar, Select, Static, TabbedContent, TabPane, Tabs

from . import keys, runs, views
from .files import FileActions
from .keys import MENU_ACTIONS, KeyAction
from .lifecycle import WEB_KEYS, driver_class_for, exit_on_sigterm, exit_status, exit_when_terminal_closes
from .messages import (
    PinCommand,
    PreviewReady,
    RecallSpec,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunProgress,
    SpecEdited,
    SpecInvalid,
    TrainFinished,
)
from .pins import MAX_PINS, PinBoard
from .runs import failure_text
from .screens.choice import Choice, ChoiceScreen
from .screens.help import HelpScreen
from .screens.rename import RenamePrompt
from .startup_trace import stamp
from .tensors import ALL_TENSORS, SHORT_HELP, TENSOR_NAMES, cycle_tensors, next_tensor, shown_tensor
from .training import (
    TrainingActions,
    TrainingState,
    find_training_preset,
    preset_training_specs,
    training_presets,
    training_status,
)
from .widgets.curves import band_gap_note, legend_notes, rgb
from .widgets.form import SpecForm
from .widgets.runs_table import RunsTable

if TYPE_CHECKING:  # numpy (and torch) load with the first result, after the first frame
    from initscope.engine.result import RunResult

__all__ = ["InitScopeApp", "main", "MAX_PINS", "band_gap_note", "failure_text", "legend_notes"]

DEBOUNCE_S = 0.3
RESIZE_SETTLE_S = 0.08  # a burst of resizes is laid out once it pauses this long...
RESIZE_MAX_WAIT_S = 0.4  # ...or this long after it began, while it goes on
STARTUP_EXIT_WAITS = 100  # x 0.05 s: a quit during startup waits at most 5 s for the mounts


def notes_summary(notes: tuple[str, ...], width: int = 90) -> str:
    """The status line's word on a run's notes: a short single note itself, else a pointer to Explain."""
    if len(notes) == 1 and len(notes[0]) <= width:
        return "note: " + notes[0]
    return f"{len(notes)} run note{'s' if len(notes) > 1 else ''}: see Explain (F7)"


def _commands_provider():
    from .commands import InitScopeCommands  # textual.command is slow to import: not before the first frame

    return InitScopeCommands


# What run and training workers post; dropped once the app is closing (its widgets are going away)
WORKER_MESSAGES = (PreviewReady, RunProgress, RunFinished, RunFailed, RunCancelled, TrainFinished)


class InitScopeApp(FileActions, TrainingActions, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "initscope"
    COMMANDS = App.COMMANDS | {lambda: _commands_provider()}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-tall")]  # a short screen splits the plots evenly
    AUTO_FOCUS = None
    NOTIFICATION_TIMEOUT = 6

    BINDINGS = keys.bindings()

    def __init__(self, spec: RunSpec | None = None, engine=None, preset: str | None = None,
                 preset_overrides: dict[str, str] | None = None) -> None:
        super().__init__()
        for view in views.VIEWS:  # a view registered after this class was made brings its key too
            if view.key not in self._bindings.key_to_bindings:
                self._bindings.key_to_bindings[view.key] = [keys.view_binding(view)]
        if engine is None:
            from initscope import engine as engine_module  # torch-free until engine.run is called

            engine = engine_module
        self.engine = engine
        self.queue = runs.RunQueue(self, engine)
        self.start_spec = spec or default_spec()
        self.start_preset = preset
        self.preset_guide: tuple[RunSpec, str, str] | None = None  # (its run's spec, heading, text)
        self.preset_overrides = dict(preset_overrides or {})  # command-line flags applied on top of it
        self.current: RunResult | None = None
        self.preview: object | None = None  # the prediction drawn while the first run measures (engine.preview)
        self.pins = PinBoard()
        self.training = TrainingState()  # the Training tab's runs (tui/training.py)
        self.tensor = "post"  # the tensor shown
        self.tensor_wish = "post"  # the tensor asked for (ctrl+t, the palette, a preset): shown where the runs have it
        self.log_y = False
        self.last_error = ""
        self._notes_told: tuple[str, ...] = ()  # the notes of the last finished run (told in a toast)
        self._debounce = None
        self.redraws = 0  # curve redraws (tests, benchmarks)
        self.sub_title = "device: starting engine..."
        self._status_text = ""
        self._cancellable = False

    # the run queue's state, read by the status line, the tests and the benchmarks
    @property
    def running(self) -> bool:
        return self.queue.running

    @property
    def run_id(self) -> int:
        return self.queue.run_id

    @property
    def active_run(self) -> int | None:
        return self.queue.active_run

    @property
    def progress(self) -> tuple[int, int]:
        return self.queue.progress

    @property
    def batch(self) -> list[runs.BatchEntry]:
        return self.queue.batch

    # ------------------------------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        stamp("compose")
        yield Header()
        with Horizontal(id="main"):
            self._form_widget = SpecForm(self.start_spec, id="form")
            yield Lazy(self._form_widget)
            with Vertical(id="results"):
                with TabbedContent(id="tabs", initial=views.VIEWS[0].id):
                    for view in views.VIEWS:
                        with TabPane(view.title, id=view.id):
                            if view.mount == "late":  # its module loads numpy: after the first frame
                                yield Static("loading...", id=view.placeholder_id, markup=False)
                            elif view.mount == "lazy":
                                yield Lazy(view.make())
                            else:
                                yield view.make()
        with Horizontal(id="status"):
            yield Static("", id="status-text", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="progress")
        yield Footer(compact=True)

    async def _mount_views(self) -> None:
        """Mount the late views (Distribution, Explain: they pull in numpy) after the first frame."""
        for view in views.VIEWS:
            if view.mount == "late":
                pane = self.query_one(f"#{view.id}", TabPane)
                await self.query_one(f"#{view.placeholder_id}").remove()
                await pane.mount(view.make())
        stamp("late views mounted")
        self.redraw_views()

    def view_widget(self, view: views.View) -> Widget | None:
        """The view's widget, or None before it is mounted."""
        found = self.query(f"#{view.widget_id}")
        return found.first() if found else None

    def form(self) -> SpecForm | None:
        """The form, or None in the moment before it is mounted (it mounts after the first frame)."""
        found = self.query("#form")
        return found.first(SpecForm) if found else None

    def runs_table(self) -> RunsTable | None:
        found = self.query("#runs-table")
        return found.first(RunsTable) if found else None

    def form_spec(self) -> RunSpec:
        form = self.form()
        return form.spec if form is not None else self.start_spec

    def load_form(self, spec: RunSpec) -> None:
        form = self.form()
        if form is not None:
            form.load(spec)
        else:  # not mounted yet: it will compose from this
            self.start_spec = spec
            self._form_widget.set_spec_before_mount(spec)

    # ------------------------------------------------------------------------------------- process
    def get_driver_class(self):
        return driver_class_for(super().get_driver_class())  # the web driver quits with its client

    def get_key_display(self, binding: Binding) -> str:
        if self.is_web and binding.action in WEB_KEYS:  # the browser keeps ctrl+n and ctrl+t
            return WEB_KEYS[binding.action]
        return super().get_key_display(binding)

    def startup_done(self) -> bool:
        """True once the widgets mounted after the first frame (the form, every view) are in place."""
        late = [self.form(), *(self.view_widget(v) for v in views.VIEWS)]
        return all(w is not None and w.is_mounted for w in late)

    def exit(self, result=None, return_code: int = 0, message=None) -> None:
        """Quit; a request made while the app is still mounting waits for it (else Textual's teardown
        races the mounts and ctrl+q, SIGTERM or a closed browser in the first second end in a crash)."""
        if self.startup_done() or self._exit_waits > STARTUP_EXIT_WAITS:
            self.closing = True  # from now on a run's messages are dropped: the widgets are going away
            for group in runs.GROUPS:
                self.workers.cancel_group(self, group)
            super().exit(result, return_code, message)
            return
        self._exit_waits += 1
        self.set_timer(0.05, lambda: self.exit(result, return_code, message))

    _exit_waits = 0
    closing = False  # set by exit(): the messages of run and training workers are dropped from then on

    def check_message_enabled(self, message) -> bool:
        if self.closing and isinstance(message, WORKER_MESSAGES):
            return False
        return super().check_message_enabled(message)

    async def _on_resize(self, event: events.Resize) -> None:
        """Coalesce bursts of resizes (a browser, a dragged window): lay out once per burst.

        Textual lays out the screen, and every plot rebuilds, up to 120 times a second while resizes
        keep coming. Here the layout waits until no resize came for RESIZE_SETTLE_S, or at most
        RESIZE_MAX_WAIT_S into a burst; the first resize (the start) is laid out at once.
        """
        if self._resize_burst_start is None and self._pending_resize is None and not self._resized_once:
            self._resized_once = True
            return  # Textual's own handler (next in the MRO) lays out the first frame at once
        event.prevent_default()  # not Textual's handler: the timer below hands it the burst's last size
        now = time.monotonic()
        self._pending_resize = event
        if self._resize_burst_start is None:
            self._resize_burst_start = now
        if self._resize_timer_settle is not None:
            self._resize_timer_settle.stop()
        wait = min(self.resize_settle_s, max(0.001, self._resize_burst_start + self.resize_max_wait_s - now))
        self._resize_timer_settle = self.set_timer(wait, self._lay_out_resize)

    async def _lay_out_resize(self) -> None:
        event, self._pending_resize = self._pending_resize, None
        self._resize_burst_start = None
        self._resize_timer_settle = None
        if event is not None:  # a fresh event: the held one had its default action prevented
            await App._on_resize(self, events.Resize(event.size, event.virtual_size, event.container_size,
                                                     event.pixel_size))

    resize_settle_s = RESIZE_SETTLE_S
    resize_max_wait_s = RESIZE_MAX_WAIT_S
    _resized_once = False
    _pending_resize: events.Resize | None = None
    _resize_burst_start: float | None = None
    _resize_timer_settle = None

    def keys_text(self, entry: KeyAction) -> str:
        """The keys of a help or palette entry as they work here (in a browser: no ctrl+n, ctrl+t)."""
        if self.is_web and entry.action in WEB_KEYS:
            return f"{WEB_KEYS[entry.action]} (outside a field)"
        return entry.keys

    def on_mount(self) -> None:
        if not self.is_headless:
            exit_on_sigterm(self)
            if not self.is_web:
                exit_when_terminal_closes(self)
        self.theme_changed_signal.subscribe(self, lambda _theme: self.redraw_curves())
        self.query_one("#tabs Tabs", Tabs).focus()
        self.update_status()
        stamp("mounted")
        self.call_after_refresh(lambda: stamp("first frame"))
        self.call_after_refresh(self._mount_views)
        self.call_after_refresh(self._start_initial)

    def _start_initial(self) -> None:
        """The first run, after the first frame, unless the user already started one."""
        if self.run_id:
            return
        if self.start_preset:
            self.apply_preset(self.start_preset, self.preset_overrides)
        else:
            self.start_run(self.start_spec)

    # ------------------------------------------------------------------------------------- running
    def _stop_debounce(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None

    def start_run(self, spec: RunSpec, pin_as: str | None = None, keep_batch: bool = False) -> None:
        self._stop_debounce()
        # nothing on screen yet (the app's first run): draw the prediction while torch loads and the run measures
        with_preview = self.current is None and not self.pins.runs()
        self.queue.start(spec, pin_as, keep_batch, with_preview)
        self.update_status()

    def run_batch(self, entries: list[runs.BatchEntry]) -> None:
        """Run several specs one after another and pin each (presets with variants, sessions); what does
        not fit in the free pin slots is said in a toast (runs.fit_batch)."""
        if not entries:
            return
        entries, warning = runs.fit_batch(entries, MAX_PINS - len(self.pins))
        if warning is not None:
            self.notify(warning, severity="warning", markup=False, timeout=10)
        if not entries:
            return
        spec, name, _is_main = self.queue.queue_batch(entries)
        self.start_entry(spec, name, True)  # a session may queue training runs too

    @on(RunProgress)
    def _on_progress(self, message: RunProgress) -> None:
        if self.queue.is_active(message.run_id):
            self.queue.set_progress(message.run_id, message.done, message.total)
            self.update_status()

    @on(PreviewReady)
    def _on_preview(self, message: PreviewReady) -> None:
        if self.queue.is_active(message.run_id) and self.current is None:
            self.preview = message.prediction
            self.redraw_curves()
            stamp("preview drawn")
            self.call_after_refresh(lambda: stamp("preview refreshed"))

    def _drop_preview(self) -> None:
        if self.preview is not None:
            self.preview = None
            self.redraw_curves()

    @on(RunFinished)
    def _on_finished(self, message: RunFinished) -> None:
        if not self.queue.is_active(message.run_id):
            return  # a stale run that finished before it noticed the cancel
        self.preview = None
        result = message.result
        if message.pin_as is not None:
            is_main = self.queue.batch_main
            self._pin(result, message.pin_as)
            if is_main:
                self.current = result
        else:
            self.current = result
        if result.notes and result.notes != self._notes_told:  # once, not at every re-run (Explain keeps them)
            self.notify("\n".join(result.notes), markup=False, timeout=10,
                        title="Run notes" + (f": {message.pin_as}" if message.pin_as else ""))
        self._notes_told = result.notes
        self.sub_title = f"device: {result.device}"
        self.last_error = ""
        entry = self.queue.finished(message.run_id)
        if entry is not None:
            spec, name, _is_main = entry
            self.start_entry(spec, name, True)
        else:
            self.update_status()
        stamp("result received")
        self.redraw_all()
        stamp("result drawn")
        self.call_after_refresh(self._result_shown)

    def _result_shown(self) -> None:
        """After the refresh that drew a run's result: the first time, let the engine warm up (tui/preload.py
        FirstRunInChild.warm: torch loads now in the background, no longer competing with that drawing)."""
        stamp("result refreshed")
        if not self._engine_warmed:
            self._engine_warmed = True
            warm = getattr(self.engine, "warm", None)
            if warm is not None:
                warm()

    _engine_warmed = False

    @on(RunFailed)
    def _on_failed(self, message: RunFailed) -> None:
        if not self.queue.is_active(message.run_id):
            return
        text = failure_text(message.error)
        self.last_error = text
        training = self.queue.lane_of(message.run_id) is self.queue.train
        self.notify(text, title="Training failed" if training else "Run failed", severity="error", markup=False,
                    timeout=10)
        self.queue.stopped(message.run_id)
        self.training_stopped()
        self._drop_preview()  # the screen never shows a prediction for a run that did not happen
        self.update_status()

    @on(RunCancelled)
    def _on_cancelled(self, message: RunCancelled) -> None:
        if not self.queue.is_active(message.run_id):
            return
        self.queue.stopped(message.run_id)
        self.training_stopped()
        self._drop_preview()
        self.update_status("cancelled")

    # ------------------------------------------------------------------------------------- form
    @on(SpecEdited)
    def _on_spec_edited(self, message: SpecEdited) -> None:
        self._stop_debounce()
        spec = message.spec
        if not self.queue.runs.running and self.current is not None and spec == self.current.spec:
            self.last_error = ""  # edited back to what the screen shows: nothing to run
            self.update_status()
            return
        self._debounce = self.set_timer(DEBOUNCE_S, lambda: self.start_run(spec))
        self.update_status("edited; re-running shortly")

    @on(SpecInvalid)
    def _on_spec_invalid(self, message: SpecInvalid) -> None:
        self._stop_debounce()
        self.update_status(f"invalid {message.field}: fix it to re-run")

    # ------------------------------------------------------------------------------------- drawing
    def current_rgb(self) -> tuple[int, int, int]:
        return rgb(self.theme_variables.get("foreground", "white"))

    def background_rgb(self) -> tuple[int, int, int]:
        return rgb(self.theme_variables.get("surface", "black"))

    def scene(self) -> views.Scene:
        """The state the views draw, pushed down at each redraw."""
        guide = self.preset_guide
        current = self.current
        return views.Scene(
            current=current, pins=list(self.pins), tensor=self.tensor, log_y=self.log_y, running=self.running,
            preview=self.preview,
            guide=guide[1:] if guide is not None and current is not None and guide[0] == current.spec else None,
            foreground=self.current_rgb(), background=self.background_rgb(), training=self.training)

    def drawn_runs(self) -> list[tuple[str, str, RunResult, tuple[int, int, int], bool]]:
        """(key, name, result, colour, is_current) for every visible run, current first."""
        return self.scene().drawn_runs()

    def redraw(self, topic: str) -> None:
        """Hand the Scene to every mounted view that follows `topic` (views.TOPICS)."""
        if not self.is_mounted or (topic == "current" and self.current is None):
            return
        scene = None
        for view in views.VIEWS:
            if topic not in view.follows:
                continue
            widget = self.view_widget(view)
            if widget is None or not hasattr(widget, "show_scene"):
                continue
            scene = scene or self.scene()
            if not view.guard:
                widget.show_scene(scene)
                continue
            try:
                widget.show_scene(scene)
            except Exception as e:  # noqa: BLE001 - a view failing must not take the app down
                self.notify(f"{view.title} view failed: {e}", severity="error", markup=False)

    def redraw_curves(self) -> None:
        if not self.is_mounted:
            return
        self.redraws += 1
        if self._settle_tensor():  # the table, the histograms and the status line show the tensor too
            self.redraw_table()
            self.redraw_views()
            self.update_status()
        self.redraw("curves")

    def redraw_table(self) -> None:
        self.redraw("table")

    def redraw_views(self) -> None:
        """The views of the current run (Distribution, Explain)."""
        self.redraw("current")

    def redraw_all(self) -> None:
        self.redraw_curves()
        self.redraw_table()
        self.redraw_views()
        self.update_status()

    def update_status(self, note: str = "") -> None:
        if not self.is_mounted:
            return
        parts = []
        if self.running:
            parts.append(self._progress_text() + " · escape cancels")
        elif self.training.current is not None and self.training_tab_shown():
            parts.append(training_status(self.training.current))
        elif self.current is not None:
            r = self.current
            parts.append(f"{r.device} · {r.spec.depth} layers · {r.trials} trial{'s' if r.trials > 1 else ''}"
                         f" · {r.elapsed_s:.2f} s")
            if r.notes:
                parts.append(notes_summary(r.notes))
        if note:
            parts.append(note)
        elif self.last_error and not self.running:
            parts.append("last run failed: " + self.last_error[:80])
        parts.append(f"tensor {self.tensor}" + (" · log" if self.log_y else ""))
        if len(self.pins):
            parts.append(f"{len(self.pins)} pinned")
        text = " | ".join(parts)
        found = self.query("#status-text")
        if not found:  # torn down by a shutdown that did not come through exit() (a test harness's)
            return
        if text != self._status_text:
            self._status_text = text
            found.first(Static).update(text, layout=False)  # one fixed-height row
        self.query_one("#status").set_class(self.running, "-running")
        if self.running:  # the bar: the training run's steps while one trains (the long job), else the run's
            lane = self.queue.train if self.queue.train.running else self.queue.runs
            done, total = lane.progress
            if (done, total) != self._bar_shown:
                self._bar_shown = (done, total)
                self.query_one("#progress", ProgressBar).update(total=max(total, 1), progress=done)
        cancellable = self.running or self._debounce is not None
        if cancellable != self._cancellable:  # the Footer recomposes on refresh_bindings: only on change
            self._cancellable = cancellable
            self.refresh_bindings()

    _bar_shown: tuple[int, int] = (-1, -1)

    def _progress_text(self) -> str:
        """'training 120/3000 steps · running 3/20 (2 more queued)': the training run first (it is the long
        one: a form edit's re-run beside it must not hide it), then the run."""
        q, jobs = self.queue, []
        for lane, verb, unit in ((q.train, "training", " steps"), (q.runs, "running", "")):
            if not lane.running:
                continue
            done, total = lane.progress  # a run's steps: layers x passes x trials; training: trials x steps
            what = f"{verb} {done}/{total}{unit}" if total else verb
            if q.queued(lane):
                what += f" ({q.queued(lane)} more queued)"
            jobs.append(what)
        return " · ".join(jobs)

    # ------------------------------------------------------------------------------------- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":  # shown (and bound) only while there is something to cancel
            return self.running or self._debounce is not None
        if action in MENU_ACTIONS and len(self.screen_stack) > 1:  # one dialog at a time: the key goes to it
            return False
        return True

    def action_command_palette(self) -> None:
        # Textual only checks the top screen: with F1 pushed over an open palette, a second ctrl+p
        # would mount a second palette with the same id and crash.
        if any(s.has_class("--textual-command-palette") for s in self.screen_stack) or not self.use_command_palette:
            return
        from .commands import InitScopePalette

        self.push_screen(InitScopePalette(id="--command-palette"))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = [(k.group, self.keys_text(k), k.title + (": " + k.help if k.help else "")) for k in keys.key_actions()]
        self.push_screen(HelpScreen(rows))

    def action_rerun(self) -> None:
        form = self.form()
        if form is None:
            return
        if form.errors:
            field, reason = next(iter(form.errors.items()))
            self.notify(f"Fix {field} first: {reason}", severity="warning", markup=False)
            return
        self.start_run(form.spec)

    def leave_field(self) -> None:
        """escape in the form: cancel the pending re-run or the run in progress, else move focus to the tabs
        (single keys work). A training run goes on: a user who edits the form while it trains leaves the
        field with escape and must not lose it; escape outside a field (the app's cancel) cancels it."""
        if self.queue.runs.running or self._debounce is not None:
            running = self.queue.runs.running
            self.queue.cancel_runs()
            self._stop_debounce()
            self.update_status("cancelling..." if running else "re-run cancelled")
        else:
            self.screen.set_focus(self.query_one("#tabs Tabs", Tabs))  # now: the next key read is for the app

    def action_cancel(self) -> None:
        if self.running:
            self.queue.cancel()
            self._stop_debounce()
            self.update_status("cancelling...")
            return
        if self._debounce is not None:
            self._stop_debounce()
            self.update_status("re-run cancelled")

    def screen_results(self) -> list[RunResult]:
        """The runs whose curves are drawn now (current and visible pins): they decide the tensor cycle."""
        return [r for _key, _name, r, _colour, _cur in self.drawn_runs()]

    def action_next_tensor(self) -> None:
        self.tensor = self.tensor_wish = next_tensor(self.tensor, self.screen_results())
        self.redraw_all()

    def set_tensor(self, tensor: str) -> None:
        self.tensor = self.tensor_wish = tensor if tensor in ALL_TENSORS else "post"
        self.redraw_all()

    def _settle_tensor(self) -> bool:
        """Show the tensor asked for where a run on screen has it; else its neighbour (tui/tensors.py
        FALLBACK: normed after a switch to a run without a norm shows pre, and normed again once a run with
        a norm is back); with no run on screen the choice stands. True when the tensor shown changed."""
        results = self.screen_results()
        if not results:
            return False
        tensor = shown_tensor(self.tensor_wish, cycle_tensors(results))
        changed, self.tensor = tensor != self.tensor, tensor
        return changed

    def action_toggle_log(self) -> None:
        self.log_y = not self.log_y
        self.redraw_curves()
        self.update_status()

    def action_pin(self) -> None:
        if self.training_tab_shown():  # the Training tab pins its training run
            self.action_pin_training()
            return
        if self.current is None:
            self.notify("Nothing to pin yet: wait for the run to finish.", severity="warning", markup=False)
            return
        if any(p.result is self.current for p in self.pins):
            self.notify("The current run is already pinned.", markup=False)
            return
        self._pin(self.current, None)
        self.redraw_curves()
        self.redraw_table()
        self.update_status()

    def _pin(self, result: RunResult, name: str | None) -> None:
        try:
            pin = self.pins.add(result, name or self._auto_name(result))
        except ValueError as e:
            self.notify(str(e), severity="warning", markup=False)
            return
        self.notify(f"Pinned as {len(self.pins)}: {pin.name}", markup=False, timeout=3)

    def _auto_name(self, result: RunResult) -> str:
        spec = result.spec
        t = spec.to_text()
        extra = ([t["norm"]] if spec.has_norm else []) + ([t["residual"]] if spec.has_residual else [])
        return " ".join([t["init"], t["act"], *extra])

    # A pin of a run or of a training run (tui/pins.py): the same keys, the same table; redraw_curves
    # redraws the Training tab too (it follows "curves").
    def action_toggle_pin(self, index: int) -> None:
        if not 0 <= index < len(self.pins):
            return
        self.pins.toggle(index)
        self.redraw_curves()
        self.redraw_table()

    def action_remove_pin(self, index: int) -> None:
        if 0 <= index < len(self.pins):
            pin = self.pins.remove(index)
            self.notify(f"Removed {'training run ' if pin.is_training else ''}{pin.name}", markup=False, timeout=3)
            self.redraw_curves()
            self.redraw_table()
            self.update_status()

    def action_rename_pin(self, index: int) -> None:
        if not 0 <= index < len(self.pins):
            return
        pin = self.pins[index]

        def done(name: str | None) -> None:
            if name:
                self.pins.rename(self.pins.pins.index(pin), name)
                self.redraw_curves()
                self.redraw_table()

        self.push_screen(RenamePrompt(pin.name), done)

    def action_recall_pin(self, index: int) -> None:
        if not 0 <= index < len(self.pins):
            return
        pin = self.pins[index]
        if pin.is_training:
            self.recall_training(pin)
            return
        self.load_form(pin.spec)
        self.current = pin.result
        self.last_error = ""
        self.redraw_all()
        self.notify(f"Recalled {pin.name} into the form", markup=False, timeout=3)

    @on(RecallSpec)
    def _on_recall_spec(self, message: RecallSpec) -> None:
        """A view's spec into the form, run at once (the Phase tab's cells have no run to show yet)."""
        self.load_form(message.spec)
        self.last_error = ""
        self.start_run(message.spec)
        self.notify(f"Recalled {message.label} into the form; running it", markup=False, timeout=4)

    @on(PinCommand)
    def _on_pin_command(self, message: PinCommand) -> None:
        {"toggle": self.action_toggle_pin, "rename": self.action_rename_pin, "remove": self.action_remove_pin,
         "recall": self.action_recall_pin}[message.kind](message.index)

    def action_table(self, kind: str) -> None:
        table = self.runs_table()
        index = table.selected_pin() if table is not None else None
        if index is None:
            if len(self.pins):
                index = 0
            else:
                pin_key = WEB_KEYS["pin"] if self.is_web else "ctrl+n"
                self.notify(f"No pinned runs: {pin_key} pins the current run.", markup=False)
                return
        self._on_pin_command(PinCommand(kind, index))

    def action_toggle_form(self) -> None:
        form = self.form()
        if form is None:
            return
        form.display = not form.display
        if not form.display and form.has_focus_within:
            self.query_one("#tabs Tabs", Tabs).focus()

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        self.update_status()  # the status line describes what the tab shows: the run, or the training run

    def action_next_tab(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        ids = views.tab_ids()
        i = ids.index(tabs.active) if tabs.active in ids else 0
        self.action_show_tab(ids[(i + 1) % len(ids)])

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        view = views.get(tab)
        if view is not None and view.focus:  # the runs table: its keys work at once
            widget = self.view_widget(view)
            if widget is not None:
                widget.focus()
        elif isinstance(self.focused, (Input, Select)) or self.focused is None:
            self.query_one("#tabs Tabs", Tabs).focus()

    # presets -------------------------------------------------------------------------------------
    def action_presets(self) -> None:
        from initscope.engine.presets import PRESETS

        choices = [Choice(p.key, p.title, "look for: " + p.look_for, p.name) for p in PRESETS.values()]
        choices += [Choice(key, "Train: " + p.title, "look for: " + p.look_for, p.name)  # trained, Training tab
                    for key, p in training_presets({c.key for c in choices})]
        self.push_screen(ChoiceScreen("Presets: the classic experiments", choices),
                         lambda name: self.apply_preset(name) if name else None)

    def apply_preset(self, name: str, overrides: dict[str, str] | None = None) -> None:
        """Load a preset's variants (with `overrides`, text forms, on top) and run them all, pinned."""
        from initscope.engine.presets import PRESETS

        preset = PRESETS.get(name) or find_training_preset(name)
        if preset is None:
            self.notify(f"No preset called {name}", severity="error", markup=False)
            return
        try:
            training_specs = preset_training_specs(preset, overrides)
            specs = training_specs or preset.specs(overrides)
        except SpecError as e:
            self.notify(e.message("app"), severity="error", markup=False)
            return
        if training_specs:  # a training preset (lesson8_training, trainability): trained, pinned in Training
            self.apply_training_preset(preset, training_specs)
            return
        main_label, main_spec = specs[0]
        self.load_form(main_spec)
        if preset.tensor is not None:  # the view that shows the point (batchnorm: grad on a log scale)
            self.tensor = self.tensor_wish = preset.tensor
            self.log_y = preset.log_y
        # what to look for: a toast now, and the Explain tab for as long as the preset's run is current
        self.preset_guide = (main_spec, f"Preset {preset.name}", f"{preset.title}\n\nLook for: {preset.look_for}")
        self.notify(f"{preset.title}\nLook for: {preset.look_for}\n(The Explain tab keeps this.)",
                    title=f"Preset {preset.name}", markup=False, timeout=8)
        if len(specs) == 1:
            self.start_run(main_spec)
        else:
            self.run_batch([(s, label, i == 0) for i, (label, s) in enumerate(specs)])

    # palette -------------------------------------------------------------------------------------
    def palette_entries(self) -> list[tuple[str, str, str]]:
        """(title, help, action string) for every action, plus one per tab, pin, tensor and preset."""
        out = [(k.title, f"{self.keys_text(k)}: {k.help}", k.action) for k in keys.key_actions()
               if not k.action.startswith(("table(", "toggle_pin(", "show_tab(", "command_palette", "focus_next"))]
        out += [(f"Show {v.id} tab", views.key_range(), f"show_tab('{v.id}')") for v in views.VIEWS]
        out += [(f"Tensor: {t}", f"{TENSOR_NAMES[t]}: {SHORT_HELP[t]}", f"set_tensor_action('{t}')")
                for t in cycle_tensors(self.screen_results())]
        for i, p in enumerate(self.pins):
            what = f"Pin {i + 1} {p.name}" + (" (training)" if p.is_training else "")
            out += [(f"{what}: show/hide", f"key {i + 1}", f"toggle_pin({i})"),
                    (f"{what}: rename", "", f"rename_pin({i})"),
                    (f"{what}: remove", "", f"remove_pin({i})"),
                    (f"{what}: recall into the form", "", f"recall_pin({i})")]
        try:
            from initscope.engine.presets import PRESETS

            out += [(f"Preset {p.key}: {p.name}", p.title, f"preset('{p.name}')") for p in PRESETS.values()]
            out += [(f"Preset {key}: {p.name} (training)", p.title, f"preset('{p.name}')")
                    for key, p in training_presets({p.key for p in PRESETS.values()})]
        except ImportError:
            pass
        return out + self.training_palette_entries()

    def action_set_tensor_action(self, tensor: str) -> None:
        self.set_tensor(tensor)

    def action_preset(self, name: str) -> None:
        self.apply_preset(name)

def main(spec: RunSpec | None = None, preset: str | None = None,
         preset_overrides: dict[str, str] | None = None, engine=None) -> int:
    """Run the app in this terminal (or a browser, under `textual serve`); returns the exit status."""
    app = InitScopeApp(spec, engine=engine, preset=preset, preset_overrides=preset_overrides)
    app.run()
    return exit_status(app)


if __name__ == "__main__":
    if "--fake" in sys.argv:  # development: the fast fake engine from the tests
        from tests.tui.fake_engine import FakeEngine

        fake_app = InitScopeApp(engine=FakeEngine(delay=0.02))
        fake_app.run()
        sys.exit(exit_status(fake_app))
    else:
        sys.exit(main())
