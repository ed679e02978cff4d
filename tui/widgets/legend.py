"""Legend: one row under the plots naming each drawn run with its colour (plotext's own legend sits
inside the canvas and covers data, so it is off)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widgets import Static

from ..pins import rgb_css


@dataclass
class LegendEntry:
    key: str  # "*" for the current run, "1".."9" for pins
    label: str
    color: tuple[int, int, int]
    visible: bool = True


class Legend(Static):
    """`show(entries, notes)`: swatches for runs, then what the line styles mean."""

    DEFAULT_CSS = """
    Legend { height: auto; max-height: 3; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self.entries: list[LegendEntry] = []
        self.notes: str | list = ""

    def show(self, entries: list[LegendEntry], notes: str | list[tuple[str, tuple[int, int, int] | None, str]] = "") -> None:
        """notes: a dim text, or (glyph, colour or None, meaning) per line style, the glyph drawn in its colour."""
        self.entries = list(entries)
        parts: list[str | tuple[str, str]] = []
        for e in entries:
            if parts:
                parts.append("  ")
            if e.visible:
                parts.append(("━━", rgb_css(e.color)))
                parts.append(f" {e.key} {e.label}")
            else:
                parts.append(("┄┄", "dim"))
                parts.append((f" {e.key} {e.label} (hidden)", "dim"))
        if isinstance(notes, str):
            if notes:
                parts.append(("   " + notes, "dim"))
        else:
            for i, (glyph, color, meaning) in enumerate(notes):  # the line styles on a line of their own
                parts.append(("\n" if i == 0 and parts else "  " if i else "", ""))
                parts.append((glyph, rgb_css(color) if color else "dim"))
                parts.append((f" {meaning}", "dim"))
        self.notes = notes
        self.update(Content.assemble(*parts))

    @property
    def plain(self) -> str:
        return "  ".join(f"{e.key} {e.label}" + ("" if e.visible else " (hidden)") for e in self.entries)
