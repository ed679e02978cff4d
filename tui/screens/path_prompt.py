"""PathPrompt: a small keyboard-only modal that asks for a file path.

API
    PathPrompt(title: str, default: str | Path, *, must_exist: bool = False)   # Dialog[Path | None]
        enter  -> validates, then dismiss(Path) (absolute, ~ expanded; relative paths are taken from the cwd)
        escape -> dismiss(None)
        An invalid path shows one sentence under the input and the prompt stays open. must_exist=True is
        for loading (the file has to be there); otherwise the folder has to exist, and an existing file
        gets a note that enter replaces it.
    validate_path(text, *, must_exist=False, cwd=None) -> (Path | None, str)   # pure: path, or "" + error

Usage from the app:
    def action_save_json(self) -> None:
        def done(path: Path | None) -> None:
            if path is not None:
                ...save, notify(str(err), severity="error", markup=False) on ExportError
        self.push_screen(PathPrompt("Save results as JSON", default_path("json")), done)
"""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from .dialog import Dialog


def validate_path(text: str, *, must_exist: bool = False, cwd: str | os.PathLike | None = None
                  ) -> tuple[Path | None, str]:
    """(absolute path, "") when `text` names a usable file, else (None, one sentence)."""
    raw = text.strip()
    if not raw:
        return None, "Type a file name."
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(cwd) / path if cwd is not None else Path.cwd() / path
    parent = path.parent
    if path.is_dir():
        return None, f"{path} is a folder; type a file name."
    if not parent.exists():
        return None, f"The folder {parent} does not exist."
    if not parent.is_dir():
        return None, f"{parent} is not a folder."
    if must_exist and not path.is_file():
        return None, f"{path} does not exist."
    return path, ""


class PathPrompt(Dialog[Path | None]):
    """Ask for a path; dismisses with the Path, or None on escape."""

    DEFAULT_CSS = """
    PathPrompt {
        align: center middle;
        background: $background 60%;
    }
    PathPrompt > #dialog {
        width: 90%;
        max-width: 100;
        height: auto;
        padding: 0 1;
        border: round $primary;
        background: $surface;
    }
    PathPrompt #title {
        text-style: bold;
        width: 1fr;
    }
    PathPrompt #error {
        color: $text-error;
        height: auto;
    }
    PathPrompt #error.-empty {
        display: none;
    }
    PathPrompt #hint {
        color: $text-muted;
        height: auto;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=True)]
    AUTO_FOCUS = "#path"  # focused when the screen is shown; Input puts the cursor after the prefilled path

    def __init__(self, title: str, default: str | Path, *, must_exist: bool = False, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title_text = title
        self.default = str(default)
        self.must_exist = must_exist

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="title", markup=False)
            yield Input(self.default, id="path", select_on_focus=False)
            yield Static("", id="error", markup=False, classes="-empty")
            yield Static(self._hint(self.default), id="hint", markup=False)

    @property
    def error(self) -> str:
        """The error shown now ("" when none)."""
        return str(self.query_one("#error", Static).content)

    def _hint(self, text: str) -> str:
        keys = "enter: " + ("open" if self.must_exist else "save") + " · escape: cancel"
        if not self.must_exist:
            path, _ = validate_path(text)
            if path is not None and path.exists():
                return f"{path.name} exists; enter replaces it. {keys}"
        return keys

    def _set_error(self, message: str) -> None:
        error = self.query_one("#error", Static)
        error.update(message)
        error.set_class(not message, "-empty")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._set_error("")
        self.query_one("#hint", Static).update(self._hint(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path, message = validate_path(event.value, must_exist=self.must_exist)
        if path is None:
            self._set_error(message)
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
