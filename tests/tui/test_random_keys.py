"""The app survives random keys, typed one at a time and in quick bursts (seeded, so a failure reproduces).

A burst is delivered the way a terminal delivers fast typing: every key of it is queued before the app
handles the first, so a menu can receive keys after it chose (ctrl+s j c, F3 1 2, ctrl+s w o). After
the keys the app must still be running, close its dialogs on escape, answer its keys, and quit cleanly
on ctrl+q with status 0.

More seeds: INITSCOPE_FUZZ_SEEDS=1,2,3 (each seed is one test); INITSCOPE_FUZZ_KEYS sets the keys per seed.
"""

from __future__ import annotations

import os
import random
import string

import pytest
from initscope.tui.app import InitScopeApp
from textual.widgets import TabbedContent

from tests.tui.conftest import settle
from tests.tui.fake_engine import FakeEngine
from tests.tui.quick_keys import PUNCTUATION, key_event, send_burst

SEEDS = [int(s) for s in os.environ.get("INITSCOPE_FUZZ_SEEDS", "2").split(",")]
KEYS_PER_SEED = int(os.environ.get("INITSCOPE_FUZZ_KEYS", "1000"))

# ctrl+q quits (checked at the end); ctrl+c, ctrl+i, ctrl+m and ctrl+h are tab, enter and backspace in a terminal
CTRL_KEYS = [f"ctrl+{c}" for c in string.ascii_lowercase if c not in "qcimh"]
APP_KEYS = sorted({k.strip() for b in InitScopeApp.BINDINGS for k in b.key.split(",")} - {"ctrl+q"})
OTHER_KEYS = ["escape", "tab", "shift+tab", "enter", "space", "backspace", "delete", "up", "down", "left", "right",
              "home", "end", "pageup", "pagedown", *[f"f{i}" for i in range(1, 13)], *CTRL_KEYS]
TYPED = list(string.ascii_lowercase + string.digits) + list(PUNCTUATION)
KEYS = APP_KEYS + OTHER_KEYS + TYPED
# Keys that open a dialog, followed at once by what a user types into it.
OPENERS = ["ctrl+s", "f3", "ctrl+o", "f1", "question_mark", "ctrl+p"]
IN_DIALOG = list("jcswo0123456789abx") + ["escape", "enter", "tab", "down", "up", "pagedown", "pageup", "backspace"]


def random_burst(rng: random.Random) -> list[str]:
    """One to eight keys typed too fast for the app to handle in between; often a dialog and its keys."""
    if rng.random() < 0.4:
        return [rng.choice(OPENERS)] + [rng.choice(IN_DIALOG) for _ in range(rng.randint(1, 3))]
    return [rng.choice(KEYS) for _ in range(rng.randint(1, 8))]


def test_key_events_match_textuals_names():
    assert key_event("(").key == "left_parenthesis" and key_event("(").character == "("
    assert key_event("ctrl+s").character == "\x13"
    assert key_event("enter").character == "\r" and key_event("f3").character is None
    assert {"ctrl+s", "ctrl+n", "ctrl+t", "f3", "1", "question_mark"} <= set(APP_KEYS)


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_keys_do_not_crash(seed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # saves from the menus land here
    rng = random.Random(seed)
    sent: list[list[str]] = []
    app = InitScopeApp(engine=FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        count = 0
        while count < KEYS_PER_SEED:
            burst = random_burst(rng)
            sent.append(burst)
            count += len(burst)
            await send_burst(pilot, *burst)
            if app._exception is not None or not app.is_running:
                break
        assert app._exception is None, f"crashed after the bursts {sent[-5:]} (seed {seed}): {app._exception!r}"
        if app.return_code is not None:  # the palette's Quit is a clean exit, not a crash
            assert app.return_code == 0
            return
        # every dialog closes on escape, and the app still answers its keys
        for _ in range(12):
            if len(app.screen_stack) == 1:
                break
            await pilot.press("escape")
        assert len(app.screen_stack) == 1, f"dialogs left open: {app.screen_stack}"
        await settle(pilot)
        tensor = app.tensor
        await pilot.press("f7", "ctrl+t")
        assert app.query_one("#tabs", TabbedContent).active == "explain"
        assert app.tensor != tensor
        await pilot.press("ctrl+q")
    assert app._exception is None
    assert app.return_code == 0
