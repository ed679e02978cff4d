"""Plain-language explanation of a prediction, numbers filled in: `initscope explain`.

explain(spec, prediction=None) -> Explanation(title, paragraphs); Explanation.to_text() gives ASCII
lines of at most 100 characters. The paragraphs follow one order: what the scheme keeps constant, what
the activation does to it, the numbers layer by layer, gradients, inputs' correlation, the user's
variant, the finite-width band, and anything the theory could not predict.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import numpy as np

from ..catalog import ACTIVATIONS, BIASES, INITS, activation_gain
from ..kinds.inits import fans
from ..numbers import fmt_num
from ..spec import RunSpec
from .diagnostics import GRAD_TOL, PHASE_TOL
from .gaussian import activation

WIDTH = 100


@dataclass(frozen=True)
class Explanation:
    title: str
    paragraphs: tuple[str, ...]

    def to_text(self, width: int = WIDTH) -> str:
        lines = [_ascii(self.title), "=" * min(width, len(_ascii(self.title)))]
        for p in self.paragraphs:
            lines.append("")
            lines += textwrap.wrap(_ascii(p), width=width, break_long_words=True, break_on_hyphens=False)
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        return {"title": self.title, "paragraphs": list(self.paragraphs)}


def _ascii(s: str) -> str:
    return s.encode("ascii", "replace").decode("ascii")


def _g(x: float | None, digits: int = 4) -> str:
    """A number in the text (engine/numbers.py): `digits` significant digits below 1, one more from 1
    up (1.4142, 0.5642, 4.5e-48); "n/a" when missing."""
    big = x is not None and math.isfinite(x) and abs(x) >= 1
    return fmt_num(x, digits + 1 if big else digits)


def _scheme_sentence(spec: RunSpec, sw2: float) -> str:
    """The init scheme's sentence: its record's story (engine/kinds/inits.py) with block 1's numbers."""
    return INITS[spec.init.name].story(fans(spec.init, spec.act, spec.arch[0], spec.arch[1]), sw2, spec.arch)


def _activation_paragraph(spec: RunSpec, p) -> str:
    act = spec.act
    mf = p.meanfield
    sw2 = p.sigma_w2[-1]
    q1 = mf.q[0]
    s0 = p.input_second_moment
    core = ("Each block computes pre = W x + b, with variance q = sigma_w^2 E[x^2] + sigma_b^2: what carries "
            "from layer to layer is the SECOND MOMENT E[x^2] of the previous output, not its variance "
            "(He et al. 2015, eq. 7; the two differ as soon as the output has a mean).")
    a = activation(act).slope
    if a is not None and a != 1.0 and p.pre_mean[0] == 0:  # relu(x) - a relu(-x), not the identity (a = 1)
        k = (1 + a * a) / 2
        factor = sw2 * k
        text = (f" A {'relu' if a == 0 else f'leaky relu (slope {_g(a)})'} keeps E[phi(h)^2] = {_g(k)} Var[h] "
                f"for a centred Gaussian h, so each block multiplies E[x^2] by sigma_w^2 x {_g(k)} = {_g(factor)}.")
        if abs(factor - 1) < 1e-9:
            m, sd = p.post_mean[0], p.post_std[0]
            text += (f" That factor is exactly 1: E[x^2] stays {_g(s0)} at every layer, so the pre-activation std "
                     f"is sqrt({_g(sw2)} x {_g(s0)}) = {_g(math.sqrt(q1))} everywhere. After the activation the "
                     f"mean is {_g(m)} and the std {_g(sd)}: not 0 and 1, because the negative half is "
                     f"{'cut off' if a == 0 else 'squashed'}"
                     f"{' (1/sqrt(pi) = 0.5642 and sqrt(1 - 1/pi) = 0.8256 for N(0,1) input)' if a == 0 and abs(s0 - 1) < 1e-9 else ''}. "  # noqa: E501
                     "He's init preserves E[x^2] = mean^2 + std^2, not mean 0 and std 1: that is why the "
                     f"post-activation mean is {_g(m, 2)}, not 0, and nothing is wrong with it.")
        else:
            text += (f" After L blocks that is {_g(factor)}^L in variance, {_g(math.sqrt(factor))}^L in std: "
                     f"{'it shrinks' if factor < 1 else 'it grows'} geometrically.")
        return core + text
    # the activation record's own sentence (engine/kinds/activations.py)
    return core + ACTIVATIONS[act.name].story.format(name=act.name, gain=_g(activation_gain(act)))


def _variant_paragraph(spec: RunSpec, p) -> list[str]:
    """Paragraphs for the user's variant: each record's own (activation, init scheme, bias), no repeats."""
    out = (ACTIVATIONS[spec.act.name].variant(spec, p) + INITS[spec.init.name].variant(spec, p)
           + BIASES[spec.bias.name].variant(spec, p))
    return list(dict.fromkeys(out))


def explain(spec: RunSpec, prediction=None) -> Explanation:
    from . import predict

    p = prediction if prediction is not None else predict(spec)
    t = spec.to_text()
    L = spec.depth
    title = f"{t['init']} + {t['act']} on {t['arch']} ({L} block{'s' if L != 1 else ''})"
    paras: list[str] = []
    if p.reason is not None and not math.isfinite(p.pre_std[0]):
        paras.append(f"No prediction: {p.reason}.")
        paras += list(p.notes)
        return Explanation(title, tuple(paras))
    sw2 = float(p.sigma_w2[0])
    if spec.has_norm or spec.has_residual:  # norm and residual blocks tell their own story
        return _block_explanation(spec, p)
    paras.append(_scheme_sentence(spec, sw2))
    paras.append(_activation_paragraph(spec, p))
    # layer by layer
    last = L - 1
    while last > 0 and not math.isfinite(p.pre_std[last]):
        last -= 1
    s = (f"Input: mean {_g(p.input_mean)}, E[x^2] = {_g(p.input_second_moment)}. Block 1: pre std "
         f"{_g(p.pre_std[0])}, post mean {_g(p.post_mean[0])}, post std {_g(p.post_std[0])}.")
    if last > 0:
        s += (f" Block {last + 1}: pre std {_g(p.pre_std[last])}, post mean {_g(p.post_mean[last])}, post std "
              f"{_g(p.post_std[last])}.")
        g = p.diagnostics.signal_growth[last]
        if math.isfinite(g) and abs(g - 1) > 1e-3:
            s += f" At the end the std changes by x{_g(g)} per block."
    d = p.diagnostics
    fp = d.fixed_point
    if fp.kind == "stable" and fp.q is not None:
        s += (f" The length map has a stable fixed point: pre std {_g(math.sqrt(fp.q))}, post mean "
              f"{_g(fp.post_mean)}, post std {_g(fp.post_std)}; deep layers sit there.")
    elif fp.kind == "every":
        s += " Every length is a fixed point here (chi_1 = 1, no bias): the std neither grows nor shrinks."
    if d.leaves_at is not None:
        how = {"vanish": ("vanish", "vanishes", "below 1e-3"), "explode": ("explode", "explodes", "above 1e3")}
        verb, verbs, bound = how[d.leaves_how]
        s += (f" The signal would {verb} (std {bound}) at block ~{d.leaves_at} (extrapolated past this net)."
              if d.leaves_extrapolated else f" The signal {verbs} at block {d.leaves_at} (std {bound}).")
    paras.append(s)
    # gradients
    chi = d.phase_chi1
    gs = (f"Backward (loss sum(x^L u), u ~ N(0,1)): each block multiplies the gradient variance by "
          f"n_l Var[W] E[phi'(h)^2] (chi_1 = sigma_w^2 E[phi'^2] = {_g(float(p.chi1[last]))} at block {last + 1}). "
          f"The gradient std at block 1 is {_g(d.grad_ratio)} times that at block L; grad_pre std at block 1 "
          f"{_g(p.grad_pre_std[0])}, at block L {_g(p.grad_pre_std[L - 1])}.")
    phase = {"ordered": f" Ordered phase (chi_1 = {_g(chi)} < 1)",
             "chaotic": f" Chaotic phase (chi_1 = {_g(chi)} > 1)",
             "critical": f" Critical (chi_1 = {_g(chi)}, within {_g(PHASE_TOL)} of 1)",
             "unknown": ""}[d.phase]
    trend = d.gradient_trend
    if phase and trend:
        gs += f"{phase}: over this net gradients {trend} (x{_g(d.grad_ratio, 4)} from block L to block 1"
        gs += f", within {_g(100 * GRAD_TOL)}%)" if trend == "keep their size" else ")"
        if d.depth_scale is not None and d.phase != "critical":
            gs += f", by a factor e every {_g(d.depth_scale, 3)} blocks of equal width"
        expected = {"ordered": "shrink", "chaotic": "grow", "critical": "keep"}[d.phase]
        if not trend.startswith(expected):
            if len(set(spec.arch[1:])) > 1:
                gs += (". Per block the gradient variance is multiplied by chi_1 x n_l/n_(l-1): the widths "
                       "change, so that factor is not chi_1 alone")
            else:
                lo, hi = float(min(p.chi1)), float(max(p.chi1))
                gs += (f". The phase is chi_1 where the signal settles; on the way there the blocks have chi_1 "
                       f"from {_g(lo, 4)} to {_g(hi, 4)}")
        gs += "."
    elif phase:
        gs += phase + "."
    paras.append(gs)
    c = p.corr
    if math.isfinite(c[0]) and math.isfinite(c[last]) and last > 0:
        paras.append(f"Two different inputs: the correlation of their pre-activations goes from {_g(c[0], 3)} at "
                     f"block 1 to {_g(c[last], 3)} at block {last + 1}"
                     + (" - deep layers see them as nearly the same input." if c[last] > 0.95 else "."))
    paras += _variant_paragraph(spec, p)
    band = p.pre_std_hi[last] / p.pre_std[last] - 1 if p.pre_std[last] > 0 else math.nan
    if math.isfinite(band) and spec.init.name != "lsuv":
        paras.append(f"Finite width: one network of these widths may sit about +-{_g(100 * band, 2)}% from the "
                     f"predicted pre std at block {last + 1} (the band, one standard deviation over networks: "
                     "each layer's finite width and the finite batch add to what the layers before it passed "
                     "on). Average several seeds before calling a difference real.")
    elif p.band_reason:
        paras.append(f"No finite-width band is drawn: {p.band_reason}.")
    if p.reason:
        paras.append(f"Not predicted everywhere: {p.reason}.")
    paras += list(p.notes)
    return Explanation(title, tuple(paras))


# ---------------------------------------------------------------------------------------------
# norm and residual blocks (engine/theory/blocks.py, docs/formulas.md 16)


def _block_explanation(spec: RunSpec, p) -> Explanation:
    """The explanation of a run with a norm and/or a residual: scheme, norm, residual, gradients, band, notes."""
    from .blocks import block_name

    t = spec.to_text()
    L = spec.depth
    title = (f"{t['init']} + {t['act']} + {block_name(spec)} on {t['arch']} "
             f"({L} block{'s' if L != 1 else ''})")
    fixup = spec.residual.name == "fixup"
    sw2 = float(p.sigma_w2[0]) * (L if fixup else 1)  # the scheme's own sigma_w^2, before fixup's 1/L
    paras = [_scheme_sentence(spec, sw2)]
    if spec.has_norm:
        paras.append(_norm_paragraph(spec, p))
    if spec.has_residual:
        paras.append(_residual_paragraph(spec, p))
    paras.append(_block_gradient_paragraph(spec, p))
    if p.band_reason:
        paras.append(f"No finite-width band is drawn: {p.band_reason}.")
    if p.reason:
        paras.append(f"Not predicted everywhere: {p.reason}.")
    paras += list(p.notes)
    return Explanation(title, tuple(paras))


def _norm_paragraph(spec: RunSpec, p) -> str:
    """The norm record's forward story (engine/theory/blocks.py), then what the activation and pre see."""
    from .blocks import norm_theory, story_values

    L = spec.depth
    m, sd = float(p.post_mean[-1]), float(p.post_std[-1])
    nm, nsd = float(p.normed_mean[-1]), float(p.normed_std[-1])
    post = (f"The activation sees N({_g(nm)}, {_g(nsd)}^2): post mean {_g(m)}, post std {_g(sd)}"
            + (" (relu: 1/sqrt(2 pi) = 0.3989 and sqrt(1/2 - 1/(2 pi)) = 0.5838)"
               if activation(spec.act).slope == 0.0 and nm == 0.0 and abs(nsd - 1) < 1e-3 else "")
            + " at every block.")
    pre = (f"The pre-activation h = W x + b still has std sqrt(sigma_w^2 E[x^2] + sigma_b^2): {_g(p.pre_std[0])} at "
           f"block 1, {_g(p.pre_std[L - 1])} at block {L}; the norm then takes that scale away, so the init scale "
           "changes no statistic after it.")
    return norm_theory(spec.norm).forward_story.format(**story_values(spec, p)) + " " + post + " " + pre


def _residual_paragraph(spec: RunSpec, p) -> str:
    from .blocks import residual_theory

    mf = p.meanfield
    L = spec.depth
    rec = residual_theory(spec.residual)
    p0, pL = p.input_second_moment, float(mf.out_m2[-1])
    out_sd = float(p.out_std[-1])
    if rec.identity_story is not None:
        how = rec.identity_story.format(L_root=_g(L ** -0.5), sw2=_g(float(p.sigma_w2[0])))
        return (f"{how}: every block is the identity, x^l = x^(l-1) exactly, so the block output keeps the input's "
                f"mean {_g(p.input_mean)} and std {_g(out_sd)} at all {L} blocks. The branch gets no gradient (grad "
                "and grad_pre are 0) and dLoss/dx^l is the loss's own at every block: training starts from the "
                f"identity. Each branch's pre and post show what it would add: pre std {_g(p.pre_std[0])}, post std "
                f"{_g(p.post_std[0])}.")
    alpha, sv2 = mf.alpha, float(mf.sv2[0])
    s = (f"Residual blocks add the branch to the skip: x^l = x^(l-1) + alpha V phi(norm(W x^(l-1) + b)), with V "
         f"drawn by {spec.init.name}{' (its orthogonal start)' if spec.init.name == 'lsuv' else ''} at gain 1 "
         f"(sigma_v^2 = n Var[V] = {_g(sv2)}) and alpha = {_g(alpha)}. V is "
         "independent of the skip, so second moments add: p^l = p^(l-1) + alpha^2 sigma_v^2 E[phi(n)^2]. "
         f"Here p goes from p^0 = {_g(p0)} to p^L = {_g(pL)} over {L} blocks (x{_g(pL / p0) if p0 > 0 else 'n/a'}; "
         f"out std {_g(out_sd)} at block {L}).")
    if spec.has_norm:
        adds = alpha * alpha * sv2 * mf.m2
        lo, hi = float(np.nanmin(adds)), float(np.nanmax(adds))
        if hi - lo <= 1e-9 * max(abs(hi), 1e-300):
            s += (f" The branch input is normalised, so every block adds the same alpha^2 sigma_v^2 E[phi(n)^2] = "
                  f"{_g(hi)}: p grows linearly, p^L = p^0 + {L} x {_g(hi)}, and the branch's share of each block "
                  "shrinks like 1/sqrt(l).")
        else:
            s += (f" The branch input is normalised, so each block adds about the same alpha^2 sigma_v^2 "
                  f"E[phi(n)^2], from {_g(lo)} to {_g(hi)} here (the bias mean's share of the norm changes as p "
                  "grows): p grows about linearly.")
    elif (activation(spec.act).slope == 0.0 and math.isclose(float(p.sigma_w2[0]), 2.0, rel_tol=1e-12)
          and float(p.sigma_b2[0]) == 0.0 and p.pre_mean[0] == 0.0 and math.isclose(sv2, 1.0, rel_tol=1e-12)):
        s += (f" For relu with He weights each block multiplies p by 1 + alpha^2 = {_g(1 + alpha * alpha)}: "
              f"p^L = p^0 (1 + alpha^2)^L. alpha = 1 doubles p every block (2^L); alpha = 1/sqrt(L) gives "
              "(1 + 1/L)^L, below e for any depth (2.692 at L = 50).")
    return s


def _block_gradient_paragraph(spec: RunSpec, p) -> str:
    from .blocks import norm_theory, story_values

    L = spec.depth
    if spec.has_residual:
        r = float(p.grad_out_std[0] / p.grad_out_std[-1]) if p.grad_out_std[-1] > 0 else math.nan
        return (f"Backward: dLoss/dx^(l-1) = dLoss/dx^l + W^T dLoss/dh, the skip's gradient plus the branch's, "
                f"uncorrelated, so the gradient variance at the block outputs grows by 1 + alpha^2 sigma_v^2 "
                f"sigma_w^2 E[phi'^2] / D per block (D the norm's divisor, 1 without one): "
                f"{_g(float(p.chi1[0]))} at block 1, {_g(float(p.chi1[-1]))} at block {L}. It is never below 1, so "
                f"gradients cannot vanish; dLoss/dx^l std at block 1 is {_g(r)} times that at block {L}.")
    return norm_theory(spec.norm).backward_story.format(**story_values(spec, p))
