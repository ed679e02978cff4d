"""RenamePrompt: a one-line modal asking for a pinned run's new name (enter saves, escape cancels)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from .dialog import Dialog


class RenamePrompt(Dialog[str | None]):
    AUTO_FOCUS = "#rename-input"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="rename-box"):
            yield Label(f"Rename pinned run '{self.current}'", markup=False)
            yield Input(self.current, id="rename-input", max_length=40)
            yield Static("enter: save · escape: cancel", id="rename-error", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not name:
            self.query_one("#rename-error", Static).update("A pinned run needs a name.")
            return
        self.dismiss(name)
