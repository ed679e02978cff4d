"""tui/heatmap.py: the text heatmap shared by `initscope sweep` and the Phase tab.

Known grids render known characters and colours at known cells: the level of a value is
round((v - lo) / (hi - lo) * (n - 1)) (n = len(RAMP) without colour, LEVELS with), y grows upward,
non-finite cells are marked, contour masks mark the cell nearer the level, the cursor is drawn.
"""

from __future__ import annotations

import numpy as np
import pytest
from initscope.tui import heatmap as hm
from initscope.tui.heatmap import LEVELS, NONFINITE_RGB, RAMP, contour_mask, heatmap_text, palette
from rich.style import Style


def lines_of(text) -> list[str]:
    return text.plain.split("\n")


def style_at(text, line: int, col: int):
    """The combined style of the character at (line, col) of a rendered Text."""
    offset = sum(len(s) + 1 for s in lines_of(text)[:line]) + col
    style = Style()
    for span in text.spans:
        if span.start <= offset < span.end:
            style += span.style if isinstance(span.style, Style) else Style.parse(span.style)
    return style


def rgb(color) -> tuple[int, int, int]:
    t = color.get_truecolor()
    return (t.red, t.green, t.blue)


def grid_line(text, needle_label: str) -> int:
    """The index of the grid line whose y label is `needle_label`."""
    for i, s in enumerate(lines_of(text)):
        head = s.split("|")[0].split("┤")[0].split(">")[0].split("▶")[0].strip()
        if head == needle_label and any(c in s for c in "|┤>▶"):
            return i
    raise AssertionError(f"no grid line labelled {needle_label!r} in\n{text.plain}")


GRID = np.array([[0.0, 1.0], [2.0, 3.0]])  # row 0 at the bottom: 0 1 / top row: 2 3


def plain(values, **kw):
    kw.setdefault("x_label", "x")
    kw.setdefault("y_label", "y")
    kw.setdefault("x_values", list(range(values.shape[1])))
    kw.setdefault("y_values", [10 * i for i in range(values.shape[0])])
    return heatmap_text(values, color=False, **kw)


def test_plain_ramp_levels_and_y_upward():
    # lo = 0, hi = 3, 10 ramp levels: 0 -> ' ', 1 -> level 3 '-', 2 -> level 6 '*', 3 -> level 9 '@'
    text = plain(GRID)
    top, bottom = grid_line(text, "10"), grid_line(text, "0")
    assert top < bottom  # y grows upward: row 1 (y = 10) is drawn above row 0
    assert lines_of(text)[top].endswith("|**@@")
    assert lines_of(text)[bottom].endswith("|  --")
    assert RAMP[3] == "-" and RAMP[6] == "*" and RAMP[9] == "@"


def test_vmin_vmax_saturate():
    # with vmin = 1, vmax = 2: 0 -> clipped to level 0, 1 -> 0, 2 -> 9, 3 -> clipped to 9
    text = plain(GRID, vmin=1.0, vmax=2.0)
    assert lines_of(text)[grid_line(text, "10")].endswith("|@@@@")
    assert lines_of(text)[grid_line(text, "0")].endswith("|    ")


def test_nonfinite_cells_marked():
    v = np.array([[np.nan, 1.0], [np.inf, 3.0]])
    text = plain(v)
    assert lines_of(text)[grid_line(text, "10")].endswith("|xx@@")
    # lo/hi come from the finite values only (1 .. 3): 1 -> ' '
    assert lines_of(text)[grid_line(text, "0")].endswith("|xx  ")
    assert "xx non-finite" in text.plain
    coloured = heatmap_text(v, x_label="x", x_values=[0, 1], y_label="y", y_values=[0, 10])
    line = grid_line(coloured, "0")
    col = lines_of(coloured)[line].index("xx")
    assert rgb(style_at(coloured, line, col).bgcolor) == NONFINITE_RGB


def test_colours_are_the_palette_levels():
    # 4 values over [0, 3] -> levels round(t * 63): 0, 21, 42, 63
    text = heatmap_text(GRID, x_label="x", x_values=[0, 1], y_label="y", y_values=[0, 10])
    pal = palette("seq")
    top, bottom = grid_line(text, "10"), grid_line(text, "0")
    start = lines_of(text)[bottom].index("┤") + 1
    assert rgb(style_at(text, bottom, start).bgcolor) == pal[0]
    assert rgb(style_at(text, bottom, start + 2).bgcolor) == pal[21]
    assert rgb(style_at(text, top, start).bgcolor) == pal[42]
    assert rgb(style_at(text, top, start + 3).bgcolor) == pal[63]
    assert pal[0] == hm.VIRIDIS[0] and pal[-1] == hm.VIRIDIS[-1]


def test_diverging_map_centred():
    # center = 0: the map spans -2..2 (max |v|), 0 sits at level round(0.5 * 63) = 32: the map's white
    v = np.array([[-1.0, 0.0, 2.0]])
    text = heatmap_text(v, x_label="x", x_values=[0, 1, 2], y_label="y", y_values=[0], center=0.0)
    line = grid_line(text, "0")
    start = lines_of(text)[line].index("┤") + 1
    mid = rgb(style_at(text, line, start + 2).bgcolor)
    assert mid == palette("div")[32]
    assert all(abs(c - 0xF7) <= 6 for c in mid)  # within 1/63 of RdBu's centre (F7F7F7)
    assert rgb(style_at(text, line, start + 4).bgcolor) == hm.RDBU[-1]
    assert rgb(style_at(text, line, start).bgcolor) == palette("div")[round(0.25 * 63)]  # -1 -> t = 0.25
    assert lines_of(text)[-1].strip().startswith("-2 ") and lines_of(text)[-1].rstrip().endswith(" 2")  # colour bar


def test_contour_mask_marks_the_nearer_cell():
    row = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    assert contour_mask(row, 2.4).tolist() == [[False, False, True, False, False]]  # |2 - 2.4| < |3 - 2.4|
    assert contour_mask(row, 2.6).tolist() == [[False, False, False, True, False]]
    assert contour_mask(row, 2.0).tolist() == [[False, False, True, False, False]]  # exactly at the level
    assert not contour_mask(row, 9.0).any()
    col = row.T  # vertical neighbours too
    assert contour_mask(col, 0.4)[:, 0].tolist() == [True, False, False, False, False]
    gap = np.array([[1.0, np.nan, 3.0]])
    assert not contour_mask(gap, 2.0).any()  # no line through a non-finite cell


def test_contour_drawn_with_glyph_and_legend():
    v = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]] * 3)
    mask = contour_mask(v, 2.4)
    text = plain(v, lines=[(mask, "v = 2.4")], y_values=[0, 1, 2])
    for label in ("0", "1", "2"):
        row = lines_of(text)[grid_line(text, label)]
        assert row.endswith("|  ::oo##@@")  # 0, 1, 2, 3, 4 -> levels 0, 2, line, 7, 9
    assert "oo v = 2.4" in text.plain
    missing = plain(v, lines=[(np.zeros_like(mask), "v = 9")])
    assert "v = 9 (not in range)" in missing.plain


def test_cursor_cell_and_axis_marks():
    text = plain(GRID, cursor=(1, 0))  # top row, left cell
    top = lines_of(text)[grid_line(text, "10")]
    assert top.endswith(">[]@@")
    axis = next(s for s in lines_of(text) if s.strip().startswith("+") and "-" in s)
    assert axis.strip().startswith("+^")
    assert "[] cursor" in text.plain


def test_compact_half_blocks():
    # 4 rows x 3 columns: two text lines; upper half (foreground) = the upper row, lower (background) = the row below
    v = np.arange(12, dtype=float).reshape(4, 3)
    text = heatmap_text(v, x_label="x", x_values=[0, 1, 2], y_label="y", y_values=[0, 1, 2, 3], compact=True,
                        vmin=0.0, vmax=11.0)
    pal = palette("seq")
    grid_lines = [i for i, s in enumerate(lines_of(text)) if "▀" in s]
    assert len(grid_lines) == 2
    first = grid_lines[0]
    col = lines_of(text)[first].index("▀")
    style = style_at(text, first, col + 1)  # cell (row 3, x 1) over (row 2, x 1)
    assert rgb(style.color) == pal[round(10 / 11 * 63)]
    assert rgb(style.bgcolor) == pal[round(7 / 11 * 63)]
    cur = heatmap_text(v, x_label="x", x_values=[0, 1, 2], y_label="y", y_values=[0, 1, 2, 3], compact=True,
                       cursor=(0, 2))
    last = [i for i, s in enumerate(lines_of(cur)) if "▀" in s][-1]
    col = lines_of(cur)[last].index("▀") + 2
    assert rgb(style_at(cur, last, col).bgcolor) == hm.CURSOR_RGB["seq"]  # row 0 is the lower half


def test_axes_labels_and_colour_bar_numbers():
    x = np.linspace(1.0, 2.5, 16)
    y = np.linspace(0.0, 0.5, 11)
    v = np.add.outer(y, x)
    text = plain(v, x_values=x, y_values=y, x_label="init.gain", y_label="bias.std", title="T")
    s = text.plain
    assert s.startswith("T\n")
    assert "bias.std ^" in s and "init.gain ->" in s
    assert lines_of(text)[grid_line(text, "0.5")] and lines_of(text)[grid_line(text, "0")]
    tick_row = next(line for line in lines_of(text) if line.strip().startswith("1 "))
    assert tick_row.rstrip().endswith("2.5   init.gain ->")  # the axis name after the last tick
    bar = next(line for line in lines_of(text) if "@" in line and "|" not in line)
    # the colour bar: the ends 0 + 1 and 0.5 + 2.5 and the middle 2, the ramp from ' ' to '@' around it
    assert bar.strip().startswith("1 ") and " 2 " in bar and bar.rstrip().endswith("@ 3")


def test_colour_bar_marks_saturated_ends():
    v = np.array([[-5.0, 0.0, 1.0, 9.0]])
    text = plain(v, vmin=-1.0, vmax=2.0)
    bar = next(line for line in lines_of(text) if "@" in line and "|" not in line)
    assert bar.strip().startswith("<-1 ") and bar.rstrip().endswith(" >2")
    text = plain(v)  # the data's own range: nothing beyond
    bar = next(line for line in lines_of(text) if "@" in line and "|" not in line)
    assert bar.strip().startswith("-5 ") and bar.rstrip().endswith(" 9")


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="2-D"):
        heatmap_text(np.zeros(3), x_label="x", x_values=[0, 1, 2], y_label="y", y_values=[0])
    with pytest.raises(ValueError, match="axes"):
        heatmap_text(np.zeros((2, 3)), x_label="x", x_values=[0, 1], y_label="y", y_values=[0, 1])
    with pytest.raises(ValueError, match="mask"):
        heatmap_text(np.zeros((2, 2)), x_label="x", x_values=[0, 1], y_label="y", y_values=[0, 1],
                     lines=[(np.zeros((3, 3), bool), "m")])


def test_constant_and_empty_grids_render():
    assert "x" in plain(np.full((2, 2), np.nan)).plain
    text = plain(np.ones((2, 2)))
    assert lines_of(text)[grid_line(text, "0")].endswith("|" + RAMP[round(0.5 * 9)] * 4)


def test_50x50_renders_whole_in_both_modes():
    x = np.linspace(1, 2.5, 50)
    y = np.linspace(0, 0.5, 50)
    v = np.add.outer(-3 * y, x)
    lines = [(contour_mask(v, 1.5), "a"), (contour_mask(v, 0.5), "b")]
    for compact in (True, False):
        # its speed is not asserted here (6-18 ms for 50 x 50 when measured on the 2-core machine)
        text = heatmap_text(v, x_label="x", x_values=x, y_label="y", y_values=y, lines=lines, cursor=(3, 4),
                            compact=compact)
        assert sum("▀" in s for s in lines_of(text)) == (25 if compact else 0)
    assert LEVELS == 64


def test_wider_cells():
    text = plain(GRID, cell_width=4, cursor=(0, 1))
    assert lines_of(text)[grid_line(text, "10")].endswith("|****@@@@")
    assert lines_of(text)[grid_line(text, "0")].endswith(">    [  ]")  # the cursor's brackets span the cell
    axis = next(s for s in lines_of(text) if s.strip().startswith("+") and "-" in s)
    assert axis.strip() == "++---^---"  # ticks under the first character of each labelled cell
