"""PathPrompt: keyboard-only modal that returns a Path or None."""

from __future__ import annotations

from pathlib import Path

from initscope.tui.screens.path_prompt import PathPrompt, validate_path
from textual.app import App
from textual.widgets import Input, Label


class Host(App[None]):
    def __init__(self, prompt: PathPrompt) -> None:
        super().__init__()
        self.prompt = prompt
        self.results: list[Path | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.prompt, self.results.append)


async def test_enter_returns_the_prefilled_path_with_cursor_at_end(tmp_path):
    default = tmp_path / "initscope-20260101-000000.json"
    app = Host(PathPrompt("Save results as JSON", default))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PathPrompt)
        assert str(screen.query_one("#title", Label).content) == "Save results as JSON"
        field = screen.query_one("#path", Input)
        assert field.has_focus and field.value == str(default)
        assert field.cursor_position == len(str(default))
        assert field.selection.is_empty  # typing appends, it does not replace the prefilled path
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [default]


async def test_typing_edits_the_end_and_escape_cancels(tmp_path):
    app = Host(PathPrompt("Save results as CSV", tmp_path / "a"))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(".", "c", "s", "v", "enter")
        await pilot.pause()
    assert app.results == [tmp_path / "a.csv"]

    app = Host(PathPrompt("Save results as CSV", tmp_path / "a.csv"))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PathPrompt)
    assert app.results == [None]


async def test_missing_folder_shows_an_error_and_stays_open(tmp_path):
    bad = tmp_path / "no-such-dir" / "x.json"
    app = Host(PathPrompt("Save results as JSON", bad))
    async with app.run_test() as pilot:
        await pilot.pause()
        prompt = app.screen
        assert prompt.error == ""
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is prompt and app.results == []
        assert prompt.error == f"The folder {bad.parent} does not exist."
        assert prompt.query_one("#error").display
        # editing clears the error; fixing the path lets enter through
        field = prompt.query_one("#path", Input)
        field.value = str(tmp_path / "x.json")
        await pilot.pause()
        assert prompt.error == "" and not prompt.query_one("#error").display
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [tmp_path / "x.json"]


async def test_existing_file_gets_a_replace_note_and_must_exist_mode(tmp_path):
    existing = tmp_path / "session.json"
    existing.write_text("{}")
    app = Host(PathPrompt("Save session", existing))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert "session.json exists; enter replaces it" in str(app.screen.query_one("#hint").content)

    app = Host(PathPrompt("Load session", tmp_path / "missing.json", must_exist=True))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.error.endswith("missing.json does not exist.")
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


def test_validate_path(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    assert validate_path("  ") == (None, "Type a file name.")
    assert validate_path("out.json", cwd=tmp_path) == (tmp_path / "out.json", "")
    assert validate_path(str(tmp_path))[1].endswith("is a folder; type a file name.")
    assert validate_path(str(tmp_path / "f.txt" / "y.json"))[1] == f"{tmp_path / 'f.txt'} is not a folder."
    assert validate_path(str(tmp_path / "f.txt"), must_exist=True) == (tmp_path / "f.txt", "")
    home, _ = validate_path("~/x.json")
    assert home is None or home == Path.home() / "x.json"
