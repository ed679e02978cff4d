"""DistributionView: fast.ai's "colorful dimension" at initialization, one column per layer.

API (small on purpose; the app only needs `show`):

    view = DistributionView(id="dist")
    view.show(result, "post")        # result: RunResult | None; tensor: one of tui/tensors.py ALL_TENSORS
    view.tensor, view.result         # what is shown now
    render_distribution(result, tensor, width, height, palette) -> Rendering   # pure, for tests/export

What is drawn (content area W x H, every row optional when H is small):

    post x^l · histogram per layer · colour log(1+count)      0 ▀▀▀▀▀▀ 1.23e+3   <- header + colour ramp
      10 ▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀                                                <- heatmap: x = layers,
       0 ▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀                                                   y = value bins (two bins
     -10 ▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀                                                   per text row, half blocks)
    layer 1    5    10   15  20                                                <- layer numbers
     zero ▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄                                                <- zero_frac per column (0..1)
    zero_frac L1 0.500 · L20 0.498 · max 0.512 (L7)                            <- the numbers

Colour = log(1 + count) scaled by the largest cell, on a viridis ramp (readable on dark and light
themes, survives Textual's 256-colour downsampling); empty cells take the widget's background and text
colours come from the theme, so a theme change restyles the view. Counts are averaged over trials;
NaN/inf/negative counts count as 0. More layers than columns: adjacent layers are averaged into one
column; more bins than pixel rows: adjacent bins are summed (fewer: each bin is stretched). The engine's
bins are symmetric about 0; a half that no layer uses is dropped (a relu's post starts at 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from initscope.engine.numbers import fmt_num
from initscope.engine.signal_range import first_nonfinite
from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.strip import Strip
from textual.widget import Widget

from ..tensors import TENSOR_NAMES, tensor_label

TENSOR_TITLES = dict(TENSOR_NAMES)  # the names without a run; a run's own are tensor_label(tensor, its spec)
MAX_COL_WIDTH = 12  # a layer never takes more than this many characters
_SPARK = " ▁▂▃▄▅▆▇█"

# viridis, 9 stops (matplotlib's _viridis_data at 0, 1/8, ..., 1)
_VIRIDIS = np.array([
    (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
], dtype=float)


LEVELS = 64  # colour steps actually drawn (a lookup table; the 256-colour palette has fewer anyway)


def ramp(v: float) -> tuple[int, int, int]:
    """Viridis colour for v in [0, 1] (clipped)."""
    v = min(max(float(v), 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(v), len(_VIRIDIS) - 2)
    t = v - i
    r, g, b = _VIRIDIS[i] * (1 - t) + _VIRIDIS[i + 1] * t
    return int(round(r)), int(round(g)), int(round(b))


_RAMP_COLOURS = [RichColor.from_rgb(*ramp(i / (LEVELS - 1))) for i in range(LEVELS)]


@dataclass(frozen=True)
class Palette:
    """The theme colours the view uses (Rich styles); see DistributionView._palette."""

    text: Style = field(default_factory=Style)
    muted: Style = field(default_factory=lambda: Style(dim=True))
    accent: Style = field(default_factory=Style)
    background: RichColor | None = None


@dataclass
class Rendering:
    """What render_distribution produced: the lines plus the numbers behind them (for tests)."""

    lines: list[list[Segment]]
    message: str = ""  # set when there is nothing to draw (no result, no gradients, ...)
    columns: list[tuple[int, int]] = field(default_factory=list)  # 0-based [start, end) layers per column
    col_width: int = 0
    grid: np.ndarray | None = None  # [pixels, columns] intensity in [0, 1], NaN = empty; row 0 = bottom
    heat_top: int = 0  # index of the first heatmap line in `lines`
    heat_rows: int = 0
    gutter: int = 0
    zero_frac: np.ndarray | None = None  # per column
    max_count: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join("".join(s.text for s in line) for line in self.lines)


def fmt_value(v: float) -> str:
    """An axis or count label: 3 significant digits by the shared formatter (engine/numbers.py)."""
    return fmt_num(v, 3)


def _clean_counts(result, tensor: str) -> np.ndarray | None:
    h = result.hist.get(tensor) if result.hist else None
    if h is None:
        return None
    h = np.asarray(h, dtype=float)
    if h.ndim == 2:
        h = h[None]
    h = np.where(np.isfinite(h) & (h > 0), h, 0.0)
    return h.mean(axis=0)  # [L, B]


def _one_sided(counts: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the half of a symmetric value axis that no layer uses: a relu's post x^l >= 0 starts the axis
    at 0 instead of leaving the lower half empty (likewise a tensor with nothing above 0 ends at 0)."""
    per_bin = counts.sum(axis=0)
    if not per_bin.sum() > 0:
        return counts, edges
    below = edges[1:] <= 0  # bins entirely at or below 0 (an exact 0 counts in the bin that starts at 0)
    above = edges[:-1] >= 0
    if below.any() and not per_bin[below].any() and (~below).sum() >= 1:
        k = int(below.sum())
        return counts[:, k:], edges[k:]
    if above.any() and not per_bin[above].any() and (~above).sum() >= 1:
        k = int((~above).sum())
        return counts[:, :k], edges[:k + 1]
    return counts, edges


def _columns(n_layers: int, avail: int) -> tuple[list[tuple[int, int]], int]:
    if n_layers <= avail:
        cw = max(1, min(avail // n_layers, MAX_COL_WIDTH))
        return [(i, i + 1) for i in range(n_layers)], cw
    bounds = [math.floor(c * n_layers / avail) for c in range(avail + 1)]
    return [(bounds[c], bounds[c + 1]) for c in range(avail)], 1


def _rebin(counts: np.ndarray, pixels: int) -> np.ndarray:
    """[L, B] -> [L, pixels]: sum over bins when shrinking, stretch when growing (overlap-weighted)."""
    n_bins = counts.shape[1]
    cum = np.concatenate([np.zeros((counts.shape[0], 1)), np.cumsum(counts, axis=1)], axis=1)
    pos = np.linspace(0.0, n_bins, pixels + 1)
    idx = np.arange(n_bins + 1)
    at = np.stack([np.interp(pos, idx, row) for row in cum])
    return np.diff(at, axis=1) * max(1.0, pixels / n_bins)


def _edge_at(edges: np.ndarray, frac_bin: float) -> float:
    return float(np.interp(frac_bin, np.arange(len(edges)), edges))


def _layer_ticks(columns: list[tuple[int, int]], cw: int, width: int,
                 label_of=None) -> list[tuple[int, str]]:
    """(x, label) pairs for layer numbers along the bottom: 1, every `step`-th layer, and L; no overlaps.
    `label_of(index0)`: the label of column index0 (default: index0 + 1, the layer number)."""
    n_layers = columns[-1][1]
    starts = np.array([a for a, _ in columns])

    def at(layer0: int) -> tuple[int, str]:
        c = int(np.searchsorted(starts, layer0, side="right") - 1)
        label = label_of(layer0) if label_of is not None else str(layer0 + 1)
        x = c * cw + (cw - 1) // 2
        return min(x, max(0, width - len(label))), label

    def clash(a: tuple[int, str], b: tuple[int, str]) -> bool:
        (xa, la), (xb, lb) = sorted([a, b])
        return xa + len(la) >= xb  # at least one blank between labels

    first, last = at(0), at(n_layers - 1)
    ends = [first] if n_layers == 1 or clash(first, last) else [first, last]
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000):
        middle = [at(k) for k in range(step - 1, n_layers - 1, step) if k > 0]
        middle = [m for m in middle if not any(clash(m, e) for e in ends)]
        if all(not clash(a, b) for a, b in zip(middle, middle[1:], strict=False)):
            return sorted(ends + middle)
    return ends


def _text_line(parts: list[tuple[str, Style]], width: int, pad: Style) -> list[Segment]:
    segs: list[Segment] = []
    used = 0
    for text, style in parts:
        if used >= width:
            break
        text = text[: width - used]
        segs.append(Segment(text, style))
        used += len(text)
    if used < width:
        segs.append(Segment(" " * (width - used), pad))
    return segs


def _message_lines(message: str, width: int, height: int, palette: Palette) -> list[list[Segment]]:
    lines = [_text_line([], width, palette.text) for _ in range(height)]
    if height and width:
        lines[min(1, height - 1) if height > 2 else 0] = _text_line([(" " + message, palette.muted)], width,
                                                                    palette.text)
    return lines


def _edges(result, tensor: str):
    """The bins of `tensor`: RunResult.edges(tensor) (normed and out have their own), else hist_edges."""
    edges = getattr(result, "edges", None)
    return edges(tensor) if callable(edges) else result.hist_edges


def _missing_message(result, tensor: str) -> str:
    """Why `result` has no histogram of `tensor`: no gradients, no norm, no residual, or no data."""
    spec = getattr(result, "spec", None)
    if tensor.startswith("grad") and spec is not None and not spec.grad:
        return "no gradients in this run (grad=false)"
    if tensor == "normed" and spec is not None and not spec.has_norm:
        return "no normed tensor in this run (norm=none)"
    if tensor in ("out", "grad_out") and spec is not None and not spec.has_residual:
        return f"no {tensor} tensor in this run (residual=none: the block output is post)"
    return f"no histogram of {tensor} in this run"


def render_distribution(result, tensor: str, width: int, height: int, palette: Palette | None = None,
                        axis: str = "layer", label_of=None) -> Rendering:
    """Draw the heatmap of `result.hist[tensor]` into width x height cells (pure; no Textual app needed).

    `axis`: what a column is ("layer"; the Training tab draws one layer over "step"s with the same code),
    `label_of(i)`: the axis label of column i (default i + 1)."""
    palette = palette or Palette()
    width, height = max(0, int(width)), max(0, int(height))
    if width == 0 or height == 0:
        return Rendering(lines=[[] for _ in range(height)])
    if result is None:
        msg = "no run yet: the histogram per layer appears here"
        return Rendering(_message_lines(msg, width, height, palette), message=msg)
    if tensor not in TENSOR_TITLES:
        msg = f"unknown tensor {tensor!r}"
        return Rendering(_message_lines(msg, width, height, palette), message=msg)
    counts = _clean_counts(result, tensor)
    edges = np.asarray(_edges(result, tensor), dtype=float)
    if counts is None:
        msg = _missing_message(result, tensor)
        return Rendering(_message_lines(msg, width, height, palette), message=msg)
    if counts.shape[0] == 0 or counts.shape[1] == 0 or len(edges) != counts.shape[1] + 1:
        msg = "no histogram data in this run"
        return Rendering(_message_lines(msg, width, height, palette), message=msg)
    if not np.all(np.isfinite(edges)):
        finite = edges[np.isfinite(edges)]
        fill = finite if finite.size else np.array([0.0, 1.0])
        edges = np.where(np.isfinite(edges), edges, np.interp(np.arange(len(edges)), [0, len(edges) - 1],
                                                              [fill.min(), fill.max()]))
    counts, edges = _one_sided(counts, edges)

    n_layers = counts.shape[0]
    # which rows exist, most important first: heatmap, x axis, zero sparkline, header, zero numbers
    show_axis = height >= 3
    show_zero = height >= 4
    show_header = height >= 6
    show_summary = height >= 7
    heat_rows = height - sum((show_axis, show_zero, show_header, show_summary))
    pixels = 2 * heat_rows

    # left gutter: value labels (and "layer"/"zero")
    y_labels = _y_labels(edges, heat_rows)
    gutter = max([len(s) for s in y_labels.values()] + [4 if show_zero else 0, len(axis) if show_axis else 0]) + 1
    if width - gutter < 4:
        gutter = 0
        y_labels = {}
    avail = width - gutter
    columns, cw = _columns(n_layers, avail)

    # [L, B] -> [columns, B] (mean over the layers in a column) -> [columns, pixels]
    col_counts = np.stack([counts[a:b].mean(axis=0) for a, b in columns])
    pix = _rebin(col_counts, pixels)  # [columns, pixels], pixel 0 = lowest values
    max_count = float(pix.max()) if pix.size else 0.0
    if max_count > 0:
        grid = np.where(pix > 0, np.log1p(pix) / math.log1p(max_count), np.nan).T  # [pixels, columns]
    else:
        grid = np.full((pixels, len(columns)), np.nan)

    zero = _column_stat(result, tensor, "zero_frac", columns)
    bg = palette.background
    text, muted = palette.text, palette.muted
    lines: list[list[Segment]] = []

    if show_header:
        legend = [(" 0 ", muted)] + [("█", Style(color=_RAMP_COLOURS[round(i * (LEVELS - 1) / 7)], bgcolor=bg))
                                     for i in range(8)] + [(f" {fmt_value(max_count)} ", muted)]
        legend_len = sum(len(t) for t, _ in legend)
        name = tensor_label(tensor, getattr(result, "spec", None))
        titles = [f"{name} · histogram per {axis} · colour log(1+count)", f"{name} · colour log(1+count)", name]
        parts = [(titles[-1], text)]
        for title in titles:  # the longest title that fits beside the colour legend, else the name alone
            if width >= len(title) + legend_len + 1:
                parts = [(title, text), (" " * (width - len(title) - legend_len), text), *legend]
                break
        lines.append(_text_line(parts, width, text))

    heat_top = len(lines)
    level = np.where(np.isnan(grid), -1, np.rint(np.nan_to_num(grid) * (LEVELS - 1))).astype(int)
    cells: dict[tuple[int, int], Segment] = {}
    for r in range(heat_rows):
        top_px, bot_px = pixels - 1 - 2 * r, pixels - 2 - 2 * r
        segs: list[Segment] = []
        if gutter:
            segs.append(Segment(y_labels.get(r, "").rjust(gutter - 1) + " ", muted))
        for top, bottom in zip(level[top_px].tolist(), level[bot_px].tolist(), strict=True):
            seg = cells.get((top, bottom))
            if seg is None:
                seg = cells[top, bottom] = _cell(top, bottom, bg, cw)
            segs.append(seg)
        used = gutter + len(columns) * cw
        if used < width:
            segs.append(Segment(" " * (width - used), text))
        lines.append(segs)

    if show_axis:
        buf = [" "] * avail
        for x, label in _layer_ticks(columns, cw, avail, label_of):
            buf[x:x + len(label)] = label
        lines.append(_text_line([(axis.rjust(gutter - 1) + " " if gutter else "", muted),
                                 ("".join(buf), muted)], width, text))
    if show_zero:
        accent = palette.accent
        spark = "".join(_spark(z) * cw for z in zero)
        lines.append(_text_line([("zero".rjust(gutter - 1) + " " if gutter else "", muted), (spark, accent)],
                                width, text))
    if show_summary:
        lines.append(_text_line([(_zero_summary(result, tensor, label_of), muted)], width, text))

    return Rendering(lines=lines, columns=columns, col_width=cw, grid=grid, heat_top=heat_top,
                     heat_rows=heat_rows, gutter=gutter, zero_frac=zero, max_count=max_count)


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _y_labels(edges: np.ndarray, rows: int) -> dict[int, str]:
    """Text row (0 = top) -> label: the top and bottom edges, then round values (0 first) on free rows."""
    if rows <= 0:
        return {}
    n_bins = len(edges) - 1
    lo, hi = float(edges[0]), float(edges[-1])
    labels: dict[int, str] = {0: fmt_value(hi)}
    if rows >= 2:
        labels[rows - 1] = fmt_value(lo)
    if rows < 3 or not hi > lo:
        return labels

    def row_of(v: float) -> int:
        frac = float(np.interp(v, edges, np.arange(len(edges)))) / n_bins  # 0..1 from the bottom
        return min(rows - 1, max(0, int((1 - frac) * rows)))

    step = _nice_step(hi - lo, max(1, rows // 3))
    values = [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
    values.sort(key=lambda v: (v != 0, abs(v)))  # 0 first: it matters most
    for v in values:
        r = row_of(v)
        if all(abs(r - k) > 1 for k in labels):
            labels[r] = fmt_value(round(v, 12))
    return labels


def _cell(top: int, bottom: int, bg: RichColor | None, cw: int) -> Segment:
    """One half-block cell: top and bottom are ramp levels, -1 = empty."""
    if top < 0 and bottom < 0:
        return Segment(" " * cw, Style(bgcolor=bg))
    if top >= 0 and bottom >= 0:
        return Segment("▀" * cw, Style(color=_RAMP_COLOURS[top], bgcolor=_RAMP_COLOURS[bottom]))
    if top >= 0:
        return Segment("▀" * cw, Style(color=_RAMP_COLOURS[top], bgcolor=bg))
    return Segment("▄" * cw, Style(color=_RAMP_COLOURS[bottom], bgcolor=bg))


def _spark(z: float) -> str:
    if not math.isfinite(z):
        return "·"
    z = min(max(z, 0.0), 1.0)
    if z == 0:
        return " "
    return _SPARK[max(1, int(round(z * (len(_SPARK) - 1))))]


def _zero_per_layer(result, tensor: str) -> np.ndarray:
    try:
        z = np.asarray(result.headline(tensor, "zero_frac"), dtype=float)
    except (KeyError, IndexError, AttributeError):
        return np.full(result.hist[tensor].shape[-2] if tensor in result.hist else 0, np.nan)
    return z


def _column_stat(result, tensor: str, stat: str, columns: list[tuple[int, int]]) -> np.ndarray:
    z = _zero_per_layer(result, tensor)
    out = []
    for a, b in columns:
        part = z[a:b]
        part = part[np.isfinite(part)]
        out.append(float(part.mean()) if part.size else math.nan)
    return np.array(out)


def _zero_summary(result, tensor: str, label_of=None) -> str:
    z = _zero_per_layer(result, tensor)
    if label_of is not None:  # columns that are not layers (the Training tab's steps)
        finite = z[np.isfinite(z)]
        if not finite.size:
            return "zero_frac: n/a"
        return (f"zero_frac {label_of(0)}: {z[0]:.3f} · {label_of(len(z) - 1)}: {z[-1]:.3f}"
                if np.isfinite(z[0]) and np.isfinite(z[-1]) else f"zero_frac max {finite.max():.3f}")
    n = len(z)
    if n == 0:
        return "zero_frac: none"

    def f(v: float) -> str:
        return f"{v:.3f}" if math.isfinite(v) else "n/a"

    parts = [f"zero_frac L1 {f(z[0])}"]
    if n > 1:
        parts.append(f"L{n} {f(z[-1])}")
    finite = np.isfinite(z)
    if finite.any() and n > 2:
        i = int(np.nanargmax(np.where(finite, z, -np.inf)))
        parts.append(f"max {f(z[i])} (L{i + 1})")
    bad = first_nonfinite(result, tensor)
    if bad is not None:  # first: it is the thing to notice, and the line may be cut at the right
        parts.insert(0, f"non-finite from L{bad}")
    return " · ".join(parts)


class DistributionView(Widget):
    """The colorful dimension of one tensor of a RunResult. Call `show(result, tensor)`."""

    DEFAULT_CSS = """
    DistributionView {
        width: 1fr;
        height: 1fr;
        min-height: 4;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._result = None
        self._tensor = "post"
        self._cache_key: tuple | None = None
        self._rendering: Rendering | None = None

    @property
    def result(self):
        return self._result

    @property
    def tensor(self) -> str:
        return self._tensor

    def show_scene(self, scene) -> None:
        """The app's view hook (tui/views.py): the current run's tensor shown."""
        self.show(scene.current, scene.tensor)

    def show(self, result, tensor: str) -> None:
        """Show `result.hist[tensor]` (result None clears the view). Safe to call before mount."""
        self._result = result
        self._tensor = tensor
        self._cache_key = None
        self.refresh()

    @property
    def rendering(self) -> Rendering:
        """The current drawing at the current size (recomputed when data, size or theme change)."""
        palette = self._palette()
        key = (id(self._result), self._tensor, self.size.width, self.size.height, palette)
        if self._rendering is None or key != self._cache_key:
            self._rendering = render_distribution(self._result, self._tensor, self.size.width, self.size.height,
                                                  palette)
            self._cache_key = key
        return self._rendering

    def _palette(self) -> Palette:
        base = self.rich_style
        try:
            bg_color = self.background_colors[1]
            fg_color = Color.parse(str(base.color.triplet.hex)) if base.color and base.color.triplet else None
        except Exception:  # pragma: no cover - not mounted yet
            return Palette()
        background = bg_color.rich_color if bg_color.a else None
        muted = base + Style(dim=True)
        if fg_color is not None and bg_color.a:
            muted = Style(color=fg_color.blend(bg_color, 0.4).rich_color, bgcolor=background)
        accent = base
        try:
            accent = Style(color=Color.parse(self.app.theme_variables["accent"]).rich_color, bgcolor=background)
        except Exception:
            pass
        return Palette(text=base, muted=muted, accent=accent, background=background)

    def render_line(self, y: int) -> Strip:
        lines = self.rendering.lines
        width = self.size.width
        if 0 <= y < len(lines):
            return Strip(lines[y], width).crop_extend(0, width, self.rich_style)
        return Strip.blank(width, self.rich_style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache_key = None
