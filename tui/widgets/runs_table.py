"""RunsTable: the current run and the pinned runs with their spec and headline numbers.

Headline numbers for the chosen tensor's std per layer: first- and last-layer std, growth per layer
(last/first)^(1/(L-1)), the first layer where the std left [1e-3, 1e3] or the values went non-finite
(engine/signal_range.py, the rule Explain and the CLI use too; the cell says which bound:
std<1e-3@L7, std>1e3@L3, nan/inf@L32), and the run's time.
A pinned training run (tui/pins.py Pin.is_training) has a row of the same kind: its event cell says
it is a training run and gives its final held-out accuracy ('trained, acc 0.902±0.028', mean
and sd over seeds), its spec cell the stack and the training settings.
Keys while the table has focus: space toggles a pin's visibility, r renames, d/delete removes,
enter recalls its configuration into the form (a training run's: the form and the train prompt).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

if TYPE_CHECKING:
    from initscope.engine.result import RunResult

from initscope.engine.numbers import fmt_num
from initscope.engine.signal_range import nonfinite_layers, range_event

from ..messages import PinCommand
from ..pins import Pin


def fmt(x: float | None) -> str:
    """A cell number: 4 significant digits (engine/numbers.py); '-' when missing; a NaN std (some
    entries were inf or NaN) reads 'nan/inf'."""
    return fmt_num(x, 4, missing="-") if x is None or not math.isnan(x) else "nan/inf"


def spec_label(spec) -> str:
    """spec.label() plus the norm and the residual where the spec has them: 'kaiming_normal relu
    512-512x20 batchnorm residual=plain(alpha=0.5)'."""
    t = spec.to_text()
    extra = ([t["norm"]] if getattr(spec, "has_norm", False) else []) + \
        ([f"residual={t['residual']}"] if getattr(spec, "has_residual", False) else [])
    return " ".join([spec.label(), *extra])


def headline_numbers(result: RunResult, tensor: str) -> dict[str, object]:
    """first, last, growth, event ('std<1e-3@L7', 'std>1e3@L3', 'nan/inf@L12' or ''), seconds."""
    out: dict[str, object] = {"first": None, "last": None, "growth": None, "event": "", "seconds": result.elapsed_s}
    if tensor not in result.stats:
        out["event"] = "no grad" if tensor in ("grad", "grad_pre") or not result.has_grad else f"no {tensor}"
        return out
    std = result.headline(tensor, "std")
    bad = nonfinite_layers(result, tensor)
    L = std.size
    first = math.nan if bad[0] else float(std[0])  # a std over the finite entries only is not the layer's
    last = math.nan if bad[-1] else float(std[-1])
    out["first"], out["last"] = first, last
    if L > 1 and math.isfinite(first) and math.isfinite(last) and first > 0 and last > 0:
        out["growth"] = (last / first) ** (1 / (L - 1))
    event = range_event(result, tensor)
    out["event"] = event.label if event is not None else ""
    return out


def training_event(result) -> str:
    """The event cell of a training run: 'trained, acc 0.902±0.028' (held-out accuracy after the last
    step, mean ± sd over seeds; no ± with one seed), 'diverged' added when a trial did. Short: at 80
    columns beside the form the cell shows after a short name."""
    from .training import headline  # numpy and plotext: loaded by now (a training run finished)

    mean, sd = headline(result, "test_acc")
    trials = getattr(result.spec, "trials", 1)
    acc = "n/a" if math.isnan(mean) else f"{mean:.3f}" + (f"±{sd:.3f}" if trials > 1 else "")
    div = any(d is not None for d in getattr(result, "diverged", []) or [])
    return f"trained, acc {acc}" + (", diverged" if div else "")


def training_spec_label(spec) -> str:
    """'train kaiming_normal relu 64-100x20 b64 s0 · 100 steps sgd(lr=0.05) digits'."""
    t = spec.to_text()
    body = spec.body
    return (f"train {spec_label(body)} b{body.batch} s{body.seed} · {t.get('steps', '?')} steps "
            f"{t.get('optimizer', '')} {t.get('data', '')}").rstrip()


# the event right after the name, the long spec last: at 80 columns beside the form the event still shows
COLUMNS = (("", "key"), ("name", "name"), ("event", "event"), ("first", "first"), ("last", "last"),
           ("growth/layer", "growth"), ("time", "time"), ("spec", "spec"))


class RunsTable(DataTable):
    BINDINGS = [
        Binding("space", "pin('toggle')", "Show/hide"),
        Binding("r", "pin('rename')", "Rename"),
        Binding("d,delete", "pin('remove')", "Remove"),
        Binding("enter", "pin('recall')", "Recall"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.row_pins: list[int | None] = []  # per row: the pin index, None for the current run

    def on_mount(self) -> None:
        for label, key in COLUMNS:
            self.add_column(label, key=key)
        redraw = getattr(self.app, "redraw_table", None)
        if redraw is not None:  # mounted lazily: catch up with the runs so far
            self.call_after_refresh(redraw)

    def show_scene(self, scene) -> None:
        """The app's view hook (tui/views.py): the current run and every pin, for the tensor shown."""
        self.show(scene.current, list(scene.pins), scene.tensor)

    def show(self, current: RunResult | None, pins: list[Pin], tensor: str) -> None:
        row = self.cursor_row
        self.clear()
        self.row_pins = []
        if current is not None:
            self._add(current, "*", "current", None, tensor, True)
            self.row_pins.append(None)
        for i, pin in enumerate(pins):
            if getattr(pin, "is_training", False):
                self._add_training(pin.result, str(i + 1), pin.name, pin.colour, pin.visible)
            else:
                self._add(pin.result, str(i + 1), pin.name, pin.colour, tensor, pin.visible)
            self.row_pins.append(i)
        if self.row_count:
            self.move_cursor(row=min(max(row, 0), self.row_count - 1))

    def _add(self, result: RunResult, key: str, name: str, colour, tensor: str, visible: bool) -> None:
        h = headline_numbers(result, tensor)
        swatch = Text.assemble(("━━ " if visible else "┄┄ ", f"rgb{tuple(colour)}" if colour else "bold"), key)
        self.add_row(
            swatch, Text(name) if visible else Text(name + " (hidden)", style="dim"), str(h["event"]),
            fmt(h["first"]), fmt(h["last"]), fmt(h["growth"]), f"{result.elapsed_s:.2f}s",
            Text(spec_label(result.spec) + f" b{result.spec.batch} s{result.spec.seed}"),
        )

    def _add_training(self, result, key: str, name: str, colour, visible: bool) -> None:
        swatch = Text.assemble(("━━ " if visible else "┄┄ ", f"rgb{tuple(colour)}" if colour else "bold"), key)
        self.add_row(
            swatch, Text(name) if visible else Text(name + " (hidden)", style="dim"), training_event(result),
            "", "", "", f"{result.elapsed_s:.2f}s", Text(training_spec_label(result.spec)),
        )

    def selected_pin(self) -> int | None:
        if not self.row_count or not 0 <= self.cursor_row < len(self.row_pins):
            return None
        return self.row_pins[self.cursor_row]

    def action_pin(self, kind: str) -> None:
        index = self.selected_pin()
        if index is None:
            self.notify("Select a pinned run (the current run is row *); ctrl+n pins it.", markup=False)
            return
        self.post_message(PinCommand(kind, index))
