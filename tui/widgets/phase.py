"""PhaseView: the Phase tab. A heatmap of one quantity over two swept axes, with the theory's lines on top.

What it shows (tui/phase.py has the data and the choice of lines):
- by default the theory-only phase diagram of the form's spec (its activation, depth, data): a
  50 x 50 grid over x = the init's scale (gain) and y = bias.std, every cell predicted by the mean-field
  theory (engine.theory.phase.predict_cells), computed in a thread worker; no simulation;
- after `r` (a measured sweep of a small grid, SWEEP_COUNT^2 cells over the same ranges, trials from the
  form, on the in-process backend in a thread worker: the UI never waits; escape stops it after the cell
  in progress and keeps the cells done) or `o` (a table written by `initscope sweep --output`): the
  sweep's measured values (mean over trials) or, with `s`, its prediction per cell;
- the lines chi_1 = 1, xi_c = L/6 and xi_c = L from the theory, the cursor's cell read out under the map.

Keys: arrows move the cursor; m the quantity (log_q_ratio, 1 - c_last, log_grad_ratio, chi1, xi_c);
s measured / predicted (a sweep); t back to the theory diagram; enter recalls the cell's spec into the
form (and runs it); r runs a measured sweep; escape cancels it; o opens a sweep table; a edits the axes
(two --vary texts, engine/sweep/grid.py's grammar).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from initscope.engine.errors import SpecError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical
from textual.message import Message
from textual.widgets import ProgressBar, Static
from textual.worker import get_current_worker

from .. import phase
from ..heatmap import heatmap_text
from ..messages import RecallSpec
from ..runs import failure_text
from ..screens.axes_prompt import AxesPrompt
from ..screens.path_prompt import PathPrompt

SWEEP_GROUP = "phase-sweep"
THEORY_GROUP = "phase-theory"


@dataclass
class TheoryReady(Message):
    """The theory grid for `key` is computed (`grid`), or failed (`error`); `started` is when it was asked for."""

    key: tuple
    grid: object | None
    error: BaseException | None
    started: float


@dataclass
class SweepProgress(Message):
    sweep_id: int
    done: int
    total: int
    eta_s: float | None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SweepProgress) and message.sweep_id == self.sweep_id


@dataclass
class SweepDone(Message):
    """A measured sweep ended: its table (everything done, also when cancelled), or the error."""

    sweep_id: int
    table: object | None
    error: BaseException | None
    cancelled: bool


class PhaseView(Vertical, can_focus=True):
    """The Phase tab; `show_scene(scene)` (a run finished) re-reads the form's spec (tui/views.py)."""

    DEFAULT_CSS = """
    PhaseView { height: 1fr; }
    PhaseView #phase-head { height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
    PhaseView #phase-scroll { height: 1fr; scrollbar-size: 1 1; }
    PhaseView #phase-map { width: auto; height: auto; padding: 0 1; }
    PhaseView #phase-cell { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    PhaseView #phase-progress { display: none; height: 1; padding: 0 1; }
    PhaseView.-sweeping #phase-progress { display: block; }
    """

    BINDINGS = [
        Binding("left", "move(0, -1)", "←", show=False),
        Binding("right", "move(0, 1)", "→", show=False),
        Binding("up", "move(1, 0)", "↑", show=False),
        Binding("down", "move(-1, 0)", "↓", show=False),
        Binding("m", "next_quantity", "Quantity"),
        Binding("s", "toggle_source", "Meas/pred"),
        Binding("t", "theory", "Theory", show=False),
        Binding("enter", "recall", "Recall"),
        Binding("r", "sweep", "Sweep"),
        Binding("escape", "cancel_sweep", "Stop sweep"),
        Binding("o", "open_table", "Open", show=False),
        Binding("a", "edit_axes", "Axes", show=False),
    ]

    sweep_count = phase.SWEEP_COUNT  # cells per axis of a measured sweep (tests set a smaller one)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = None  # the form's spec: the theory diagram is drawn for it
        self.axes_text: tuple[str, str] | None = None  # the user's axes (a); None: phase.default_axes
        self.theory: phase.PhaseGrid | None = None
        self.sweep: phase.PhaseGrid | None = None
        self.showing = "theory"  # or "sweep"
        self.source = "predicted"  # of the sweep: measured | predicted
        self.quantity = phase.QUANTITY_NAMES[0]
        self.cursor = (0, 0)  # (iy, ix)
        self.message = ""
        self._theory_key: tuple | None = None
        self._pending_key: tuple | None = None
        self._sweep_id = 0
        self.sweeping = False
        self.last_draw_s: float | None = None  # theory: from the request (key press) to the drawn frame
        self.draws = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="phase-head", markup=False)
        with ScrollableContainer(id="phase-scroll"):
            yield Static("", id="phase-map", markup=False)
        yield ProgressBar(total=None, show_eta=False, id="phase-progress")
        yield Static("", id="phase-cell", markup=False)

    # state -------------------------------------------------------------------------------------
    @property
    def grid(self) -> phase.PhaseGrid | None:
        return self.sweep if self.showing == "sweep" and self.sweep is not None else self.theory

    def show_scene(self, scene) -> None:
        """A run finished: the form's spec may have changed (the diagram is drawn for the form's spec, which
        a run follows; before the first run ends the form's spec is there already)."""
        self.follow_form(scene.spec)

    def follow_form(self, fallback=None, compute: bool = False) -> None:
        """Take the form's spec; compute its diagram now if the tab is shown (or `compute`)."""
        form_spec = getattr(self.app, "form_spec", None)
        spec = form_spec() if form_spec is not None else fallback
        self.spec = spec if spec is not None else fallback
        if compute or self.is_shown():
            self.request_theory()

    def is_shown(self) -> bool:
        return self.is_mounted and self.display and self.region.area > 0

    def on_mount(self) -> None:
        # In a terminal, the diagram of the start spec is computed once in the background right away, so the
        # first F11 finds it drawn (the theory's first tanh-like diagram builds its pair tables: ~2 s). Not
        # under tests (headless): every app there would pay for it.
        if not self.app.is_headless:
            self.call_after_refresh(lambda: self.follow_form(compute=True))

    def on_show(self) -> None:
        self._shown_at = time.perf_counter()
        self.follow_form(self.spec)
        self.redraw()

    _shown_at: float | None = None
    last_show_s: float | None = None  # from the tab shown (F11) to the frame with its diagram drawn

    def axes(self) -> tuple[str, str] | None:
        """The two --vary texts of the diagram: the user's (a), else the default plane of the current spec."""
        if self.axes_text is not None:
            return self.axes_text
        return None if self.spec is None else phase.default_axes(self.spec)

    def grid_request(self) -> tuple[tuple, dict, object, object, str]:
        """(key, base, x axis, y axis, note) of the theory diagram of the current spec; SpecError on bad axes."""
        x, y = phase.parse_axes(*self.axes())
        base, note = phase.grid_base(self.spec, [x, y])
        return (tuple(sorted(base.items())), x, y), base, x, y, note

    def request_theory(self) -> None:
        """Compute the theory diagram in a thread worker unless it is drawn (or being computed) already."""
        if self.spec is None:
            self.redraw()
            return
        started = time.perf_counter()
        try:
            key, base, x, y, note = self.grid_request()
        except SpecError as e:
            self.message = "axes: " + e.message("app") + " (a edits the axes)"
            self.redraw()
            return
        if key in (self._theory_key, self._pending_key):
            return
        self._pending_key = key
        self.message = "computing the theory diagram..."
        self._update_head()

        def compute() -> None:
            try:
                grid = phase.theory_grid(base, x, y, note)
                self.post_message(TheoryReady(key, grid, None, started))
            except Exception as e:  # noqa: BLE001 - shown in the tab's head, never fatal
                self.post_message(TheoryReady(key, None, e, started))

        self.run_worker(compute, thread=True, group=THEORY_GROUP, exclusive=True, exit_on_error=False,
                        description="phase theory")

    @on(TheoryReady)
    def _theory_ready(self, message: TheoryReady) -> None:
        if message.key != self._pending_key:
            return  # an older request
        self._pending_key = None
        if message.error is not None:
            self.message = "axes: " + failure_text(message.error) + " (a edits the axes)"
            self._theory_key = message.key
            self.redraw()
            return
        old = self.theory
        self.theory, self._theory_key = message.grid, message.key
        self.message = ""
        if self.showing == "theory":
            if old is None or old.shape != self.theory.shape:
                self.cursor = (self.theory.shape[0] // 2, self.theory.shape[1] // 2)
            self.redraw()
            started = message.started
            self.call_after_refresh(lambda: setattr(self, "last_draw_s", time.perf_counter() - started))

    # drawing -----------------------------------------------------------------------------------
    def _update_head(self) -> None:
        if not self.is_mounted:
            return
        self.query_one("#phase-head", Static).update(self.head_text())

    def head_text(self) -> str:
        """Two lines: what is drawn (grid, source, quantity, the stack), then the message, note or definition."""
        grid = self.grid
        q = phase.quantity(self.quantity)
        if grid is None:
            return self.message or "Phase diagram: waiting for the form's spec."
        t = grid.spec_texts
        what = f"{t.get('act', '?')} {t.get('arch', '?')}" + (f" {t['norm']}" if t.get("norm", "none") != "none"
                                                               else "")
        if grid.is_sweep:
            src = self.source if q.measured else "predicted (theory only)"
            done = f" {grid.done}/{grid.total} cells" if grid.done is not None and grid.done < grid.total else ""
            head = f"{grid.title}{done} · {src} · {q.name} · {what}"
        else:
            head = f"{grid.title} · {q.name} · {what}"
        second = "; ".join(n for n in (self.message, grid.note) if n) or f"{q.name} = {q.label}"
        return head + "\n" + second

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        self._update_head()
        grid = self.grid
        cell = self.query_one("#phase-cell", Static)
        heat = self.query_one("#phase-map", Static)
        if grid is None:
            heat.update("")
            cell.update("keys: m quantity · r measured sweep · o open a sweep table · a axes")
            return
        q = phase.quantity(self.quantity)
        ny, nx = grid.shape
        iy, ix = min(max(self.cursor[0], 0), ny - 1), min(max(self.cursor[1], 0), nx - 1)
        self.cursor = (iy, ix)
        source = self.source if grid.is_sweep else "predicted"
        if grid.is_sweep and source == "measured" and not q.measured:
            source = "predicted"
        values, vmin, vmax = phase.display_values(grid, q, source)
        width = self.size.width or 80
        height = (self.size.height or 24) - 4
        compact = (nx * 2 + 12 > width) or (ny + 9 > height)
        cell_w = 1 if compact else max(2, min(6, (width - 14) // nx))  # a small grid (8 x 8) takes the width
        text = heatmap_text(values, x_label=grid.x.name, x_values=grid.x.values, y_label=grid.y.name,
                            y_values=grid.y.values, vmin=vmin, vmax=vmax, lines=phase.theory_lines(grid),
                            cursor=(iy, ix), center=q.center, compact=compact,
                            nonfinite_label="not run or non-finite" if grid.is_sweep else "non-finite",
                            cell_width=max(cell_w, 2))
        heat.update(text)
        cell.update(phase.cell_text(grid, q, iy, ix))
        self.draws += 1
        if self._shown_at is not None and self._pending_key is None and self.grid is not None:
            shown_at, self._shown_at = self._shown_at, None
            self.call_after_refresh(lambda: setattr(self, "last_show_s", time.perf_counter() - shown_at))
        self._scroll_to_cursor(text, iy, ix, ny, compact, cell_w)

    def _scroll_to_cursor(self, text, iy: int, ix: int, ny: int, compact: bool, cell_w: int) -> None:
        """Keep the cursor's cell in view when the map is larger than the tab (80 x 24, the form shown)."""
        scroll = self.query_one("#phase-scroll", ScrollableContainer)
        line = 1 + (ny - 1 - iy) // (2 if compact else 1)  # the map's first line is the y axis's name
        first = text.plain.split("\n", 1)[0]  # "<label_w spaces> <y name> ↑"
        label_w = len(first) - len(first.lstrip(" ")) - 1
        column = 1 + label_w + 1 + ix * cell_w  # padding, y labels, the axis, the cells
        map_w = 1 + label_w + 1 + cell_w * self.grid.shape[1] + 1
        high, wide = scroll.scrollable_content_region.height, scroll.scrollable_content_region.width
        x, y = scroll.scroll_x, scroll.scroll_y
        if high and not y <= line < y + high:
            y = max(0, line - high // 2)
        if wide and not x <= column < x + wide - cell_w:
            x = max(0, min(column - wide // 2, map_w - wide))  # never past the map's right edge
        if (x, y) != (scroll.scroll_x, scroll.scroll_y):
            scroll.scroll_to(x=x, y=y, animate=False)

    # keys --------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_sweep":
            return self.sweeping  # else escape goes on to the app (cancel a run, leave a field)
        if action == "toggle_source":
            return True if self.sweep is not None else None
        return True

    def action_move(self, dy: int, dx: int) -> None:
        grid = self.grid
        if grid is None:
            return
        ny, nx = grid.shape
        self.cursor = (min(max(self.cursor[0] + dy, 0), ny - 1), min(max(self.cursor[1] + dx, 0), nx - 1))
        self.redraw()

    def action_next_quantity(self) -> None:
        names = phase.QUANTITY_NAMES
        self.quantity = names[(names.index(self.quantity) + 1) % len(names)]
        self.redraw()

    def action_toggle_source(self) -> None:
        if self.sweep is None:
            self.notify("No sweep loaded: r runs one, o opens a table.", markup=False)
            return
        if self.showing != "sweep":
            self.showing, self.source = "sweep", "measured"
        else:
            self.source = "predicted" if self.source == "measured" else "measured"
        self.redraw()

    def action_theory(self) -> None:
        self.showing = "theory"
        if self.theory is not None:
            self.cursor = (self.theory.shape[0] // 2, self.theory.shape[1] // 2)
        self.request_theory()
        self.redraw()

    def action_recall(self) -> None:
        grid = self.grid
        if grid is None:
            return
        iy, ix = self.cursor
        try:
            spec = grid.spec(iy, ix)
        except SpecError as e:
            self.notify(e.message("app"), severity="error", markup=False)
            return
        label = ", ".join(f"{k}={v}" for k, v in grid.coords(iy, ix).items())
        self.post_message(RecallSpec(spec, f"Phase cell {label}"))

    def action_edit_axes(self) -> None:
        if self.spec is None:
            return

        def done(axes: tuple[str, str] | None) -> None:
            if axes is not None:
                self.axes_text = None if axes == phase.default_axes(self.spec) else axes
                self.showing = "theory"
                self.request_theory()

        self.app.push_screen(AxesPrompt(*self.axes(), self.spec), done)

    def action_open_table(self) -> None:
        def done(path: Path | None) -> None:
            if path is not None:
                self.load_table(path)

        self.app.push_screen(PathPrompt("Open a sweep table (initscope sweep --output)", "sweep.csv",
                                        must_exist=True), done)

    def load_table(self, path: Path) -> None:
        from initscope.engine.sweep import load_table

        try:
            grid = phase.table_grid(load_table(path), f"sweep {Path(path).name}")
        except SpecError as e:
            self.notify(e.message("app"), severity="error", markup=False)
            return
        except OSError as e:
            self.notify(f"Cannot read {path}: {e.strerror or e}", severity="error", markup=False)
            return
        self.show_sweep(grid)

    def show_sweep(self, grid: phase.PhaseGrid) -> None:
        self.sweep, self.showing, self.source = grid, "sweep", "measured"
        self.cursor = (grid.shape[0] // 2, grid.shape[1] // 2)
        self.redraw()

    # the measured sweep ------------------------------------------------------------------------
    def action_sweep(self) -> None:
        if self.sweeping:
            self.notify("A sweep is running: escape stops it.", markup=False)
            return
        if self.spec is None:
            self.notify("No spec yet: wait for the first run.", markup=False)
            return
        try:
            _key, base, x, y, _note = self.grid_request()
        except SpecError as e:
            self.notify(e.message("app"), severity="error", markup=False)
            return
        x, y = phase.coarse(x, self.sweep_count), phase.coarse(y, self.sweep_count)
        self._sweep_id += 1
        self.sweeping = True
        self.add_class("-sweeping")
        self.query_one("#phase-progress", ProgressBar).update(total=len(x) * len(y), progress=0)
        self.message = f"measuring {len(x)} x {len(y)} cells, {self.spec.trials} trial(s) each · escape stops"
        self._update_head()
        self.refresh_bindings()
        self._run_sweep(self._sweep_id, base, x, y)

    @work(thread=True, group=SWEEP_GROUP, exclusive=True, exit_on_error=False, description="phase sweep")
    def _run_sweep(self, sweep_id: int, base: dict, x, y) -> None:
        from initscope.engine.sweep import run_sweep
        from initscope.engine.sweep.backends import InProcess

        worker = get_current_worker()

        def progress(done: int, total: int, eta: float | None) -> None:
            self.post_message(SweepProgress(sweep_id, done, total, eta))

        try:
            table = run_sweep(base, [x, y], InProcess(), progress=progress, cancel=lambda: worker.is_cancelled)
        except Exception as e:  # noqa: BLE001 - a failed sweep is a toast
            self.post_message(SweepDone(sweep_id, None, e, False))
            return
        self.post_message(SweepDone(sweep_id, table, None, bool(table.interrupted or worker.is_cancelled)))

    @on(SweepProgress)
    def _sweep_progress(self, message: SweepProgress) -> None:
        if message.sweep_id != self._sweep_id:
            return
        self.query_one("#phase-progress", ProgressBar).update(total=max(message.total, 1), progress=message.done)
        eta = f" · about {message.eta_s:.0f} s left" if message.eta_s is not None else ""
        self.message = f"measuring: {message.done}/{message.total} cells{eta} · escape stops"
        self._update_head()

    @on(SweepDone)
    def _sweep_done(self, message: SweepDone) -> None:
        if message.sweep_id != self._sweep_id:
            return
        self.sweeping = False
        self.remove_class("-sweeping")
        self.refresh_bindings()
        if message.error is not None:
            self.message = ""
            self.notify(failure_text(message.error), title="Sweep failed", severity="error", markup=False)
            self._update_head()
            return
        table = message.table
        grid = phase.table_grid(table, "sweep (in the app)")
        self.message = (f"stopped: {grid.done} of {grid.total} cells measured (kept)" if message.cancelled
                        else "")
        if grid.failed:
            self.notify(f"{len(grid.failed)} cell(s) failed: " + next(iter(grid.failed.values()))[:120],
                        severity="warning", markup=False)
        self.show_sweep(grid)

    def action_cancel_sweep(self) -> None:
        if self.sweeping:
            self.workers.cancel_group(self, SWEEP_GROUP)
            self.message = "stopping after the cell in progress..."
            self._update_head()
