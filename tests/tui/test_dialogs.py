"""Dialogs answer once, one dialog at a time, and keys typed quickly into them never crash the app.

`send_burst` queues every key before the app handles the first, as a terminal delivers fast typing.
"""

from __future__ import annotations

from initscope.tui.app import InitScopeApp
from initscope.tui.screens.choice import ChoiceScreen
from initscope.tui.screens.path_prompt import PathPrompt
from initscope.tui.screens.rename import RenamePrompt
from textual.command import CommandPalette

from tests.tui.conftest import settle
from tests.tui.fake_engine import FakeEngine
from tests.tui.quick_keys import send_burst
from tests.tui.test_path_prompt import Host


async def _burst_in_app(keys: tuple[str, ...], tmp_path, monkeypatch) -> InitScopeApp:
    monkeypatch.chdir(tmp_path)
    app = InitScopeApp(engine=FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await send_burst(pilot, *keys)
        await pilot.pause()
        assert app._exception is None, f"{' '.join(keys)} crashed the app: {app._exception!r}"
        stack = [type(s) for s in app.screen_stack[1:]]
        app.stack_after_burst = stack  # type: ignore[attr-defined]
        await settle(pilot)
        app.pins_after_burst = [p.name for p in app.pins]  # type: ignore[attr-defined]
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    return app


async def test_save_menu_answers_once_quick_ctrl_s_j_c(tmp_path, monkeypatch):
    # j chose JSON; the c typed before the menu closed must not close the JSON prompt or the main screen
    app = await _burst_in_app(("ctrl+s", "j", "c"), tmp_path, monkeypatch)
    assert app.stack_after_burst == [PathPrompt]


async def test_save_menu_answers_once_quick_ctrl_s_w_o(tmp_path, monkeypatch):
    app = await _burst_in_app(("ctrl+s", "w", "o"), tmp_path, monkeypatch)
    assert app.stack_after_burst == [PathPrompt]


async def test_presets_menu_answers_once_quick_f3_1_2(tmp_path, monkeypatch):
    # 1 applies lesson8 (its two variants are pinned); the 2 is dropped, not a second preset or a crash
    app = await _burst_in_app(("f3", "1", "2"), tmp_path, monkeypatch)
    assert app.stack_after_burst == []
    assert app.pins_after_burst == ["he relu", "he relu-0.5"]


async def test_one_dialog_at_a_time(tmp_path, monkeypatch):
    # a menu key typed in a dialog belongs to the dialog: no second menu stacks on the first
    app = await _burst_in_app(("ctrl+s", "f3", "ctrl+o", "ctrl+s"), tmp_path, monkeypatch)
    assert app.stack_after_burst == [ChoiceScreen]


async def test_quick_page_keys_in_the_command_palette(tmp_path, monkeypatch):
    # pagedown before the palette's list is laid out (Textual 8.2's OptionList raised KeyError)
    app = await _burst_in_app(("ctrl+p", "pagedown"), tmp_path, monkeypatch)
    assert len(app.stack_after_burst) == 1 and issubclass(app.stack_after_burst[0], CommandPalette)
    app = await _burst_in_app(("ctrl+p", "a", "pageup", "pagedown"), tmp_path, monkeypatch)
    assert len(app.stack_after_burst) == 1


async def test_path_prompt_answers_once(tmp_path):
    # enter twice quickly: one answer, and the host's own screen stays
    app = Host(PathPrompt("Save results as JSON", tmp_path / "a.json"))
    async with app.run_test() as pilot:
        await pilot.pause()
        await send_burst(pilot, "enter", "enter")
        await pilot.pause()
        assert app._exception is None
        assert len(app.screen_stack) == 1
    assert app.results == [tmp_path / "a.json"]


async def test_rename_prompt_answers_once():
    app = Host(RenamePrompt("he relu"))  # type: ignore[arg-type]
    async with app.run_test() as pilot:
        await pilot.pause()
        await send_burst(pilot, "enter", "enter", "enter")
        await pilot.pause()
        assert app._exception is None
        assert len(app.screen_stack) == 1
    assert app.results == ["he relu"]


async def test_a_covered_palette_does_not_answer(tmp_path, monkeypatch):
    # a key or search result still queued for the palette after F1 covered it: dismissing it must not
    # pop the help over it (nor later fire its spent callback: InvalidStateError in the fuzz)
    from initscope.tui.screens.help import HelpScreen

    monkeypatch.chdir(tmp_path)
    app = InitScopeApp(engine=FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        palette.dismiss()
        palette.dismiss()
        await pilot.pause()
        assert app._exception is None
        assert isinstance(app.screen, HelpScreen) and app.screen_stack[-2] is palette
        await pilot.press("escape")  # help closes, the palette is back and answers normally
        assert app.screen is palette
        await pilot.press("escape", "escape")
        assert len(app.screen_stack) == 1
        await pilot.press("ctrl+q")
    assert app.return_code == 0
