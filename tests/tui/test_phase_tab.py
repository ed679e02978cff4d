"""The Phase tab (tui/phase.py, tui/widgets/phase.py): the grid's orientation and cells, the theory lines,
and the tab in the app: theory diagram, cursor read-out, recall, a measured sweep, cancel."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from initscope.engine.numbers import fmt_num
from initscope.engine.spec import parse_spec
from initscope.engine.sweep.grid import build_grid
from initscope.engine.theory import phase as theory_phase
from initscope.tui import phase
from initscope.tui.app import InitScopeApp
from initscope.tui.screens.axes_prompt import AxesPrompt, check_axes_text
from initscope.tui.widgets.phase import PhaseView
from textual.widgets import Input, Static, TabbedContent

from tests.tui.conftest import settle

TINY = dict(arch="8-8x3", batch="16", act="relu")  # relu: closed-form theory, the fastest cells


def fake_predict(specs, band=True):
    """A stand-in prediction that is a known function of each cell's (gain, bias std): chi1 = gain^2 / 2
    (crosses 1 at gain = sqrt 2), xi_c = 1 / |ln chi1|, log_q_ratio = 10 gain + bias std (tells x from y)."""
    g = np.array([dict(s.init.params)["gain"] for s in specs], dtype=float)
    b = np.array([dict(s.bias.params)["std"] for s in specs], dtype=float)
    chi1 = g * g / 2
    with np.errstate(divide="ignore"):
        xi = 1.0 / np.abs(np.log(chi1))
    nan = np.full(len(specs), np.nan)
    return {"log_q_ratio": 10 * g + b, "c_last": 0.5 + 0 * g, "log_grad_ratio": nan, "chi1": chi1, "xi_c": xi,
            "nonfinite_frac": nan}


def test_default_axes_follow_the_scheme():
    relu = parse_spec(arch="512-512x20")  # kaiming_normal: x is its gain, sigma_w itself
    assert phase.default_axes(relu) == ("init.gain=0.5:2.95:50", "bias.std=0:0.49:50")
    # an absolute scheme: std = sigma_w / sqrt(fan_in) over the same sigma_w range (0.5/sqrt 256 = 0.03125)
    x, _ = phase.default_axes(parse_spec(arch="256-256x5", init="normal(std=0.1)"))
    assert x == "init.std=0.0312:0.184:50"
    x, _ = phase.default_axes(parse_spec(arch="256-256x5", init="uniform"))  # bound = sqrt 3 std
    assert x == f"init.bound={0.5 * math.sqrt(3) / 16:.3g}:{2.95 * math.sqrt(3) / 16:.3g}:50"


def test_grid_base_leaves_the_axes_out_and_stands_in():
    spec = parse_spec(init="torch_default", bias="zeros", act="tanh")
    x, y = phase.parse_axes(*phase.default_axes(spec))
    base, note = phase.grid_base(spec, [x, y])
    assert base["init"] == "lecun_normal" and base["bias"] == "normal" and base["act"] == "tanh"
    assert "torch_default has no gain" in note and "bias zeros has no std" in note
    # the base does not depend on the axis parameter's value: a recalled cell gives the same base (no recompute)
    cell = parse_spec(init="lecun_normal(gain=1.3)", bias="normal(std=0.2)", act="tanh")
    assert phase.grid_base(cell, [x, y]) == (base, "")


def test_grid_specs_are_build_grids_specs():
    spec = parse_spec(**TINY)
    x, y = phase.parse_axes("init.gain=0.5:2:4", "bias.std=0,0.1,0.3")
    base, _ = phase.grid_base(spec, [x, y])
    assert phase.grid_specs(base, x, y) == [c.spec for c in build_grid(base, [x, y])]
    # two parameters of one field: the slow path, same answer
    x2, y2 = phase.parse_axes("init.gain=1,2", "init.mode=fan_in,fan_out")
    assert phase.grid_specs(base, x2, y2) == [c.spec for c in build_grid(base, [x2, y2])]


def test_theory_grid_orientation_and_cells(monkeypatch):
    monkeypatch.setattr(theory_phase, "predict_cells", fake_predict)
    spec = parse_spec(**TINY)
    x, y = phase.parse_axes("init.gain=0.5:2:4", "bias.std=0,0.1,0.3")
    grid = phase.theory_grid(*phase.grid_base(spec, [x, y])[:1], x, y)
    assert grid.shape == (3, 4) and grid.depth == 3 and not grid.is_sweep
    lq = grid.values(phase.quantity("log_q_ratio"), "predicted")
    for iy, b in enumerate(y.values):
        for ix, g in enumerate(x.values):
            assert lq[iy, ix] == pytest.approx(10 * g + b)  # [iy, ix] is (y value iy, x value ix)
            s = grid.spec(iy, ix)
            assert dict(s.init.params)["gain"] == g and dict(s.bias.params)["std"] == b
    np.testing.assert_allclose(grid.values(phase.quantity("1 - c_last"), "predicted"), 0.5)
    assert grid.cell_index(2, 1) == 1 * 3 + 2  # a sweep's cells: row-major, x the slowest axis


def test_theory_lines_mark_chi1_one_and_xi_c(monkeypatch):
    monkeypatch.setattr(theory_phase, "predict_cells", fake_predict)
    spec = parse_spec(arch="8-8x12", batch="16", act="tanh")
    x, y = phase.parse_axes(*phase.default_axes(spec))
    grid = phase.theory_grid(phase.grid_base(spec, [x, y])[0], x, y)
    lines = phase.theory_lines(grid)
    assert [label for _, label in lines] == ["chi1 = 1", "xi_c = L/6 = 2", "xi_c = L = 12"]
    chi1_mask = lines[0][0]
    # chi1 = g^2/2 = 1 at g = 1.414: between 1.40 (0.98) and 1.45 (1.05), the nearer is 1.40, in every row
    col = x.values.index(1.4)
    assert chi1_mask[:, col].all() and chi1_mask.sum() == len(y)
    # xi_c = 1/|ln(g^2/2)| = L/6 = 2 at g^2/2 = e^(-1/2) and e^(1/2): g = 1.1031 and 1.8174: two columns
    l6 = lines[1][0]
    cols = sorted({int(c) for c in np.nonzero(l6)[1]})
    assert [x.values[c] for c in cols] == [1.1, 1.8]


def test_cell_text_reads_coordinates_prediction_and_phase(monkeypatch):
    monkeypatch.setattr(theory_phase, "predict_cells", fake_predict)
    spec = parse_spec(**TINY)
    x, y = phase.parse_axes("init.gain=1,2", "bias.std=0,0.1")
    grid = phase.theory_grid(phase.grid_base(spec, [x, y])[0], x, y)
    text = phase.cell_text(grid, phase.quantity("log_q_ratio"), 1, 0)
    assert text.startswith("init.gain = 1  bias.std = 0.1 | log_q_ratio: predicted 10.1 | chi1 0.5: ordered")
    assert "chaotic (chi1 > 1)" in phase.cell_text(grid, phase.quantity("chi1"), 0, 1)  # chi1 = 2


def test_coarse_keeps_the_range():
    x = phase.parse_axes("init.gain=0.5:2.95:50", "bias.std=0:0.49:50")[0]
    c = phase.coarse(x, 8)
    assert len(c) == 8 and c.values[0] == 0.5 and c.values[-1] == 2.95 and c.name == "init.gain"
    words = phase.coarse(phase.parse_axes("act=relu,tanh,gelu,silu,elu", "bias.std=0,1")[0], 3)
    assert words.values == ("relu", "gelu", "elu")


def test_axes_text_errors_are_one_sentence():
    spec = parse_spec(**TINY)
    assert check_axes_text("init.gain=1:2:3", "bias.std=0:0.2:3", spec) == ""
    assert "not a spec field" in check_axes_text("nope=1,2", "bias.std=0:0.2:3", spec)
    assert "given twice" in check_axes_text("init.gain=1,2", "init.gain=3,4", spec)
    assert "at most 100 values" in check_axes_text("init.gain=1:2:101", "bias.std=0,1", spec)
    assert "greater than 0" in check_axes_text("init.gain=0:2:3", "bias.std=0,1", spec)


async def _open_tab(pilot, app) -> PhaseView:
    await settle(pilot)
    started = time.perf_counter()
    await pilot.press("f11")
    view = app.query_one("#phase-view", PhaseView)
    while view.last_show_s is None and time.perf_counter() - started < 20:
        await pilot.pause(0.02)
    assert app.query_one("#tabs", TabbedContent).active == "phase"
    return view


def _cell_line(view) -> str:
    return str(view.query_one("#phase-cell", Static).content)


async def test_tab_draws_theory_cursor_reads_prediction_and_recalls(fake):
    app = InitScopeApp(spec=parse_spec(arch="8-8x3", batch="16"), engine=fake)  # relu: the closed-form c-map
    async with app.run_test(size=(120, 40)) as pilot:
        view = await _open_tab(pilot, app)
        grid = view.theory
        assert grid is not None and grid.shape == (50, 50) and not grid.is_sweep
        assert view.last_show_s is not None  # drawn; its speed is measured in benchmarks, not asserted here
        drawn = view.query_one("#phase-map", Static).content
        assert "bias.std" in drawn.plain and "init.gain" in drawn.plain and "▀" in drawn.plain  # compact 50 x 50
        assert view.cursor == (25, 25)
        await pilot.press("right", "right", "up")
        await pilot.pause()
        iy, ix = view.cursor
        assert (iy, ix) == (26, 27)
        spec = grid.spec(iy, ix)
        assert dict(spec.init.params)["gain"] == pytest.approx(0.5 + 0.05 * 27)
        assert dict(spec.bias.params)["std"] == pytest.approx(0.01 * 26)
        # the read-out is predict_cells of that one cell (the grid is computed for all 2,500 at once)
        expected = float(theory_phase.predict_cells([spec])["log_q_ratio"][0])
        shown = float(grid.values(phase.quantity("log_q_ratio"), "predicted")[iy, ix])
        assert shown == pytest.approx(expected, rel=1e-9, nan_ok=True)
        assert f"log_q_ratio: predicted {fmt_num(expected)}" in _cell_line(view)
        assert "init.gain = 1.85  bias.std = 0.26" in _cell_line(view)
        # m cycles the quantity
        await pilot.press("m")
        await pilot.pause()
        assert view.quantity == "1 - c_last" and "1 - c_last: predicted" in _cell_line(view)
        # enter: the cell's spec into the form, run
        runs = len(fake.calls)
        await pilot.press("enter")
        await settle(pilot)
        assert app.form_spec() == spec and fake.calls[-1] == spec and len(fake.calls) == runs + 1
        # the recalled run's base is the same grid: no recompute, the cursor stays
        await pilot.pause(0.2)
        assert view.theory is grid and view.cursor == (iy, ix)
        # a: the axes as --vary texts; a bad one is the engine's sentence and the prompt stays
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AxesPrompt)
        app.screen.query_one("#axes-x", Input).value = "init.gain=1:2:5"
        app.screen.query_one("#axes-y", Input).value = "bias.stdd=0,1"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AxesPrompt) and "no bias has a parameter stdd" in app.screen.error
        app.screen.query_one("#axes-y", Input).value = "bias.std=0,0.1,0.2"
        await pilot.press("enter")
        for _ in range(200):
            await pilot.pause(0.02)
            if view.theory is not None and view.theory.shape == (3, 5):
                break
        assert view.theory.shape == (3, 5) and view.theory.x.values == (1, 1.25, 1.5, 1.75, 2)
        assert "▀" not in view.query_one("#phase-map", Static).content.plain  # small grid: full cells




async def test_measured_sweep_completes_toggles_and_cancels(fake, monkeypatch, tmp_path, one_torch_thread):
    app = InitScopeApp(spec=parse_spec(**TINY), engine=fake)
    async with app.run_test(size=(120, 40)) as pilot:
        view = await _open_tab(pilot, app)
        view.sweep_count = 3
        await pilot.press("r")
        started = time.perf_counter()
        while view.sweeping and time.perf_counter() - started < 60:
            await pilot.pause(0.05)
        assert not view.sweeping and not view.has_class("-sweeping")
        grid = view.sweep
        assert grid is not None and grid.is_sweep and grid.shape == (3, 3) and grid.done == 9 and not grid.failed
        assert view.showing == "sweep" and view.source == "measured"
        assert grid.x.values == (0.5, 1.725, 2.95) and grid.y.values == (0.0, 0.245, 0.49)
        measured = grid.values(phase.quantity("log_q_ratio"), "measured")
        assert np.isfinite(measured).all()
        # the gain grows along x: E[x^2] of the last layer grows with it (relu, 3 layers, width 8: every
        # cell's measured ratio is far apart from its neighbour's, 0.5 -> 2.95 is ~2 decades of sigma_w^2)
        assert (np.diff(measured, axis=1) > 0).all()
        assert "measured" in _cell_line(view)
        await pilot.press("s")
        await pilot.pause()
        assert view.source == "predicted"
        await pilot.press("t")
        await pilot.pause()
        assert view.showing == "theory" and view.grid is view.theory
        # o: a table written by initscope sweep --output (run_sweep with out=) opens as a sweep
        from initscope.engine.sweep import parse_vary, run_sweep
        from initscope.engine.sweep.backends import InProcess

        path = tmp_path / "sweep.csv"
        axes = [parse_vary("init.gain=1,2"), parse_vary("bias.std=0,0.1,0.2")]
        written = run_sweep({**TINY, "bias": "normal"}, axes, InProcess(), out=path)
        await pilot.press("o")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(path)
        await pilot.press("enter")
        await pilot.pause()
        grid = view.sweep
        assert grid.title == "sweep sweep.csv" and grid.shape == (3, 2) and grid.done == 6 and view.source == "measured"
        np.testing.assert_array_equal(grid.values(phase.quantity("log_q_ratio"), "measured"),
                                      written.grid("log_q_ratio").T)
        view.cursor = (2, 1)  # x = gain 2 (the second x value), y = bias.std 0.2 (the third y value)
        view.redraw()
        assert _cell_line(view).startswith("init.gain = 2  bias.std = 0.2 | log_q_ratio: predicted")
        assert f"measured {fmt_num(written.grid('log_q_ratio')[1, 2])}" in _cell_line(view)
        # a second sweep, stopped after its first cell: what finished is kept, the rest reads "not run"
        from initscope.engine.sweep import cell

        real_run_cell = cell.run_cell

        def slow_run_cell(task):  # the in-process backend calls this per cell; 0.2 s makes the stop land early
            time.sleep(0.2)
            return real_run_cell(task)

        monkeypatch.setattr(cell, "run_cell", slow_run_cell)
        view.sweep_count = 6
        await pilot.press("r")
        started = time.perf_counter()
        while not view.message.startswith("measuring: ") or "measuring: 0/" in view.message:
            await pilot.pause(0.02)  # until the first cell is done
            assert time.perf_counter() - started < 30
        # the UI runs meanwhile: the progress bar is up and keys are read (the cursor moves)
        assert view.sweeping and view.has_class("-sweeping")
        before = view.cursor
        await pilot.press("left")
        assert view.cursor == (before[0], before[1] - 1)
        await pilot.press("escape")
        while view.sweeping:
            await pilot.pause(0.02)
            assert time.perf_counter() - started < 30
        grid = view.sweep
        assert grid.shape == (6, 6) and 0 < grid.done < grid.total and view.message.startswith("stopped:")
        first = min(grid.done_cells)
        view.cursor = (first % 6, first // 6)
        view.redraw()
        assert ", measured " in _cell_line(view)
        missing = next(i for i in range(36) if i not in grid.done_cells)
        view.cursor = (missing % 6, missing // 6)
        view.redraw()
        assert "not run" in _cell_line(view)
        # the app goes on: keys work, a run runs
        await pilot.press("m")
        await pilot.pause()
        assert view.quantity == "1 - c_last"
        runs = len(fake.calls)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert len(fake.calls) == runs + 1 and not app.running


def test_display_range_is_robust_to_a_corner_of_extremes():
    x, y = phase.parse_axes("init.gain=1:2:10", "bias.std=0:0.9:10")
    v = np.tile(np.linspace(-1.0, 1.0, 10), (10, 1))  # |v| up to 1 everywhere...
    v[0, :3] = -18.0  # ...but 3 cells of 100 at -18 (a dying signal)
    grid = phase.PhaseGrid(x, y, {}, {"log_q_ratio": v, "xi_c": np.full((10, 10), np.inf)}, depth=20)
    shown, lo, hi = phase.display_values(grid, phase.quantity("log_q_ratio"), "predicted")
    # centre 0 -+ the 95th percentile of |v|: 1 (the 3 extreme cells lie beyond and show the end colour)
    assert (lo, hi) == (-1.0, 1.0) and shown is not None and shown[0, 0] == -18.0
    shown, lo, hi = phase.display_values(grid, phase.quantity("xi_c"), "predicted")
    assert (lo, hi) == (0.0, 20.0) and (shown == 20.0).all()  # infinite xi_c: the top colour, not "non-finite"
