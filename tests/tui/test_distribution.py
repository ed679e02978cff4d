"""DistributionView: the colorful dimension heatmap, drawn with half blocks."""

from __future__ import annotations

import numpy as np
from initscope.tui.widgets.distribution import DistributionView, Rendering, ramp, render_distribution
from rich.segment import Segment
from textual.app import App, ComposeResult

from tests.tui.helpers_results import make_result


def luminance(rgb) -> float:
    r, g, b = rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def column_pixels(rendering: Rendering, x: int) -> list[tuple[float, float]]:
    """(top, bottom) luminance of the half-block cell at text column x on every heatmap row (-1 = empty)."""
    out = []
    for line in rendering.lines[rendering.heat_top:rendering.heat_top + rendering.heat_rows]:
        pos = 0
        for seg in line:
            if pos <= x < pos + len(seg.text):
                out.append(_cell_lum(seg))
                break
            pos += len(seg.text)
    return out


def _cell_lum(seg: Segment) -> tuple[float, float]:
    ch = seg.text[0]
    fg = seg.style.color.triplet if seg.style and seg.style.color else None
    bg = seg.style.bgcolor.triplet if seg.style and seg.style.bgcolor else None
    if ch == "▀":
        return luminance(fg), (luminance(bg) if bg else -1)
    if ch == "▄":
        return -1, luminance(fg)
    return -1, -1


def test_concentrated_near_zero_is_bright_in_the_middle_row():
    result = make_result("64-64x6", bins=40, lo=-10, hi=10, centre=0.0, spread=0.3)
    r = render_distribution(result, "pre", 60, 16)
    assert r.heat_rows == 16 - 4
    x = r.gutter + r.col_width // 2  # layer 1
    pix = column_pixels(r, x)
    assert len(pix) == r.heat_rows
    best_row = max(range(len(pix)), key=lambda i: max(pix[i]))
    assert abs(best_row - (r.heat_rows - 1) / 2) <= 1
    # the brightest colour is the top of the ramp, and rows far from 0 are empty
    assert max(max(p) for p in pix) == luminance(ramp(1.0))
    assert pix[0] == (-1, -1) and pix[-1] == (-1, -1)
    # and the grid (pixel 0 = lowest value) agrees
    assert abs(int(np.nanargmax(r.grid[:, 0])) - r.grid.shape[0] / 2) <= 1


def test_shifted_layers_move_up():
    result = make_result("32-32x4", centres=[-5, 0, 5, 5], spread=0.5)
    r = render_distribution(result, "post", 40, 14)
    rows = []
    for layer in range(4):
        pix = column_pixels(r, r.gutter + layer * r.col_width)
        rows.append(max(range(len(pix)), key=lambda i: max(pix[i])))
    assert rows[0] > rows[1] > rows[2] == rows[3]  # row 0 is the top: larger values are higher up


def test_axis_labels_value_range_and_layers():
    result = make_result("16-16x20", lo=-4, hi=6)
    r = render_distribution(result, "post", 80, 20)
    text = r.text
    heat = r.lines[r.heat_top:r.heat_top + r.heat_rows]
    first = "".join(s.text for s in heat[0])
    last = "".join(s.text for s in heat[-1])
    assert first[:r.gutter].strip() == "6" and last[:r.gutter].strip() == "-4"
    assert any("".join(s.text for s in line)[:r.gutter].strip() == "0" for line in heat)
    axis = text.splitlines()[r.heat_top + r.heat_rows]
    assert axis.startswith("layer") and " 1 " in axis and axis.rstrip().endswith("20")
    assert "post x^l" in text.splitlines()[0]


def test_zero_frac_numbers_and_sparkline():
    zf = np.linspace(0.25, 0.75, 20)
    zf[6] = 0.9
    result = make_result("8-8x20", zero_frac=zf)
    r = render_distribution(result, "post", 80, 24)
    lines = r.text.splitlines()
    assert "zero_frac L1 0.250" in lines[-1] and "L20 0.750" in lines[-1] and "max 0.900 (L7)" in lines[-1]
    spark = lines[-2]
    assert spark.lstrip().startswith("zero")
    assert np.allclose(r.zero_frac, zf)
    assert spark.split()[1].startswith("▂▂▂") and "▇▇▇" in spark  # 0.25 -> 2/8 of a cell, 0.9 -> 7/8


def test_one_layer_and_five_hundred_layers_fit_80x24():
    for arch, n in (("10-10", 1), ("10-10x500", 500)):
        result = make_result(arch, bins=64)
        r = render_distribution(result, "pre", 80, 24)
        assert len(r.lines) == 24
        assert all(sum(len(s.text) for s in line) == 80 for line in r.lines)
        assert r.columns[0][0] == 0 and r.columns[-1][1] == n
        assert len(r.columns) * r.col_width <= 80 - r.gutter
        axis = r.text.splitlines()[r.heat_top + r.heat_rows]
        assert axis.split()[1] == "1" and axis.split()[-1] == str(n)
    # 500 layers: averaged into one column per character
    assert r.col_width == 1 and len(r.columns) == 80 - r.gutter


def test_tiny_sizes_never_crash():
    result = make_result("8-8x30")
    for w, h in [(1, 1), (5, 2), (10, 3), (20, 5), (0, 10), (10, 0), (200, 60)]:
        r = render_distribution(result, "pre", w, h)
        assert len(r.lines) == h
        assert all(sum(len(s.text) for s in line) == w for line in r.lines if line)


def test_empty_missing_zero_and_nonfinite():
    assert "no run yet" in render_distribution(None, "post", 60, 10).text
    no_grad = make_result("8-8x3", grad=False)
    assert "no gradients" in render_distribution(no_grad, "grad", 60, 10).text
    assert "unknown tensor" in render_distribution(no_grad, "bogus", 60, 10).text

    result = make_result("8-8x5", trials=2)
    result.hist["pre"][:, 2, :] = 0.0  # a layer with no counts at all
    result.hist["pre"][0, 3, 5] = np.nan
    result.hist["pre"][1, 3, 6] = np.inf
    result.hist["pre"][1, 4, 7] = -3
    result.stats["pre"][:, 3, 6] = 0.25  # nonfinite_frac from layer 4
    result.stats["pre"][0, 1, 5] = np.nan  # a zero_frac that is NaN
    r = render_distribution(result, "pre", 60, 16)
    assert np.isnan(r.grid[:, 2]).all()  # the empty layer draws nothing
    assert np.isfinite(r.grid[~np.isnan(r.grid)]).all()
    assert "non-finite from L4" in r.text
    all_zero = make_result("8-8x2")
    for t in all_zero.hist:
        all_zero.hist[t][:] = 0
    r = render_distribution(all_zero, "post", 40, 10)
    assert np.isnan(r.grid).all() and r.max_count == 0


def test_more_bins_than_pixels_sums_counts():
    result = make_result("8-8x2", bins=200, total=1000.0)
    r = render_distribution(result, "post", 40, 8)  # 4 heat rows = 8 pixels for 200 bins
    assert r.grid.shape == (8, 2)
    assert r.max_count <= 1000 and r.max_count > 1000 / 8


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield DistributionView(id="dist")


async def test_widget_show_and_draws_in_an_80x24_app():
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(DistributionView)
        assert "no run yet" in view.rendering.text
        result = make_result("64-64x20", centre=0.0, spread=0.5, zero_frac=0.5)
        view.show(result, "post")
        await pilot.pause()
        assert view.tensor == "post" and view.result is result
        assert view.size.width == 80 and view.size.height == 24
        lines = [view.render_line(y).text for y in range(view.size.height)]
        assert lines[0].startswith("post x^l")
        assert lines[-1].startswith("zero_frac L1 0.500")
        assert all(len(line) == 80 for line in lines)
        view.show(result, "grad_pre")
        await pilot.pause()
        assert view.render_line(0).text.startswith("grad_pre")
        await pilot.resize_terminal(50, 12)
        await pilot.pause()
        assert len(view.render_line(3).text) == 50
        view.show(None, "post")
        await pilot.pause()
        assert "no run yet" in view.rendering.text


async def test_theme_change_restyles_empty_cells():
    app = Host()
    async with app.run_test(size=(60, 16)) as pilot:
        view = app.query_one(DistributionView)
        view.show(make_result("16-16x4", spread=0.3), "pre")
        await pilot.pause()
        dark_bg = view.rendering.lines[view.rendering.heat_top][-1].style.bgcolor
        app.theme = "textual-light"
        await pilot.pause()
        light_bg = view.rendering.lines[view.rendering.heat_top][-1].style.bgcolor
        assert dark_bg is not None and light_bg is not None and dark_bg != light_bg
        assert luminance(light_bg.triplet) > luminance(dark_bg.triplet)


def test_relu_post_uses_the_positive_half_of_the_axis():
    # relu: half the entries are exactly 0 (counted in the bin that starts at 0), the rest > 0; nothing < 0
    edges = np.linspace(-10, 10, 41)
    result = make_result("16-16x6", bins=40, lo=-10, hi=10, centre=2.0, spread=1.0)
    mids = (edges[:-1] + edges[1:]) / 2
    result.hist["post"][:, :, mids < 0] = 0.0
    result.hist["post"][:, :, 20] += 512 * 256  # the zeros
    r = render_distribution(result, "post", 60, 16)
    heat = ["".join(s.text for s in line) for line in r.lines[r.heat_top:r.heat_top + r.heat_rows]]
    assert heat[-1][:r.gutter].strip() == "0" and heat[0][:r.gutter].strip() == "10"
    # the lowest row holds the zeros: lit, and every row is inside the data's range
    assert r.grid.shape[0] == 2 * r.heat_rows and np.isfinite(r.grid[0]).all()
    # a symmetric tensor keeps the symmetric axis
    pre = render_distribution(result, "pre", 60, 16)
    assert "".join(s.text for s in pre.lines[pre.heat_top + pre.heat_rows - 1])[:pre.gutter].strip() == "-10"


def test_labels_keep_three_significant_digits():
    from initscope.tui.widgets.distribution import fmt_value

    # the count legend and the value axis used one digit past 1e4 (262144 read '3e5'); now the shared formatter
    assert fmt_value(262144) == "2.62e+5" and fmt_value(2.5e-5) == "2.5e-5" and fmt_value(-4) == "-4"
