"""The footer at 80 columns: the keys a user learns the app from fit, whatever tab is shown."""

from __future__ import annotations

import pytest
from initscope.tui.app import InitScopeApp
from textual.widgets._footer import FooterKey

from tests.tui.conftest import settle
from tests.tui.fake_train import FakeTrainEngine

# the actions whose keys the footer must show at 80 columns (F1 lists the rest: log, form, open, ...)
MUST_SHOW = ("help", "rerun", "train", "pin", "next_tensor", "presets", "save_menu")


def visible_keys(app) -> dict[str, str]:
    """action -> 'key description' of every footer key drawn in full left of the palette key."""
    keys = list(app.screen.query(FooterKey))
    palette = next(k for k in keys if k.has_class("-command-palette"))
    width = app.size.width
    return {k.action: f"{k.key_display} {k.description}" for k in keys
            if k is not palette and k.region.width and k.region.right <= min(palette.region.x, width)}


async def footer_drawn(pilot, tries: int = 100) -> None:
    """Wait until the footer (recomposed after a focus change) has laid out its keys."""
    for _ in range(tries):
        await pilot.pause(0.02)
        keys = list(pilot.app.screen.query(FooterKey))
        if keys and all(k.region.width for k in keys):
            return
    raise AssertionError("the footer drew no keys")


@pytest.mark.parametrize("tab", ["curves", "runs", "training", "phase"])
async def test_the_footer_shows_the_important_keys_at_80_columns(tab):
    app = InitScopeApp(engine=FakeTrainEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.action_show_tab(tab)
        await footer_drawn(pilot)
        shown = visible_keys(app)
        assert "train" in shown and shown["train"] == "^g Train", shown
        if tab in ("curves", "training"):  # no widget keys of their own in the footer: all of them fit
            assert set(MUST_SHOW) <= set(shown), shown


async def test_while_a_training_run_goes_on_the_footer_shows_stop_and_every_important_key():
    from tests.tui.test_training import GatedTrainEngine, _start_gated_training

    engine = GatedTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await _start_gated_training(pilot, app)
        await footer_drawn(pilot)
        for _ in range(50):  # the footer recomposes once the Stop key is enabled
            shown = visible_keys(app)
            if "cancel" in shown:
                break
            await pilot.pause(0.02)
        assert shown.get("cancel") == "esc Stop" and set(MUST_SHOW) <= set(shown), shown
        engine.gate.set()
        await settle(pilot)
