"""CurvesView: the Curves tab. The mean plot, the std plot and their legend, drawn from the app's Scene.

Per drawn run (the current one and the visible pins) and the tensor shown: the measured mean and std
per block (RunResult.headline), the prediction (engine.theory.Prediction: `<tensor>_mean`,
`<tensor>_std`) as points, for the current run the finite-width one-sigma band (`<tensor>_std_lo/hi`)
and, with several trials, the mean +- one sd over trials (RunResult.spread); a vertical mark where a run
first went non-finite. While the app's first run measures, the prediction is drawn alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from initscope.engine.signal_range import first_nonfinite, range_event
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical

from ..tensors import tensor_label
from .layer_plot import LayerPlot, Mark, Series
from .legend import Legend, LegendEntry

if TYPE_CHECKING:  # numpy (and torch) load with the first result, after the first frame
    import numpy as np

    from ..views import Scene

RGB = tuple[int, int, int]
NONFINITE_RGB = (255, 85, 85)


def rgb(text: str) -> RGB:
    c = Color.parse(text)
    return (c.r, c.g, c.b)


def blend(a: RGB, b: RGB, t: float) -> RGB:
    """a moved the fraction t of the way to b, per channel: a + (b - a) t, rounded."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=False))  # type: ignore[return-value]


def theory_curve(theory: object, tensor: str, stat: str) -> np.ndarray | None:
    """The prediction's curve for (tensor, stat), or None: pre_std, post_mean, post_std, grad_std, grad_pre_std."""
    import numpy as np

    if theory is None:
        return None
    y = getattr(theory, f"{tensor}_{stat}", None)
    if y is None:
        return None
    y = np.asarray(y, dtype=float)
    return y if y.size and np.isfinite(y).any() else None


def theory_band(theory: object, tensor: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The one-sigma finite-width band around the std curve (engine.theory: pre_std_lo/hi, post_std_lo/hi)."""
    import numpy as np

    if theory is None:
        return None
    lo = getattr(theory, f"{tensor}_std_lo", None)
    hi = getattr(theory, f"{tensor}_std_hi", None)
    if lo is None or hi is None:
        return None
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if not (np.isfinite(lo).any() and np.isfinite(hi).any()):
        return None
    return lo, hi


def legend_notes(styles: dict[str, RGB | None], band_gap: str | None = None) -> list[tuple[str, RGB | None, str]]:
    """The line styles the plots use (widgets/layer_plot.py MARKERS), one legend note each; the band and
    the trials' spread only when drawn, in their own colours; band_gap (band_gap_note) where it is missing."""
    notes: list[tuple[str, RGB | None, str]] = [("──", None, "measured"), ("•", None, "theory")]
    if "band" in styles:
        notes.append(("··", styles["band"], "band ±1 sd"))
    if "spread" in styles:
        notes.append(("⣀⣀", styles["spread"], "trials ±1 sd"))
    if band_gap:
        notes.append(("", None, band_gap))
    return notes


def band_gap_note(theory: object, tensor: str) -> str | None:
    """'no band (F7 says why)' or 'no band from L5 (F7)' where the std is predicted but the theory draws
    no band (Prediction.band_reason says why, in Explain); None where the band covers every block."""
    import numpy as np

    if not hasattr(theory, f"{tensor}_std_lo") or not getattr(theory, "band_reason", None):
        return None  # the theory draws no band for this tensor at all (gradients), or has nothing to say
    std, band = theory_curve(theory, tensor, "std"), theory_band(theory, tensor)
    if std is None:
        return None
    gaps = np.isfinite(std) & (~np.isfinite(band[0]) if band is not None else True)
    if not gaps.any():
        return None
    first = int(np.argmax(gaps)) + 1
    return "no band (F7 says why)" if band is None or first == 1 else f"no band from L{first} (F7)"


def range_notes(r, tensor: str, log_y: bool) -> tuple[str, str]:
    """(mean plot, std plot) title notes for run r, by engine/signal_range.py's rule: the std plot says
    where the std left [1e-3, 1e3] (' · std>1e3 at L3'), both where values went inf/NaN (' · nan/inf
    from L32'), with a hint to the log view when the linear one is shown."""
    if r is None or tensor not in r.stats:
        return "", ""
    event, bad = range_event(r, tensor), first_nonfinite(r, tensor)
    left = f" · {event.label.split('@')[0]} at L{event.layer}" if event is not None and event.how != "nonfinite" else ""
    broke = f" · nan/inf from L{bad}" if bad is not None else ""
    hint = " · l: log" if (left or broke) and not log_y else ""
    return broke + (hint if broke else ""), left + broke + hint


class CurvesView(Vertical):
    """The mean plot (#plot-mean), the std plot (#plot-std) and the legend (#legend); `show_scene` draws."""

    DEFAULT_CSS = """
    CurvesView { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield LayerPlot("mean", abs_for_log=True, id="plot-mean")
        yield LayerPlot("std", id="plot-std")
        yield Legend(id="legend")

    def show_scene(self, scene: Scene) -> None:
        tensor = scene.tensor
        bg = scene.background
        mean_series: list[Series] = []
        std_series: list[Series] = []
        marks: list[Mark] = []
        missing = False
        styles: dict[str, RGB | None] = {}  # what is drawn -> the colour the legend shows it in
        band_gap: str | None = None  # the current run's theory draws no band somewhere: the legend says so

        def add_theory(theory: object, colour: RGB, with_band: bool) -> None:
            nonlocal band_gap
            if with_band:
                band = theory_band(theory, tensor)
                if band is not None:
                    std_series.extend(Series("band", b, blend(colour, bg, 0.7), "band") for b in band)
                    styles["band"] = blend(colour, bg, 0.7)
                band_gap = band_gap_note(theory, tensor)
            tm = theory_curve(theory, tensor, "mean")
            if tm is not None:
                mean_series.append(Series("theory", tm, colour, "theory"))
            ts = theory_curve(theory, tensor, "std")
            if ts is not None:
                std_series.append(Series("theory", ts, colour, "theory"))

        previewing = scene.current is None and scene.preview is not None and scene.running
        if previewing:  # the first run is still measuring: its prediction (and band) comes first
            add_theory(scene.preview, scene.foreground, with_band=True)
        drawn = scene.drawn_runs()
        for key, _name, r, colour, is_current in drawn:
            if tensor not in r.stats:
                missing = True
                continue
            faint = blend(colour, bg, 0.55)
            mean = r.headline(tensor, "mean")
            std = r.headline(tensor, "std")
            if is_current and r.trials > 1:
                mspread, sspread = r.spread(tensor, "mean"), r.spread(tensor, "std")
                mean_series += [Series("spread", mean - mspread, faint, "spread"),
                                Series("spread", mean + mspread, faint, "spread")]
                std_series += [Series("spread", std - sspread, faint, "spread"),
                               Series("spread", std + sspread, faint, "spread")]
                styles["spread"] = faint
            add_theory(r.theory, colour, with_band=is_current)
            mean_series.append(Series(key, mean, colour))
            std_series.append(Series(key, std, colour))
            bad = first_nonfinite(r, tensor)
            if bad is not None:
                marks.append(Mark(bad, f"nan/inf L{bad}", NONFINITE_RGB))
        label = tensor_label(tensor, scene.spec)
        mean_note, std_note = range_notes(scene.current, tensor, scene.log_y)
        message = ""
        if previewing:
            message = "measuring... (the prediction first)"
        elif scene.current is None and not any(not p.is_training for p in scene.pins):
            message = "running..." if scene.running else "no run yet"
        elif missing and not any(s.kind == "measured" for s in std_series):
            message = ("not measured (gradients off: tick grad)" if tensor.startswith("grad")
                       else f"not measured ({tensor} exists only with a norm or a residual)")
        mean_plot = self.query_one("#plot-mean", LayerPlot)
        std_plot = self.query_one("#plot-std", LayerPlot)
        mean_plot.log_y = std_plot.log_y = scene.log_y
        mean_plot.set_data(mean_series, marks, title=(f"mean of {label}" if not scene.log_y else f"|mean| of {label}")
                           + mean_note, message=message)
        std_plot.set_data(std_series, marks, title=f"std of {label}{std_note}", message=message)
        entries = [LegendEntry(k, n if k != "*" else "current", c) for k, n, _r, c, _cur in drawn]
        if previewing:
            entries.insert(0, LegendEntry("*", "current (measuring)", scene.foreground))
        hidden = [LegendEntry(str(i + 1), p.name, p.colour, False) for i, p in enumerate(scene.pins)
                  if not p.visible and not p.is_training]
        self.query_one("#legend", Legend).show(entries + hidden, legend_notes(styles, band_gap) if std_series else [])
