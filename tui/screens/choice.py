"""ChoiceScreen: a keyboard modal listing options, each with its own key; returns the chosen value.

Used for the presets menu (F3) and the save/open menu (ctrl+s). Press an option's key, or move with
up/down and press enter; escape closes it with None. It answers once (see Dialog): an option key typed
after the choice, as in a quick `ctrl+s j c`, is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.events import Key
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from .dialog import Dialog


@dataclass(frozen=True)
class Choice:
    key: str  # one keystroke
    title: str
    detail: str  # one line under the title
    value: str


class ChoiceScreen(Dialog[str | None]):
    AUTO_FOCUS = "#choice-list"
    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, title: str, choices: list[Choice]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="choice-box"):
            yield Label(self.title_text, id="choice-title", markup=False)
            options = []
            for c in self.choices:
                text = Content.assemble((f"[{c.key}] ", "bold"), c.title)
                if c.detail:
                    text = Content.assemble(text, "\n", (f"    {c.detail}", "dim"))
                options.append(Option(text, id=c.value))
            yield OptionList(*options, id="choice-list")
            yield Static("key or enter: choose · escape: close", id="choice-hint", markup=False)

    def on_key(self, event: Key) -> None:
        if not self.accepts_input:
            return
        for c in self.choices:
            if event.character and event.character == c.key:
                event.stop()
                self.dismiss(c.value)
                return

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
