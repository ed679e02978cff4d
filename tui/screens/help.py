"""HelpScreen: every key of the app, grouped, generated from the same table as the bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "initscope: what an init scheme does to the signal, layer by layer. Edit the form on the left; "
    "a valid change re-runs on its own. In a list field, type a name to choose it. The curves show the measured mean and std per layer "
    "(solid) beside the theory (dotted) and its finite-width band (faint)."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss(None)", "Close")]
    AUTO_FOCUS = "#help-box"  # focused from the start, so the arrows and page keys scroll it (the app focuses none)

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        """rows: (group, keys, what it does)."""
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        lines = [INTRO, ""]
        group = None
        for g, keys, what in self.rows:
            if g != group:
                lines += ["", g] if group is not None else [g]
                group = g
            lines.append(f"  {keys:<18} {what}")
        lines += ["", "up/down, page up/down, home/end scroll; escape / F1 / ? closes this screen."]
        with VerticalScroll(id="help-box"):
            yield Static("\n".join(lines), id="help-text", markup=False)
