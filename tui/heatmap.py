"""A text heatmap of a grid of numbers over two axes: the CLI's `initscope sweep` view and the Phase tab.

`heatmap_text(values [ny, nx], ...)` returns a rich Text (no Textual here, so the CLI can print it):

- cells: each cell of `values[iy, ix]` is a coloured background, x increasing to the right and y
  increasing UPWARD (row iy = 0 at the bottom, as on a plot). Two layouts:
  full (default): a cell is two characters wide and one line tall (about square in a terminal);
  compact: a cell is one character wide and half a line tall, two rows per line drawn with the
  upper-half block (foreground = upper row, background = lower row): a 50 x 50 grid in 50 x 25.
- colour: `center=None` is a sequential map (viridis: perceptually uniform, dark = low, yellow = high)
  from vmin to vmax; `center=c` is a diverging map (blue = below c, white = c, red = above c)
  spanning c -+ max|v - c| unless vmin/vmax are given: the choice for signed quantities such as log
  ratios, where 0 (preserved scale) is the interesting value. Values outside [vmin, vmax] saturate
  at the ends. The colour is quantised to LEVELS steps.
- non-finite cells (NaN, +-inf: a blown-up or missing value) are 'x' on grey, never a colour of the map.
- contour lines: `lines` is a sequence of (mask [ny, nx] of the cells a line passes through, label)
  (`contour_mask` makes one from a grid and a level); in the full layout a line's cells show its glyph
  (LINE_GLYPHS) over the cell colour, in the compact layout they are painted in its colour
  (LINE_COLOURS); a legend under the grid names each line.
- cursor: `cursor=(iy, ix)` marks that cell ('[]' in the full layout, the cursor colour in the compact
  one) and its row and column on the axes.
- axes: about 10 y tick labels on the left (bottom and top rows always; in the compact layout a line
  carries the label of whichever of its two rows is a tick row), x tick labels below with a tick mark
  under the cell they name, the axis names, and a colour bar with its ends and middle (or centre) value
  (an end reads <lo or >hi when some cells lie beyond it and show the end's colour).
- `color=False`: plain characters for pipes and tests: the ramp RAMP from low to high (full layout),
  'x' for non-finite, the line glyphs, '[]' for the cursor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from initscope.engine.numbers import fmt_num
from rich.color import Color
from rich.style import Style
from rich.text import Span, Text

RGB = tuple[int, int, int]

LEVELS = 64  # colours per map: steps of 1/64 of the range are finer than the eye reads on a terminal
RAMP = " .:-=+*#%@"  # color=False: low .. high, 10 levels
NONFINITE = "x"
NONFINITE_RGB: RGB = (96, 96, 96)
LINE_GLYPHS = ("o", "~", "^", "'")
# Compact layout: line colours that no map uses. Sequential (viridis: purple-blue-green-yellow) and
# diverging (blue-white-red) maps get their own, so a line never looks like a value.
LINE_COLOURS = {"seq": ((255, 40, 40), (255, 255, 255), (255, 150, 230), (0, 0, 0)),
                "div": ((0, 0, 0), (0, 190, 60), (255, 200, 0), (140, 40, 220))}
CURSOR_RGB = {"seq": (255, 0, 255), "div": (0, 255, 0)}

# viridis (matplotlib's default map) at 10 equally spaced points, interpolated linearly between them
VIRIDIS: tuple[RGB, ...] = (
    (0x44, 0x01, 0x54), (0x48, 0x28, 0x78), (0x3E, 0x4A, 0x89), (0x31, 0x68, 0x8E), (0x26, 0x82, 0x8E),
    (0x1F, 0x9E, 0x89), (0x35, 0xB7, 0x79), (0x6D, 0xCD, 0x59), (0xB4, 0xDE, 0x2C), (0xFD, 0xE7, 0x25))
# ColorBrewer RdBu reversed (blue low, near-white centre, red high), 11 equally spaced points
RDBU: tuple[RGB, ...] = (
    (0x05, 0x30, 0x61), (0x21, 0x66, 0xAC), (0x43, 0x93, 0xC3), (0x92, 0xC5, 0xDE), (0xD1, 0xE5, 0xF0),
    (0xF7, 0xF7, 0xF7), (0xFD, 0xDB, 0xC7), (0xF4, 0xA5, 0x82), (0xD6, 0x60, 0x4D), (0xB2, 0x18, 0x2B),
    (0x67, 0x00, 0x1F))


def sample_map(anchors: Sequence[RGB], t: float) -> RGB:
    """The colour at t in [0, 1] of a map given at equally spaced anchors (linear in RGB between them)."""
    t = min(max(float(t), 0.0), 1.0) * (len(anchors) - 1)
    i = min(int(t), len(anchors) - 2)
    f = t - i
    a, b = anchors[i], anchors[i + 1]
    return (round(a[0] + (b[0] - a[0]) * f), round(a[1] + (b[1] - a[1]) * f), round(a[2] + (b[2] - a[2]) * f))


@lru_cache(maxsize=4)
def palette(kind: str) -> tuple[RGB, ...]:
    """LEVELS colours of the sequential ("seq") or diverging ("div") map, level k at t = k / (LEVELS - 1)."""
    anchors = VIRIDIS if kind == "seq" else RDBU
    return tuple(sample_map(anchors, k / (LEVELS - 1)) for k in range(LEVELS))


def contrast(rgb: RGB) -> RGB:
    """Black or white, whichever reads better on `rgb` (relative luminance above or below 0.45)."""
    lum = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255
    return (0, 0, 0) if lum > 0.45 else (255, 255, 255)


@lru_cache(maxsize=4096)
def _style(fg: RGB | None, bg: RGB | None, bold: bool = False) -> Style:
    return Style(color=Color.from_rgb(*fg) if fg else None, bgcolor=Color.from_rgb(*bg) if bg else None,
                 bold=bold or None)


def color_range(values: np.ndarray, vmin: float | None, vmax: float | None,
                center: float | None) -> tuple[float, float]:
    """The (lo, hi) the map spans: the given ends, else the finite values' range; with a centre, symmetric
    about it (c -+ max|v - c|). A constant or empty grid gets a unit span so every cell has a colour."""
    finite = values[np.isfinite(values)]
    if center is not None:
        half = float(np.max(np.abs(finite - center))) if finite.size else 1.0
        lo = vmin if vmin is not None else center - half
        hi = vmax if vmax is not None else center + half
    else:
        lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
        hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return float(lo), float(hi)


def levels(values: np.ndarray, lo: float, hi: float, n: int = LEVELS) -> np.ndarray:
    """int [ny, nx]: the level 0..n-1 of every cell, round(clip((v - lo) / (hi - lo), 0, 1) * (n - 1)),
    -1 where the value is not finite."""
    with np.errstate(all="ignore"):
        t = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    k = np.rint(np.nan_to_num(t, nan=0.0) * (n - 1)).astype(int)
    return np.where(np.isfinite(values), k, -1)


def contour_mask(values: np.ndarray, level: float) -> np.ndarray:
    """bool [ny, nx]: the cells a contour `values = level` passes through. For every pair of horizontally
    or vertically adjacent finite cells on opposite sides of the level, the one nearer to it (a one-cell
    thick line); cells exactly at the level too. Non-finite cells are never on a line."""
    v = np.asarray(values, dtype=float)
    d = v - level
    ok = np.isfinite(d)
    mask = ok & (d == 0)
    with np.errstate(invalid="ignore"):
        for a, b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                     ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
            da, db = d[a], d[b]
            cross = ok[a] & ok[b] & (np.sign(da) * np.sign(db) < 0)
            a_nearer = np.abs(da) <= np.abs(db)
            mask[a] |= cross & a_nearer
            mask[b] |= cross & ~a_nearer
    return mask


class _Builder:
    """Collects (text, style) pieces and makes one Text at the end (much faster than Text.append per cell)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.spans: list[Span] = []
        self.at = 0

    def append(self, text: str, style: Style | str | None = None) -> None:
        self.parts.append(text)
        end = self.at + len(text)
        if style is not None and style != "":
            self.spans.append(Span(self.at, end, style))
        self.at = end

    def text(self) -> Text:
        plain = "".join(self.parts).rstrip()
        spans = [s for s in self.spans if s.start < len(plain)]
        return Text(plain, spans=spans, no_wrap=True, overflow="crop")


def tick_label(v: object) -> str:
    """An axis value as a tick label: numbers with 3 significant digits (fmt_num), anything else as text."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return fmt_num(float(v), 3)
    return str(v)


def _x_ticks(nx: int, cell_w: int, labels: list[str]) -> list[int]:
    """The cells that get an x label: first, last, and evenly spaced ones between with room for each label."""
    if nx == 0:
        return []
    width = max(len(s) for s in labels) + 1
    step = max(1, math.ceil(width / cell_w))
    picks = list(range(0, nx, step))
    last = nx - 1
    if picks[-1] != last:
        if (last - picks[-1]) * cell_w >= len(labels[picks[-1]]) + 1:
            picks.append(last)
        elif len(picks) > 1:
            picks[-1] = last
    return picks


def _y_ticks(ny: int, rows_per_line: int) -> dict[int, int]:
    """{text line (0 = top): the row it labels}: about 10 rows evenly spaced from row 0, the bottom and
    the top row always; in the compact layout a line labels whichever of its two rows is a tick row."""
    step = max(rows_per_line, math.ceil(ny / 10))
    rows = list(range(0, ny, step)) + [ny - 1]
    out: dict[int, int] = {}
    for r in rows:
        line = (ny - 1 - r) // rows_per_line
        if line not in out or r in (0, ny - 1):
            out[line] = r
    return out


def heatmap_text(values: np.ndarray, *, x_label: str, x_values: Sequence, y_label: str, y_values: Sequence,
                 title: str = "", vmin: float | None = None, vmax: float | None = None,
                 lines: Sequence[tuple[np.ndarray, str]] = (), cursor: tuple[int, int] | None = None,
                 color: bool = True, center: float | None = None, compact: bool = False,
                 nonfinite_label: str = "non-finite", cell_width: int = 2) -> Text:
    """The heatmap of `values[iy, ix]` (y = y_values[iy] upward, x = x_values[ix] rightward) as a Text.

    `cursor` is (iy, ix), an index into `values`; `center` picks the diverging map centred there (None:
    sequential); `compact` the half-block layout (colour only); `nonfinite_label` names the grey cells in the
    legend (a sweep in progress: "not run or non-finite"); `cell_width` the characters per cell of the full
    layout (2: about square; a small grid may take more). See the module docstring."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"heatmap values must be 2-D [ny, nx], got shape {v.shape}")
    ny, nx = v.shape
    if len(x_values) != nx or len(y_values) != ny:
        raise ValueError(f"heatmap axes have {len(y_values)} x {len(x_values)} values for a grid of {ny} x {nx}")
    compact = compact and color
    kind = "seq" if center is None else "div"
    lo, hi = color_range(v, vmin, vmax, center)
    lev = levels(v, lo, hi, LEVELS if color else len(RAMP))
    masks = [np.asarray(m, dtype=bool) for m, _ in lines]
    line_id = np.full((ny, nx), -1, dtype=int)
    for i in range(len(masks) - 1, -1, -1):  # the first line wins where lines meet
        if masks[i].shape != (ny, nx):
            raise ValueError(f"contour mask {lines[i][1]!r} has shape {masks[i].shape}, not {(ny, nx)}")
        line_id[masks[i] & np.isfinite(v)] = i
    if cursor is not None:
        cursor = (int(cursor[0]), int(cursor[1])) if 0 <= cursor[0] < ny and 0 <= cursor[1] < nx else None

    cell_w = 1 if compact else max(2, int(cell_width))
    rows_per_line = 2 if compact else 1
    y_labels = [tick_label(y) for y in y_values]
    y_ticks = _y_ticks(ny, rows_per_line)
    label_w = max([len(y_labels[r]) for r in y_ticks.values()] + [1])
    pal = palette(kind)
    out = _Builder()
    if title:
        out.append(title + "\n", "bold" if color else None)
    out.append(f"{'':>{label_w}} {y_label} ↑\n" if color else f"{'':>{label_w}} {y_label} ^\n")

    n_lines = math.ceil(ny / rows_per_line)
    colours = cell_colours(lev, line_id, cursor, kind) if compact else None
    glyphs = None if compact else cell_glyphs(lev, line_id, cursor)
    for t in range(n_lines):
        top = ny - 1 - t * rows_per_line  # the line's upper (or only) row
        label = y_labels[y_ticks[t]] if t in y_ticks else ""
        on_cursor = cursor is not None and (cursor[0] == top or (compact and cursor[0] == top - 1))
        out.append(f"{label:>{label_w}}")
        out.append(("▶" if color else ">") if on_cursor else ("┤" if label and color else ("|" if not color else "│")))
        if compact:
            _compact_line(out, colours[top], colours[top - 1] if top >= 1 else None, kind)
        elif color:
            _full_line(out, lev[top], glyphs[top], kind, cell_w)
        else:
            _plain_line(out, lev[top], glyphs[top], cell_w)
        out.append("\n")

    # x axis: a tick under each labelled cell, the cursor's column marked, labels, then the axis name
    x_labels = [tick_label(x) for x in x_values]
    picks = _x_ticks(nx, cell_w, x_labels)
    axis = ["─" if color else "-"] * (nx * cell_w)
    for ix in picks:
        axis[ix * cell_w] = "┬" if color else "+"
    if cursor is not None:
        axis[cursor[1] * cell_w] = "▲" if color else "^"
    out.append(" " * label_w + ("└" if color else "+") + "".join(axis) + "\n")
    row = [" "] * (nx * cell_w + max((len(s) for s in x_labels), default=0) + 1)
    for ix in picks:
        s = x_labels[ix]
        row[ix * cell_w: ix * cell_w + len(s)] = list(s)
    ticks = "".join(row).rstrip()
    name = f"{x_label} →" if color else f"{x_label} ->"
    if len(ticks) + 3 + len(name) <= max(nx * cell_w + 24, 60):  # the axis name after the last tick label
        out.append(" " * (label_w + 1) + ticks + "   " + name + "\n")
    else:
        out.append(" " * (label_w + 1) + ticks + "\n")
        out.append(" " * (label_w + 1) + name.center(nx * cell_w).rstrip() + "\n")

    finite = v[np.isfinite(v)]
    _colour_bar(out, lo, hi, center, pal, color, label_w + 1, max(16, min(40, nx * cell_w - 16)),
                below=bool((finite < lo).any()), above=bool((finite > hi).any()))
    _legend(out, lines, line_id, v, cursor, color, compact, kind, label_w + 1, nonfinite_label,
            max(72, nx * cell_w))
    return out.text()


NONE = -1  # colour index of "no cell" (the lower half below row 0 in the compact layout)


def colour_table(kind: str) -> tuple[RGB, ...]:
    """Every colour a cell can have, by index: the map's LEVELS colours, then non-finite grey, the line
    colours and the cursor colour (the compact layout paints lines and the cursor; see cell_colours)."""
    return (*palette(kind), NONFINITE_RGB, *LINE_COLOURS[kind], CURSOR_RGB[kind])


def cell_colours(lev: np.ndarray, line_id: np.ndarray, cursor, kind: str) -> np.ndarray:
    """int [ny, nx]: the colour_table index of every cell in the compact layout (value, grey, line, cursor)."""
    n_lines = len(LINE_COLOURS[kind])
    ci = np.where(lev < 0, LEVELS, lev)
    on_line = (line_id >= 0) & (lev >= 0)
    ci = np.where(on_line, LEVELS + 1 + line_id % n_lines, ci)
    if cursor is not None:
        ci[cursor] = LEVELS + 1 + n_lines
    return ci


def cell_glyphs(lev: np.ndarray, line_id: np.ndarray, cursor) -> np.ndarray:
    """int [ny, nx]: what the full layout writes in a cell: 0 nothing (spaces), 1 non-finite, 2 + i
    line i's glyph, GLYPH_CURSOR the cursor's '[]'."""
    g = np.where(lev < 0, 1, np.where(line_id >= 0, 2 + line_id % len(LINE_GLYPHS), 0))
    if cursor is not None:
        g[cursor] = GLYPH_CURSOR
    return g


GLYPH_CURSOR = 2 + len(LINE_GLYPHS)


def _glyph_text(g: int, plain_level: int = 0, width: int = 2) -> str:
    """What a cell `width` characters wide shows: ramp, non-finite, line glyph, or the cursor '[ ]'."""
    if g == 0:
        return RAMP[plain_level] * width
    if g == 1:
        return NONFINITE * width
    if g == GLYPH_CURSOR:
        return "[" + " " * (width - 2) + "]"
    return LINE_GLYPHS[g - 2] * width


def _runs(codes: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of every run of equal codes in a 1-D array."""
    cuts = np.flatnonzero(np.diff(codes)) + 1
    edges = [0, *cuts.tolist(), len(codes)]
    return list(zip(edges[:-1], edges[1:], strict=False))


@lru_cache(maxsize=8192)
def _full_style(kind: str, bg_index: int, glyph: int) -> Style:
    bg = NONFINITE_RGB if bg_index >= LEVELS else palette(kind)[bg_index]
    if glyph == 0:
        return _style(None, bg)
    return _style(contrast(bg), bg, glyph != 1)


def _full_line(out: _Builder, lev_row: np.ndarray, glyph_row: np.ndarray, kind: str, width: int = 2) -> None:
    """One grid row in the full layout: two characters per cell on the cell's colour (the value's colour
    under a line or the cursor, grey where not finite)."""
    bg_arr = np.where(lev_row < 0, LEVELS, lev_row)
    codes = bg_arr * 16 + glyph_row
    bg, glyph = bg_arr.tolist(), glyph_row.tolist()
    for i, j in _runs(codes):
        g = glyph[i]
        out.append(_glyph_text(g, 0, width) * (j - i), _full_style(kind, bg[i], g))


def _plain_line(out: _Builder, lev_row: np.ndarray, glyph_row: np.ndarray, width: int = 2) -> None:
    """One grid row with color=False: the ramp character twice per cell, 'xx', a line glyph or '[]'."""
    out.append("".join(_glyph_text(int(g), int(k), width) for k, g in zip(lev_row, glyph_row, strict=False)))


@lru_cache(maxsize=8192)
def _half_style(kind: str, up: int, low: int) -> tuple[str, Style]:
    table = colour_table(kind)
    if up == LEVELS and low in (LEVELS, NONE):  # non-finite, the whole character: 'x' on grey
        return NONFINITE, _style(contrast(NONFINITE_RGB), NONFINITE_RGB)
    return "▀", _style(table[up], None if low == NONE else table[low])


def _compact_line(out: _Builder, up_row: np.ndarray, low_row: np.ndarray | None, kind: str) -> None:
    """Two grid rows in one line of '▀': foreground = the upper row's colour, background = the lower's."""
    low = np.full_like(up_row, NONE) if low_row is None else low_row
    codes = up_row * 256 + (low + 1)
    up_list, low_list = up_row.tolist(), low.tolist()
    for i, j in _runs(codes):
        char, style = _half_style(kind, up_list[i], low_list[i])
        out.append(char * (j - i), style)


def _colour_bar(out: _Builder, lo: float, hi: float, center: float | None, pal, color: bool, indent: int,
                width: int, below: bool = False, above: bool = False) -> None:
    """One line: `lo`, the map as a bar `width` characters long split by its middle value (the centre of a
    diverging map), `hi`. An end some cells go past (they show the end's colour) reads <lo or >hi."""
    left = ("<" if below else "") + fmt_num(lo, 3)
    right = (">" if above else "") + fmt_num(hi, 3)
    mid = fmt_num(center if center is not None else (lo + hi) / 2, 3)
    half = max(width // 2, 2)
    out.append(" " * indent + left + " ")
    for part, (j0, j1) in enumerate(((0, half), (half, 2 * half))):
        if part:
            out.append(f" {mid} ")
        if color:
            for j in range(j0, j1):
                out.append(" ", _style(None, pal[round(j / (2 * half - 1) * (LEVELS - 1))]))
        else:
            out.append("".join(RAMP[round(j / (2 * half - 1) * (len(RAMP) - 1))] for j in range(j0, j1)))
    out.append(" " + right + "\n")


def _legend(out: _Builder, lines, line_id: np.ndarray, v: np.ndarray, cursor, color: bool, compact: bool, kind: str,
            indent: int, nonfinite_label: str = "non-finite", width: int = 60) -> None:
    """Lines of at most about `width` characters naming what is drawn over the cells: the contour lines,
    non-finite cells, the cursor."""
    parts: list[tuple[str, Style | str, str]] = []
    for i, (_, label) in enumerate(lines):
        drawn = bool((line_id == i).any())
        if compact:
            rgb = LINE_COLOURS[kind][i % len(LINE_COLOURS[kind])]
            sample, style = "██", _style(rgb, None)
        else:
            sample, style = LINE_GLYPHS[i % len(LINE_GLYPHS)] * 2, "bold" if color else ""
        parts.append((sample, style, label + ("" if drawn else " (not in range)")))
    if not np.isfinite(v).all():
        parts.append((NONFINITE * 2, _style(contrast(NONFINITE_RGB), NONFINITE_RGB) if color else "",
                      nonfinite_label))
    if cursor is not None:
        if compact:
            parts.append(("██", _style(CURSOR_RGB[kind], None), "cursor"))
        else:
            parts.append(("[]", "bold" if color else "", "cursor"))
    if not parts:
        return
    out.append(" " * indent)
    used = 0
    for j, (sample, style, label) in enumerate(parts):
        size = len(sample) + 1 + len(label)
        if j and used + 3 + size > width:
            out.append("\n" + " " * indent)
            used = 0
        elif j:
            out.append("   ")
            used += 3
        out.append(sample, style)
        out.append(" " + label)
        used += size
    out.append("\n")
