"""Unit tests for the plot data handling, pins and the runs table's headline numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from initscope.engine.spec import parse_spec
from initscope.tui.pins import MAX_PINS, PinBoard
from initscope.tui.widgets.form import join_call, split_call
from initscope.tui.widgets.layer_plot import LayerPlot, Mark, Series, decade_ticks, downsample, nice_int_ticks, prepare
from initscope.tui.widgets.runs_table import fmt, headline_numbers

from tests.tui.fake_engine import FakeEngine


def test_prepare_drops_nonfinite_and_nonpositive_on_log():
    y = np.array([1.0, np.nan, np.inf, 0.0, -1.0, 100.0])
    x, v = prepare(y, log_y=False)
    assert x.tolist() == [1, 4, 5, 6] and v.tolist() == [1, 0, -1, 100]
    x, v = prepare(y, log_y=True)
    assert x.tolist() == [1, 6] and v.tolist() == [0, 2]
    x, v = prepare(y, log_y=True, abs_for_log=True)
    assert x.tolist() == [1, 5, 6]


def test_decade_ticks_and_int_ticks():
    ticks, labels, a, b = decade_ticks(-3.2, 0.4)
    assert labels[0] == "1e-4" and labels[-1] == "1e1" and a == -4 and b == 1
    ticks, labels, _, _ = decade_ticks(-40, 38)
    assert len(ticks) <= 8
    assert nice_int_ticks(1, 20)[:2] == [1, 5] or nice_int_ticks(1, 20)[0] == 1
    assert nice_int_ticks(1, 1000)[-1] <= 1000


def test_downsample_keeps_ends():
    x = np.arange(1, 1001, dtype=float)
    xs, ys = downsample(x, x, 50)
    assert xs.size <= 50 and xs[0] == 1 and xs[-1] == 1000


def _render(plot: LayerPlot, w=60, h=15) -> str:
    plot.plt.plotsize(w, h)
    plot.plt._set_size(w, h)
    return plot.plt.uncolorize(plot.plt.build())


def test_layer_plot_log_survives_rebuilds_zeros_and_inf():
    plot = LayerPlot("std")
    y = np.array([1.0, 0.1, 0.0, 1e-3, np.inf, np.nan, 1e-5])
    plot.set_data([Series("*", y, (255, 255, 255)), Series("theory", np.full(7, 0.5), (255, 255, 255), "theory")],
                  [Mark(5, "nan/inf L5", (255, 0, 0))])
    plot.log_y = True
    plot.replot()
    for _ in range(3):
        text = _render(plot)
    assert "1e0" in text and "1e-5" in text and "nan/inf L5" in text
    plot.log_y = False
    plot.replot()
    assert "1e-5" not in _render(plot)


def test_layer_plot_empty_and_constant():
    plot = LayerPlot("mean")
    plot.set_data([], message="no run yet")
    assert "no run yet" in _render(plot)
    plot.set_data([Series("*", np.zeros(5), (1, 2, 3))])
    _render(plot)
    plot.set_data([Series("*", np.full(3, np.nan), (1, 2, 3))])
    _render(plot)


def test_pinboard():
    board = PinBoard()
    r = FakeEngine().run(parse_spec(arch="8-8x2"))
    a = board.add(r, "he")
    b = board.add(r, "he")
    assert b.name == "he (2)" and a.colour != b.colour
    board.toggle(0)
    assert not board[0].visible and board.visible() == [b]
    board.rename(1, "other")
    assert board[1].name == "other"
    with pytest.raises(ValueError):
        board.rename(1, "  ")
    board.remove(0)
    assert len(board) == 1
    for _ in range(MAX_PINS - 1):
        board.add(r)
    with pytest.raises(ValueError):
        board.add(r)


def test_headline_numbers_he_xavier_and_explosion():
    fake = FakeEngine()
    he = headline_numbers(fake.run(parse_spec(arch="512-512x20")), "pre")
    assert he["growth"] == pytest.approx(1.0, abs=0.05) and he["event"] == ""
    xa = headline_numbers(fake.run(parse_spec(arch="512-512x30", init="xavier_normal")), "pre")
    assert xa["growth"] == pytest.approx(1 / math.sqrt(2), rel=0.05)
    assert xa["event"].startswith("std<1e-3@L")
    boom = headline_numbers(fake.run(parse_spec(arch="64-64x30", init="normal(std=5)")), "pre")
    assert boom["event"].startswith(("std>1e3@L", "nan/inf@L"))
    nograd = headline_numbers(fake.run(parse_spec(arch="8-8x3", grad="false")), "grad")
    assert nograd["event"] == "no grad"


def test_fmt_and_call_text():
    assert fmt(None) == "-" and fmt(float("inf")) == "inf" and fmt(float("nan")) == "nan/inf"
    assert fmt(1.41421) == "1.414" and fmt(1e-7) == "1e-7" and fmt(1.234e-48) == "1.234e-48"
    assert split_call("kaiming_normal(mode=fan_out)") == ("kaiming_normal", "mode=fan_out")
    assert join_call("kaiming_normal", "mode=fan_out") == "kaiming_normal(mode=fan_out)"
    assert join_call("relu", "") == "relu"
    assert join_call("relu", "leaky_relu(a=0.1)") == "leaky_relu(a=0.1)"


def test_runs_table_event_is_the_rule_explain_uses():
    # the measured pre std equal to the prediction for normal(std=1) relu (x16 per block from 22.6):
    # the Runs table and the theory's diagnostics must name the same block, with the bound on screen
    from initscope.engine.result import STAT
    from initscope.engine.theory import predict

    from tests.tui.helpers_results import make_result

    spec = parse_spec(arch="512-512x8", init="normal(std=1)")
    pred = predict(spec)
    result = make_result("512-512x8", trials=1, init="normal(std=1)")
    result.stats["pre"][:, :, STAT["std"]] = pred.pre_std
    result.stats["pre"][:, :, STAT["nonfinite_frac"]] = 0.0
    d = pred.diagnostics
    assert (d.leaves_at, d.leaves_how) == (3, "explode")  # 22.6, 362, 5793: past 1e3 at block 3
    assert headline_numbers(result, "pre")["event"] == "std>1e3@L3"


def test_runs_table_marks_a_first_layer_with_inf_entries():
    from initscope.engine.result import STAT

    from tests.tui.helpers_results import make_result

    result = make_result("8-8x3", trials=1)
    result.stats["grad_pre"][:, 0, STAT["std"]] = 0.0  # the std of the finite half
    result.stats["grad_pre"][:, 0, STAT["nonfinite_frac"]] = 0.5
    h = headline_numbers(result, "grad_pre")
    assert fmt(h["first"]) == "nan/inf" and h["event"] == "nan/inf@L1"


def test_linear_ticks_are_round_compact_and_at_least_two():
    from initscope.tui.widgets.layer_plot import linear_ticks

    ticks, labels = linear_ticks(9.0, 2.5e72)
    assert labels == ["5e+71", "1e+72", "1.5e+72", "2e+72"] and ticks[-1] == pytest.approx(2e72)
    ticks, labels = linear_ticks(1.41, 1.42)
    assert len(set(labels)) == len(labels) == 3  # enough digits to tell 1.41, 1.415, 1.42 apart
    ticks, labels = linear_ticks(-0.0328, 0.678, most=2)  # one round step covers it: step down to two ticks
    assert labels == ["0", "0.5"]


def test_linear_view_of_a_blow_up_keeps_short_labels_and_a_wide_canvas():
    # std x16 per layer from 22.6 (normal(std=1) relu, 512 wide) up to ~1e72: plotext alone writes tick
    # labels 73 digits long and squeezes the curves into a few columns
    plot = LayerPlot("std")
    y = 22.63 * 16.0 ** np.arange(60)
    plot.set_data([Series("*", y, (255, 255, 255)), Series("theory", y, (255, 255, 255), "theory")])
    text = _render(plot, 80, 20)
    labels = [line.split("┤")[0].strip() for line in text.splitlines() if "┤" in line]
    assert labels and max(len(label) for label in labels) <= 8 and any("e+7" in label for label in labels)
    axis = next(line for line in text.splitlines() if line.lstrip().startswith("└"))
    assert len(axis.strip()) >= 70  # the canvas keeps the width


def test_theory_points_stay_visible_where_they_meet_the_measured_curve():
    # lesson8: measured and predicted coincide; the prediction must not vanish under the measured line
    plot = LayerPlot("mean")
    y = np.array([0.5642, 0.5642])
    plot.set_data([Series("theory", y, (255, 255, 255), "theory"), Series("*", y, (255, 255, 255))])
    text = _render(plot, 40, 8)
    assert text.count("•") >= 2


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_blow_up_title_says_where_and_legend_shows_what_is_drawn(size):
    from initscope.engine.signal_range import range_event
    from initscope.tui.app import InitScopeApp
    from initscope.tui.widgets.legend import Legend

    from tests.tui.conftest import settle

    app = InitScopeApp(parse_spec(init="normal(std=5)", arch="64-64x30", trials="2"), engine=FakeEngine())
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        bad = app.current.first_nonfinite_layer()
        event = range_event(app.current, app.tensor)
        assert bad is not None and event is not None and event.how == "explode" and event.layer < bad
        for plot_id in ("#plot-std", "#plot-mean"):
            plot = app.query_one(plot_id, LayerPlot)
            text = plot.plt.uncolorize(plot.plt.build())
            assert f"nan/inf from L{bad}" in text.splitlines()[0]  # the title, kept whole or shortened
            assert "l: log" in text or size[0] <= 80  # the hint is the first to go on a narrow screen
            assert (f"std>1e3 at L{event.layer}" in text) == (plot_id == "#plot-std")
        notes = [meaning.replace("\u00a0", " ") for _glyph, _colour, meaning in app.query_one(Legend).notes]
        # the fake attaches the real prediction: its band stops where the theory says (band_reason), and the
        # legend then names the block it stops at
        from initscope.tui.app import band_gap_note

        gap = band_gap_note(app.current.theory, app.tensor)
        assert notes == ["measured", "theory", "band ±1 sd", "trials ±1 sd"] + ([gap] if gap else [])


async def test_plots_share_a_short_screen():
    from initscope.tui.app import InitScopeApp

    from tests.tui.conftest import settle

    app = InitScopeApp(parse_spec(arch="784-50-10"), engine=FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        mean, std = app.query_one("#plot-mean", LayerPlot), app.query_one("#plot-std", LayerPlot)
        assert mean.size.height >= 8 and abs(mean.size.height - std.size.height) <= 1


async def test_svg_screenshot_has_no_toast_over_it(tmp_path):
    # a toast on the screen when the screenshot is asked for (in a real terminal the previous toast, e.g.
    # "Pinned as 1", is back on the main screen when the save prompt closes) must not be in the picture
    from initscope.tui.app import InitScopeApp

    from tests.tui.conftest import settle

    app = InitScopeApp(engine=FakeEngine())
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        app.notify("a toast that must not be in the picture", markup=False)
        await pilot.pause(0.2)
        assert "a&#160;toast&#160;that" in app.export_screenshot()  # it is on screen now
        app._save_svg(tmp_path / "shot.svg")
        for _ in range(50):
            if (tmp_path / "shot.svg").exists():
                break
            await pilot.pause(0.05)
        svg = (tmp_path / "shot.svg").read_text()
        assert svg.startswith("<svg") and "std&#160;of&#160;post" in svg
        assert "a&#160;toast&#160;that" not in svg
        await pilot.pause(0.1)
        assert [n.message for n in app._notifications] == [f"Saved {tmp_path / 'shot.svg'}"]


def test_a_long_title_keeps_its_notes_by_giving_up_the_hint_and_the_long_name():
    # plotext drops a title wider than the canvas: at 80x24 the std plot lost 'nan/inf from L32' entirely
    from initscope.tui.widgets.layer_plot import fit_title

    title = "std of post x^l · std>1e3 at L3 · nan/inf from L32 · l: log"
    assert fit_title(title, 80) == title
    assert fit_title(title, 47) == "std · std>1e3 at L3 · nan/inf from L32"
    assert fit_title(title, 30) == "std · nan/inf from L32"  # where it went inf/NaN stays longest
    assert fit_title("|mean| of post x^l  (log) · nan/inf from L32", 32) == "|mean|  (log) · nan/inf from L32"
    assert fit_title("|mean| of post x^l  (log) · nan/inf from L32", 30) == "|mean| · nan/inf from L32"


async def test_runs_table_event_shows_at_80_columns_beside_the_form():
    from initscope.tui.app import InitScopeApp
    from initscope.tui.widgets.runs_table import RunsTable

    from tests.tui.conftest import settle

    app = InitScopeApp(parse_spec(init="normal(std=5)", arch="64-64x30"), engine=FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f8")
        await settle(pilot)
        table = app.query_one(RunsTable)
        event = headline_numbers(app.current, app.tensor)["event"]
        keys = [str(k.value) for k in table.columns]
        widths = [c.get_render_width(table) for c in table.columns.values()]
        shown = sum(widths[:keys.index("event") + 1])
        assert event and str(table.get_row_at(0)[keys.index("event")]) == event
        assert shown <= table.size.width < sum(widths)  # the event is on screen, the spec may be cut


def test_the_legend_says_where_no_band_is_drawn():
    from initscope.engine.spec import parse_spec
    from initscope.engine.theory import predict
    from initscope.tui.app import band_gap_note, legend_notes

    narrow = predict(parse_spec(arch="8-8x30"))  # std spreads beyond +-40% from block 4: no band there
    first = int(np.argmax(~np.isfinite(narrow.pre_std_hi))) + 1
    assert 1 < first < 30
    assert band_gap_note(narrow, "pre") == f"no band from L{first} (F7)"
    assert ("", None, f"no band from L{first} (F7)") in legend_notes({}, band_gap_note(narrow, "pre"))
    assert band_gap_note(predict(parse_spec(arch="512-512x20")), "pre") is None  # banded everywhere
    assert band_gap_note(narrow, "grad") is None  # the theory draws no gradient band anywhere: nothing to flag
