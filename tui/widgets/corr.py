"""CorrView: the Corr tab. How the correlation of two inputs changes over the blocks (docs/pairs.md).

For the current run and each visible pin measured with input pairs (--pair-corr, the form's `pairs` field):
the measured c^l of the pre-activations (a line) and of the post-activations (a fainter line) per block
(RunResult.corr, mean over trials), and for the current run the mean-field c^l (Prediction.pair_corr_pre and
pair_corr_post, points) with the one-sigma finite-width band of pre (pair_corr_pre_lo/hi, dotted). The title
gives c^0 measured and the theory's depth scale xi_c.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from initscope.engine.numbers import fmt_num
from textual.app import ComposeResult
from textual.containers import Vertical

from .curves import blend
from .layer_plot import LayerPlot, Series
from .legend import Legend, LegendEntry

if TYPE_CHECKING:
    import numpy as np

    from ..views import Scene

RGB = tuple[int, int, int]
NO_PAIRS = "no input pairs: set pairs in the form (e.g. 0.5) or run with --pair-corr 0.5"


def predicted(theory: object, name: str) -> np.ndarray | None:
    """Prediction.<name> as a float array, or None where the theory has none (absent or all NaN)."""
    import numpy as np

    y = getattr(theory, name, None) if theory is not None else None
    if y is None:
        return None
    y = np.asarray(y, dtype=float)
    return y if y.size and np.isfinite(y).any() else None


def xi_text(theory: object) -> str:
    """' · xi_c 12.3' from the theory's depth scales ('inf' at criticality), '' where it has none."""
    xi = getattr(getattr(theory, "depth_scales", None), "xi_c", None)
    if xi is None or math.isnan(xi):
        return ""
    return f" · xi_c {'inf (critical)' if math.isinf(xi) else fmt_num(xi, 3)}"


class CorrView(Vertical):
    """The plot of c^l (#plot-corr) and its legend (#corr-legend); `show_scene` draws."""

    DEFAULT_CSS = """
    CorrView { height: 1fr; }
    CorrView #plot-corr { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield LayerPlot("correlation of input pairs", id="plot-corr")
        yield Legend(id="corr-legend")

    def show_scene(self, scene: Scene) -> None:
        series: list[Series] = []
        entries: list[LegendEntry] = []
        title = "c^l of input pairs"
        bg = scene.background
        band = False
        for key, name, r, colour, is_current in scene.drawn_runs():
            if r.corr is None:
                continue
            faint = blend(colour, bg, 0.5)
            if is_current:
                theory = r.theory
                lo, hi = predicted(theory, "pair_corr_pre_lo"), predicted(theory, "pair_corr_pre_hi")
                if lo is not None and hi is not None:
                    series += [Series("band", lo, blend(colour, bg, 0.7), "band"),
                               Series("band", hi, blend(colour, bg, 0.7), "band")]
                    band = True
                for tensor, shade in (("pre", colour), ("post", faint)):
                    y = predicted(theory, f"pair_corr_{tensor}")
                    if y is not None:
                        series.append(Series("theory", y, shade, "theory"))
                c0 = float(r.corr_input.mean())
                title = f"c^l of input pairs (c^0 {fmt_num(c0, 3)}){xi_text(theory)}"
            series.append(Series(f"{key} post", r.corr["post"].mean(axis=0), faint))
            series.append(Series(key, r.corr["pre"].mean(axis=0), colour))
            entries.append(LegendEntry(key, "current" if is_current else name, colour))
        message = ""
        if not series:
            message = ("running..." if scene.running else "no run yet") if scene.current is None else NO_PAIRS
        plot = self.query_one("#plot-corr", LayerPlot)
        plot.log_y = False  # a correlation lies in [-1, 1]
        plot.set_data(series, [], title=title, message=message)
        notes: list[tuple[str, RGB | None, str]] = [("──", None, "pre"), ("──", blend(scene.foreground, bg, 0.5), "post"),
                                                    ("•", None, "mean field")]
        if band:
            notes.append(("··", blend(scene.foreground, bg, 0.7), "band ±1 sd (pre)"))
        self.query_one("#corr-legend", Legend).show(entries, notes if series else [])
