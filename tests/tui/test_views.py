"""The tab registry (tui/views.py): a new view is one widget plus one registration, and it then has its
tab, its F-key, its place in the F4 cycle, its palette entry and its help line, and gets the Scene."""

from __future__ import annotations

import pytest
from initscope.tui import views
from initscope.tui.app import InitScopeApp
from initscope.tui.screens.help import HelpScreen
from textual.widgets import Static, TabbedContent

from tests.tui.conftest import settle


class ThrowawayView(Static):
    """A view that only keeps what it was shown."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("nothing yet", id=id)
        self.scenes: list[views.Scene] = []

    def show_scene(self, scene: views.Scene) -> None:
        self.scenes.append(scene)
        self.update(f"{scene.tensor} of run depth {scene.current.spec.depth}")


@pytest.fixture
def scratch(monkeypatch):
    monkeypatch.setattr(views, "VIEWS", list(views.VIEWS))  # the registration below is undone after the test
    return views.register(views.View("scratch", "Scratch", "f11", "tests.tui.test_views:ThrowawayView",
                                     "scratch-view", ("current",)))


def test_a_view_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        views.register(views.View("curves", "Again", "f12", "tests.tui.test_views:ThrowawayView", "x", ()))
    assert [v.id for v in views.VIEWS] == ["curves", "distribution", "explain", "runs", "training", "corr"]


async def test_a_registered_view_has_its_tab_key_cycle_palette_and_help(fake, scratch):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tabs = app.query_one("#tabs", TabbedContent)
        assert tabs.tab_count == 7 and tabs.get_pane("scratch") is not None
        view = app.query_one("#scratch-view", ThrowawayView)
        # it follows the current run: it was drawn once the first run finished, with the app's state
        assert view.scenes and view.scenes[-1].current is app.current and view.scenes[-1].tensor == "post"
        # its key
        await pilot.press("f11")
        await pilot.pause()
        assert tabs.active == "scratch"
        # the F4 cycle: corr -> scratch -> curves
        await pilot.press("f10", "f4")
        await pilot.pause()
        assert tabs.active == "scratch"
        await pilot.press("f4")
        await pilot.pause()
        assert tabs.active == "curves"
        # the palette and the help
        assert ("Show scratch tab", "F5..F11", "show_tab('scratch')") in app.palette_entries()
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text", Static).content)
        assert "Curves -> Distribution -> Explain -> Runs -> Training -> Corr -> Scratch" in text and "F5..F11" in text
        await pilot.press("escape")
        await pilot.pause()
        # a change of tensor reaches it with the others
        drawn = len(view.scenes)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.tensor != "post" and len(view.scenes) > drawn and view.scenes[-1].tensor == app.tensor


def test_the_app_without_a_registration_has_the_six_tabs():
    app = InitScopeApp()
    assert [b.key for b in app.BINDINGS if b.action.startswith("show_tab(")] == ["f5", "f6", "f7", "f8", "f9", "f10"]
    assert "f11" not in app._bindings.key_to_bindings
