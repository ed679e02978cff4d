"""What the predicted curves mean: phase, fixed point, growth per layer, depth of vanishing/exploding.

- chi_1 = sigma_w^2 E[phi'(h)^2] (Poole et al. 2016): the mean squared singular value of
  one layer's Jacobian. < 1 ordered (inputs collapse together, gradients vanish), = 1 critical,
  > 1 chaotic (inputs decorrelate, gradients explode). Tolerance PHASE_TOL.
- the length map q -> sigma_w^2 E[phi(sqrt(q) z + beta)^2] + sigma_b^2 with the last block's
  parameters, and its stable fixed point q* (Newton in log q from the last predicted q, then a scan
  of q in [1e-12, 1e12] with bisection if Newton fails).
- per-layer growth factors of the pre-activation std (std_l / std_{l-1}) and of the gradient std
  (std g^{l-1} / std g^l, going backwards), and the layer at which the predicted pre std leaves
  [1e-3, 1e3] (engine/signal_range.py, the rule every view uses), extrapolated past the last block
  when it does not within the net.
- what the gradients do over the net, from R = std(g^1)/std(g^L): they keep their size when R is
  within a factor 1 + GRAD_TOL of 1, else they shrink (R < 1) or grow (R > 1) toward the input. Per
  block the gradient variance is multiplied by n_l Var[W] E[phi'^2] = chi_1 n_l/n_{l-1} (sigma_w^2 =
  n_{l-1} Var[W]), so a critical chi_1 = 1 still shrinks gradients where the widths narrow.
- norm and residual blocks: `diagnose_blocks` (docs/formulas.md 16.5). chi_1 = sigma_w^2 E[phi'^2] says
  nothing there; chi1 holds the block's backward factor, the phase is read from it under a norm and is
  "n/a" with a residual (every factor >= 1, no fixed point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..numbers import fmt_num
from ..signal_range import HIGH, LOW, RULE, first_out_of_range

PHASE_TOL = 0.01
GRAD_TOL = 0.1


@dataclass(frozen=True)
class FixedPoint:
    kind: str  # stable | zero | none | every  (every q is fixed: relu-like at chi_1 = 1, no bias)
    q: float | None  # q* (pre-activation variance); None unless kind is stable or zero
    chi1: float | None  # chi_1 at q*
    post_mean: float | None = None
    post_std: float | None = None


@dataclass(frozen=True)
class Diagnostics:
    chi1: np.ndarray  # [L] sigma_w^2 E[phi'^2] per block
    phase: str  # ordered | critical | chaotic | unknown (chi_1 at the fixed point, else at the last block)
    phase_chi1: float
    fixed_point: FixedPoint
    signal_growth: np.ndarray  # [L] pre std ratio to the block before (NaN at block 1)
    grad_growth: np.ndarray  # [L] grad std at block l-1 over block l (NaN at block 1)
    leaves_at: int | None  # first block whose predicted pre std is < 1e-3 or > 1e3
    leaves_how: str | None  # vanish | explode
    leaves_extrapolated: bool  # the block is past the net's depth (estimated)
    grad_ratio: float  # std(g^1)/std(g^L): > 1 gradients grow toward the input
    depth_scale: float | None  # -1/log chi_1 (layers per e-fold of the gradient), None at chi_1 = 1
    block: str | None = None  # 'batchnorm', 'plain residual', ...: chi1 is then the block's backward factor
    block_lines: tuple[str, ...] = ()  # the words for such a block (diagnose_blocks), lines() returns them

    @property
    def gradient_trend(self) -> str:
        return gradient_trend(self.grad_ratio)

    def lines(self) -> list[str]:
        """The diagnostics in words and numbers, one line each (Explain's Diagnostics section)."""
        if self.block is not None:
            return list(self.block_lines)
        f = fmt_num
        out = [f"phase: {self.phase} (chi_1 = {f(self.phase_chi1)}; ordered below {f(1 - PHASE_TOL)}, "
               f"chaotic above {f(1 + PHASE_TOL)})"]
        chi = np.asarray(self.chi1, dtype=float)
        if chi.size > 1 and np.allclose(chi, chi[0], rtol=1e-9, equal_nan=True):
            out.append(f"chi_1 per block: {f(chi[0])} at every block")
        elif chi.size > 1:
            out.append(f"chi_1 per block: {f(chi[0])} at block 1 ... {f(chi[-1])} at block {chi.size}")
        out.append("fixed point: " + _fixed_point_words(self.fixed_point))
        if self.signal_growth.size > 1:
            out.append(f"pre std growth per block (last block): x{f(self.signal_growth[-1])}")
        if self.grad_growth.size > 1:
            out.append(f"gradient std from block 2 to block 1: x{f(self.grad_growth[1])}")
        if self.leaves_at is None:
            out.append(f"signal range ({RULE}): stays inside")
        else:
            words = {"vanish": "vanishes", "explode": "explodes"}.get(self.leaves_how or "", "leaves")
            where = (f"at block ~{self.leaves_at} (extrapolated past this net)" if self.leaves_extrapolated
                     else f"at block {self.leaves_at}")
            out.append(f"signal range ({RULE}): {words} {where}")
        trend = self.gradient_trend
        out.append(f"gradient std, block 1 / block L: {f(self.grad_ratio)}" + (f" ({trend})" if trend else ""))
        if self.depth_scale is not None:
            out.append(f"depth scale: the gradient changes by a factor e every {f(self.depth_scale, 3)} blocks "
                       "of equal width")
        return out


def gradient_trend(ratio: float) -> str:
    """What R = std(g^1)/std(g^L) means: 'keep their size' within a factor 1 + GRAD_TOL of 1, else
    'shrink toward the input' (R < 1) or 'grow toward the input' (R > 1); '' when R is not finite."""
    if not math.isfinite(ratio) or ratio < 0:
        return ""
    if 1 / (1 + GRAD_TOL) <= ratio <= 1 + GRAD_TOL:
        return "keep their size"
    return "shrink toward the input" if ratio < 1 else "grow toward the input"


def _fixed_point_words(fp: FixedPoint) -> str:
    if fp.kind == "every":
        return "every length is a fixed point (chi_1 = 1, no bias): the std neither grows nor shrinks"
    if fp.kind == "zero":
        return "the signal decays to 0 (the only fixed point is q = 0)"
    if fp.kind == "stable" and fp.q is not None:
        return (f"stable at pre std {fmt_num(math.sqrt(fp.q))}, post mean {fmt_num(fp.post_mean)}, "
                f"post std {fmt_num(fp.post_std)} (chi_1 there {fmt_num(fp.chi1)})")
    return "none (the length map has no stable fixed point)"


def _phase(chi1: float) -> str:
    if not math.isfinite(chi1):
        return "unknown"
    if chi1 < 1 - PHASE_TOL:
        return "ordered"
    if chi1 > 1 + PHASE_TOL:
        return "chaotic"
    return "critical"


def fixed_point(act, sw2: float, sb2: float, mu: float, q_start: float, homogeneous: bool) -> FixedPoint:
    """The stable fixed point of q -> sw2 E[phi(h)^2] + sb2, h ~ N(mu, q)."""
    if not (math.isfinite(sw2) and math.isfinite(sb2)):
        return FixedPoint("none", None, None)

    def result(kind, q):
        g = act.moments(mu, q)
        d2 = act.moments(mu, 1e-24).d2 if q == 0 else g.d2  # chi_1 as q -> 0+, not at the kink itself
        return FixedPoint(kind, q, sw2 * d2, g.m1, math.sqrt(g.var))

    if homogeneous and mu == 0.0:
        slope = sw2 * act.moments(0.0, 1.0).m2  # E[phi^2] = k q
        if abs(slope - 1.0) < 1e-9:
            return FixedPoint("every", None, slope) if sb2 == 0 else FixedPoint("none", None, slope)
        if slope > 1.0:
            return FixedPoint("none", None, slope)
        return result("zero" if sb2 == 0 else "stable", sb2 / (1.0 - slope))

    def F(lq):  # map(q) - q and its derivative in log q
        q = math.exp(lq)
        g = act.moments(mu, q)
        return sw2 * g.m2 + sb2 - q, (sw2 * g.dm2 - 1.0) * q

    lq = math.log(q_start) if q_start > 0 and math.isfinite(q_start) else 0.0
    for _ in range(40):  # Newton in log q
        f, df = F(lq)
        q = math.exp(lq)
        if abs(f) < 1e-12 * max(q, 1e-300):
            if df < 0:
                return result("stable", q)
            break
        if df == 0 or not math.isfinite(f / df):
            break
        lq -= max(-2.0, min(2.0, f / df))
        if lq < -28 and F(lq)[0] < 0:  # still shrinking at q ~ 1e-12: it decays to 0
            return result("zero", 0.0) if sb2 == 0 else result("stable", sb2)
        if lq > 28:
            break
    grid = np.linspace(math.log(1e-12), math.log(1e12), 25)
    vals = [F(x)[0] for x in grid]
    for k in range(len(grid) - 1, 0, -1):  # the largest stable crossing: + below, - above
        if vals[k - 1] > 0 >= vals[k]:
            lo, hi = grid[k - 1], grid[k]
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if F(mid)[0] > 0 else (lo, mid)
            return result("stable", math.exp(0.5 * (lo + hi)))
    if all(v < 0 for v in vals):
        return result("zero", 0.0) if sb2 == 0 else result("stable", sb2)
    return FixedPoint("none", None, None)


def _leaves_linear(L: int, q: float, a: float, b: float) -> tuple[int | None, str | None, bool]:
    """First block past L where q_{L+k} = q* + (q - q*) a^k (or q + k b at a = 1) leaves the range."""
    lo2, hi2 = LOW**2, HIGH**2
    if abs(a - 1.0) < 1e-12:
        return (L + math.ceil((hi2 - q) / b), "explode", True) if b > 0 else (None, None, False)
    qs = b / (1.0 - a)
    if a < 1.0 and qs < lo2 < q:
        return L + math.ceil(math.log((lo2 - qs) / (q - qs)) / math.log(a) - 1e-9), "vanish", True
    if a > 1.0 and q > qs:
        return L + math.ceil(math.log((hi2 - qs) / (q - qs)) / math.log(a) - 1e-9), "explode", True
    return None, None, False


def _leaves(pre_std: np.ndarray, fp: FixedPoint, sb2: float, act, sw2: float, mu: float,
            linear: tuple[float, float] | None) -> tuple[int | None, str | None, bool]:
    L = len(pre_std)
    inside = first_out_of_range(pre_std)
    if inside is not None:
        return inside.layer, inside.how, False
    if L < 2 or not (math.isfinite(pre_std[-1]) and math.isfinite(pre_std[-2])) or pre_std[-2] <= 0:
        return None, None, False
    q_l, q_p = pre_std[-1] ** 2, pre_std[-2] ** 2
    if linear is not None:  # relu-like, no bias mean: q -> a q + b exactly
        return _leaves_linear(L, q_l, *linear)
    ratio = q_l / q_p
    if fp.kind == "stable" and fp.q is not None and LOW**2 < fp.q < HIGH**2:
        return None, None, False  # it settles at std sqrt(q*)
    if fp.kind == "every":
        return None, None, False
    if fp.kind in ("zero", "stable") and fp.q is not None and fp.q <= LOW**2 and ratio < 1:
        slope0 = sw2 * act.moments(mu, 1e-12).dm2 if sb2 == 0 else 0.0
        if abs(slope0 - 1.0) < 1e-6:  # critical decay to 0 is algebraic: fit q ~ l^-p
            p = math.log(q_p / q_l) / math.log(L / (L - 1))
            return (int(round(L * (q_l / LOW**2) ** (1 / p))) if p > 0 else None), "vanish", True
        return int(math.ceil(L + math.log(LOW**2 / q_l) / math.log(ratio))), "vanish", True
    if fp.kind == "none" and ratio > 1:
        if ratio < 1.001:  # linear growth (e.g. relu at sigma_w^2 = 2 with a bias)
            step = q_l - q_p
            return int(math.ceil(L + (HIGH**2 - q_l) / step)), "explode", True
        return int(math.ceil(L + math.log(HIGH**2 / q_l) / math.log(ratio))), "explode", True
    return None, None, False


def diagnose(mf, act, pre_std: np.ndarray, grad_std: np.ndarray, homogeneous: bool) -> Diagnostics:
    L = len(pre_std)
    chi1 = mf.sw2 * mf.d2
    signal = np.full(L, math.nan)
    grad = np.full(L, math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        signal[1:] = pre_std[1:] / pre_std[:-1]
        grad[1:] = grad_std[:-1] / grad_std[1:]
        grad_ratio = float(grad_std[0] / grad_std[-1]) if L else math.nan
    sw2, sb2, mu = mf.sw2[-1], mf.sb2[-1], mf.pre_mean[-1]
    if mf.reason is None and "lsuv" not in mf.kinds:
        fp = fixed_point(act, sw2, sb2, mu, mf.q[-1], homogeneous)
    else:
        fp = FixedPoint("none", None, None)
    pc = fp.chi1 if fp.chi1 is not None and fp.kind in ("stable", "zero", "every") else chi1[-1]
    linear = (sw2 * act.moments(0.0, 1.0).m2, sb2) if homogeneous and mu == 0.0 else None
    where, how, extra = (None, None, False)
    if mf.reason is None and "lsuv" not in mf.kinds:
        where, how, extra = _leaves(pre_std, fp, sb2, act, sw2, mu, linear)
    scale = None
    if math.isfinite(pc) and pc > 0 and abs(math.log(pc)) > 1e-9:
        scale = -1.0 / math.log(pc) if pc < 1 else 1.0 / math.log(pc)
    return Diagnostics(chi1, _phase(pc), float(pc), fp, signal, grad, where, how, extra, grad_ratio, scale)


def diagnose_blocks(spec, mf, act, pre_std: np.ndarray, grad_std: np.ndarray,
                    grad_out_std: np.ndarray) -> Diagnostics:
    """Diagnostics for norm and residual blocks (engine/theory/blocks.py), where the plain ones would mislead.

    chi1 holds each block's backward factor at equal widths, the factor by which the gradient variance
    grows from the block's output side to its input side:
      norm, no residual:  sigma_w^2 E[phi'(n)^2] kappa / D   (batchnorm: lambda kappa; layernorm E[phi'^2]/E[phi^2])
      residual:           1 + alpha^2 sigma_v^2 sigma_w^2 E[phi'(n)^2] kappa / D   (>= 1: never ordered)
    Norm without residual: the phase is read from that factor (gradients vanish, keep or explode), and the
    forward sits at its fixed point from block 1 (the norm fixes n; the pre std is constant from block 2
    at equal widths). Residual: no phase and no fixed point apply (the output's second moment only grows);
    the gradient ratio is that of dLoss/dx^l at the block outputs.
    """
    from .blocks import block_name, middle_block, norm_theory

    f = fmt_num
    L = len(pre_std)
    name = block_name(spec)
    with np.errstate(divide="ignore", invalid="ignore"):
        branch = mf.sw2 * mf.d2 * mf.kappa / mf.divisor
        if spec.has_residual:
            a2 = mf.alpha * mf.alpha
            chi = 1.0 + (a2 * mf.sv2 * branch if a2 else 0.0) * np.ones(L)
        else:
            chi = branch
        signal = np.full(L, math.nan)
        grad = np.full(L, math.nan)
        signal[1:] = pre_std[1:] / pre_std[:-1]
        gs = grad_out_std if spec.has_residual else grad_std
        grad[1:] = gs[:-1] / gs[1:]
        ratio = float(gs[0] / gs[-1]) if L else math.nan
    inside = first_out_of_range(pre_std) if mf.reason is None else None
    where, how = (inside.layer, inside.how) if inside is not None else (None, None)
    lines: list[str] = []
    mid = chi[middle_block(L)]  # batchnorm's first and last blocks differ by O(1/B)
    if not spec.has_residual:
        nt = norm_theory(spec.norm)
        phase = _phase(float(mid))
        law = f"{nt.backward} = {f(nt.rate(spec.act))}"
        law += (f" (large-batch limit) times the batch-{spec.batch} factor {f(float(mf.kappa[middle_block(L)]))}"
                if nt.batch_dependent else " at zero-mean normed values")
        lines.append(f"chi_1 = sigma_w^2 E[phi'(h)^2] is not the test under {spec.norm.name}: the norm divides the "
                     f"backward signal by the std it divided the forward one by, so each block multiplies the "
                     f"gradient variance by {law}: {f(float(mid))}, whatever sigma_w")
        lines.append(f"phase (from that factor): {phase} (ordered below {f(1 - PHASE_TOL)}, chaotic above "
                     f"{f(1 + PHASE_TOL)})")
        g = act.moments(float(mf.normed_mean[-1]), float(mf.normed_var[-1]))
        lines.append(f"fixed point: reached at block 1 - normed mean {f(float(mf.normed_mean[-1]))}, std "
                     f"{f(math.sqrt(max(float(mf.normed_var[-1]), 0.0)))}; post mean {f(g.m1)}, post std "
                     f"{f(math.sqrt(g.var))}; pre std {f(float(pre_std[-1]))} from block 2 at equal widths")
        fp = FixedPoint("stable", float(mf.q[-1]), float(mid), g.m1, math.sqrt(g.var))
        scale = None
        if math.isfinite(mid) and mid > 0 and abs(math.log(mid)) > 1e-9:
            scale = 1.0 / abs(math.log(mid))
    else:
        phase = "n/a"
        identity = mf.alpha == 0.0 or not np.any(mf.sv2 > 0)
        lines.append(f"chi_1 and the phase do not apply to {name} blocks: the skip adds 1 to every block's backward "
                     f"factor 1 + alpha^2 sigma_v^2 sigma_w^2 E[phi'^2]"
                     + (" = 1 exactly here (the branch is switched off at init)" if identity else
                        f" = {f(float(chi[0]))} at block 1 ... {f(float(chi[-1]))} at block {L}")
                     + ", so gradients cannot vanish")
        if identity:
            lines.append("fixed point: every block is the identity at init (x^l = x^(l-1)); the block output is "
                         "the input at every block")
        else:
            lines.append(f"fixed point: none - the block output's second moment grows from {f(mf.s0)} to "
                         f"{f(float(mf.out_m2[-1]))} over {L} blocks (each adds alpha^2 sigma_v^2 E[phi(n)^2])")
        fp = FixedPoint("none", None, None)
        scale = None
    if L > 1:
        lines.append(f"pre std growth per block (last block): x{f(float(signal[-1]))}")
    if where is None:
        lines.append(f"signal range ({RULE}): stays inside (not extrapolated past this net)")
    else:
        lines.append(f"signal range ({RULE}): {'vanishes' if how == 'vanish' else 'explodes'} at block {where}")
    which = "dLoss/dx^l at the block outputs" if spec.has_residual else "gradient std"
    trend = gradient_trend(ratio)
    lines.append(f"{which}, block 1 / block L: {f(ratio)}" + (f" ({trend})" if trend else ""))
    if scale is not None:
        lines.append(f"depth scale: the gradient variance changes by a factor e every {f(scale, 3)} blocks")
    return Diagnostics(np.asarray(chi, dtype=float), phase, float(mid), fp, signal, grad, where, how, False, ratio,
                       scale, block=name, block_lines=tuple(lines))
