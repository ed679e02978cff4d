"""LayerPlot: one per-layer curve plot (mean or std) that owns its data.

It never hands plotext a value it cannot draw: non-finite points are dropped (a gap), log-y is done
here (log10 of the values, `1eN` tick labels, zeros and negatives dropped) because plotext 5's own log
scale crashes on the second render, long curves are downsampled to the canvas width, and a layer that
went non-finite gets a vertical mark. Linear ticks are round numbers written by the shared formatter
(1.5e+72, not 73 digits). Measured curves are lines; the prediction is a point per layer (•), drawn
last so that it shows on top; the band is dotted (·). The legend lives outside the plot (widgets/legend.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from initscope.engine.numbers import fmt_num, nice_int_ticks
from textual.reactive import reactive
from textual_plotext import PlotextPlot

if TYPE_CHECKING:
    import numpy as np

RGB = tuple[int, int, int]

# what each kind of curve looks like; the legend (widgets/curves.py legend_notes) shows the same glyphs
MARKERS = {"measured": "braille", "theory": "•", "band": "·", "spread": "braille"}
DRAW_ORDER = {"spread": 0, "band": 1, "measured": 2, "theory": 3}  # the predicted points on top, always visible


@dataclass
class Series:
    """One curve: y per layer (layer l at x = l), drawn in `color`; kind picks the marker."""

    label: str
    y: np.ndarray
    color: RGB
    kind: str = "measured"  # measured | theory | band | spread


@dataclass
class Mark:
    """A vertical mark at a layer (the first non-finite one), with a short text."""

    layer: int
    text: str
    color: RGB


def prepare(y: np.ndarray, log_y: bool, abs_for_log: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) with x = 1-based layer, only drawable points; y transformed to log10 when log_y."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    x = np.arange(1, y.size + 1, dtype=float)
    if log_y:
        v = np.abs(y) if abs_for_log else y
        ok = np.isfinite(v) & (v > 0)
        with np.errstate(all="ignore"):
            return x[ok], np.log10(v[ok])
    ok = np.isfinite(y)
    return x[ok], y[ok]


def downsample(x: np.ndarray, y: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray]:
    if x.size <= most or most < 2:
        return x, y
    import numpy as np

    idx = np.unique(np.linspace(0, x.size - 1, most).round().astype(int))
    return x[idx], y[idx]


def decade_ticks(lo: float, hi: float, most: int = 6) -> tuple[list[float], list[str], float, float]:
    """Integer decades covering [lo, hi] (log10 units), at most `most` of them, labelled 1eN."""
    a, b = math.floor(lo), math.ceil(hi)
    if b <= a:
        b = a + 1
    step = max(1, math.ceil((b - a) / max(most - 1, 1)))
    ticks = list(range(a, b + 1, step))
    if ticks[-1] < b:
        ticks.append(ticks[-1] + step)
    return [float(t) for t in ticks], [f"1e{t}" for t in ticks], float(ticks[0]), float(ticks[-1])


def linear_ticks(lo: float, hi: float, most: int = 6) -> tuple[list[float], list[str]]:
    """Round ticks (1, 2 or 5 x 10^k apart) inside [lo, hi], at most about `most`, labelled by the shared
    formatter (engine/numbers.py): 1.5e+72 stays eight characters where plotext writes all 73 digits."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo], [fmt_num(lo, 3)]
    raw = span / max(most - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    steps = [m * power for m in (0.1, 0.2, 0.5, 1, 2, 5, 10)]
    step = next(st for st in steps if st >= raw)
    while True:  # at least two ticks, so the scale can be read
        ticks = [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
        if len(ticks) >= 2 or step == steps[0]:
            break
        step = steps[steps.index(step) - 1]
    top = max([abs(t) for t in ticks] + [step])
    digits = max(1, math.floor(math.log10(top)) - math.floor(math.log10(step)) + 1)  # enough to tell ticks apart
    return ticks, [fmt_num(0.0 if abs(t) < step * 1e-9 else t, digits) for t in ticks]


def fit_title(title: str, width: int) -> str:
    """A title that fits `width` (plotext drops one that does not): its ' · '-separated notes give way
    in order: the 'l: log' hint, then the name shrinks to its first word ('std of post x^l' -> 'std'; a
    message after ': ' stays),
    then its '(log)', then notes from the first (the last, nan/inf, stays); what is left is cut."""
    parts = title.split(" · ")

    def text() -> str:
        return " · ".join(parts)

    if len(text()) > width and "l: log" in parts:
        parts.remove("l: log")
    if len(text()) > width and " " in parts[0]:
        head, _, rest = parts[0].partition(" ")
        message = rest[rest.index(": "):] if ": " in rest else ""  # the plot's message stays ("std: not measured")
        rest = rest[:len(rest) - len(message)]
        parts[0] = head + (rest[rest.index("  ("):] if "  (" in rest else "") + message
    if len(text()) > width and "  (log)" in parts[0] and len(parts) > 1:  # the status bar says log too
        parts[0] = parts[0].replace("  (log)", "")
    while len(text()) > width and len(parts) > 1:
        parts.pop(1)  # the last note (where the values went inf/NaN) matters most: it stays longest
    return text()[:max(width, 0)]


class LayerPlot(PlotextPlot):
    """A plot of one statistic per layer for several runs (current + pinned)."""

    log_y: reactive[bool] = reactive(False, init=False)

    def __init__(self, title: str = "", *, abs_for_log: bool = False, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self.abs_for_log = abs_for_log  # log of |y| (for means, which can be negative)
        self.series: list[Series] = []
        self.marks: list[Mark] = []
        self.message = ""  # shown instead of curves when there is nothing to draw
        self.drawn_points = 0  # points handed to plotext at the last replot (tests, benchmarks)
        self.last_render = 0.0  # time.perf_counter() when the last render finished (benchmarks)

    def set_data(self, series: list[Series], marks: list[Mark] | None = None, title: str | None = None,
                 message: str = "") -> None:
        self.series = list(series)
        self.marks = list(marks or [])
        if title is not None:
            self.title = title
        self.message = message
        self.replot()

    def render(self):
        out = super().render()
        self.last_render = time.perf_counter()
        return out

    def watch_log_y(self) -> None:
        self.replot()

    def on_resize(self) -> None:
        self.replot()

    def replot(self) -> None:
        """Rebuild the figure from the owned data (clear_figure: ticks and limits change with it)."""
        plt = self.plt
        plt.clear_figure()
        log = self.log_y
        most = max(2 * (self.size.width or 100), 16)
        lo, hi = math.inf, -math.inf
        xmax = 1.0
        drawn = 0
        for s in sorted(self.series, key=lambda s: DRAW_ORDER.get(s.kind, 2)):
            xmax = max(xmax, float(len(s.y)))
            y_in = s.y
            if log and self.abs_for_log and s.kind == "theory":
                import numpy as np

                y_in = np.where(np.abs(y_in) < 1e-12, np.nan, y_in)  # a predicted 0 is not a decade
            x, y = prepare(y_in, log, self.abs_for_log)
            # a point per layer would cover the measured line on a deep net: at most one every other column
            x, y = downsample(x, y, max(most // 4, 8) if s.kind == "theory" else most)
            if x.size == 0:
                continue
            lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
            draw = plt.scatter if s.kind == "theory" else plt.plot  # a prediction is a value per layer: points
            draw(x.tolist(), y.tolist(), marker=MARKERS.get(s.kind, "braille"), color=s.color)
            drawn += int(x.size)
        self.drawn_points = drawn
        name, _, notes = self.title.partition(" · ")
        title = name + ("  (log)" if log else "") + (f" · {notes}" if notes else "")
        if self.message:
            title = f"{title}: {self.message}" if title else self.message
        tick_labels: list[str] = []
        if drawn:
            if log:
                # at most one label per two rows: when two labels share a row, plotext picks one by
                # string-hash order, which changes from process to process
                rows = max((self.size.height or 20) - 4, 2)
                ticks, labels, a, b = decade_ticks(lo, hi, most=max(2, min(6, rows // 2)))
                plt.ylim(a, b)
                plt.yticks(ticks, labels)
                tick_labels = labels
            else:
                if hi - lo < 1e-9 * max(abs(hi), 1e-300) or hi == lo:
                    pad = abs(hi) * 0.1 or 1.0
                    lo, hi = lo - pad, hi + pad
                    plt.ylim(lo, hi)
                rows = max((self.size.height or 20) - 4, 2)
                ticks, tick_labels = linear_ticks(lo, hi, most=max(2, min(6, rows // 2)))
                plt.yticks(ticks, tick_labels)
            xt = nice_int_ticks(1, int(xmax))
            plt.xticks([float(t) for t in xt], [str(t) for t in xt])
            if xmax > 1:
                plt.xlim(1, xmax)
            for m in self.marks:
                plt.vertical_line(float(m.layer), color=m.color)
                ytop = (b if log else hi)
                right_half = xmax > 1 and m.layer > (1 + xmax) / 2  # a label from there would run off the frame
                plt.text(m.text, float(m.layer), ytop, color=m.color, alignment="right" if right_half else "left")
        # plotext centres the title on the canvas and drops one wider than it: the canvas is the width
        # less the tick labels and the frame
        label_w = max((len(label) for label in tick_labels), default=0)
        plt.title(fit_title(title, (self.size.width or 100) - label_w - 5))
        self.refresh()
