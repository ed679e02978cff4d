"""Dialog: a modal screen that answers once.

A terminal delivers fast typing as a batch: `ctrl+s j c` queues `j` and `c` for the menu before it
handles `j`. Textual's `dismiss` pops whatever screen is on top, so a second answer from the same
screen (the `c`) would close the next dialog, or the main screen itself (a ScreenStackError). A Dialog
therefore answers only while it is the active screen and only once; keys still queued for it after
that are dropped.
"""

from __future__ import annotations

from typing import TypeVar

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


class Dialog(ModalScreen[ResultType]):
    _answered = False

    @property
    def accepts_input(self) -> bool:
        """True while this dialog is on top and has not answered yet."""
        return not self._answered and self.is_active

    def dismiss(self, result: ResultType | None = None) -> AwaitComplete:
        """Close with `result`, the first time only and only from the top of the stack (else a no-op)."""
        if not self.accepts_input:
            return AwaitComplete.nothing()
        self._answered = True
        return super().dismiss(result)
