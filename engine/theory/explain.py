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

from ..catalog import activation_gain, show
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
    init, act = spec.init, spec.act
    name = init.name
    n_in, n_out = spec.arch[0], spec.arch[1]
    if name in ("kaiming_normal", "kaiming_uniform"):
        g = init.get("gain")
        gain = activation_gain(act) if g is None else float(g)
        fan = init.get("mode")
        s = (f"{name} (He et al. 2015) draws Var[W] = gain^2/{fan} with gain {_g(gain)}"
             f"{' (the one ' + act.name + ' asks for)' if g is None else ''}, so sigma_w^2 = n_in Var[W] = {_g(sw2)}.")
        if fan == "fan_out":
            s += (" fan_out keeps the backward variance instead: the forward second moment then changes by "
                  f"n_out/n_in each layer (overall {_g(spec.arch[1] / spec.arch[-1])} from block 1 to block L).")
        return s
    if name in ("xavier_normal", "xavier_uniform"):
        return (f"{name} (Glorot & Bengio 2010) draws Var[W] = 2 gain^2/(n_in + n_out), the compromise between "
                f"keeping the forward and the backward variance of a LINEAR layer: sigma_w^2 = {_g(sw2)} here "
                f"({n_in}->{n_out}). It ignores what the activation does to the second moment.")
    if name in ("lecun_normal", "lecun_uniform"):
        return (f"{name} (LeCun et al. 1998) draws Var[W] = gain^2/fan_in: sigma_w^2 = {_g(sw2)}, the choice that "
                "keeps a linear layer's second moment (and SELU's fixed point mean 0, variance 1).")
    if name == "orthogonal":
        return (f"orthogonal weights (Saxe et al. 2014) preserve lengths exactly: sigma_w^2 = gain^2 min(1, n_in/n_out) "
                f"= {_g(sw2)}. Means and stds follow the same theory as Gaussian weights; the difference is in "
                "the Jacobian spectrum, and in a smaller finite-width spread.")
    if name == "torch_default":
        return ("torch_default is what nn.Linear does on its own: W and b ~ U(-1/sqrt(n_in), 1/sqrt(n_in)), so "
                f"sigma_w^2 = 1/3 and the bias variance is 1/(3 n_in) = {_g(1 / (3 * n_in))}. "
                "It is not He's init.")
    if name == "trunc_normal":
        return (f"trunc_normal redraws N(0, std^2) samples outside [a, b] (absolute bounds, no variance correction): "
                f"sigma_w^2 = {_g(sw2)} from the truncated variance.")
    if name in ("normal", "uniform"):
        return f"{show('init', init)} fixes Var[W] whatever the width: sigma_w^2 = n_in Var[W] = {_g(sw2)}."
    if name == "zeros":
        return "zeros sets every weight to 0: each pre-activation is just its bias, at every layer."
    if name == "lsuv":
        return (f"LSUV (Mishkin & Matas 2016) starts orthogonal and rescales each layer on the batch until "
                f"std(pre) = {_g(float(init.get('target')))}: the pre-activation std is the target by definition.")
    return f"{name}: sigma_w^2 = {_g(sw2)}."


def _activation_paragraph(spec: RunSpec, p) -> str:
    act = spec.act
    mf = p.meanfield
    sw2 = p.sigma_w2[-1]
    q1 = mf.q[0]
    name = act.name
    s0 = p.input_second_moment
    core = ("Each block computes pre = W x + b, with variance q = sigma_w^2 E[x^2] + sigma_b^2: what carries "
            "from layer to layer is the SECOND MOMENT E[x^2] of the previous output, not its variance "
            "(He et al. 2015, eq. 7; the two differ as soon as the output has a mean).")
    a = activation(act).slope
    if a is not None and name != "identity" and p.pre_mean[0] == 0:
        k = (1 + a * a) / 2
        factor = sw2 * k
        text = (f" A {'relu' if a == 0 else f'leaky relu (slope {_g(a)})'} keeps E[phi(h)^2] = {_g(k)} Var[h] "
                f"for a centred Gaussian h, so each block multiplies E[x^2] by sigma_w^2 x {_g(k)} = {_g(factor)}.")
        if name == "general_relu":
            return core + text
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
    if name == "general_relu":
        return core + (" general_relu = min(leaky_relu(h, leak) - sub, maxv) is piecewise linear, but the shift "
                       "and the clamp make it lose relu's scaling: E[phi(h)^2] is no longer a fixed fraction of "
                       "Var[h], so the kaiming gain no longer keeps E[x^2] constant. The prediction integrates it "
                       "exactly over the Gaussian pre-activation.")
    if name == "tanh":
        return core + (" tanh is close to the identity near 0 and saturates at +-1: for small q, E[tanh(h)^2] ~ q, "
                       "for large q it tends to 1. So the length map has a fixed point q* (or decays to 0 when "
                       "sigma_w^2 <= 1 with no bias) instead of a geometric trend.")
    if name == "sigmoid":
        return core + (" sigmoid outputs 0.5 at 0: its E[x^2] is dominated by the mean 0.25, so every layer "
                       "feeds a large shared offset forward, and sigmoid'(h) <= 1/4 shrinks gradients.")
    if name == "selu":
        return core + (" SELU (Klambauer et al. 2017) is built so that mean 0 and variance 1 is a stable fixed point "
                       "when sigma_w^2 = 1 (lecun_normal).")
    if name == "elu":
        return core + " ELU is linear for h > 0 and saturates at -alpha below; it has no built-in fixed point."
    if name == "identity":
        return core + " With no activation the net is linear: each block multiplies E[x^2] by sigma_w^2 exactly."
    return core + (f" {name} is smooth and grows like relu for large h; its recommended gain here is "
                   f"1/sqrt(E[{name}(z)^2]) = {_g(activation_gain(act))}.")


def _variant_paragraph(spec: RunSpec, p) -> list[str]:
    out = []
    act, init = spec.act, spec.init
    if act.name == "general_relu":
        sub = float(act.get("sub", 0.0))
        maxv = act.get("maxv")
        if sub:
            s = p.meanfield.m2
            ratio = s[1] / s[0] if len(s) > 1 and s[0] > 0 else math.nan
            out.append(f"general_relu subtracts sub = {_g(sub)} after the relu: the post mean moves from "
                       f"{_g(p.post_mean[0] + sub)} to {_g(p.post_mean[0])} (recentred), but E[x^2] drops "
                       f"(block 1: {_g(s[0])}) so He's factor no longer holds exactly: block 2's E[x^2] is "
                       f"{_g(ratio)} times block 1's, and the std drifts {'down' if ratio < 1 else 'up'} with depth.")
        if maxv is not None:
            out.append(f"maxv = {_g(float(maxv))} clamps large activations; the prediction includes the clamp exactly.")
    if act.name == "tanh" and init.name.startswith(("xavier", "kaiming", "lecun", "orthogonal")):
        fp = p.diagnostics.fixed_point
        if fp.kind == "stable" and p.diagnostics.phase == "chaotic":
            out.append(f"tanh with gain 5/3 (sigma_w^2 = {_g(p.sigma_w2[-1])}) sits in the chaotic phase "
                       f"(chi_1 = {_g(fp.chi1)} > 1): the signal settles at pre std {_g(math.sqrt(fp.q))}, post std "
                       f"{_g(fp.post_std)}, while two inputs decorrelate and gradients grow toward the input.")
    if act.name == "selu" and abs(p.sigma_w2[-1] - 1.0) > 1e-3:
        fp = p.diagnostics.fixed_point
        if fp.q is not None:
            out.append(f"SELU only self-normalises with sigma_w^2 = 1 (lecun_normal). Here sigma_w^2 = "
                       f"{_g(p.sigma_w2[-1])} (torch's SELU gain 3/4 gives 0.5625), so the fixed point is pre std "
                       f"{_g(math.sqrt(fp.q))}, post mean {_g(fp.post_mean)}, post std {_g(fp.post_std)}.")
    if init.name == "torch_default" or spec.bias.name == "torch_default":
        fp = p.diagnostics.fixed_point
        if fp.q is not None and act.name == "relu":
            out.append(f"With relu, sigma_w^2 = 1/3 shrinks the variance by 6 (the std by sqrt(6) = 2.449) per "
                       f"layer until the bias variance 1/(3n) takes over: the std stops at the bias floor "
                       f"sqrt(2/(5n)) = {_g(math.sqrt(fp.q))}.")
        elif fp.q is not None:
            out.append(f"The bias variance 1/(3n) sets a floor: the pre std settles at {_g(math.sqrt(fp.q))}.")
    if spec.bias.name == "const" and float(spec.bias.get("value")):
        out.append(f"const bias {_g(float(spec.bias.get('value')))} gives every pre-activation that mean: h ~ "
                   f"N(b, q), which the prediction includes exactly.")
    return out


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
    name, act = spec.norm.name, spec.act.name
    L = spec.depth
    m, sd = float(p.post_mean[-1]), float(p.post_std[-1])
    nsd = float(p.normed_std[-1])
    pre = (f"The pre-activation h = W x + b still has std sqrt(sigma_w^2 E[x^2] + sigma_b^2): {_g(p.pre_std[0])} at "
           f"block 1, {_g(p.pre_std[L - 1])} at block {L}; the norm then takes that scale away, so the init scale "
           "changes no statistic after it.")
    post = (f"The activation sees N({_g(float(p.normed_mean[-1]))}, {_g(nsd)}^2): post mean {_g(m)}, post std {_g(sd)}"
            + (" (relu: 1/sqrt(2 pi) = 0.3989 and sqrt(1/2 - 1/(2 pi)) = 0.5838)"
               if act == "relu" and float(p.normed_mean[-1]) == 0.0 and abs(nsd - 1) < 1e-3 else "")
            + " at every block.")
    if name == "batchnorm":
        eps = float(spec.norm.get("eps"))
        return (f"batchnorm normalises each unit over the batch of {spec.batch} with the biased variance: "
                f"n = (h - mean)/sqrt(var + eps), eps = {_g(eps)}. Whatever the weights, every unit of `normed` has "
                f"mean 0 and std sqrt(var/(var + eps)) = {_g(nsd)}: the forward is perfectly normalised. " + post
                + " " + pre)
    if name == "layernorm":
        return (f"layernorm normalises each example over its {spec.arch[1]} units: every example's normed vector "
                f"has mean 0 and variance 1 (std {_g(nsd)} with eps), whatever the weights and the batch. " + post
                + " " + pre)
    return (f"rmsnorm divides each example by its root mean square over the units, without centring: the normed "
            f"second moment is 1 (eps aside) and its mean is beta/rho = {_g(float(p.normed_mean[-1]))} (beta the "
            f"bias mean, rho^2 = q + beta^2 + eps). " + post + " " + pre)


def _residual_paragraph(spec: RunSpec, p) -> str:
    mf = p.meanfield
    L = spec.depth
    name = spec.residual.name
    p0, pL = p.input_second_moment, float(mf.out_m2[-1])
    out_sd = float(p.out_std[-1])
    if name in ("rezero", "fixup"):
        how = ("rezero multiplies the branch by alpha = 0 at init" if name == "rezero" else
               f"fixup sets V = 0 and scales W by L^(-1/2) = {_g(L ** -0.5)} (sigma_w^2 = {_g(float(p.sigma_w2[0]))})")
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
    elif (spec.act.name == "relu" and math.isclose(float(p.sigma_w2[0]), 2.0, rel_tol=1e-12)
          and float(p.sigma_b2[0]) == 0.0 and p.pre_mean[0] == 0.0 and math.isclose(sv2, 1.0, rel_tol=1e-12)):
        s += (f" For relu with He weights each block multiplies p by 1 + alpha^2 = {_g(1 + alpha * alpha)}: "
              f"p^L = p^0 (1 + alpha^2)^L. alpha = 1 doubles p every block (2^L); alpha = 1/sqrt(L) gives "
              "(1 + 1/L)^L, below e for any depth (2.692 at L = 50).")
    return s


def _block_gradient_paragraph(spec: RunSpec, p) -> str:
    from .blocks import batchnorm_rate, layernorm_rate

    d = p.diagnostics
    L = spec.depth
    if spec.has_residual:
        r = float(p.grad_out_std[0] / p.grad_out_std[-1]) if p.grad_out_std[-1] > 0 else math.nan
        return (f"Backward: dLoss/dx^(l-1) = dLoss/dx^l + W^T dLoss/dh, the skip's gradient plus the branch's, "
                f"uncorrelated, so the gradient variance at the block outputs grows by 1 + alpha^2 sigma_v^2 "
                f"sigma_w^2 E[phi'^2] / D per block (D the norm's divisor, 1 without one): "
                f"{_g(float(p.chi1[0]))} at block 1, {_g(float(p.chi1[-1]))} at block {L}. It is never below 1, so "
                f"gradients cannot vanish; dLoss/dx^l std at block 1 is {_g(r)} times that at block {L}.")
    ratio = d.grad_ratio
    var_ratio = ratio * ratio if math.isfinite(ratio) else math.nan
    mid = d.phase_chi1
    if spec.norm.name == "batchnorm":
        lam = batchnorm_rate(spec.act)
        return (f"Forward perfectly normalised; gradients grow by {_g(mid)} per layer toward the input: "
                f"x{_g(var_ratio, 2)} in variance (x{_g(ratio, 2)} in std) over {L} layers. Batchnorm divides the "
                "backward signal by the unit's batch std, sqrt(sigma_w^2 Var[phi]), while W^T multiplies its "
                f"variance by sigma_w^2 E[phi'^2]: sigma_w cancels, and each block multiplies the gradient variance "
                f"by E[phi'^2]/Var[phi] = {_g(lam)} in the large-batch limit (relu: pi/(pi-1) = 1.4669; identity 1) "
                f"however the weights are scaled. At batch {spec.batch} the drawn line uses {_g(mid)}: the "
                "projection off the batch mean and off n, and the spread of the unit's batch variance, add O(1/B) "
                "(identity: exactly (B-2)/(B-3)). The init cannot fix this; only the activation can (closer to "
                "linear, smaller rate).")
    rate = layernorm_rate(spec.act)
    trend = d.gradient_trend
    by = ("std over the units, sqrt(sigma_w^2 E[phi^2] + sigma_b^2)" if spec.norm.name == "layernorm" else
          "root mean square over the units, sqrt(sigma_w^2 E[phi^2] + sigma_b^2 + beta^2)")
    return (f"Backward: {spec.norm.name} divides the gradient by the example's {by}, while W^T multiplies its variance by sigma_w^2 E[phi'^2]: each "
            f"block multiplies the gradient variance by E[phi'^2]/E[phi^2] = {_g(rate)} (zero-mean normed values; "
            f"{_g(mid)} here), whatever sigma_w and the batch. Over {L} layers the gradient std changes by "
            f"x{_g(ratio, 4)} from block L to block 1" + (f" ({trend})." if trend else "."))
