"""ExplainPanel: why the curves look the way they do, for the current configuration.

API
    panel = ExplainPanel(id="explain")          # a VerticalScroll of titled sections
    panel.show(spec, result, guide)             # spec: RunSpec; result: RunResult | None (None before a run);
                                                # guide: (heading, text) of the preset that made this run
    panel.text                                  # everything shown, as plain text (copy / tests)
    explain_sections(spec, result, guide) -> list[Section]   # pure: the same content without Textual
    init_formula_lines(spec) / activation_lines(spec) -> list[str]   # pure, torch-free

Sections:
  Preset       only for a preset's run: what it shows and what to look for (the words of its toast,
               which fades).
  Run notes    only when the run has notes: what the engine did differently from what was asked
               (e.g. fewer data rows than the batch), one per line (RunResult.notes).
  Init         the catalog formula, then the numbers for layer 1 filled in, e.g.
               "std = gain/sqrt(fan_in) = 1.4142/sqrt(512) = 0.0625", and sigma_w^2 = fan_in * Var[W]
               (plus other fans when widths vary, and the measured std(W) once a run exists).
  Activation   the formula and the recommended gain; bias and data formulas in one line each.
  Block        only with a norm or a residual: the block's formula (catalog), then the run's growth per
               block, measured beside predicted: the forward second moment of out (residual) and E[g^2]
               toward the input (grad, grad_out), the numbers BatchNorm's and the residual's theory name.
  Theory       engine.theory.explain(spec, result.theory or predict(spec)): title and paragraphs, then
               each of its `sections` (title, paragraphs) where the Explanation has them.
  Diagnostics  the prediction's diagnostics (chi_1 and its phase, growth per layer, vanish/explode
               depth, fixed point, ...) and its `reason` when a quantity has no prediction.
  Correlation  only with input pairs (--pair-corr): c^0 and c^L of pre and post, measured beside the mean field
               (Prediction.pair_corr_pre/post, the band of pre), and the depth scale xi_c (docs/pairs.md).
  Measured vs predicted  pre std, (normed mean and std), post mean, post std, (out std), grad std,
               grad_pre std, (grad_out std) at layer 1 and layer L: measured (mean over trials), predicted,
               ratio; the bracketed rows where the run has the tensor.
engine.theory is imported lazily and guarded: while it is missing or fails, the Theory section says
so in one line and the rest still shows. All text is shown with markup off (formulas have brackets).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass

import numpy as np
from initscope.engine.catalog import ACTIVATIONS, BIASES, DATA, INITS, activation_gain
from initscope.engine.growth import growth_rows
from initscope.engine.kinds.inits import fans
from initscope.engine.numbers import fmt_num
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

THEORY_ROWS = (  # (label, tensor, stat, prediction attribute); rows of tensors a run lacks are left out
    ("pre std", "pre", "std", "pre_std"),
    ("normed mean", "normed", "mean", "normed_mean"),
    ("normed std", "normed", "std", "normed_std"),
    ("post mean", "post", "mean", "post_mean"),
    ("post std", "post", "std", "post_std"),
    ("out std", "out", "std", "out_std"),
    ("grad std", "grad", "std", "grad_std"),
    ("grad_pre std", "grad_pre", "std", "grad_pre_std"),
    ("grad_out std", "grad_out", "std", "grad_out_std"),
)


@dataclass(frozen=True)
class Section:
    key: str  # init | activation | theory | diagnostics | compare
    title: str
    body: str


def g(x: float) -> str:
    """A number for formulas: 5 significant digits, no trailing zeros (the engine's one formatter)."""
    return fmt_num(x, 5)


def _weight_std(spec, fan_in: int, fan_out: int) -> tuple[list[str], float | None]:
    """(formula lines with numbers, std of W) for one layer's fans: the scheme record's worked lines
    (engine/kinds/inits.py) and the square root of its variance rule (None where the run sets it: lsuv)."""
    scheme = INITS[spec.init.name]
    f = fans(spec.init, spec.act, fan_in, fan_out)
    var = scheme.variance(f.p, fan_in, fan_out)
    return scheme.worked(f), (math.sqrt(var) if math.isfinite(var) else None)


def init_formula_lines(spec, result=None) -> list[str]:
    """The init scheme: its formula, then the numbers for layer 1 (and the other fans, if widths vary)."""
    entry = INITS.get(spec.init.name)
    text = spec.to_text()["init"]
    lines = [f"{text}: {entry.doc}" if entry else text]
    if entry and entry.formula:
        lines.append(entry.formula)
    pairs = list(zip(spec.fan_in, spec.fan_out, strict=True))
    first, std = _weight_std(spec, *pairs[0])
    varied = len(set(pairs)) > 1
    if varied:
        lines.append(f"layer 1 ({pairs[0][0]}->{pairs[0][1]}):")
        first = ["  " + line for line in first]
    lines += first
    if std is not None:
        fi = pairs[0][0]
        lines.append(("  " if varied else "") + f"sigma_w^2 = fan_in*Var[W] = {fi}*{g(std)}^2 = {g(fi * std * std)}")
    if varied:
        seen = {pairs[0]}
        for i, pair in enumerate(pairs[1:], start=2):
            if pair in seen:
                continue
            seen.add(pair)
            _, s = _weight_std(spec, *pair)
            if len(seen) > 4:
                lines.append("... (more widths)")
                break
            lines.append(f"layer {i} ({pair[0]}->{pair[1]}): std = {g(s)}"
                         + (f", sigma_w^2 = {g(pair[0] * s * s)}" if s is not None else ""))
    if result is not None:
        w = np.asarray(result.weight, dtype=float)
        if w.ndim == 3 and w.shape[1] >= 1:
            lines.append(f"measured std(W^1) = {g(float(np.nanmean(w[:, 0, 1])))}"
                         + (f", std(W^{w.shape[1]}) = {g(float(np.nanmean(w[:, -1, 1])))}" if w.shape[1] > 1 else ""))
        if getattr(result, "lsuv_iterations", None):
            its = result.lsuv_iterations
            lines.append(f"LSUV steps per layer: {', '.join(map(str, its[:12]))}{' ...' if len(its) > 12 else ''}")
    return lines


def activation_lines(spec) -> list[str]:
    """The activation's formula and recommended gain; the bias and the data, one line each."""
    t = spec.to_text()
    act = ACTIVATIONS.get(spec.act.name)
    lines = [f"{t['act']}: {act.doc}" if act else t["act"]]
    if act and act.formula:
        lines.append(act.formula)
    try:
        lines.append(f"recommended gain = {g(activation_gain(spec.act))}")
    except (KeyError, ValueError):
        pass
    bias, data = BIASES.get(spec.bias.name), DATA.get(spec.data.name)
    lines.append(f"bias {t['bias']}: {bias.formula if bias and bias.formula else ''}".rstrip(": "))
    lines.append(f"data {t['data']}: {data.formula if data and data.formula else ''}".rstrip(": "))
    return lines


def _theory():
    """(predict, explain) from engine.theory, or (None, reason)."""
    try:
        theory = importlib.import_module("initscope.engine.theory")
    except Exception as err:  # noqa: BLE001 - any failure means "not available", shown in one line
        return None, f"theory not available ({type(err).__name__}: {err})"
    predict, explain = getattr(theory, "predict", None), getattr(theory, "explain", None)
    if predict is None or explain is None:
        return None, "theory not available (engine.theory has no predict/explain yet)"
    return (predict, explain), ""


def _prediction(spec, result):
    """(prediction or None, explain function or None, message)."""
    funcs, why = _theory()
    pred = getattr(result, "theory", None) if result is not None else None
    if funcs is None:
        return pred, None, why
    predict, explain = funcs
    if pred is None:
        try:
            pred = predict(spec)
        except Exception as err:  # noqa: BLE001
            return None, explain, f"no prediction: {err}"
    return pred, explain, ""


def _text_of(obj) -> str:
    to_text = getattr(obj, "to_text", None)
    if callable(to_text):
        return str(to_text())
    return str(obj)


def _fmt_any(v) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "no", None: "n/a"}[v]
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return g(float(v))
    if isinstance(v, np.ndarray):
        if v.size <= 6:
            return ", ".join(_fmt_any(x) for x in v.tolist())
        return f"{_fmt_any(v.flat[0])} ... {_fmt_any(v.flat[-1])} ({v.size} values)"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt_any(x) for x in v[:6]) + (" ..." if len(v) > 6 else "")
    return str(v)


def _items(diag) -> list[tuple[str, object]]:
    if diag is None:
        return []
    if isinstance(diag, dict):
        return list(diag.items())
    lines = getattr(diag, "lines", None)
    if callable(lines):  # the engine's own words (engine/theory/diagnostics.py)
        return [("", line) for line in lines()]
    if dataclasses.is_dataclass(diag):
        return [(f.name, getattr(diag, f.name)) for f in dataclasses.fields(diag)]
    if hasattr(diag, "__dict__"):
        return [(k, v) for k, v in vars(diag).items() if not k.startswith("_")]
    return [("", diag)]


def diagnostics_lines(pred) -> list[str]:
    if pred is None:
        return []
    lines: list[str] = []
    for key, value in _items(getattr(pred, "diagnostics", None)):
        if value is None:
            continue
        label = key.replace("chi1", "chi_1").replace("_", " ").replace("chi 1", "chi_1") if key else ""
        lines.append(f"{label}: {_fmt_any(value)}" if label else _fmt_any(value))
    chi1 = getattr(pred, "chi1", None)
    if chi1 is not None and not any(line.startswith("chi_1") for line in lines):
        arr = np.atleast_1d(np.asarray(chi1, dtype=float))
        if arr.size and math.isfinite(arr[0]):
            c = float(arr[0])
            phase = "ordered: signals vanish" if c < 0.99 else "chaotic: signals explode" if c > 1.01 else "critical"
            lines.append(f"chi_1 (layer 1) = {g(c)} ({phase})")
    reason = getattr(pred, "reason", None)
    if reason:
        lines.append(f"note: {_text_of(reason) if not isinstance(reason, str) else reason}")
    return lines


def _arr(obj, attr: str) -> np.ndarray | None:
    v = getattr(obj, attr, None) if obj is not None else None
    if v is None:
        return None
    a = np.atleast_1d(np.asarray(v, dtype=float))
    return a if a.size else None


def compare_lines(result, pred) -> list[str]:
    """Measured vs predicted at layer 1 and layer L, as a small fixed-width table."""
    if result is None:
        return ["Run the configuration (the measured values appear here next to the prediction)."]
    depth = result.depth
    layers = [0] if depth == 1 else [0, depth - 1]
    out: list[str] = []
    for li in layers:
        out.append(f"{'layer ' + str(li + 1):<12} {'measured':>10} {'predicted':>10} {'ratio':>6}")
        for label, tensor, stat, attr in THEORY_ROWS:
            if tensor not in result.stats:
                continue
            m = float(result.headline(tensor, stat)[li])
            broken = float(result.per_trial(tensor, "nonfinite_frac")[:, li].max()) > 0 or not math.isfinite(m)
            p_arr = _arr(pred, attr)
            p = float(p_arr[li]) if p_arr is not None and li < p_arr.size else math.nan
            ratio = m / p if not broken and math.isfinite(p) and p != 0 else math.nan
            cells = ["nan/inf" if broken else _cell(m), _cell(p), _ratio(ratio)]
            out.append(f"{label:<12} {cells[0]:>10} {cells[1]:>10} {cells[2]:>6}")
        out.append("")
    if any("nan/inf" in line for line in out):
        out.append("nan/inf: some of that tensor's entries were inf or NaN at that layer.")
    if pred is None:
        out.append("(no prediction to compare with)")
    return out[:-1] if out and out[-1] == "" else out


def _cell(x: float) -> str:
    return fmt_num(x, 4, missing="-")


def _ratio(r: float) -> str:
    """measured/predicted: three decimals near 1, the shared formatter far from it, '-' when undefined."""
    return f"{r:.3f}" if math.isfinite(r) and 1e-2 <= abs(r) < 1e3 else fmt_num(r, 3, missing="-")


# -- norm and residual blocks ------------------------------------------------------------------------
def explanation_sections(ex) -> list[str]:
    """The Explanation's own `sections`, where it has them, each as 'TITLE' then its paragraphs: items
    with .title and .paragraphs, or (title, paragraphs) pairs (paragraphs a string or a sequence)."""
    out: list[str] = []
    for item in getattr(ex, "sections", ()) or ():
        if isinstance(item, tuple) and len(item) == 2:
            title, paragraphs = item
        else:
            title, paragraphs = getattr(item, "title", ""), getattr(item, "paragraphs", None)
            if paragraphs is None:
                paragraphs = getattr(item, "body", None) or getattr(item, "text", "")
        if isinstance(paragraphs, str):
            paragraphs = [paragraphs]
        text = "\n\n".join(str(p) for p in paragraphs if p)
        out.append("\n".join(x for x in (str(title).upper() if title else "", text) if x))
    return out


def _catalog_lines(kind: str, call, text: str) -> list[str]:
    from initscope.engine.catalog import KINDS  # here, not with the imports above: one line per concern

    entry = KINDS[kind].get(call.name)
    lines = [f"{kind} {text}: {entry.doc}" if entry else f"{kind} {text}"]
    if entry and entry.formula:
        lines.append("  " + entry.formula)
    return lines


def block_lines(spec, result=None, pred=None) -> list[str]:
    """The Block section: the norm and residual formulas, then the growth per block of out, grad and
    grad_out, measured (mean over trials) beside predicted (the Prediction's std curves). [] for a
    plain linear + activation block."""
    if not (getattr(spec, "has_norm", False) or getattr(spec, "has_residual", False)):
        return []
    t = spec.to_text()
    lines: list[str] = []
    if spec.has_norm:
        lines += _catalog_lines("norm", spec.norm, t["norm"])
    if spec.has_residual:
        lines += _catalog_lines("residual", spec.residual, t["residual"])
    lines.append("block l: h = W x^(l-1) + b" + (", n = norm(h)" if spec.has_norm else "")
                 + f", a = phi({'n' if spec.has_norm else 'h'})"
                 + (", x^l = x^(l-1) + alpha V a" if spec.has_residual else ", x^l = a"))
    if result is None or spec.depth < 2:
        return lines
    rows = [f"  {what}: measured {_cell(measured)}, predicted {_cell(predicted)}"
            for what, measured, predicted in growth_rows(result, pred)]
    if rows:
        lines.append(f"growth per block, block 1 to block {spec.depth} (second moments):")
        lines += rows
    return lines


def explain_sections(spec, result=None, guide: tuple[str, str] | None = None) -> list[Section]:
    """Everything the panel shows, as plain text sections (torch-free; may call engine.theory.predict).
    `guide` is the (heading, text) of the preset that made this run: it comes first."""
    sections = [Section("preset", *guide)] if guide else []
    if result is not None and getattr(result, "notes", ()):
        sections.append(Section("notes", "Run notes", "\n".join(result.notes)))
    sections += [
        Section("init", "Init", "\n".join(init_formula_lines(spec, result))),
        Section("activation", "Activation", "\n".join(activation_lines(spec))),
    ]
    pred, explain, why = _prediction(spec, result)
    if explain is None or pred is None:
        theory_text = why[:1].upper() + why[1:]
        if theory_text and not theory_text.endswith("."):
            theory_text += "."
    else:
        try:
            ex = explain(spec, pred)
            paragraphs = list(getattr(ex, "paragraphs", ()) or ())
            title = getattr(ex, "title", "")
            theory_text = "\n\n".join([p for p in [title, *map(str, paragraphs), *explanation_sections(ex)]
                                       if p]) or _text_of(ex)
        except Exception as err:  # noqa: BLE001
            theory_text = f"The theory could not explain this configuration: {err}"
    block = block_lines(spec, result, pred)
    if block:
        sections.append(Section("block", "Block", "\n".join(block)))
    sections.append(Section("theory", "Theory", theory_text))
    diag = diagnostics_lines(pred)
    sections.append(Section("diagnostics", "Diagnostics", "\n".join(diag) if diag else "none"))
    if getattr(spec, "pair_corr", None) is not None:
        sections.append(Section("corr", "Correlation", "\n".join(corr_lines(spec, result, pred))))
    sections.append(Section("compare", "Measured vs predicted", "\n".join(compare_lines(result, pred))))
    return sections


def corr_lines(spec, result, pred) -> list[str]:
    """The Correlation section: c^0 and c^L (pre, post) measured beside the mean field, and xi_c."""
    from initscope.engine.pairs import PAIRS

    depth = spec.depth
    lines = [f"{PAIRS} input pairs of correlation {g(spec.pair_corr)} go through the same blocks as the batch "
             "(outside it); c^l is the mean over the pairs of the cosine of the pair's two rows (docs/pairs.md)."]
    corr = getattr(result, "corr", None) if result is not None else None
    if corr is not None:
        lines.append(f"c^0 measured {_cell(float(np.mean(result.corr_input)))} (the pairs' input rows)")
    lines.append(f"{'':<12} {'measured':>10} {'predicted':>10} {'band -1sd..+1sd':>17}")
    for tensor in ("pre", "post"):
        m = float(np.mean(corr[tensor][:, -1])) if corr is not None else math.nan
        p_arr = _arr(pred, f"pair_corr_{tensor}")
        p = float(p_arr[-1]) if p_arr is not None and p_arr.size == depth else math.nan
        band = "-"
        lo, hi = _arr(pred, f"pair_corr_{tensor}_lo"), _arr(pred, f"pair_corr_{tensor}_hi")
        if lo is not None and hi is not None and math.isfinite(lo[-1]) and math.isfinite(hi[-1]):
            band = f"{_cell(float(lo[-1]))}..{_cell(float(hi[-1]))}"
        lines.append(f"{f'c^{depth} {tensor}':<12} {_cell(m):>10} {_cell(p):>10} {band:>17}")
    scales = getattr(pred, "depth_scales", None)
    xi, c_star = getattr(scales, "xi_c", None), getattr(scales, "c_star", None)
    if xi is not None and not math.isnan(xi):
        lines.append("xi_c = infinite: the critical point (1 - c^l decays as a power of l, not exponentially)"
                     if math.isinf(xi) else
                     f"xi_c = {g(xi)} blocks: near the fixed point c* = {_cell(c_star)}, |c^l - c*| shrinks by a "
                     "factor e every xi_c blocks")
    reason = getattr(pred, "pair_corr_reason", None)
    if reason:
        lines.append(f"theory: {reason}")
    return lines


class ExplainPanel(VerticalScroll):
    """Formulas, theory and diagnostics for a spec (and its result). Call `show(spec, result)`."""

    DEFAULT_CSS = """
    ExplainPanel {
        height: 1fr;
        padding: 0 1;
    }
    ExplainPanel > .explain-title {
        text-style: bold;
        color: $text-accent;
        margin-top: 1;
    }
    ExplainPanel > .explain-title.-first, ExplainPanel > #explain-preset-title {
        margin-top: 0;
    }
    ExplainPanel > .explain-body {
        width: 1fr;
    }
    ExplainPanel > #explain-compare-body {
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    KEYS = ("preset", "notes", "init", "activation", "block", "theory", "diagnostics", "corr", "compare")
    OPTIONAL = ("preset", "notes", "block", "corr")  # shown only for the runs that have them

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._spec = None
        self._result = None
        self.sections: list[Section] = []

    def compose(self) -> ComposeResult:
        for key in self.KEYS:  # the preset section shows only for a preset's run (see _apply)
            yield Label("", id=f"explain-{key}-title", classes="explain-title" + (" -first" if key == "init" else ""),
                        markup=False)
            yield Static("Choose a configuration to see its formulas." if key == "init" else "",
                         id=f"explain-{key}-body", classes="explain-body", markup=False)

    def on_mount(self) -> None:
        self._show_optional(set())
        if self._spec is not None:
            self._apply()

    def show_scene(self, scene) -> None:
        """The app's view hook (tui/views.py): the current run, with its preset's guide while it is current."""
        self.show(scene.current.spec, scene.current, scene.guide)

    def show(self, spec, result=None, guide: tuple[str, str] | None = None) -> None:
        """Explain `spec`; with `result`, also compare measured values with the prediction; with `guide`
        (a preset's heading and text), say first what to look for."""
        self._spec, self._result = spec, result
        self.sections = explain_sections(spec, result, guide) if spec is not None else []
        if self.is_mounted:
            self._apply()

    @property
    def text(self) -> str:
        return "\n\n".join(f"{s.title}\n{s.body}" for s in self.sections)

    def _show_optional(self, keys: set[str]) -> None:
        """Show the optional sections in `keys`, hide the others; the first title shown has no margin."""
        for key in self.OPTIONAL:
            self.query_one(f"#explain-{key}-title", Label).display = key in keys
            self.query_one(f"#explain-{key}-body", Static).display = key in keys
        first = next(k for k in self.KEYS if k in keys or k not in self.OPTIONAL)
        for key in self.KEYS:
            self.query_one(f"#explain-{key}-title", Label).set_class(key == first, "-first")

    def _apply(self) -> None:
        by_key = {s.key: s for s in self.sections}
        self._show_optional(set(by_key))
        for key in self.KEYS:
            s = by_key.get(key)
            self.query_one(f"#explain-{key}-title", Label).update(s.title if s else "")
            self.query_one(f"#explain-{key}-body", Static).update(s.body if s else "")
