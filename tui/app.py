"""The initscope app: the spec form on the left, the results as tabs on the right.

Data flow (docs/design.md): form text -> RunSpec -> engine.run in a thread worker -> RunResult -> views.
The engine runs in one exclusive worker (a new run cancels the stale one; the engine polls
`cancelled` per layer). torch is imported by the first run, after the first frame.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from initscope.engine.errors import Cancelled, InitscopeError, SpecError
from initscope.engine.signal_range import first_nonfinite, range_event
from initscope.engine.spec import RunSpec, default_spec
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.lazy import Lazy
from textual.widgets import Footer, Header, Input, ProgressBar, Select, Static, TabbedContent, TabPane, Tabs
from textual.worker import get_current_worker

from .lifecycle import WEB_KEYS, driver_class_for, exit_on_sigterm, exit_status, exit_when_terminal_closes
from .messages import (
    PinCommand,
    PreviewReady,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunProgress,
    SpecEdited,
    SpecInvalid,
)
from .pins import MAX_PINS, PinBoard
from .screens.choice import Choice, ChoiceScreen
from .screens.help import HelpScreen
from .screens.rename import RenamePrompt
from .tensors import ALL_TENSORS, SHORT_HELP, TENSOR_NAMES, cycle_tensors, next_tensor, shown_tensor, tensor_label
from .widgets.form import SpecForm
from .widgets.layer_plot import LayerPlot, Mark, Series
from .widgets.legend import Legend, LegendEntry
from .widgets.runs_table import RunsTable

if TYPE_CHECKING:  # numpy (and torch) load with the first result, after the first frame
    import numpy as np
    from initscope.engine.result import RunResult

TABS = ("curves", "distribution", "explain", "runs")
DEBOUNCE_S = 0.3
RESIZE_SETTLE_S = 0.08  # a burst of resizes is laid out once it pauses this long...
RESIZE_MAX_WAIT_S = 0.4  # ...or this long after it began, while it goes on
STARTUP_EXIT_WAITS = 100  # x 0.05 s: a quit during startup waits at most 5 s for the mounts
MENU_ACTIONS = ("presets", "save_menu", "open_session")  # their keys open a dialog only from the main screen
NONFINITE_RGB = (255, 85, 85)
SVG_SETTLE_S = 0.15  # frames for the screen to redraw without its toasts before an SVG screenshot


@dataclass(frozen=True)
class KeyAction:
    group: str
    keys: str
    title: str
    action: str
    help: str


# One table for the help screen and the command palette (the bindings below use the same actions).
KEY_ACTIONS: tuple[KeyAction, ...] = (
    KeyAction("Run", "ctrl+r", "Run now", "rerun", "Run the form's configuration again now"),
    KeyAction("Run", "escape", "Cancel run", "cancel", "Stop the run in progress (escape also leaves a field)"),
    KeyAction("Run", "F3", "Presets", "presets", "The classic experiments, one key each"),
    KeyAction("View", "ctrl+t  t", "Next tensor", "next_tensor",
              "Cycle pre -> (normed) -> post -> (out) -> grad -> grad_pre -> (grad_out), those the runs have"),
    KeyAction("View", "ctrl+l  l", "Log y", "toggle_log", "Log scale on the std plot (|mean| on the mean plot)"),
    KeyAction("View", "F2", "Show/hide form", "toggle_form", "Give the plots the whole width"),
    KeyAction("View", "F4", "Next tab", "next_tab", "Curves -> Distribution -> Explain -> Runs"),
    KeyAction("View", "F5..F8", "Curves/Distribution/Explain/Runs tab", "show_tab('curves')", "Jump to a tab"),
    KeyAction("Compare", "ctrl+n  p", "Pin current run", "pin", "Keep the current run with a colour and a name"),
    KeyAction("Compare", "1..9", "Show/hide pin N", "toggle_pin(0)", "Toggle a pinned run's visibility"),
    KeyAction("Compare", "space (Runs tab)", "Show/hide selected pin", "table('toggle')", "In the runs table"),
    KeyAction("Compare", "r (Runs tab)", "Rename selected pin", "table('rename')", "In the runs table"),
    KeyAction("Compare", "d (Runs tab)", "Remove selected pin", "table('remove')", "In the runs table"),
    KeyAction("Compare", "enter (Runs tab)", "Recall selected pin", "table('recall')",
              "Load its configuration into the form"),
    KeyAction("Files", "ctrl+s", "Save / open menu", "save_menu", "JSON, CSV, SVG screenshot, session"),
    KeyAction("Files", "ctrl+s j", "Export results as JSON", "export('json')", "Current and pinned runs"),
    KeyAction("Files", "ctrl+s c", "Export results as CSV", "export('csv')", "One row per run and layer"),
    KeyAction("Files", "ctrl+s s", "Save SVG screenshot", "export('svg')", "What is on screen now"),
    KeyAction("Files", "ctrl+s w", "Save session", "export('session')", "The pinned configurations"),
    KeyAction("Files", "ctrl+o", "Open session", "open_session", "Re-run and pin a saved session"),
    KeyAction("App", "F1  ?", "Help", "help", "This screen"),
    KeyAction("App", "ctrl+p", "Command palette", "command_palette", "Search every action"),
    KeyAction("App", "tab / shift+tab", "Next/previous field", "focus_next", "Move through the form"),
    KeyAction("App", "ctrl+q", "Quit", "quit", "Always quits"),
)


def _rgb(text: str) -> tuple[int, int, int]:
    c = Color.parse(text)
    return (c.r, c.g, c.b)


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=False))  # type: ignore[return-value]


def theory_curve(theory: object, tensor: str, stat: str) -> np.ndarray | None:
    """The prediction's curve for (tensor, stat), or None: pre_std, post_mean, post_std, grad_std, grad_pre_std."""
    import numpy as np

    if theory is None:
        return None
    y = getattr(theory, f"{tensor}_{stat}", None)
    if y is None:
        return None
    y = np.asarray(y, dtype=float)
    return y if y.size and np.isfinite(y).any() else None


def theory_band(theory: object, tensor: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The one-sigma finite-width band around the std curve (engine.theory: pre_std_lo/hi, post_std_lo/hi)."""
    import numpy as np

    if theory is None:
        return None
    lo = getattr(theory, f"{tensor}_std_lo", None)
    hi = getattr(theory, f"{tensor}_std_hi", None)
    if lo is None or hi is None:
        return None
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if not (np.isfinite(lo).any() and np.isfinite(hi).any()):
        return None
    return lo, hi


def legend_notes(styles: dict[str, tuple[int, int, int] | None], band_gap: str | None = None
                 ) -> list[tuple[str, tuple[int, int, int] | None, str]]:
    """The line styles the plots use (widgets/layer_plot.py MARKERS), one legend note each; the band and
    the trials' spread only when drawn, in their own colours; band_gap (band_gap_note) where it is missing."""
    notes: list[tuple[str, tuple[int, int, int] | None, str]] = [("──", None, "measured"), ("•", None, "theory")]
    if "band" in styles:
        notes.append(("··", styles["band"], "band ±1 sd"))
    if "spread" in styles:
        notes.append(("⣀⣀", styles["spread"], "trials ±1 sd"))
    if band_gap:
        notes.append(("", None, band_gap))
    return notes


def band_gap_note(theory: object, tensor: str) -> str | None:
    """'no band (F7 says why)' or 'no band from L5 (F7)' where the std is predicted but the theory draws
    no band (Prediction.band_reason says why, in Explain); None where the band covers every block."""
    import numpy as np

    if not hasattr(theory, f"{tensor}_std_lo") or not getattr(theory, "band_reason", None):
        return None  # the theory draws no band for this tensor at all (gradients), or has nothing to say
    std, band = theory_curve(theory, tensor, "std"), theory_band(theory, tensor)
    if std is None:
        return None
    gaps = np.isfinite(std) & (~np.isfinite(band[0]) if band is not None else True)
    if not gaps.any():
        return None
    first = int(np.argmax(gaps)) + 1
    return "no band (F7 says why)" if band is None or first == 1 else f"no band from L{first} (F7)"


def notes_summary(notes: tuple[str, ...], width: int = 90) -> str:
    """The status line's word on a run's notes: a short single note itself, else a pointer to Explain."""
    if len(notes) == 1 and len(notes[0]) <= width:
        return "note: " + notes[0]
    return f"{len(notes)} run note{'s' if len(notes) > 1 else ''}: see Explain (F7)"


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


def _commands_provider():
    from .commands import InitScopeCommands  # textual.command is slow to import: not before the first frame

    return InitScopeCommands


class InitScopeApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "initscope"
    COMMANDS = App.COMMANDS | {lambda: _commands_provider()}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (28, "-tall")]  # a short screen splits the plots evenly
    AUTO_FOCUS = None
    NOTIFICATION_TIMEOUT = 6

    BINDINGS = [
        Binding("f1", "help", "Help", priority=True, tooltip="Every key"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+r", "rerun", "Run", priority=True, tooltip="Run the configuration now"),
        Binding("escape", "cancel", "Stop", tooltip="Cancel the run in progress"),
        Binding("ctrl+t", "next_tensor", "Tensor", priority=True, tooltip="pre, normed, post, out, grad, ..."),
        Binding("t", "next_tensor", "Tensor", show=False),
        Binding("ctrl+l", "toggle_log", "Log", priority=True, tooltip="Log-y on the std plot"),
        Binding("l", "toggle_log", "Log", show=False),
        Binding("ctrl+n", "pin", "Pin", priority=True, tooltip="Pin the current run"),
        Binding("p", "pin", "Pin", show=False),
        Binding("f2", "toggle_form", "Form", priority=True, tooltip="Show or hide the form"),
        Binding("f3", "presets", "Presets", priority=True, tooltip="Classic experiments"),
        Binding("f4", "next_tab", "Tab", show=False, priority=True, tooltip="Next tab"),
        Binding("f5", "show_tab('curves')", "Curves", show=False, priority=True),
        Binding("f6", "show_tab('distribution')", "Distribution", show=False, priority=True),
        Binding("f7", "show_tab('explain')", "Explain", show=False, priority=True),
        Binding("f8", "show_tab('runs')", "Runs", show=False, priority=True),
        Binding("ctrl+s", "save_menu", "Save", priority=True, tooltip="JSON, CSV, SVG, session"),
        Binding("ctrl+o", "open_session", "Open", show=False, priority=True),
        # Priority, so focus moves as the app reads the key, before it hands on the next one: Textual's own
        # tab moves focus only once the key has gone to the focused widget and come back unused, and the
        # keys read meanwhile (a busy app reads a burst at once) went to the widget being left.
        Binding("tab", "focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True),
        *[Binding(str(i), f"toggle_pin({i - 1})", f"Pin {i}", show=False) for i in range(1, MAX_PINS + 1)],
    ]

    def __init__(self, spec: RunSpec | None = None, engine=None, preset: str | None = None,
                 preset_overrides: dict[str, str] | None = None) -> None:
        super().__init__()
        if engine is None:
            from initscope import engine as engine_module  # torch-free until engine.run is called

            engine = engine_module
        self.engine = engine
        self.start_spec = spec or default_spec()
        self.start_preset = preset
        self.preset_guide: tuple[RunSpec, str, str] | None = None  # (its run's spec, heading, text)
        self.preset_overrides = dict(preset_overrides or {})  # command-line flags applied on top of it
        self.current: RunResult | None = None
        self.preview: object | None = None  # the prediction drawn while the first run measures (engine.preview)
        self.pins = PinBoard()
        self.tensor = "post"  # the tensor shown
        self.tensor_wish = "post"  # the tensor asked for (ctrl+t, the palette, a preset): shown where the runs have it
        self.log_y = False
        self.running = False
        self.run_id = 0
        self.active_run: int | None = None
        self.progress: tuple[int, int] = (0, 0)
        self.batch: list[tuple[RunSpec, str | None, bool]] = []  # (spec, pin name or None, is the main one) to run
        self.last_error = ""
        self._notes_told: tuple[str, ...] = ()  # the notes of the last finished run (told in a toast)
        self._debounce = None
        self.redraws = 0  # curve redraws (tests, benchmarks)
        self.sub_title = "device: starting engine..."
        self._status_text = ""
        self._cancellable = False

    # ------------------------------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            self._form_widget = SpecForm(self.start_spec, id="form")
            yield Lazy(self._form_widget)
            with Vertical(id="results"):
                with TabbedContent(id="tabs", initial="curves"):
                    with TabPane("Curves", id="curves"):
                        yield LayerPlot("mean", abs_for_log=True, id="plot-mean")
                        yield LayerPlot("std", id="plot-std")
                        yield Legend(id="legend")
                    with TabPane("Distribution", id="distribution"):
                        yield Static("loading...", id="dist-placeholder", markup=False)
                    with TabPane("Explain", id="explain"):
                        yield Static("loading...", id="explain-placeholder", markup=False)
                    with TabPane("Runs", id="runs"):
                        yield Lazy(RunsTable(id="runs-table"))
        with Horizontal(id="status"):
            yield Static("", id="status-text", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="progress")
        yield Footer(compact=True)

    async def _mount_views(self) -> None:
        """Mount the Distribution and Explain views after the first frame (they pull in numpy)."""
        from .widgets.distribution import DistributionView
        from .widgets.explain_panel import ExplainPanel

        for pane_id, placeholder, view in (("distribution", "#dist-placeholder", DistributionView(id="dist")),
                                           ("explain", "#explain-placeholder", ExplainPanel(id="explain-view"))):
            pane = self.query_one(f"#{pane_id}", TabPane)
            await self.query_one(placeholder).remove()
            await pane.mount(view)
        self.redraw_views()

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
        """True once the widgets mounted after the first frame (form, runs table, Explain) are in place."""
        late = [self.form(), self.runs_table(), *self.query("#explain-view"), *self.query("#dist")]
        return len(late) == 4 and all(w is not None and w.is_mounted for w in late)

    def exit(self, result=None, return_code: int = 0, message=None) -> None:
        """Quit; a request made while the app is still mounting waits for it (else Textual's teardown
        races the mounts and ctrl+q, SIGTERM or a closed browser in the first second end in a crash)."""
        if self.startup_done() or self._exit_waits > STARTUP_EXIT_WAITS:
            self.closing = True  # from now on a run's messages are dropped: the widgets are going away
            self.workers.cancel_group(self, "engine")
            super().exit(result, return_code, message)
            return
        self._exit_waits += 1
        self.set_timer(0.05, lambda: self.exit(result, return_code, message))

    _exit_waits = 0
    closing = False

    def check_message_enabled(self, message) -> bool:
        if self.closing and isinstance(message, (RunProgress, RunFinished, RunFailed, RunCancelled)):
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
    def start_run(self, spec: RunSpec, pin_as: str | None = None, keep_batch: bool = False) -> None:
        if not keep_batch:
            self.batch = []
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.run_id += 1
        self.active_run = self.run_id
        self.running = True
        self.progress = (0, spec.depth)
        self.update_status()
        # nothing on screen yet (the app's first run): draw the prediction while torch loads and the run measures
        with_preview = self.current is None and not len(self.pins)
        self._engine_worker(spec, self.run_id, pin_as, with_preview)

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False, description="engine run")
    def _engine_worker(self, spec: RunSpec, run_id: int, pin_as: str | None, with_preview: bool = False) -> None:
        worker = get_current_worker()
        preview = getattr(self.engine, "preview", None) if with_preview else None
        if preview is not None:
            try:
                self.post_message(PreviewReady(run_id, preview(spec)))
            except Exception:  # noqa: BLE001 - a preview is a courtesy: the run below says what went wrong
                pass

        def progress(done: int, total: int) -> None:
            self.post_message(RunProgress(run_id, done, total))

        try:
            result = self.engine.run(spec, progress=progress, cancelled=lambda: worker.is_cancelled)
        except Cancelled:
            self.post_message(RunCancelled(run_id))
            return
        except BaseException as e:  # noqa: BLE001 - every failure is shown, never fatal
            self.post_message(RunFailed(run_id, spec, e))
            return
        if worker.is_cancelled:
            self.post_message(RunCancelled(run_id))
            return
        self.post_message(RunFinished(run_id, result, pin_as))

    @on(RunProgress)
    def _on_progress(self, message: RunProgress) -> None:
        if message.run_id == self.active_run:
            self.progress = (message.done, message.total)
            bar = self.query_one("#progress", ProgressBar)
            bar.update(total=max(message.total, 1), progress=message.done)
            self.update_status()

    @on(PreviewReady)
    def _on_preview(self, message: PreviewReady) -> None:
        if message.run_id == self.active_run and self.current is None:
            self.preview = message.prediction
            self.redraw_curves()

    def _drop_preview(self) -> None:
        if self.preview is not None:
            self.preview = None
            self.redraw_curves()

    @on(RunFinished)
    def _on_finished(self, message: RunFinished) -> None:
        if message.run_id != self.active_run:
            return  # a stale run that finished before it noticed the cancel
        self.preview = None
        result = message.result
        if message.pin_as is not None:
            is_main = self._batch_main
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
        self._next_in_batch_or_idle()
        self.redraw_all()

    @on(RunFailed)
    def _on_failed(self, message: RunFailed) -> None:
        if message.run_id != self.active_run:
            return
        text = failure_text(message.error)
        self.last_error = text
        self.notify(text, title="Run failed", severity="error", markup=False, timeout=10)
        self.batch = []
        self.active_run = None
        self.running = False
        self._drop_preview()  # the screen never shows a prediction for a run that did not happen
        self.update_status()

    @on(RunCancelled)
    def _on_cancelled(self, message: RunCancelled) -> None:
        if message.run_id != self.active_run:
            return
        self.active_run = None
        self.running = False
        self.batch = []
        self._drop_preview()
        self.update_status("cancelled")

    def _next_in_batch_or_idle(self) -> None:
        if self.batch:
            spec, name, is_main = self.batch.pop(0)
            self._batch_main = is_main
            self.start_run(spec, pin_as=name, keep_batch=True)
            return
        self.active_run = None
        self.running = False
        self.update_status()

    def run_batch(self, entries: list[tuple[RunSpec, str | None, bool]]) -> None:
        """Run several specs one after another and pin each (presets with variants, sessions).

        Pins are never evicted: entries beyond the free slots are not run, except the main one (a
        preset's first variant), which then runs unpinned as the current run, so the screen always
        shows the preset that was asked for."""
        if not entries:
            return
        free = MAX_PINS - len(self.pins)
        if len(entries) > free:
            left_out = entries[free:]
            unpinned_main = [(spec, None, True) for spec, _name, is_main in left_out if is_main]
            skipped = [name for _spec, name, is_main in left_out if not is_main]
            self.notify(self._pins_full_text(free, len(entries), bool(unpinned_main), skipped),
                        severity="warning", markup=False, timeout=10)
            entries = unpinned_main + entries[:free]
            if not entries:
                return
        spec, name, is_main = entries[0]
        self.batch = list(entries[1:])
        self._batch_main = is_main
        self.start_run(spec, pin_as=name, keep_batch=True)

    _batch_main = False

    @staticmethod
    def _pins_full_text(free: int, wanted: int, main_unpinned: bool, skipped: list[str | None]) -> str:
        """What run_batch did when the pin slots ran out, in one or two sentences."""
        slots = f"All {MAX_PINS} pin slots are taken" if free == 0 else f"Only {free} of {wanted} runs fit in the pins"
        parts = [slots + (": the main run is shown as the current run, not pinned" if main_unpinned else "")]
        if skipped:
            parts.append("not run: " + ", ".join(str(n) for n in skipped))
        return "; ".join(parts) + ". Remove pins (d in the Runs tab) to compare them all."

    # ------------------------------------------------------------------------------------- form
    @on(SpecEdited)
    def _on_spec_edited(self, message: SpecEdited) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        spec = message.spec
        if not self.running and self.current is not None and spec == self.current.spec:
            self.last_error = ""  # edited back to what the screen shows: nothing to run
            self.update_status()
            return
        self._debounce = self.set_timer(DEBOUNCE_S, lambda: self.start_run(spec))
        self.update_status("edited; re-running shortly")

    @on(SpecInvalid)
    def _on_spec_invalid(self, message: SpecInvalid) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.update_status(f"invalid {message.field}: fix it to re-run")

    # ------------------------------------------------------------------------------------- drawing
    def current_rgb(self) -> tuple[int, int, int]:
        return _rgb(self.theme_variables.get("foreground", "white"))

    def background_rgb(self) -> tuple[int, int, int]:
        return _rgb(self.theme_variables.get("surface", "black"))

    def drawn_runs(self) -> list[tuple[str, str, RunResult, tuple[int, int, int], bool]]:
        """(key, name, result, colour, is_current) for every visible run, current first."""
        runs = []
        if self.current is not None:
            runs.append(("*", "current", self.current, self.current_rgb(), True))
        for i, pin in enumerate(self.pins):
            if pin.visible:
                runs.append((str(i + 1), pin.name, pin.result, pin.colour, False))
        return runs

    def redraw_curves(self) -> None:
        if not self.is_mounted:
            return
        self.redraws += 1
        if self._settle_tensor():  # the table, the histograms and the status line show the tensor too
            self.redraw_table()
            self.redraw_views()
            self.update_status()
        tensor = self.tensor
        bg = self.background_rgb()
        mean_series: list[Series] = []
        std_series: list[Series] = []
        marks: list[Mark] = []
        missing = False
        styles: dict[str, tuple[int, int, int] | None] = {}  # what is drawn -> the colour the legend shows it in
        band_gap: str | None = None  # the current run's theory draws no band somewhere: the legend says so

        def add_theory(theory: object, colour: tuple[int, int, int], with_band: bool) -> None:
            nonlocal band_gap
            if with_band:
                band = theory_band(theory, tensor)
                if band is not None:
                    std_series.extend(Series("band", b, _blend(colour, bg, 0.7), "band") for b in band)
                    styles["band"] = _blend(colour, bg, 0.7)
                band_gap = band_gap_note(theory, tensor)
            tm = theory_curve(theory, tensor, "mean")
            if tm is not None:
                mean_series.append(Series("theory", tm, colour, "theory"))
            ts = theory_curve(theory, tensor, "std")
            if ts is not None:
                std_series.append(Series("theory", ts, colour, "theory"))

        previewing = self.current is None and self.preview is not None and self.running
        if previewing:  # the first run is still measuring: its prediction (and band) comes first
            add_theory(self.preview, self.current_rgb(), with_band=True)
        for key, _name, r, colour, is_current in self.drawn_runs():
            if tensor not in r.stats:
                missing = True
                continue
            faint = _blend(colour, bg, 0.55)
            mean = r.headline(tensor, "mean")
            std = r.headline(tensor, "std")
            if is_current and r.trials > 1:
                mspread, sspread = r.spread(tensor, "mean"), r.spread(tensor, "std")
                mean_series += [Series("spread", mean - mspread, faint, "spread"),
                                Series("spread", mean + mspread, faint, "spread")]
                std_series += [Series("spread", std - sspread, faint, "spread"),
                               Series("spread", std + sspread, faint, "spread")]
                styles["spread"] = faint
            add_theory(r.theory, colour, with_band=is_current)
            mean_series.append(Series(key, mean, colour))
            std_series.append(Series(key, std, colour))
            bad = first_nonfinite(r, tensor)
            if bad is not None:
                marks.append(Mark(bad, f"nan/inf L{bad}", NONFINITE_RGB))
        label = tensor_label(tensor, self.current.spec if self.current is not None else None)
        mean_note, std_note = self.range_notes(tensor)
        message = ""
        if previewing:
            message = "measuring... (the prediction first)"
        elif self.current is None and not len(self.pins):
            message = "running..." if self.running else "no run yet"
        elif missing and not any(s.kind == "measured" for s in std_series):
            message = ("not measured (gradients off: tick grad)" if tensor.startswith("grad")
                       else f"not measured ({tensor} exists only with a norm or a residual)")
        mean_plot = self.query_one("#plot-mean", LayerPlot)
        std_plot = self.query_one("#plot-std", LayerPlot)
        mean_plot.log_y = std_plot.log_y = self.log_y
        mean_plot.set_data(mean_series, marks, title=(f"mean of {label}" if not self.log_y else f"|mean| of {label}")
                           + mean_note, message=message)
        std_plot.set_data(std_series, marks, title=f"std of {label}{std_note}", message=message)
        entries = [LegendEntry(k, n if k != "*" else "current", c) for k, n, _r, c, _cur in self.drawn_runs()]
        if previewing:
            entries.insert(0, LegendEntry("*", "current (measuring)", self.current_rgb()))
        hidden = [LegendEntry(str(i + 1), p.name, p.colour, False) for i, p in enumerate(self.pins) if not p.visible]
        self.query_one("#legend", Legend).show(entries + hidden, legend_notes(styles, band_gap) if std_series else [])

    def range_notes(self, tensor: str) -> tuple[str, str]:
        """(mean plot, std plot) title notes for the current run, by engine/signal_range.py's rule: the std
        plot says where the std left [1e-3, 1e3] (' · std>1e3 at L3'), both where values went inf/NaN
        (' · nan/inf from L32'), with a hint to the log view when the linear one is shown."""
        r = self.current
        if r is None or tensor not in r.stats:
            return "", ""
        event, bad = range_event(r, tensor), first_nonfinite(r, tensor)
        left = f" · {event.label.split('@')[0]} at L{event.layer}" if event is not None and event.how != "nonfinite" else ""
        broke = f" · nan/inf from L{bad}" if bad is not None else ""
        hint = " · l: log" if (left or broke) and not self.log_y else ""
        return broke + (hint if broke else ""), left + broke + hint

    def redraw_table(self) -> None:
        if self.is_mounted:
            table = self.runs_table()
            if table is not None:
                table.show(self.current, list(self.pins), self.tensor)

    def redraw_views(self) -> None:
        """Distribution and Explain (helper widgets; shown for the current run)."""
        if not self.is_mounted or self.current is None:
            return
        dist = self.query("#dist").first() if self.query("#dist") else None
        if dist is not None and hasattr(dist, "show"):
            try:
                dist.show(self.current, self.tensor)
            except Exception as e:  # noqa: BLE001 - a view failing must not take the app down
                self.notify(f"Distribution view failed: {e}", severity="error", markup=False)
        panel = self.query("#explain-view").first() if self.query("#explain-view") else None
        if panel is not None and hasattr(panel, "show"):
            try:
                guide = self.preset_guide
                panel.show(self.current.spec, self.current,
                           guide[1:] if guide is not None and guide[0] == self.current.spec else None)
            except Exception as e:  # noqa: BLE001
                self.notify(f"Explain panel failed: {e}", severity="error", markup=False)

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
            done, total = self.progress
            what = f"running {done}/{total}" if total else "running"  # steps: layers x passes x trials
            if self.batch or self._batch_main:
                what += f" ({len(self.batch)} more queued)" if self.batch else ""
            parts.append(what + " · escape cancels")
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
        if text != self._status_text:
            self._status_text = text
            self.query_one("#status-text", Static).update(text, layout=False)  # one fixed-height row
        self.query_one("#status").set_class(self.running, "-running")
        cancellable = self.running or self._debounce is not None
        if cancellable != self._cancellable:  # the Footer recomposes on refresh_bindings: only on change
            self._cancellable = cancellable
            self.refresh_bindings()

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
        rows = [(k.group, self.keys_text(k), k.title + (": " + k.help if k.help else "")) for k in KEY_ACTIONS]
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
        """escape in the form: cancel what is pending, else move focus to the tabs (single keys work)."""
        if self.running or self._debounce is not None:
            self.action_cancel()
        else:
            self.screen.set_focus(self.query_one("#tabs Tabs", Tabs))  # now: the next key read is for the app

    def action_cancel(self) -> None:
        if self.running:
            self.workers.cancel_group(self, "engine")
            self.batch = []
            if self._debounce is not None:
                self._debounce.stop()
                self._debounce = None
            self.update_status("cancelling...")
            return
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
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

    def action_toggle_pin(self, index: int) -> None:
        if not 0 <= index < len(self.pins):
            return
        self.pins.toggle(index)
        self.redraw_curves()
        self.redraw_table()

    def action_remove_pin(self, index: int) -> None:
        if 0 <= index < len(self.pins):
            pin = self.pins.remove(index)
            self.notify(f"Removed {pin.name}", markup=False, timeout=3)
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
        self.load_form(pin.spec)
        self.current = pin.result
        self.last_error = ""
        self.redraw_all()
        self.notify(f"Recalled {pin.name} into the form", markup=False, timeout=3)

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

    def action_next_tab(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        i = TABS.index(tabs.active) if tabs.active in TABS else 0
        self.action_show_tab(TABS[(i + 1) % len(TABS)])

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        if tab == "runs":
            table = self.runs_table()
            if table is not None:
                table.focus()
        elif isinstance(self.focused, (Input, Select)) or self.focused is None:
            self.query_one("#tabs Tabs", Tabs).focus()

    # presets -------------------------------------------------------------------------------------
    def action_presets(self) -> None:
        from initscope.engine.presets import PRESETS

        choices = [Choice(p.key, p.title, "look for: " + p.look_for, p.name) for p in PRESETS.values()]
        self.push_screen(ChoiceScreen("Presets: the classic experiments", choices),
                         lambda name: self.apply_preset(name) if name else None)

    def apply_preset(self, name: str, overrides: dict[str, str] | None = None) -> None:
        """Load a preset's variants (with `overrides`, text forms, on top) and run them all, pinned."""
        from initscope.engine.presets import PRESETS

        preset = PRESETS.get(name)
        if preset is None:
            self.notify(f"No preset called {name}", severity="error", markup=False)
            return
        try:
            specs = preset.specs(overrides)
        except SpecError as e:
            self.notify(e.message("app"), severity="error", markup=False)
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

    # files ---------------------------------------------------------------------------------------
    def action_save_menu(self) -> None:
        from initscope.engine.report import SCHEMA

        choices = [
            Choice("j", "Export results as JSON", f"current and pinned runs, schema {SCHEMA}", "json"),
            Choice("c", "Export results as CSV", "one row per run and layer", "csv"),
            Choice("s", "Save an SVG screenshot", "what is on screen now", "svg"),
            Choice("w", "Save session", "the pinned configurations", "session"),
            Choice("o", "Open session", "re-run and pin a saved session", "open"),
        ]

        def chosen(value: str | None) -> None:
            if value == "open":
                self.action_open_session()
            elif value:
                self.action_export(value)

        self.push_screen(ChoiceScreen("Save / open", choices), chosen)

    def _runs_for_export(self) -> list[tuple[str, RunResult]]:
        runs = []
        if self.current is not None and not any(p.result is self.current for p in self.pins):
            runs.append(("current", self.current))
        return runs + [p for p in self.pins]  # type: ignore[list-item]

    def action_export(self, kind: str) -> None:
        from .export import ExportError, default_path, save_results_csv, save_results_json, save_session
        from .screens.path_prompt import PathPrompt

        if kind in ("json", "csv") and self.current is None and not len(self.pins):
            self.notify("Nothing to export yet.", severity="warning", markup=False)
            return
        if kind == "session" and not len(self.pins):
            self.notify("Saving a session with no pins: only the current configuration is kept.",
                        markup=False)
        titles = {"json": "Export results as JSON", "csv": "Export results as CSV", "svg": "Save SVG screenshot",
                  "session": "Save session"}

        def done(path: Path | None) -> None:
            if path is None:
                return
            try:
                if kind == "json":
                    out = save_results_json(path, self._runs_for_export())
                elif kind == "csv":
                    out = save_results_csv(path, self._runs_for_export())
                elif kind == "svg":
                    self._save_svg(path)  # after the toasts are gone; it says itself when saved
                    return
                else:
                    out = save_session(path, list(self.pins), self.form_spec())
            except (ExportError, OSError) as e:
                self.notify(str(e), title="Save failed", severity="error", markup=False)
                return
            self.notify(f"Saved {out}", markup=False)

        self.push_screen(PathPrompt(titles[kind], default_path(kind)), done)

    def _save_svg(self, path: Path) -> None:
        """Save what is on screen as SVG without the toasts over it: clear them, give the screen a few
        frames to redraw without them (the toast rack updates on a later message), then capture."""
        from .export import ExportError, atomic_write_text

        self.clear_notifications()

        def capture() -> None:
            try:
                out = atomic_write_text(path, self.export_screenshot(title="initscope"))
            except (ExportError, OSError) as e:
                self.notify(str(e), title="Save failed", severity="error", markup=False)
                return
            self.notify(f"Saved {out}", markup=False)

        self.set_timer(SVG_SETTLE_S, capture)

    def action_open_session(self) -> None:
        from .export import ExportError, default_path, read_session
        from .screens.path_prompt import PathPrompt

        def done(path: Path | None) -> None:
            if path is None:
                return
            try:
                session = read_session(path)
            except (ExportError, OSError) as e:
                self.notify(str(e), title="Open failed", severity="error", markup=False)
                return
            if session.current is not None:
                self.load_form(session.current)
            entries = [(e.spec, e.name, False) for e in session.pins]
            if session.current is not None:
                self.start_run(session.current)
                self.batch = []
            if entries:
                self._pending_session = entries
                self.call_after_refresh(self._queue_session)
            self.notify(f"Opened {path.name}: {len(session.pins)} pinned runs", markup=False)

        self.push_screen(PathPrompt("Open session", default_path("session"), must_exist=True), done)

    def _queue_session(self) -> None:
        entries = getattr(self, "_pending_session", [])
        self._pending_session = []
        if self.running:  # run the pins after the current configuration
            self.batch = list(entries)
            self._batch_main = False
        else:
            self.run_batch(entries)

    # palette -------------------------------------------------------------------------------------
    def palette_entries(self) -> list[tuple[str, str, str]]:
        """(title, help, action string) for every action, plus one per pin, tensor and preset."""
        out = [(k.title, f"{self.keys_text(k)}: {k.help}", k.action) for k in KEY_ACTIONS
               if not k.action.startswith(("table(", "toggle_pin(", "show_tab(", "command_palette", "focus_next"))]
        out += [(f"Show {t} tab", "F5..F8", f"show_tab('{t}')") for t in TABS]
        out += [(f"Tensor: {t}", f"{TENSOR_NAMES[t]}: {SHORT_HELP[t]}", f"set_tensor_action('{t}')")
                for t in cycle_tensors(self.screen_results())]
        for i, p in enumerate(self.pins):
            out += [(f"Pin {i + 1} {p.name}: show/hide", f"key {i + 1}", f"toggle_pin({i})"),
                    (f"Pin {i + 1} {p.name}: rename", "", f"rename_pin({i})"),
                    (f"Pin {i + 1} {p.name}: remove", "", f"remove_pin({i})"),
                    (f"Pin {i + 1} {p.name}: recall into the form", "", f"recall_pin({i})")]
        try:
            from initscope.engine.presets import PRESETS

            out += [(f"Preset {p.key}: {p.name}", p.title, f"preset('{p.name}')") for p in PRESETS.values()]
        except ImportError:
            pass
        return out

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
