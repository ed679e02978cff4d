"""RunsTable: the current run and the pinned runs with their spec and headline numbers.

Headline numbers for the chosen tensor's std per layer: first- and last-layer std, growth per layer
(last/first)^(1/(L-1)), the first layer where the signal vanished (std < 1e-3 x layer 1's), exploded
(std > 1e3 x layer 1's) or went non-finite, and the run's time.
Keys while the table has focus: space toggles a pin's visibility, r renames, d/delete removes,
enter recalls its configuration into the form.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

if TYPE_CHECKING:
    from initscope.engine.result import RunResult

from ..messages import PinCommand
from ..pins import Pin

VANISH, EXPLODE = 1e-3, 1e3


def fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-" if x is None else ("inf" if x > 0 else "-inf") if math.isinf(x) else "nan"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4):
        return f"{x:.2e}"
    return f"{x:.4g}"


def headline_numbers(result: RunResult, tensor: str) -> dict[str, object]:
    """first, last, growth, event ('vanished@L7', 'exploded@L3', 'non-finite@L12' or ''), seconds."""
    import numpy as np

    out: dict[str, object] = {"first": None, "last": None, "growth": None, "event": "", "seconds": result.elapsed_s}
    if tensor not in result.stats:
        out["event"] = "no grad"
        return out
    std = result.headline(tensor, "std")
    bad = result.per_trial(tensor, "nonfinite_frac").max(axis=0) > 0
    L = std.size
    first, last = float(std[0]), float(std[-1])
    out["first"], out["last"] = first, last
    if L > 1 and math.isfinite(first) and math.isfinite(last) and first > 0 and last > 0:
        out["growth"] = (last / first) ** (1 / (L - 1))
    events: list[tuple[int, str]] = []
    nonfinite = np.flatnonzero(bad | ~np.isfinite(std))
    if nonfinite.size:
        events.append((int(nonfinite[0]) + 1, "non-finite"))
    if math.isfinite(first) and first > 0:
        with np.errstate(all="ignore"):
            ratio = std / first
        v = np.flatnonzero(np.isfinite(ratio) & (ratio < VANISH))
        e = np.flatnonzero(np.isfinite(ratio) & (ratio > EXPLODE))
        if v.size:
            events.append((int(v[0]) + 1, "vanished"))
        if e.size:
            events.append((int(e[0]) + 1, "exploded"))
    elif math.isfinite(first) and first == 0:
        events.append((1, "vanished"))
    if events:
        layer, what = min(events)
        out["event"] = f"{what}@L{layer}"
    return out


COLUMNS = (("", "key"), ("name", "name"), ("spec", "spec"), ("first", "first"), ("last", "last"),
           ("growth/layer", "growth"), ("event", "event"), ("time", "time"))


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

    def show(self, current: RunResult | None, pins: list[Pin], tensor: str) -> None:
        row = self.cursor_row
        self.clear()
        self.row_pins = []
        if current is not None:
            self._add(current, "*", "current", None, tensor, True)
            self.row_pins.append(None)
        for i, pin in enumerate(pins):
            self._add(pin.result, str(i + 1), pin.name, pin.colour, tensor, pin.visible)
            self.row_pins.append(i)
        if self.row_count:
            self.move_cursor(row=min(max(row, 0), self.row_count - 1))

    def _add(self, result: RunResult, key: str, name: str, colour, tensor: str, visible: bool) -> None:
        h = headline_numbers(result, tensor)
        swatch = Text.assemble(("━━ " if visible else "┄┄ ", f"rgb{tuple(colour)}" if colour else "bold"), key)
        self.add_row(
            swatch, Text(name) if visible else Text(name + " (hidden)", style="dim"),
            Text(result.spec.label() + f" b{result.spec.batch} s{result.spec.seed}"),
            fmt(h["first"]), fmt(h["last"]), fmt(h["growth"]), str(h["event"]), f"{result.elapsed_s:.2f}s",
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
