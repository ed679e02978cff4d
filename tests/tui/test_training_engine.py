"""The Training tab with the real training engine (engine/train.py): a tiny teacher task, 16-16x3, 5 steps.

It trains for real through the app (prompt -> run queue -> engine.train -> TrainFinished -> the tab) and
checks the shapes the tab reads and what it drew.
"""

from __future__ import annotations

import numpy as np
from initscope.engine.spec import parse_spec
from initscope.tui.app import InitScopeApp
from initscope.tui.screens.train import TrainPrompt
from initscope.tui.widgets.training import StepPlot
from textual.widgets import Input, Static

from tests.tui.conftest import settle


async def test_the_tab_trains_with_the_real_engine():
    spec = parse_spec(arch="16-16x3", act="tanh", batch="32", seed="0", trials="2", grad="true")
    app = InitScopeApp(spec=spec)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, timeout=120)
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert isinstance(app.screen, TrainPrompt)
        # the arch does not start with 64: the prompt offers the teacher task (digits needs 64 features)
        assert app.screen.query_one("#train-data", Input).value == "teacher"
        for name, value in (("steps", "5"), ("every", "1"), ("data", "teacher(samples=256, classes=4)")):
            app.screen.query_one(f"#train-{name}", Input).value = value
        app.screen.query_one("#train-steps", Input).focus()
        await pilot.press("enter")
        await settle(pilot, timeout=120)
        r = app.training.current
        assert r is not None, app.last_error
        # TrainResult's shapes (engine/train.py): T = 2 trials, R = 5 recorded steps (every 1), L = 3 blocks
        assert r.loss.shape == (2, 5) and r.stats["post"].shape == (2, 5, 3, 7)
        assert r.update_ratio["W"].shape == (2, 5, 3) and list(r.steps) == [0, 1, 2, 3, 4]
        # the initial minibatch loss is that of a near-uniform softmax over 4 classes: the readout's
        # logits have std ~ |x^L| / sqrt(n) ~ 1 or less, so the loss is ln 4 = 1.386 within about 1
        assert np.all(np.abs(r.loss[:, 0] - np.log(4)) < 1.0)
        # SGD lr 0.05 moves W by a small fraction: the update ratio is finite and well below 0 (log10)
        assert np.all(np.isfinite(r.update_ratio["W"])) and np.all(r.update_ratio["W"] < -0.5)
        # the tab drew the mean minibatch loss (5 points) and the finite held-out eval points
        loss = app.query_one("#train-loss", StepPlot)
        evals = np.isfinite(r.evals["test_loss"]).all(axis=0).sum()
        assert loss.drawn_points == 2 * 5 + 5 + evals  # two seeds: mean +- sd (faint) and the mean
        assert "(2 seeds)" in str(app.query_one("#train-head", Static).content)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert len(app.pins) == 1 and app.pins[0].is_training
