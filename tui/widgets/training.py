"""TrainingView: the Training tab. What the first steps of training did to every layer (engine/train.py).

Drawn from the app's Scene (`scene.training`: the current training run and the pinned ones, tui/training.py):

- loss: the minibatch loss at each recorded step (lines; with several trials the mean over trials, and
  for the current run mean +- one sd over trials, faint) and the held-out loss at the eval points (•), for
  the current run and every visible pinned training run, overlaid in the pins' colours;
- one layer's statistic over steps: layer ([ and ]), tensor (the app's ctrl+t / t), statistic (s:
  std, mean, near_zero = #(|x| <= 0.05)/n, saturated = #(|x - c| > 0.97 r)/n for a bounded activation);
- the colorful dimension of that layer over steps: the histogram of each recorded step on the run's fixed
  bins, colour log(1 + count) (the Distribution tab's heatmap with steps as columns);
- the update ratio log10(std(delta W) / std(W)) of every layer's W over steps (deep layers lighter),
  with the reference line at -3 (Karpathy: about -3 is healthy);
- the headline: held-out accuracy after the last step, mean +- sd over seeds, per run, and for each
  pinned run whether its difference from the current run is larger than the seed spread (sd_a + sd_b).

A result is anything with TrainResult's fields (engine/train.py): steps [R], eval_steps [E], loss [T, R],
stats[tensor] [T, R, L, 7], extra[tensor] [T, R, L, 3], hist[tensor] [T, R, L, B], edges[tensor] [B + 1],
update_ratio["W"] [T, R, L], evals[name] [T, E], spec (a TrainSpec: .body is the stack's RunSpec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from initscope.engine.numbers import fmt_num
from initscope.engine.result import STAT_NAMES
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ..tensors import tensor_label
from .curves import blend
from .distribution import DistributionView, ramp, render_distribution
from .layer_plot import fit_title, linear_ticks

RGB = tuple[int, int, int]
STATS = ("std", "mean", "near_zero", "saturated")  # s cycles these
EXTRA_NAMES = ("near_zero", "fastai_low", "saturated")  # TrainResult.extra's columns (engine/train.py)
RATIO_LINE = -3.0  # log10 update-to-data ratio: about -3 is healthy (Karpathy)
REF_RGB = (255, 85, 85)


def _nanmean(a: np.ndarray, axis: int = 0) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    s = np.where(ok, a, 0.0).sum(axis=axis)
    with np.errstate(all="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _nanstd(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Population std over `axis` of the finite entries (NaN where none)."""
    a = np.asarray(a, dtype=float)
    m = _nanmean(a, axis)
    ok = np.isfinite(a)
    d = np.where(ok, a - np.expand_dims(m, axis), 0.0)
    n = ok.sum(axis=axis)
    with np.errstate(all="ignore"):
        return np.where(n > 0, np.sqrt((d * d).sum(axis=axis) / np.maximum(n, 1)), np.nan)


def layer_stat(result, tensor: str, layer: int, stat: str) -> np.ndarray | None:
    """[T, R] one layer's statistic over recorded steps, or None where the run has no such number
    (a tensor it did not measure, saturated of an unbounded activation, an extra of a gradient)."""
    if stat in STAT_NAMES:
        a = result.stats.get(tensor)
        return None if a is None else np.asarray(a[:, :, layer, STAT_NAMES.index(stat)], dtype=float)
    a = getattr(result, "extra", {}).get(tensor)
    if a is None:
        return None
    v = np.asarray(a[:, :, layer, EXTRA_NAMES.index(stat)], dtype=float)
    return v if np.isfinite(v).any() else None


def headline(result, name: str = "test_acc") -> tuple[float, float]:
    """(mean, population sd over trials) of eval metric `name` after the last step, non-finite trials out."""
    v = np.asarray(result.evals[name], dtype=float)[:, -1]
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std())


def versus(a, b, name: str = "test_acc") -> tuple[float, float, bool]:
    """(mean_a - mean_b, sd_a + sd_b, |difference| > spread): engine/train.py compare's rule."""
    ma, sa = headline(a, name)
    mb, sb = headline(b, name)
    d, s = ma - mb, sa + sb
    return d, s, bool(abs(d) > s)


@dataclass
class Line:
    """One curve on a StepPlot: x (steps), y, colour; kind: line | points | faint."""

    x: np.ndarray
    y: np.ndarray
    color: RGB
    kind: str = "line"


class StepPlot(PlotextPlot):
    """Curves over training steps (x = step) with round ticks and optional horizontal reference lines."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[Line] = []
        self.refs: list[tuple[float, RGB]] = []
        self.title = ""
        self.message = ""
        self.drawn_points = 0

    def set_data(self, lines: list[Line], title: str, refs: list[tuple[float, RGB]] | None = None,
                 message: str = "") -> None:
        self.lines, self.title, self.refs, self.message = list(lines), title, list(refs or []), message
        self.replot()

    def on_resize(self) -> None:
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        lo, hi, x_lo, x_hi, drawn = math.inf, -math.inf, math.inf, -math.inf, 0
        for ln in sorted(self.lines, key=lambda ln: {"faint": 0, "line": 1, "points": 2}.get(ln.kind, 1)):
            x, y = np.asarray(ln.x, dtype=float), np.asarray(ln.y, dtype=float)
            ok = np.isfinite(x) & np.isfinite(y)
            x, y = x[ok], y[ok]
            if not x.size:
                continue
            lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
            x_lo, x_hi = min(x_lo, float(x.min())), max(x_hi, float(x.max()))
            if ln.kind == "points":
                plt.scatter(x.tolist(), y.tolist(), marker="•", color=ln.color)
            else:
                plt.plot(x.tolist(), y.tolist(), marker="braille", color=ln.color)
            drawn += int(x.size)
        self.drawn_points = drawn
        labels: list[str] = []
        if drawn:
            for v, _colour in self.refs:
                lo, hi = min(lo, v), max(hi, v)
            if hi - lo < 1e-12:
                lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
            pad = (hi - lo) * 0.05
            lo, hi = lo - pad, hi + pad
            plt.ylim(lo, hi)
            rows = max((self.size.height or 20) - 4, 2)
            ticks, labels = linear_ticks(lo, hi, most=max(2, min(6, rows // 2)))
            plt.yticks(ticks, labels)
            if x_hi > x_lo:
                plt.xlim(x_lo, x_hi)
                xt, xl = linear_ticks(x_lo, x_hi, most=6)
                plt.xticks(xt, [str(int(round(t))) for t in xt])
            for v, colour in self.refs:
                plt.horizontal_line(v, color=colour)
        title = self.title + (f": {self.message}" if self.message else "")
        label_w = max((len(s) for s in labels), default=0)
        plt.title(fit_title(title, (self.size.width or 60) - label_w - 5))
        self.refresh()


class _StepSlice:
    """One layer of a training run with the recorded steps as the 'layers' (what render_distribution
    reads: hist [T, R, B], stats [T, R, 7], edges(tensor), headline/per_trial), for the heatmap."""

    spec = None

    def __init__(self, result, tensor: str, layer: int) -> None:
        self.hist = {tensor: np.asarray(result.hist[tensor])[:, :, layer, :]}
        self.stats = {tensor: np.asarray(result.stats[tensor])[:, :, layer, :]}
        self._edges = np.asarray(result.edges[tensor], dtype=float)

    def edges(self, tensor: str) -> np.ndarray:
        return self._edges

    def per_trial(self, tensor: str, stat: str) -> np.ndarray:
        return self.stats[tensor][:, :, STAT_NAMES.index(stat)]

    def headline(self, tensor: str, stat: str) -> np.ndarray:
        return _nanmean(self.per_trial(tensor, stat), axis=0)


class StepHeatmap(DistributionView):
    """The colorful dimension of one layer over the recorded steps (columns = steps)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.steps: np.ndarray = np.zeros(0)
        self.empty_message = "no training run yet"

    def show_layer(self, result, tensor: str, layer: int) -> None:
        if result is None or tensor not in getattr(result, "hist", {}):
            self.empty_message = ("no training run yet (g trains)" if result is None
                                  else f"no histogram of {tensor} in this training run")
            self.steps = np.zeros(0)
            self.show(None, tensor)
            return
        self.steps = np.asarray(result.steps)
        self.show(_StepSlice(result, tensor, layer), tensor)

    @property
    def rendering(self):
        palette = self._palette()
        key = (id(self._result), self._tensor, self.size.width, self.size.height, palette, self.empty_message)
        if self._rendering is None or key != self._cache_key:
            if self._result is None:
                self._rendering = render_distribution(None, self._tensor, self.size.width, self.size.height,
                                                      palette)
                if self._rendering.lines and self.size.height:
                    from .distribution import _message_lines

                    self._rendering.lines = _message_lines(self.empty_message, self.size.width, self.size.height,
                                                           palette)
            else:
                steps = self.steps
                self._rendering = render_distribution(
                    self._result, self._tensor, self.size.width, self.size.height, palette, axis="step",
                    label_of=lambda i: str(int(steps[i])) if 0 <= i < len(steps) else str(i))
            self._cache_key = key
        return self._rendering


class TrainingView(Vertical, can_focus=True):
    """The Training tab; `show_scene(scene)` draws from `scene.training` (tui/training.py TrainingState)."""

    DEFAULT_CSS = """
    TrainingView { height: 1fr; }
    TrainingView #train-head { height: auto; max-height: 4; padding: 0 1; }
    TrainingView Horizontal { height: 1fr; }
    TrainingView StepPlot { width: 1fr; height: 1fr; }
    TrainingView StepHeatmap { width: 1fr; height: 1fr; }
    """

    # Not in the footer (at 80 columns they pushed the app's Train key off it): the headline's last
    # line names them ("layer 1 ([ ]) · post (t) · std (s)") and F1 lists them.
    BINDINGS = [
        Binding("left_square_bracket", "layer(-1)", "Layer -", show=False, key_display="["),
        Binding("right_square_bracket", "layer(1)", "Layer +", show=False, key_display="]"),
        Binding("s", "next_stat", "Statistic", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.layer_index = 0  # 0-based; shown as 1-based
        self.statistic = "std"
        self.last_scene = None

    def compose(self) -> ComposeResult:
        yield Static("", id="train-head", markup=False)
        with Horizontal():
            yield StepPlot(id="train-loss")
            yield StepPlot(id="train-stat")
        with Horizontal():
            yield StepHeatmap(id="train-heat")
            yield StepPlot(id="train-ratio")

    # keys ---------------------------------------------------------------------------------------
    def action_layer(self, delta: int) -> None:
        self.layer_index += delta
        self._redraw()

    def action_next_stat(self) -> None:
        self.statistic = STATS[(STATS.index(self.statistic) + 1) % len(STATS)] if self.statistic in STATS else STATS[0]
        self._redraw()

    def _redraw(self) -> None:
        if self.last_scene is not None:
            self.show_scene(self.last_scene)

    # drawing ------------------------------------------------------------------------------------
    def drawn(self, scene) -> list[tuple[str, str, object, RGB, bool]]:
        """(key, name, result, colour, is_current) of the current training run and the visible pinned ones:
        the app's pins of training runs, under their pin number (their digit key, their Runs tab row) and
        name (renamed in the Runs tab)."""
        state = getattr(scene, "training", None)
        out = []
        if state is None:
            return out
        pins = [(i, p) for i, p in enumerate(getattr(scene, "pins", None) or []) if p.is_training]
        if state.current is not None:
            name = next((p.name for _i, p in pins if p.result is state.current), "current")
            out.append(("*", name, state.current, scene.foreground, True))
        for i, pin in pins:
            if pin.visible and pin.result is not state.current:  # a pinned current run is drawn once, as current
                out.append((str(i + 1), pin.name, pin.result, pin.colour, False))
        return out

    def show_scene(self, scene) -> None:
        self.last_scene = scene
        state = getattr(scene, "training", None)
        runs = self.drawn(scene)
        current = state.current if state is not None else None
        first = current if current is not None else (runs[0][2] if runs else None)
        tensor = scene.tensor
        if first is not None and tensor not in first.stats:
            tensor = "post"
        depth = next(iter(first.stats.values())).shape[2] if first is not None and first.stats else 1
        self.layer_index = min(max(self.layer_index, 0), depth - 1)
        self.query_one("#train-head", Static).update(self.head_text(scene, runs, tensor))
        self.draw_loss(scene, runs)
        self.draw_stat(scene, runs, tensor)
        self.query_one("#train-heat", StepHeatmap).show_layer(first, tensor, self.layer_index)
        self.draw_ratio(scene, first)

    def head_text(self, scene, runs, tensor: str) -> str:
        state = getattr(scene, "training", None)
        training = training_line(state)
        if not runs:
            if training:
                return training
            return "No training run yet. g (or ctrl+g) trains the form's configuration: steps, optimizer, data."
        parts = [training] if training else []
        current = state.current if state is not None else None
        for key, name, r, _c, is_cur in runs:
            m, s = headline(r, "test_acc")
            trials = np.asarray(r.loss).shape[0]
            text = f"{key} {name if name != 'current' else _label(r)}: test acc {_fmt(m)}"
            if trials > 1:
                text += f" ± {_fmt(s)} ({trials} seeds)"
            if not is_cur and current is not None:
                d, spread, exceeds = versus(current, r)
                if math.isfinite(d):
                    text += f", current {'+' if d >= 0 else ''}{_fmt(d)} " + (
                        f"> spread {_fmt(spread)}" if exceeds else f"within spread {_fmt(spread)}")
            div = [d for d in getattr(r, "diverged", []) if d is not None]
            if div:
                text += f" · diverged at step {div[0][0]}"
            parts.append(text)
        label = tensor_label(tensor, getattr(getattr(runs[0][2], "spec", None), "body", None))
        parts.append(f"layer {self.layer_index + 1} ([ ]) · {label} (t) · {self.statistic} (s)")
        return "\n".join(parts)

    def draw_loss(self, scene, runs) -> None:
        lines: list[Line] = []
        for _key, _name, r, colour, is_cur in runs:
            steps = np.asarray(r.steps, dtype=float)
            loss = np.asarray(r.loss, dtype=float)
            mean = _nanmean(loss, axis=0)
            if is_cur and loss.shape[0] > 1:  # the seed spread: mean +- one sd over trials
                sd = _nanstd(loss, axis=0)
                faint = blend(colour, scene.background, 0.6)
                lines += [Line(steps, mean - sd, faint, "faint"), Line(steps, mean + sd, faint, "faint")]
            lines.append(Line(steps, mean, colour))
            test = _nanmean(np.asarray(r.evals["test_loss"], dtype=float), axis=0)
            lines.append(Line(np.asarray(r.eval_steps, dtype=float), test, colour, "points"))
        msg = "" if runs else "no training run yet"
        self.query_one("#train-loss", StepPlot).set_data(lines, "loss (─ minibatch, • held-out)", message=msg)

    def draw_stat(self, scene, runs, tensor: str) -> None:
        lines: list[Line] = []
        missing = False
        for _key, _name, r, colour, is_cur in runs:
            depth = next(iter(r.stats.values())).shape[2]
            if self.layer_index >= depth:
                continue
            v = layer_stat(r, tensor, self.layer_index, self.statistic)
            if v is None:
                missing = True
                continue
            steps = np.asarray(r.steps, dtype=float)
            mean = _nanmean(v, axis=0)
            if is_cur and v.shape[0] > 1:
                sd = _nanstd(v, axis=0)
                faint = blend(colour, scene.background, 0.6)
                lines += [Line(steps, mean - sd, faint, "faint"), Line(steps, mean + sd, faint, "faint")]
            lines.append(Line(steps, mean, colour))
        msg = ""
        if runs and not lines:
            msg = ("saturated: only for a bounded activation (tanh, sigmoid)" if self.statistic == "saturated"
                   else f"no {self.statistic} of {tensor}" if missing else "")
        title = f"{self.statistic} of {tensor}, layer {self.layer_index + 1}"
        self.query_one("#train-stat", StepPlot).set_data(lines, title, message=msg)

    def draw_ratio(self, scene, r) -> None:
        lines: list[Line] = []
        if r is not None and "W" in r.update_ratio:
            w = np.asarray(r.update_ratio["W"], dtype=float)  # [T, R, L]
            steps = np.asarray(r.steps, dtype=float)
            mean = _nanmean(w, axis=0)  # [R, L]
            depth = mean.shape[1]
            for layer in range(depth):  # first layer dark, last light (viridis)
                lines.append(Line(steps, mean[:, layer], ramp(layer / max(depth - 1, 1))))
        self.query_one("#train-ratio", StepPlot).set_data(
            lines, "update-ratio log10 std(dW)/std(W) · layer 1 dark · red line -3",
            refs=[(RATIO_LINE, REF_RGB)] if lines else [], message="" if lines else "no training run yet")


def training_line(state) -> str:
    """While a training run goes on: what it trains. Its spec is the form's stack when g was pressed (a
    snapshot): the form's later edits re-run the other tabs' run and apply to the next training run only."""
    if state is None or not getattr(state, "running", False):
        return ""
    spec = getattr(state, "spec", None)
    label = _label_of(spec)
    what = f"training {label}" + (f", {spec.steps} steps" if hasattr(spec, "steps") else "")
    return what + " (as the form was at g; edits apply to the next training run) · escape cancels"


def _label_of(spec) -> str:
    label = getattr(spec, "label", None)
    return label() if callable(label) else "..."


def _fmt(v: float) -> str:
    return fmt_num(v, 3) if math.isfinite(v) else "n/a"


def _label(r) -> str:
    spec = getattr(r, "spec", None)
    label = getattr(spec, "label", None)
    return label() if callable(label) else "current"


__all__ = ["TrainingView", "StepPlot", "StepHeatmap", "layer_stat", "headline", "versus", "STATS"]
