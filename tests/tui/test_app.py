"""Pilot tests of the app: each action of issue 4, asserting on state and on what is drawn."""

from __future__ import annotations

import json

import initscope.tui.app as app_module
import pytest
from initscope.engine.errors import RunError
from initscope.engine.spec import parse_spec
from initscope.tui.app import InitScopeApp
from initscope.tui.screens.choice import ChoiceScreen
from initscope.tui.screens.help import HelpScreen
from initscope.tui.widgets.explain_panel import ExplainPanel
from initscope.tui.widgets.form import SpecForm
from initscope.tui.widgets.layer_plot import LayerPlot
from initscope.tui.widgets.legend import Legend
from initscope.tui.widgets.runs_table import RunsTable
from textual.widgets import Input, Select, Static, TabbedContent

from tests.tui.conftest import settle
from tests.tui.fake_engine import FakeEngine


def drawn(app, plot_id: str) -> str:
    plot = app.query_one(plot_id, LayerPlot)
    return plot.plt.uncolorize(plot.plt.build())


def status(app) -> str:
    return str(app.query_one("#status-text", Static).content)


async def type_into(pilot, selector: str, text: str) -> None:
    box = pilot.app.query_one(selector, Input)
    box.focus()
    box.value = ""
    await pilot.pause()
    await pilot.press(*list(text))


async def test_launch_runs_the_default_and_draws_it(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.current is not None and app.current.spec == parse_spec()
        assert len(fake.calls) == 1
        assert "cpu" in app.sub_title
        std = app.query_one("#plot-std", LayerPlot)
        assert std.drawn_points >= 20  # measured + theory
        text = drawn(app, "#plot-std")
        assert "std of post" in text
        assert "current" in app.query_one(Legend).plain
        assert "20 layers" in status(app)


async def test_spec_passed_in_presets_the_form(fake):
    spec = parse_spec(init="xavier_normal", act="tanh", arch="784-256x30")
    app = InitScopeApp(spec, engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert fake.calls[0] == spec
        form = app.query_one(SpecForm)
        assert form.query_one("#init-name", Select).value == "xavier_normal"
        assert form.query_one("#act-name", Select).value == "tanh"
        assert parse_spec(**form.texts()) == spec


async def test_params_given_on_the_command_line_survive_mount(fake):
    spec = parse_spec(init="kaiming_normal(mode=fan_out)")
    app = InitScopeApp(spec, engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.query_one("#init-params", Input).value == "mode=fan_out"
        assert fake.calls == [spec]


async def test_invalid_value_is_marked_where_typed_and_does_not_run(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#f-arch", "512-abc")
        await pilot.pause(0.4)
        await settle(pilot)
        box = app.query_one("#f-arch", Input)
        assert box.has_class("-invalid")
        err = str(app.query_one("#err-arch", Static).content)
        assert "arch" in err and "not valid" in err
        assert app.query_one("#err-arch").has_class("-shown")
        assert len(fake.calls) == 1  # no run for an invalid spec
        assert "invalid arch" in status(app)
        # fix it: the mark goes away and the change re-runs on its own
        await type_into(pilot, "#f-arch", "256-256x8")
        await pilot.pause(0.4)
        await settle(pilot)
        assert not box.has_class("-invalid")
        assert app.current.spec.depth == 8
        assert fake.calls[-1].arch == (256,) * 9


async def test_invalid_parameter_names_the_reason(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#init-params", "gain=-1")
        await pilot.pause()
        assert app.query_one("#init-params", Input).has_class("-invalid")
        assert "greater than 0" in str(app.query_one("#err-init", Static).content)
        await type_into(pilot, "#init-params", "mode=fan_out")
        await pilot.pause(0.4)
        await settle(pilot)
        assert app.current.spec.init.get("mode") == "fan_out"


async def test_debounce_runs_once_for_a_burst_of_keys(fake, monkeypatch):
    # a window far longer than the burst: a loaded CI machine can stall the pilot between two keys for
    # longer than the real 0.3 s, which ran a stray seed-12 run once. The assertion is unchanged.
    monkeypatch.setattr(app_module, "DEBOUNCE_S", 2.0)
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#f-seed", "12345")
        await settle(pilot)  # waits out the debounce, then the run
        assert [s.seed for s in fake.calls] == [0, 12345]


async def test_select_change_clears_params_and_reruns(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.query_one("#init-name", Select).value = "xavier_normal"
        await pilot.pause(0.4)
        await settle(pilot)
        assert app.current.spec.init.name == "xavier_normal"
        assert app.query_one("#init-params", Input).placeholder == "gain=1"


async def test_select_by_keyboard(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.query_one("#act-name", Select).focus()
        await pilot.press("enter", "down", "enter")  # relu -> leaky_relu
        await pilot.pause(0.4)
        await settle(pilot)
        assert app.current.spec.act.name == "leaky_relu"


async def test_grad_off_then_grad_tensor_says_not_measured(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.query_one("#grad").focus()
        await pilot.press("space")
        await pilot.pause(0.4)
        await settle(pilot)
        assert app.current.spec.grad is False
        app.query_one("#tabs Tabs").focus()
        await pilot.press("t")  # post -> grad
        assert app.tensor == "grad"
        assert "not measured" in drawn(app, "#plot-std")


async def test_tensor_cycle_and_log_toggle(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        seen = []
        for _ in range(4):
            await pilot.press("ctrl+t")
            seen.append(app.tensor)
        assert seen == ["grad", "grad_pre", "pre", "post"]
        await pilot.press("ctrl+l")
        assert app.log_y
        text = drawn(app, "#plot-std")
        assert "1e" in text and "(log)" in text
        # re-render several times (plotext's own log scale crashes here) and on a resize
        for _ in range(3):
            drawn(app, "#plot-std")
            drawn(app, "#plot-mean")
        await pilot.resize_terminal(90, 28)
        await pilot.pause()
        await pilot.press("l")
        assert not app.log_y
        assert "1e" not in drawn(app, "#plot-std").split("\n")[2]


async def test_nonfinite_layer_is_marked_and_log_copes():
    fake = FakeEngine()
    app = InitScopeApp(parse_spec(init="normal(std=5)", arch="64-64x30"), engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        bad = app.current.first_nonfinite_layer()
        assert bad is not None
        text = drawn(app, "#plot-std")
        assert f"nan/inf L{bad}" in text
        await pilot.press("ctrl+l")
        assert f"nan/inf L{bad}" in drawn(app, "#plot-std")
        table = app.query_one(RunsTable)
        assert "nan/inf@L" in " ".join(str(c) for c in table.get_row_at(0)) or "std>1e3@L" in " ".join(
            str(c) for c in table.get_row_at(0))


async def test_pin_toggle_rename_remove_recall(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+n")
        assert len(app.pins) == 1 and app.pins[0].visible
        first = app.current
        # a second configuration, pinned too
        await type_into(pilot, "#f-arch", "512-512x10")
        await pilot.pause(0.4)
        await settle(pilot)
        await pilot.press("ctrl+n")
        assert len(app.pins) == 2
        assert app.pins[0].colour != app.pins[1].colour
        assert "1 " in app.query_one(Legend).plain and "2 " in app.query_one(Legend).plain
        # toggle pin 1 by its digit (focus away from inputs)
        await pilot.press("escape")
        points = app.query_one("#plot-std", LayerPlot).drawn_points
        await pilot.press("1")
        assert not app.pins[0].visible
        assert app.query_one("#plot-std", LayerPlot).drawn_points < points
        assert "(hidden)" in app.query_one(Legend).plain
        await pilot.press("1")
        assert app.pins[0].visible
        # the runs table: rename, recall, remove
        await pilot.press("f8")
        table = app.query_one(RunsTable)
        assert app.query_one(TabbedContent).active == "runs"
        assert table.has_focus and table.row_count == 3  # current + 2 pins
        await pilot.press("down")  # row 1 = pin 1
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("ctrl+u", *list("he deep"), "enter")
        await pilot.pause()
        assert app.pins[0].name == "he deep"
        await pilot.press("space")
        assert not app.pins[0].visible
        await pilot.press("enter")  # recall pin 1 into the form
        await pilot.pause()
        assert app.current is first
        assert app.query_one("#f-arch", Input).value == first.spec.to_text()["arch"]
        await pilot.press("d")
        assert len(app.pins) == 1
        assert table.row_count == 2


async def test_runs_table_headline_numbers(fake):
    app = InitScopeApp(parse_spec(init="xavier_normal", arch="512-512x30"), engine=fake)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f8")
        row = [str(c) for c in app.query_one(RunsTable).get_row_at(0)]
        assert row[1] == "current"
        assert "xavier_normal relu" in row[7]
        growth = float(row[5])
        assert 0.6 < growth < 0.8  # relu with xavier halves the variance: std x 1/sqrt(2) per layer
        assert row[2].startswith("std<1e-3@L")
        assert row[6] == "0.05s"


async def test_failure_is_a_notification_and_the_app_stays_usable():
    fake = FakeEngine(fail=RunError("cuda was asked for but this machine has no CUDA device [cuda]"))
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        assert app.current is None
        notes = list(app._notifications)
        assert notes and notes[-1].severity == "error" and notes[-1].markup is False
        assert "no CUDA device [cuda]" in notes[-1].message
        assert "last run failed" in status(app)
        fake.fail = None
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.current is not None


async def test_cancel_with_escape():
    fake = FakeEngine(delay=0.05)
    app = InitScopeApp(parse_spec(arch="64-64x40"), engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if app.running and app.progress[0] >= 2:
                break
        assert app.running
        assert "running" in status(app)
        await pilot.press("escape")
        await settle(pilot)
        assert app.current is None
        assert "cancelled" in status(app)


async def test_a_new_run_cancels_the_stale_one():
    fake = FakeEngine(delay=0.03)
    app = InitScopeApp(parse_spec(arch="64-64x40"), engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        app.start_run(parse_spec(arch="64-64x4"))
        await settle(pilot)
        assert app.current.spec.depth == 4


async def test_presets_menu_pins_the_variants(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("4")  # he30: xavier vs he
        await settle(pilot)
        assert [p.name for p in app.pins] == ["xavier", "he"]
        assert app.current.spec.init.name == "xavier_normal"
        assert app.query_one("#init-name", Select).value == "xavier_normal"


async def test_start_with_a_preset(fake):
    app = InitScopeApp(engine=fake, preset="lesson8")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert [p.name for p in app.pins] == ["he relu", "he relu-0.5"]
        assert app.current.spec.arch == (784, 50, 10)


async def test_start_with_a_preset_and_flags_on_top(fake):
    # `initscope --preset lesson8 --batch 64 --seed 3`: the flags apply to every variant
    app = InitScopeApp(engine=fake, preset="lesson8", preset_overrides={"batch": "64", "seed": "3"})
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert [(p.result.spec.batch, p.result.spec.seed) for p in app.pins] == [(64, 3), (64, 3)]
        assert app.current.spec.act.name == "relu" and app.current.spec.batch == 64


async def test_a_preset_run_keeps_what_to_look_for_in_explain(fake):
    app = InitScopeApp(engine=fake, preset="he30")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        panel = app.query_one("#explain-view", ExplainPanel)
        first = panel.sections[0]
        assert first.key == "preset" and first.title == "Preset he30" and "\n\nLook for: " in first.body
        assert panel.query_one("#explain-preset-title").display
        assert not panel.query_one("#explain-init-title").has_class("-first")
        app.query_one("#f-seed", Input).value = "7"  # an edit: the current run is no longer the preset's
        await settle(pilot)
        assert app.current.spec.seed == 7
        assert [s.key for s in panel.sections][0] == "init"
        assert not panel.query_one("#explain-preset-title").display
        assert panel.query_one("#explain-init-title").has_class("-first")


async def test_help_screen_and_palette(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text", Static).content)
        for key in ("ctrl+q", "ctrl+n", "F3", "ctrl+s", "escape"):
            assert key in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*list("Log y"))
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.log_y


def test_every_action_is_in_the_palette_and_help():
    app = InitScopeApp(engine=FakeEngine())
    titles = {t for t, _h, _a in app.palette_entries()}
    for needed in ("Run now", "Cancel run", "Presets", "Next tensor", "Log y", "Pin current run", "Help",
                   "Export results as JSON", "Export results as CSV", "Save SVG screenshot", "Save session",
                   "Open session", "Quit"):
        assert needed in titles
    actions = {b.action.split("(")[0] for b in app.BINDINGS}
    palette_actions = {a.split("(")[0] for _t, _h, a in app.palette_entries()}
    assert actions - {"toggle_pin", "focus_next", "focus_previous"} <= palette_actions | {"help"}


async def test_export_json_csv_svg_and_session_roundtrip(fake, tmp_path):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+n")
        for key, name in (("j", "out.json"), ("c", "out.csv"), ("s", "shot.svg"), ("w", "session.json")):
            await pilot.press("ctrl+s")
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
            box = app.screen.query_one(Input)
            box.value = str(tmp_path / name)
            await pilot.press("enter")
            await pilot.pause()
        doc = json.loads((tmp_path / "out.json").read_text())
        assert doc["runs"][0]["result"]["schema"] == "initscope.run/2"
        assert "layer" in (tmp_path / "out.csv").read_text().splitlines()[0]
        assert (tmp_path / "shot.svg").read_text().startswith("<svg")
        # load the session back: its pin is re-run and pinned again
        app.pins.clear()
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one(Input).value = str(tmp_path / "session.json")
        await pilot.press("enter")
        await settle(pilot)
        assert len(app.pins) == 1


async def test_bad_session_file_is_a_notification(fake, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one(Input).value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        notes = list(app._notifications)
        assert notes[-1].severity == "error" and notes[-1].markup is False
        assert app.current is not None  # still usable


@pytest.mark.parametrize("size", [(80, 24), (60, 20), (160, 50)])
async def test_layout_fits(fake, size):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        std = app.query_one("#plot-std", LayerPlot)
        assert std.size.height >= 5 and std.size.width >= 20 or size == (60, 20)
        await pilot.press("f2")  # hide the form: the plots get the width
        await pilot.pause()
        assert not app.query_one(SpecForm).display
        assert app.query_one("#plot-std", LayerPlot).size.width >= size[0] - 2
        await pilot.press("ctrl+q")


async def test_progress_is_shown_in_the_status_line(fake):
    # 20 layers, 200 ms each: progress arrives mid-run, and a loaded machine (the full suite beside other
    # work) that polls late still finds the run going (50 ms layers ran out before the polling saw them)
    app = InitScopeApp(engine=FakeEngine(delay=0.2))
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(1000):
            await pilot.pause(0.01)
            if app.running and app.progress[0] >= 2:
                break
        done, total = app.progress
        assert app.running and done >= 2
        assert f"running {done}/{total}" in status(app)  # the line follows every progress message
        await pilot.press("escape")
        await settle(pilot)


# -- issue 8: the screen never shows a run that did not happen ---------------------------------------------
async def burst_into(pilot, selector: str, keys: str) -> None:
    """Keys that reach the field faster than the app handles them, as a terminal delivers fast typing: every
    Key is queued on the field before the first Changed it causes is handled."""
    from textual import events

    box = pilot.app.query_one(selector)
    for ch in keys:
        box.post_message(events.Key(ch, ch))
    await pilot.pause()


async def test_fast_typing_into_a_cleared_field_runs_the_final_value(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        box = app.query_one("#f-arch", Input)
        box.focus()
        await pilot.pause()
        box.value = ""  # cleared: invalid for a moment
        await burst_into(pilot, "#f-arch", "256-256x8")  # valid prefixes (256-2) and an invalid one (256-256x)
        await settle(pilot)
        assert box.value == "256-256x8"
        assert not box.has_class("-invalid") and "arch" not in app.query_one(SpecForm).errors
        assert app.current.spec.arch == (256,) * 9  # the curves are the field's run
        assert "invalid" not in status(app)


async def test_clearing_then_pasting_the_same_value_leaves_no_invalid_status(fake):
    from textual import events

    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        box = app.query_one("#f-arch", Input)
        box.focus()
        await pilot.pause()
        before = box.value
        box.value = ""
        box.post_message(events.Paste(before))  # pasted before the clear's Changed was handled
        await settle(pilot)
        assert box.value == before
        assert not app.query_one(SpecForm).errors
        assert "invalid" not in status(app)
        assert app.current.spec.to_text()["arch"] == before
        assert len(fake.calls) == 1  # the screen already showed this configuration's run


async def test_editing_back_to_the_shown_configuration_cancels_the_pending_run(fake, monkeypatch):
    monkeypatch.setattr(app_module, "DEBOUNCE_S", 2.0)
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        box = app.query_one("#f-seed", Input)
        box.value = "5"
        await pilot.pause()
        assert app._debounce is not None  # seed 5 is pending
        box.value = "0"  # back to the run on screen before seed 5 ran
        await settle(pilot)
        assert [s.seed for s in fake.calls] == [0]
        assert app.current.spec.seed == 0 and "edited" not in status(app)


async def test_a_preset_runs_when_every_pin_slot_is_taken(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        for i in range(app_module.MAX_PINS):
            app.pins.add(app.current, f"mine {i + 1}")
        await pilot.press("f3")
        await pilot.press("4")  # he30: xavier (the main run) vs he
        await settle(pilot)
        main = parse_spec(arch="512-512x30", init="xavier_normal", act="relu")
        assert app.current.spec == main  # the curves, Explain and Runs show the preset's run
        assert fake.calls[-1] == main
        assert [p.name for p in app.pins] == [f"mine {i + 1}" for i in range(app_module.MAX_PINS)]  # none evicted
        panel = app.query_one("#explain-view", ExplainPanel)
        assert panel.sections[0].key == "preset" and "he30" in panel.sections[0].title
        row = [str(c) for c in app.query_one(RunsTable).get_row_at(0)]
        assert row[1] == "current" and "xavier_normal relu" in row[-1]  # the spec is the last column
        warning = [n.message for n in app._notifications if n.severity == "warning"]
        assert warning and "not pinned" in warning[-1] and "he" in warning[-1]


async def test_a_preset_with_one_free_slot_pins_its_main_run(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for i in range(app_module.MAX_PINS - 1):
            app.pins.add(app.current, f"mine {i + 1}")
        app.apply_preset("he30")
        await settle(pilot)
        assert app.current.spec.init.name == "xavier_normal"
        assert app.pins[-1].name == "xavier" and app.pins[-1].result is app.current
        assert len(app.pins) == app_module.MAX_PINS


async def test_typing_a_name_into_a_list_field_chooses_it_and_fires_no_shortcut(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.query_one("#init-name", Select).focus()
        await pilot.pause()
        await pilot.press(*"xavier_normal")
        await settle(pilot)
        assert not app.log_y  # the l of xavier_normal is a letter of the name, not the log-y key
        assert app.query_one("#init-name", Select).value == "xavier_normal"
        assert app.current.spec.init.name == "xavier_normal"
        app.query_one("#act-name", Select).focus()
        await pilot.pause()
        await pilot.press(*"tanh")  # t is next-tensor elsewhere
        await settle(pilot)
        assert app.tensor == "post"
        assert app.current.spec.act.name == "tanh"
        await pilot.press("escape")  # off the field, single keys act again
        await pilot.press("l")
        assert app.log_y


def test_type_ahead_prefers_a_name_that_starts_with_the_text():
    from initscope.tui.widgets.form import best_match

    acts = ["relu", "leaky_relu", "general_relu", "tanh", "sigmoid", "gelu", "silu", "selu", "elu"]
    assert best_match(acts, "r") == "relu"
    assert best_match(acts, "el") == "elu"  # starts with el; gelu and selu only contain it
    assert best_match(acts, "si") == "sigmoid" and best_match(acts, "sil") == "silu"
    assert best_match(acts, "_re") == "leaky_relu"  # no name starts with it: the first that contains it
    assert best_match(acts, "TANH") == "tanh"
    assert best_match(acts, "xyz") is None


async def test_field_help_follows_a_preset(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.query_one("#act-name", Select).focus()
        await pilot.pause()
        help_pane = app.query_one("#field-help", Static)
        assert str(help_pane.content).startswith("relu:")
        app.apply_preset("edge_of_chaos")  # tanh
        await settle(pilot)
        assert app.query_one("#act-name", Select).value == "tanh"
        assert str(help_pane.content).startswith("tanh:")


async def test_run_notes_reach_the_status_line_a_toast_and_explain(fake):
    import dataclasses

    note = "The data has 600 rows, fewer than the batch of 1024; all 600 were used."
    measure = fake.run
    fake.run = lambda spec, **kw: dataclasses.replace(measure(spec, **kw), notes=(note,))
    app = InitScopeApp(parse_spec(batch="1024"), engine=fake)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        assert app.current.notes == (note,)
        assert note in status(app)
        assert [n.message for n in app._notifications].count(note) == 1
        app.query_one("#f-seed", Input).value = "2"  # the same note again: in the status line, not a new toast
        await settle(pilot)
        assert app.current.spec.seed == 2 and note in status(app)
        assert [n.message for n in app._notifications].count(note) == 1
        panel = app.query_one("#explain-view", ExplainPanel)
        assert [s for s in panel.sections if s.key == "notes"][0].body == note
        assert panel.query_one("#explain-notes-body").display
        assert panel.query_one("#explain-notes-title").has_class("-first")
        assert not panel.query_one("#explain-init-title").has_class("-first")
        fake.run = measure  # a run without notes: they leave the status line and Explain
        app.query_one("#f-seed", Input).value = "3"
        await settle(pilot)
        assert app.current.spec.seed == 3 and not app.current.notes
        assert note not in status(app)
        assert "notes" not in [s.key for s in panel.sections]
        assert not panel.query_one("#explain-notes-body").display
        assert panel.query_one("#explain-init-title").has_class("-first")


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_help_scrolls_to_its_last_line_without_tab(fake, size):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        box = app.screen.query_one("#help-box")
        assert box.max_scroll_y > 0  # at this size the help is taller than its box
        for _ in range(60):  # the keys a reader tries first; one of them must reach the end
            await pilot.press("pagedown")
            await pilot.press("down")
        await pilot.pause(0.5)
        assert box.scroll_y == box.max_scroll_y
        last = str(app.screen.query_one("#help-text", Static).content).splitlines()[-1]
        assert "closes this screen" in last
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_a_refused_run_shows_the_engines_sentence_without_its_class():
    refusal = RunError("This run needs about 80.0 GiB but cpu has 4.0 GiB available; reduce the batch or the widths.")
    app = InitScopeApp(engine=FakeEngine(fail=refusal))
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        note = list(app._notifications)[-1]
        assert note.message == str(refusal)  # not "RunError: This run needs ..."
        assert "RunError" not in status(app)


async def test_a_suggested_fix_names_the_form_field_not_a_flag():
    from initscope.engine.errors import SpecError

    mismatch = SpecError("data", "file(path=x.npy)", "the architecture starts with 512 but the data has 64 features",
                         fix=("arch", "64-512-10"))
    app = InitScopeApp(engine=FakeEngine(fail=mismatch))
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        text = list(app._notifications)[-1].message
        assert text.endswith("64 features; set the arch field to 64-512-10.")
        assert "--arch" not in text and "--arch" not in status(app)


async def test_keys_typed_after_tab_land_in_the_next_field_even_when_the_app_lags(fake):
    from textual import events

    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.query_one("#tabs Tabs").focus()
        await pilot.pause()
        # a busy app reads these from the terminal all at once: six tabs from the tab bar to arch (the form,
        # init, its parameters, act, its parameters, arch), clear the field, a new value
        for key, char in [*[("tab", "\t")] * 6, ("ctrl+u", None), *[(c, c) for c in "256-256x8"]]:
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert app.focused is app.query_one("#f-arch", Input)
        for field in ("init", "act"):  # nothing typed in a field on the way
            assert app.query_one(f"#{field}-params", Input).value == ""
        assert app.query_one("#f-arch", Input).value == "256-256x8"
        assert app.current.spec.arch == (256,) * 9


async def test_a_burst_with_backspace_types_what_was_meant(fake):
    from textual import events

    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        box = app.query_one("#f-seed", Input)
        box.focus()
        await pilot.pause()
        for key, char in [("ctrl+u", None), ("4", "4"), ("9", "9"), ("backspace", "\x7f"), ("2", "2")]:
            box.post_message(events.Key(key, char))
        await settle(pilot)
        assert box.value == "42"
        assert app.current.spec.seed == 42


async def test_a_key_typed_right_after_escape_acts_outside_the_field(fake):
    from textual import events

    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        box = app.query_one("#f-seed", Input)
        box.focus()
        await pilot.pause()
        for key, char in [("escape", "\x1b"), ("l", "l")]:  # read at once by a busy app
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert box.value == "0"  # the l did not go into the field being left
        assert app.log_y


async def test_escape_closes_an_open_list_before_it_leaves_the_form(fake):
    app = InitScopeApp(engine=fake)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        select = app.query_one("#act-name", Select)
        select.focus()
        await pilot.pause()
        await pilot.press("enter")
        assert select.expanded
        await pilot.press("escape")
        assert not select.expanded and app.focused is select
        await pilot.press("escape")
        assert app.focused is app.query_one("#tabs Tabs")


class PreviewingEngine(FakeEngine):
    """The fake engine plus the real engine's preview (numpy only), as the app's first run uses it."""

    def preview(self, spec):
        from initscope import engine

        return engine.preview(spec)


async def wait_for(pilot, condition, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.02)


async def test_the_first_run_draws_its_prediction_while_it_measures_and_drops_it_when_cancelled():
    import math

    import numpy as np

    app = InitScopeApp(engine=PreviewingEngine(delay=0.5))  # 20 blocks: 10 s of measuring
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.preview is not None)
        await pilot.pause()
        std_plot = app.query_one("#plot-std", LayerPlot)
        kinds = sorted(s.kind for s in std_plot.series)
        assert kinds == ["band", "band", "theory"], kinds  # the prediction and its band, nothing measured
        theory = next(s for s in std_plot.series if s.kind == "theory")
        # He init, relu: the post std is sqrt(1 - 1/pi) = 0.8256 at every block
        assert np.allclose(theory.y, math.sqrt(1 - 1 / math.pi), rtol=1e-9)
        assert "measuring" in drawn(app, "#plot-std") and app.current is None
        assert "current (measuring)" in app.query_one(Legend).plain
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.running)
        await pilot.pause()
        assert app.preview is None and not std_plot.series  # no prediction for a run that did not happen
        assert "no run yet" in drawn(app, "#plot-std")


async def test_a_finished_first_run_replaces_its_preview_with_the_measurement():
    app = InitScopeApp(engine=PreviewingEngine())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.preview is None and app.current is not None
        kinds = sorted(s.kind for s in app.query_one("#plot-std", LayerPlot).series)
        assert kinds == ["band", "band", "measured", "theory"], kinds
        assert "measuring" not in drawn(app, "#plot-std")
