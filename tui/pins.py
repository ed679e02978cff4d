"""The pinned-run model: results kept for comparison, each with a name, a colour and a visibility.

Plain Python (no widgets): the app owns one PinBoard, the plots, legend and runs table read it. A pin
holds a run (a RunResult: drawn by the Curves, Corr tabs) or a training run (a TrainResult, whose spec is
a TrainSpec: drawn by the Training tab); both kinds share the board, so each pin has one number (its
digit key, its row in the Runs tab), one colour and one name wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from initscope.engine.result import RunResult

# Okabe & Ito's colour-blind-safe palette (plus two), as RGB: distinguishable on dark and light themes
# and after Textual downgrades to 256 colours.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
    (0, 114, 178),  # blue
    (150, 220, 120),  # light green
    (190, 150, 255),  # lavender
)
MAX_PINS = 9  # one digit key each


def rgb_css(rgb: tuple[int, int, int]) -> str:
    """`rgb(r,g,b)` for Textual content markup (the stylesheet itself uses theme variables only)."""
    return f"rgb({rgb[0]},{rgb[1]},{rgb[2]})"


@dataclass
class Pin:
    name: str
    result: RunResult
    colour: tuple[int, int, int]
    visible: bool = True

    @property
    def spec(self):
        return self.result.spec

    @property
    def is_training(self) -> bool:
        """A training run's pin: its spec is a TrainSpec (engine/trainspec.py: a stack `body` plus steps)."""
        spec = self.result.spec
        return hasattr(spec, "body") and hasattr(spec, "steps")


class PinBoard:
    """Ordered pins; the index (1-based) is the digit key that toggles each one."""

    def __init__(self) -> None:
        self.pins: list[Pin] = []
        self._counter = 0

    def __len__(self) -> int:
        return len(self.pins)

    def __iter__(self):
        return iter(self.pins)

    def __getitem__(self, index: int) -> Pin:
        return self.pins[index]

    @property
    def full(self) -> bool:
        return len(self.pins) >= MAX_PINS

    def _free_colour(self) -> tuple[int, int, int]:
        used = {p.colour for p in self.pins}
        for c in PALETTE:
            if c not in used:
                return c
        return PALETTE[len(self.pins) % len(PALETTE)]

    def unique_name(self, base: str) -> str:
        names = {p.name for p in self.pins}
        if base not in names:
            return base
        n = 2
        while f"{base} ({n})" in names:
            n += 1
        return f"{base} ({n})"

    def add(self, result: RunResult, name: str | None = None) -> Pin:
        """Pin a result. Raises ValueError when all MAX_PINS slots are taken."""
        if self.full:
            raise ValueError(f"at most {MAX_PINS} pinned runs; remove one first")
        self._counter += 1
        pin = Pin(self.unique_name(name or f"run {self._counter}"), result, self._free_colour())
        self.pins.append(pin)
        return pin

    def remove(self, index: int) -> Pin:
        return self.pins.pop(index)

    def toggle(self, index: int) -> Pin:
        pin = self.pins[index]
        pin.visible = not pin.visible
        return pin

    def rename(self, index: int, name: str) -> Pin:
        name = name.strip()
        if not name:
            raise ValueError("a pin needs a name")
        pin = self.pins[index]
        if name != pin.name:
            pin.name = self.unique_name(name)
        return pin

    def visible(self) -> list[Pin]:
        return [p for p in self.pins if p.visible]

    def runs(self) -> list[Pin]:
        """The pins of runs (RunResults), in board order."""
        return [p for p in self.pins if not p.is_training]

    def trainings(self) -> list[Pin]:
        """The pins of training runs (TrainResults), in board order."""
        return [p for p in self.pins if p.is_training]

    def holds(self, result: object) -> bool:
        return any(p.result is result for p in self.pins)

    def clear(self) -> None:
        self.pins.clear()
