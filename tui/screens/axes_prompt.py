"""AxesPrompt: the Phase tab's two axes as --vary texts (engine/sweep/grid.py's grammar), checked on enter.

    AxesPrompt(x_text, y_text, spec)   # Dialog[tuple[str, str] | None]
        enter  -> both axes parse (parse_vary), differ, have at most phase.MAX_AXIS values, and the first cell
                  of the grid around `spec` is a valid spec: dismiss((x_text, y_text)); else one sentence
                  under the fields and the prompt stays open
        escape -> dismiss(None)
    ctrl+d puts the default axes of `spec` back in the fields.
"""

from __future__ import annotations

from initscope.engine.errors import SpecError
from initscope.engine.sweep.grid import cell_spec
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from .. import phase
from .dialog import Dialog


def check_axes_text(x_text: str, y_text: str, spec) -> str:
    """"" when the two --vary texts make a grid around `spec`, else the engine's one sentence."""
    try:
        x, y = phase.parse_axes(x_text, y_text)
        base, _note = phase.grid_base(spec, [x, y])
        cell_spec(base, [x, y], {x.name: x.values[0], y.name: y.values[0]})
    except SpecError as e:
        return e.message("app")
    return ""


class AxesPrompt(Dialog[tuple[str, str] | None]):
    DEFAULT_CSS = """
    AxesPrompt { align: center middle; background: $background 60%; }
    AxesPrompt > #axes-box { width: 90%; max-width: 90; height: auto; padding: 0 1; border: round $primary;
                             background: $surface; }
    AxesPrompt #axes-title { text-style: bold; }
    AxesPrompt .axes-row { height: auto; }
    AxesPrompt .axes-label { width: 3; padding: 1 0 0 0; }
    AxesPrompt Input { width: 1fr; }
    AxesPrompt #axes-error { color: $text-error; height: auto; }
    AxesPrompt #axes-hint { color: $text-muted; height: auto; }
    """
    AUTO_FOCUS = "#axes-x"
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+d", "defaults", "Defaults")]

    def __init__(self, x_text: str, y_text: str, spec) -> None:
        super().__init__()
        self.x_text, self.y_text, self.spec = x_text, y_text, spec

    def compose(self) -> ComposeResult:
        with Vertical(id="axes-box"):
            yield Label("Phase tab axes: --vary FIELD.PARAM=VALUES (x first, then y)", id="axes-title", markup=False)
            with Horizontal(classes="axes-row"):
                yield Label("x", classes="axes-label", markup=False)
                yield Input(self.x_text, id="axes-x", select_on_focus=False)
            with Horizontal(classes="axes-row"):
                yield Label("y", classes="axes-label", markup=False)
                yield Input(self.y_text, id="axes-y", select_on_focus=False)
            yield Static("", id="axes-error", markup=False)
            yield Static("VALUES: a,b,c or start:stop:count or start:stop:count:log, e.g. init.gain=0.5:2.95:50, "
                         f"bias.std=0:0.49:50, act.a=0:0.3:7 (at most {phase.MAX_AXIS} values an axis). "
                         "enter: draw · ctrl+d: defaults · escape: cancel", id="axes-hint", markup=False)

    @property
    def error(self) -> str:
        return str(self.query_one("#axes-error", Static).content)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        x_text = self.query_one("#axes-x", Input).value.strip()
        y_text = self.query_one("#axes-y", Input).value.strip()
        message = check_axes_text(x_text, y_text, self.spec)
        if message:
            self.query_one("#axes-error", Static).update(message)
            return
        self.dismiss((x_text, y_text))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#axes-error", Static).update("")

    def action_defaults(self) -> None:
        x_text, y_text = phase.default_axes(self.spec)
        self.query_one("#axes-x", Input).value = x_text
        self.query_one("#axes-y", Input).value = y_text

    def action_cancel(self) -> None:
        self.dismiss(None)
