"""The Training tab (tui/widgets/training.py, tui/training.py) against a fake training engine with
TrainResult's shapes (tests/tui/fake_train.py): the numbers it reads, the prompt, pins, keys, cancel."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from initscope.engine.errors import Cancelled
from initscope.tui import app as app_module
from initscope.tui.app import InitScopeApp
from initscope.tui.screens.train import TrainPrompt
from initscope.tui.widgets.training import StepHeatmap, StepPlot, TrainingView, headline, layer_stat, versus
from textual.widgets import Input, Static, TabbedContent

from tests.tui.conftest import settle
from tests.tui.fake_train import FakeTrainEngine, fake_parse_train, fake_train


def _result(act: str, trials: int = 3, seed: int = 0, arch: str = "16-16x3"):
    return fake_train(fake_parse_train(arch=arch, act=act, trials=str(trials), seed=str(seed), steps="20",
                                       every="1", data="teacher"))


def test_headline_and_versus_are_mean_and_population_sd_over_trials():
    r = _result("relu")
    acc = r.evals["test_acc"][:, -1]
    m, s = headline(r)
    # mean and population sd (ddof 0) of the last eval point, as engine/train.py headline
    assert m == pytest.approx(acc.mean(), abs=1e-12) and s == pytest.approx(acc.std(), abs=1e-12)
    r.evals["test_acc"][1, -1] = np.nan  # a diverged trial is left out
    m2, s2 = headline(r)
    assert m2 == pytest.approx(acc[[0, 2]].mean(), abs=1e-12)
    a, b = _result("tanh"), _result("relu")
    d, spread, exceeds = versus(a, b)
    # the fake's accuracies: 0.80 and 0.60 plus 0.01 N(0,1) per seed; the difference 0.2 is far above
    # sd_a + sd_b (each at most ~0.03 for three draws of sd 0.01)
    assert d == pytest.approx(headline(a)[0] - headline(b)[0]) and 0.15 < d < 0.25 and spread < 0.1 and exceeds
    same = versus(a, _result("tanh"))  # the same seeds: difference 0, within any spread
    assert same[0] == 0.0 and not same[2]


def test_layer_stat_reads_stats_and_extra_for_one_layer():
    r = _result("tanh", trials=2)
    std = layer_stat(r, "post", 2, "std")
    assert std.shape == (2, len(r.steps))
    np.testing.assert_allclose(std, r.stats["post"][:, :, 2, 1])  # STAT_NAMES[1] == "std"
    np.testing.assert_allclose(layer_stat(r, "post", 0, "saturated"), 0.1)  # extra column 2
    np.testing.assert_allclose(layer_stat(r, "pre", 0, "near_zero"), 0.25)  # extra column 0
    assert layer_stat(r, "pre", 0, "saturated") is None  # NaN everywhere: not a bounded activation's post
    assert layer_stat(r, "grad", 0, "near_zero") is None  # no extra of a gradient
    assert layer_stat(r, "normed", 0, "std") is None  # no norm in this run


async def _train(pilot, app, steps: str = "20", every: str = "1", data: str = "teacher") -> None:
    await pilot.press("ctrl+g")
    await pilot.pause()
    assert isinstance(app.screen, TrainPrompt)
    for name, value in (("steps", steps), ("every", every), ("data", data)):
        app.screen.query_one(f"#train-{name}", Input).value = value
    app.screen.query_one("#train-steps", Input).focus()
    await pilot.press("enter")
    await settle(pilot)


async def test_train_from_the_form_draws_pins_and_overlays():
    engine = FakeTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        form_text = app.form_spec().to_text()
        await _train(pilot, app)
        assert app.query_one("#tabs", TabbedContent).active == "training"
        spec = engine.trained[-1]
        # the form's stack with the prompt's steps and data
        assert spec.body.to_text()["arch"] == form_text["arch"] and spec.steps == 20 and spec.data.name == "teacher"
        r = app.training.current
        assert r is not None and r.spec is spec
        view = app.query_one("#training-view", TrainingView)
        loss = app.query_one("#train-loss", StepPlot)
        # one trial: the minibatch loss at every recorded step (20) and the held-out loss at the 5 eval points
        assert loss.drawn_points == len(r.steps) + len(r.eval_steps) == 25
        ratio = app.query_one("#train-ratio", StepPlot)
        assert ratio.refs == [(-3.0, (255, 85, 85))] and len(ratio.lines) == spec.body.depth
        heat = app.query_one("#train-heat", StepHeatmap)
        assert heat.result is not None and heat.rendering.columns[-1][1] == len(r.steps)
        head = str(app.query_one("#train-head", Static).content)
        assert f"test acc {headline(r)[0]:.3g}"[:12] in head and "layer 1" in head
        # layer and statistic keys
        await pilot.press("right_square_bracket", "right_square_bracket", "s")
        await pilot.pause()
        assert view.layer_index == 2 and view.statistic == "mean"
        assert "mean of post, layer 3" in app.query_one("#train-stat", StepPlot).title
        await pilot.press(*["right_square_bracket"] * 20)
        await pilot.pause()
        assert view.layer_index == spec.body.depth - 1  # clamped at the last layer
        # pin it, train another one: both overlaid, and the headline compares them
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert len(app.pins) == 1 and app.pins[0].result is r and app.pins[0].is_training and not app.pins.runs()
        await _train(pilot, app, steps="40", every="2")
        assert app.training.current is not r
        # current: steps 0, 2, ..., 38 and the last (39): 21 recorded + 5 evals; the pin: 20 + 5
        assert loss.drawn_points == 26 + 25
        head = str(app.query_one("#train-head", Static).content)
        assert "1 " in head and "spread" in head
        # 1 hides the pinned training run in the Training tab
        await pilot.press("1")
        await pilot.pause()
        assert not app.pins[0].visible and loss.drawn_points == 26
        # recall it: it becomes the current run again, its stack in the form, its texts in the prompt
        app.action_recall_pin(0)
        await pilot.pause()
        assert app.training.current is r and app.training.prompt["steps"] == "20"


async def test_a_bad_training_value_is_a_sentence_in_the_prompt():
    engine = FakeTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("g")  # outside a field: the tabs have focus at start
        await pilot.pause()
        assert isinstance(app.screen, TrainPrompt)
        app.screen.query_one("#train-steps", Input).value = "ten"
        app.screen.query_one("#train-steps", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TrainPrompt) and not engine.trained
        error = str(app.screen.query_one("#train-error", Static).content)
        assert "steps" in error and "ten" in error and "whole number" in error
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TrainPrompt) and app.training.current is None


async def test_escape_cancels_a_training_run():
    engine = FakeTrainEngine(train_delay=0.01)
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()
        app.screen.query_one("#train-steps", Input).value = "100000"
        app.screen.query_one("#train-data", Input).value = "teacher"
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.running and app.training.running
        done, total = app.progress
        assert total == 100000 and 0 < done < total  # progress in optimizer steps
        await pilot.press("escape")
        await settle(pilot)
        assert not app.running and not app.training.running and app.training.current is None


async def test_a_training_preset_trains_and_pins_its_variants(monkeypatch):
    """F3 on a preset whose specs are training specs trains each variant and pins it under its label."""
    from initscope.engine import presets

    class TrainingPreset:
        name, key, title, look_for, tensor, log_y = "fake_training", "z", "Fake training", "tanh ahead", None, False

        def specs(self, overrides=None):
            return [(act, fake_parse_train(arch="16-16x3", act=act, steps="10", every="1", data="teacher"))
                    for act in ("relu", "tanh")]

    monkeypatch.setitem(presets.PRESETS, "fake_training", TrainingPreset())
    engine = FakeTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.apply_preset("fake_training")
        await settle(pilot)
        assert [p.name for p in app.pins] == ["relu", "tanh"] and all(p.is_training for p in app.pins)
        assert app.training.current is app.pins[0].result  # the main variant is current
        d, spread, exceeds = versus(app.pins[1].result, app.pins[0].result)
        assert d > 0 and exceeds and not math.isnan(spread)
        head = str(app.query_one("#train-head", Static).content)
        assert "> spread" in head


async def test_a_session_keeps_the_pinned_training_runs(tmp_path):
    """ctrl+s w writes the pinned training runs' text forms; opening the file trains and pins them again."""
    from initscope.tui.export import read_session

    engine = FakeTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await _train(pilot, app, steps="12", every="3")
        await pilot.press("ctrl+n")
        await pilot.pause()
        pinned = app.pins[0]
        path = app.save_session_file(tmp_path / "s.json")
        session = read_session(path)
        assert [e.name for e in session.training] == [pinned.name]
        assert session.training[0].texts == pinned.result.spec.to_text()
        entries = app.session_training_entries(session.training)
        assert [(spec, name) for spec, name, _main in entries] == [(pinned.result.spec, pinned.name)]
        # opening it: the run pins (none here) and then the training run, pinned again under its name
        app.pins.clear()
        app.run_batch(entries)
        await settle(pilot)
        assert [p.name for p in app.pins] == [pinned.name]
        assert app.pins[0].result.spec == pinned.result.spec
        bad = [type(session.training[0])("x", {**session.training[0].texts, "steps": "-1"})]
        assert app.session_training_entries(bad) is None  # one sentence (a toast), nothing queued


async def test_the_status_line_describes_the_training_run_on_the_training_tab_and_the_run_elsewhere():
    engine = FakeTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        run_line = str(app.query_one("#status-text", Static).content)
        assert "layers" in run_line
        await _train(pilot, app)
        r = app.training.current
        mean, _ = headline(r)
        status = str(app.query_one("#status-text", Static).content)
        assert f"{r.spec.steps} steps · 1 seed · " in status and f"test acc {mean:.3f}" in status
        app.action_show_tab("curves")
        await pilot.pause()
        status = str(app.query_one("#status-text", Static).content)
        assert "layers" in status and "steps" not in status  # the run's line again, not a stale one


class GatedTrainEngine(FakeTrainEngine):
    """train_run reports its first step, then waits for `gate` (or a cancel) before it finishes: a training
    run that goes on exactly as long as the test wants, whatever the machine's speed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def train_run(self, spec, *, progress=None, cancelled=None):
        self.trained.append(spec)
        if progress is not None:
            progress(1, spec.trials * spec.steps)
        while not self.gate.wait(0.01):
            if cancelled is not None and cancelled():
                raise Cancelled("The training run was cancelled.")
        return fake_train(spec, progress=progress, cancelled=cancelled)


async def wait_for(pilot, condition, tries: int = 500) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("the condition never held")


async def _start_gated_training(pilot, app) -> None:
    await pilot.press("ctrl+g")
    await pilot.pause()
    for name, value in (("steps", "20"), ("every", "1"), ("data", "teacher")):
        app.screen.query_one(f"#train-{name}", Input).value = value
    app.screen.query_one("#train-steps", Input).focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.training.running and app.progress[0] >= 1)


async def test_editing_the_form_while_training_leaves_the_training_run_going(monkeypatch):
    """A form edit re-runs the form's spec (the Curves tab's live run) beside the training run, which
    goes on with the form's stack as it was at g; the status line keeps its progress; escape cancels."""
    engine = GatedTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await _start_gated_training(pilot, app)
        trained = engine.trained[-1]
        assert trained.body.seed == 0
        box = app.query_one("#f-seed", Input)
        box.focus()
        box.value = ""
        await pilot.press("7")
        # the edit re-runs (the preview of the edited form), the training run is not cancelled
        await wait_for(pilot, lambda: app.current.spec.seed == 7)
        await pilot.pause()
        assert app.training.running and app.running
        status = str(app.query_one("#status-text", Static).content)
        assert status.startswith("training 1/20 steps") and "escape cancels" in status
        head = str(app.query_one("#train-head", Static).content)
        assert f"training {trained.label()}, 20 steps (as the form was at g" in head
        engine.gate.set()
        await settle(pilot)
        r = app.training.current
        assert r is not None and r.spec is trained and r.spec.body.seed == 0  # the snapshot, not the edit
        assert "as the form was" not in str(app.query_one("#train-head", Static).content)
        # escape in the field cancels the pending re-run and leaves the field, not the training run;
        # escape outside a field cancels it (and a re-run beside it)
        engine.gate.clear()
        app.action_show_tab("curves")
        await _start_gated_training(pilot, app)
        monkeypatch.setattr(app_module, "DEBOUNCE_S", 60.0)  # the edit's re-run is pending at the escape
        box.focus()
        await pilot.press("8")  # seed 78
        assert app._debounce is not None
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.focused is not box and app.training.running and app.running
        await pilot.press("escape")
        await settle(pilot)
        assert not app.running and not app.training.running
        assert app.training.current is r and len(engine.trained) == 2


async def test_a_pinned_training_run_is_a_pin_like_a_run_listed_renamed_recalled_removed(tmp_path):
    """One board: a pinned training run is numbered among the pinned runs, listed in the Runs tab (marked
    as trained, with its held-out accuracy), renamed with r (the Training tab's overlay follows), recalled
    with enter (form and train prompt), saved in a session and removed with d."""
    import json

    from initscope.engine.spec import parse_spec
    from initscope.tui.screens.rename import RenamePrompt
    from initscope.tui.widgets.runs_table import RunsTable

    engine = FakeTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+n")  # the run: pin 1
        await pilot.pause()
        await _train(pilot, app)
        r = app.training.current
        await pilot.press("ctrl+n")  # the Training tab: the training run, pin 2
        await pilot.pause()
        assert [p.is_training for p in app.pins] == [False, True] and app.pins[1].result is r
        await _train(pilot, app, steps="10")  # another current training run: the pinned one is overlaid as 2
        # listed in the Runs table after the pinned run, marked as trained, with its held-out accuracy
        await pilot.press("f8")
        await pilot.pause()
        table = app.query_one("#runs-table", RunsTable)
        assert table.row_pins == [None, 0, 1]
        row = [str(c) for c in table.get_row_at(2)]
        mean, _ = headline(r)
        assert row[1] == app.pins[1].name and row[2] == f"trained, acc {mean:.3f}"
        assert row[-1].startswith("train ") and "20 steps" in row[-1]
        # renamed with the Runs tab's r, like a run: the Training tab's overlay says the new name
        table.move_cursor(row=2)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RenamePrompt)
        app.screen.query_one(Input).value = "relu teacher"
        await pilot.press("enter")
        await pilot.pause()
        assert app.pins[1].name == "relu teacher" and str(table.get_row_at(2)[1]) == "relu teacher"
        assert "\n2 relu teacher: test acc" in "\n" + str(app.query_one("#train-head", Static).content)
        # saved in a session under its new name, in the file's "training" list (the format read so far)
        doc = json.loads(app.save_session_file(tmp_path / "s.json").read_text())
        assert [p["name"] for p in doc["pins"]] == [app.pins[0].name]
        assert [t["name"] for t in doc["training"]] == ["relu teacher"]
        assert doc["training"][0]["spec"] == r.spec.to_text()
        # recalled with enter: its stack into the form, its settings into the prompt, current again
        app.load_form(parse_spec(arch="16-16x2"))
        await settle(pilot)
        table.focus()
        table.move_cursor(row=2)
        await pilot.press("enter")
        await settle(pilot)
        assert app.form_spec().to_text()["arch"] == r.spec.body.to_text()["arch"]
        assert app.training.current is r and app.training.prompt["steps"] == "20"
        # removed with d
        table.move_cursor(row=2)
        await pilot.press("d")
        await pilot.pause()
        assert len(app.pins) == 1 and not app.pins[0].is_training and table.row_count == 2
        assert "relu teacher" not in str(app.query_one("#train-head", Static).content)


async def test_a_session_file_with_training_runs_opens_into_one_board(tmp_path):
    """A session file as the app has written it since training runs could be pinned ("pins" and
    "training" lists) opens into the one board: its runs, then its training runs, numbered in that order."""
    import json

    path = tmp_path / "old.json"
    path.write_text(json.dumps({
        "schema": "initscope.session/1",
        "current": None,
        "pins": [{"name": "he deep", "color": "#e69f00", "visible": True,
                  "spec": {"arch": "16-16x3", "act": "relu"}}],
        "training": [{"name": "tanh teacher", "color": "#56b4e9", "visible": True,
                      "spec": {"arch": "16-16x3", "act": "tanh", "steps": "10", "every": "1", "data": "teacher",
                               "optimizer": "sgd(lr=0.05)"}}],
    }))
    engine = FakeTrainEngine()
    app = InitScopeApp(engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_session_file(path)
        await settle(pilot)
        assert [(p.name, p.is_training) for p in app.pins] == [("he deep", False), ("tanh teacher", True)]
        assert app.pins[1].result.spec.body.act.name == "tanh" and app.pins[1].result.spec.steps == 10
        app.action_show_tab("runs")
        await pilot.pause()
        table = app.query_one("#runs-table")
        assert [str(table.get_row_at(i)[1]) for i in range(1, 3)] == ["he deep", "tanh teacher"]
        assert str(table.get_row_at(2)[2]).startswith("trained, acc ")
