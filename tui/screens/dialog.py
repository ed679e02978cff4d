"""Dialog: a modal screen that answers once.

A terminal delivers fast typing as a batch: `ctrl+s j c` queues `j` and `c` for the menu before it
handles `j`. Textual's `dismiss` pops whatever screen is on top, so a second answer from the same
screen (the `c`), or an answer from a screen with another one over it (the help over the command
palette), would close the wrong screen, or the main screen itself (ScreenStackError), or fire a
spent callback (InvalidStateError). A screen with AnswersOnce answers only while it is the active
screen and only once; keys still queued for it after that are dropped.
"""

from __future__ import annotations

from typing import TypeVar

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


class AnswersOnce:
    """Mixin for a Screen: `dismiss` works the first time, from the top of the stack; else a no-op."""

    _answered = False

    @property
    def accepts_input(self) -> bool:
        """True while this screen is on top and has not answered yet."""
        return not self._answered and self.is_active  # type: ignore[attr-defined]

    def dismiss(self, result=None) -> AwaitComplete:
        if not self.accepts_input:
            return AwaitComplete.nothing()
        self._answered = True
        return super().dismiss(result)  # type: ignore[misc]


class Dialog(AnswersOnce, ModalScreen[ResultType]):
    """A keyboard modal of this app (menus, path and name prompts)."""
