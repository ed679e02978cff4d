"""The app survives random key sequences (seeded, so a failure reproduces)."""

from __future__ import annotations

import os
import random

import pytest
from initscope.tui.app import InitScopeApp

from tests.tui.conftest import settle
from tests.tui.fake_engine import FakeEngine

KEYS = ["tab", "shift+tab", "escape", "enter", "space", "up", "down", "left", "right", "backspace",
        "ctrl+t", "ctrl+l", "ctrl+n", "ctrl+r", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "ctrl+s",
        "t", "l", "p", "1", "2", "3", "r", "d", "x", "0", "5", "-", "(", ")", "=", ".", "a", "question_mark",
        "ctrl+u", "ctrl+p", "home", "end", "pageup", "pagedown", "delete"]


SEEDS = [int(s) for s in os.environ.get("INITSCOPE_FUZZ_SEEDS", "2").split(",")]  # more: INITSCOPE_FUZZ_SEEDS=1,2,3


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_keys_do_not_crash(seed):
    rng = random.Random(seed)
    app = InitScopeApp(engine=FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for _ in range(60):
            await pilot.press(rng.choice(KEYS))
        # close whatever is open and check the app still works
        for _ in range(4):
            await pilot.press("escape")
        await settle(pilot)
        assert app.is_running
        assert app.return_code is None
        await pilot.press("ctrl+q")
    assert app.return_code == 0
