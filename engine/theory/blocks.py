"""The theory of each norm kind and each residual kind, side by side: one record per catalog name.

numpy only. A block l (docs/formulas.md 16) computes

    pre   h = W x^(l-1) + b
    norm  n = norm(h)                              (none: n = h)
    post  a = phi(n)
    out   x^l = x^(l-1) + alpha V a                (residual; without one x^l = a)

The mean-field recursion (engine/theory/meanfield.py) hands a norm the Gaussian statistics of h in a
`PreStats` and gets back, in a `Normed`, the Gaussian the activation sees and the norm's backward divisor:

    Var(dLoss/dh) = E[phi'(n)^2] Var(dLoss/da) * kappa / D

- none:      n = h: mean beta, variance q, the pre correlation c; D = 1.
- batchnorm: per unit over the batch. The unit's biased batch variance is v = (B-1)/B sigma_w^2 (s - k)
             (s = E[x^2], k = E[x_a x_b] for two different examples a != b: the bias is shared by the
             batch and drops out); n has mean 0 and variance r = v/(v + eps) in every unit, and two
             examples' normed values correlate by exactly -1/(B-1) on average over the pairs. D = v + eps.
             The post phi(n) of a unit keeps its batch variance Var[phi] (n is standardised exactly, so
             the first two Hermite parts of phi have no batch fluctuation), hence its pair cross moment is
             k = E[phi]^2 - Var[phi]/(B-1) (`batchnorm_post_cross`), and the next block's v is
             sigma_w^2 Var[phi] exactly: identity gives (B-2)/(B-3) with kappa.
             Backward (large batch): the gradient variance grows toward the input by
             lambda = E[phi'(z)^2]/Var[phi(z)] per block (relu pi/(pi-1)); kappa is the O(1/B)
             correction `batchnorm_batch_factor` (identity: lambda kappa = (B-2)/(B-3)).
- layernorm: per example over the units: mean 0, variance r = q/(q + eps), the pre correlation c;
             D = q + eps. Backward factor E[phi'^2]/E[phi^2] per block, independent of the batch
             (up to O(1/width)).
- rmsnorm:   n = h/sqrt(mean_units h^2 + eps): mean beta/rho, variance q/rho^2 with rho^2 = q + beta^2 +
             eps; D = rho^2.

A residual kind says what multiplies the branch: alpha (plain: as given, rezero: 0), whether V is 0
(fixup) and the factor on the branch's first weight variance (fixup: 1/L).

Each record also carries its own words (Explain, the notes, the diagnostics), so a new norm or residual
kind is its catalog entry, its torch side and its record here: nothing else names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..textforms import Call
from .gaussian import activation


@dataclass(frozen=True)
class PreStats:
    """The mean-field statistics of one block's pre-activations h = W x + b."""

    mean: float  # beta: the pooled mean of h (the bias mean; the weights have mean 0)
    q: float  # variance of h about beta, pooled over units and batch: sigma_w^2 s + sigma_b^2
    unit_var: float  # expected biased variance of one unit over the batch: (B-1)/B sigma_w^2 (s - k)
    corr: float  # correlation of two examples' h about beta: (sigma_w^2 k + sigma_b^2)/q
    batch: int
    width: int  # the units a per-example norm averages over


@dataclass(frozen=True)
class Normed:
    """The Gaussian the activation sees after the norm, and the norm's backward divisor D."""

    mean: float  # pooled mean of n
    var: float  # variance of n about that mean
    corr: float  # correlation of two examples' n about the mean
    divisor: float  # D in Var(dLoss/dh) = E[phi'(n)^2] Var(dLoss/da) kappa / D


@dataclass(frozen=True)
class NormTheory:
    """One norm kind: its forward map of the statistics, its backward factor, and its words.

    forward_story and backward_story are str.format templates; Explain fills them with `story_values`
    (batch, width, eps, nmean, nsd, lam, rate, drawn, ratio, var_ratio, L, trend)."""

    name: str
    over: str  # what it normalises over, in words
    normed: Callable[[Call, PreStats], Normed]
    backward: str  # the per-block backward factor, as a formula (batchnorm: its large-batch limit)
    batch_dependent: bool  # its statistics come from the batch (batchnorm): kappa and the width warning
    rate: Callable[[Call], float]  # the large-batch / zero-mean factor per block (none: chi_1 applies, NaN)
    forward_story: str
    backward_story: str


@dataclass(frozen=True)
class ResidualTheory:
    """One residual kind: the branch multiplier alpha, V = 0 or not, the factor on the branch's Var[W]."""

    name: str
    is_residual: bool
    alpha: Callable[[Call], float]
    v_zero: bool  # fixup: V = 0, the branch adds nothing and gets no gradient
    weight_scale: Callable[[int], float]  # multiplies Var[W] of the branch's first linear; arg: L
    words: str
    identity_story: str | None  # how the kind makes every block the identity at init (template: L_root, sw2)


def _none(norm: Call, h: PreStats) -> Normed:
    return Normed(h.mean, h.q, h.corr, 1.0)


def _batchnorm(norm: Call, h: PreStats) -> Normed:
    eps = float(norm.get("eps"))
    v = max(h.unit_var, 0.0) if h.batch > 1 else 0.0
    r = v / (v + eps)
    corr = -1.0 / (h.batch - 1) if h.batch > 1 else 0.0
    return Normed(0.0, r, corr, v + eps)


def _layernorm(norm: Call, h: PreStats) -> Normed:
    eps = float(norm.get("eps"))
    v = max(h.q, 0.0)
    return Normed(0.0, v / (v + eps), h.corr, v + eps)


def _rmsnorm(norm: Call, h: PreStats) -> Normed:
    eps = float(norm.get("eps"))
    rho2 = max(h.q, 0.0) + h.mean * h.mean + eps
    return Normed(h.mean / math.sqrt(rho2), max(h.q, 0.0) / rho2, h.corr, rho2)


def norm_theory(norm: Call) -> NormTheory:
    """The record for a resolved norm call (KeyError for a name the theory does not know)."""
    return NORMS[norm.name]


def residual_theory(residual: Call) -> ResidualTheory:
    return RESIDUALS[residual.name]


# ---------------------------------------------------------------------------------------------
# closed forms at z ~ N(0, 1), the numbers Explain, the notes and the tests quote

_HALF = np.linspace(0.0, 12.0, 24001)  # Simpson on each side of 0: O(h^2) at the relu family's kink


@lru_cache(maxsize=64)
def unit_expectations(act: Call) -> dict[str, float]:
    """E over z ~ N(0, 1) of phi, phi^2, phi'^2, phi', z phi', z^2 phi'^2, by Simpson's rule on [-12, 0]
    and [0, 12] (phi' is taken from each side at 0, so the relu family's kink costs nothing; other kinks
    O(h) = 5e-4 times their jump, which moves the batch factor below 1e-6)."""
    w = np.exp(-0.5 * _HALF * _HALF) / math.sqrt(2 * math.pi)
    h = _HALF[1] - _HALF[0]
    simpson = np.ones_like(_HALF)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    w = np.concatenate((w, w)) * np.concatenate((simpson, simpson)) * h / 3.0
    side = np.concatenate((-np.maximum(_HALF, 1e-12), np.maximum(_HALF, 1e-12)))
    f, d = activation(act)(side)
    z = side

    def e(x):
        return float(w @ x)

    m1, m2, d2 = e(f), e(f * f), e(d * d)
    return {"m1": m1, "m2": m2, "var": m2 - m1 * m1, "d2": d2, "d1": e(d), "zd1": e(z * d),
            "z2d2": e(z * z * d * d)}


def batchnorm_rate(act: Call) -> float:
    """lambda = E[phi'(z)^2]/Var[phi(z)]: the large-batch growth of the gradient variance per block toward
    the input in a batchnorm stack (relu pi/(pi-1) = 1.46694, tanh 1.1778, identity 1)."""
    g = activation(act).moments(0.0, 1.0)  # closed forms for the relu family, quadrature otherwise
    return g.d2 / g.var


def layernorm_rate(act: Call) -> float:
    """E[phi'(z)^2]/E[phi(z)^2]: the gradient variance's factor per block under layernorm (relu 1, tanh 1.1778)."""
    g = activation(act).moments(0.0, 1.0)
    return g.d2 / g.m2


def batchnorm_batch_factor(act: Call, batch: int, last: bool = False) -> float:
    """kappa: the O(1/B) correction to the batchnorm backward rate at batch B (NaN for B <= 3).

    Per unit the backward of batchnorm is dL/dh = P y / sigma, with y = phi'(n) * dL/da and P the projection
    off the batch mean and off n. With dL/da of covariance gamma (I - 11^T/B) over the batch (the block above
    has already removed its batch mean; `last`: the loss's u, covariance I) and the unit's batch variance
    v ~ v_bar chi^2_(B-1)/(B-1) (E[v_bar/v] = (B-1)/(B-3)):

        kappa = (B - 1 - A/E[phi'^2])/(B - 3),  A = Var[phi'] + E[z^2 phi'^2] - E[z phi']^2
        last block: kappa = (B - 1 - E[z^2 phi'^2]/E[phi'^2]) (B - 1)/(B (B - 3))

    identity: lambda kappa = (B-2)/(B-3); relu at B = 256: 1.003234 (rate 1.47168)."""
    if batch <= 3:
        return math.nan
    u = unit_expectations(act)
    d2 = u["d2"]
    if not d2 > 0:
        return 1.0
    B = float(batch)
    if last:
        return (B - 1.0 - u["z2d2"] / d2) * (B - 1.0) / (B * (B - 3.0))
    a = (d2 - u["d1"] ** 2) + (u["z2d2"] - u["zd1"] ** 2)
    return (B - 1.0 - a / d2) / (B - 3.0)


def batchnorm_post_cross(m1: float, var: float, batch: int) -> float:
    """E[phi(n_a) phi(n_b)], a != b, for one batchnorm unit: E[phi]^2 - Var[phi]/(B-1), so that the unit's
    biased batch variance (B-1)/B (E[phi^2] - k) is Var[phi]."""
    return m1 * m1 - var / (batch - 1)


def residual_he_relu_growth(depth: int, alpha: float) -> float:
    """p^L/p^0 = (1 + alpha^2)^L for relu with He weights (sigma_w^2 = 2) and sigma_v^2 = 1, no bias:
    each block adds alpha^2 sigma_v^2 E[relu(h)^2] = alpha^2 p. alpha = 1/sqrt(L): (1 + 1/L)^L (2.692 at 50)."""
    return (1.0 + alpha * alpha) ** depth


# ---------------------------------------------------------------------------------------------
# words for a run: the block's name, the numbers the stories take, and the notes a prediction carries

WIDE = 4  # batchnorm's backward theory needs width >> batch; below WIDE x batch a note says so


def block_name(spec) -> str | None:
    """'batchnorm', 'plain residual', 'layernorm + rezero residual', ...; None for a plain block."""
    parts = []
    if spec.has_norm:
        parts.append(spec.norm.name)
    if spec.has_residual:
        parts.append(f"{spec.residual.name} residual")
    return " + ".join(parts) if parts else None


def _n(x: float, digits: int = 4) -> str:
    from ..numbers import fmt_num

    return fmt_num(x, digits + 1 if math.isfinite(x) and abs(x) >= 1 else digits)


def middle_block(depth: int) -> int:
    """The index of a block whose backward factor is the stack's own: batchnorm's first block sees the raw
    input and its last the loss's uncentred u, so both differ by O(1/B)."""
    return depth - 2 if depth >= 3 else depth - 1


def story_values(spec, p) -> dict[str, str]:
    """The numbers a NormTheory story takes, from a Prediction."""
    mf, d = p.meanfield, p.diagnostics
    ratio = d.grad_ratio
    trend = d.gradient_trend
    return {"name": spec.norm.name, "batch": str(spec.batch), "width": str(spec.arch[1]), "L": str(spec.depth),
            "eps": _n(float(spec.norm.get("eps", math.nan))), "nmean": _n(float(p.normed_mean[-1])),
            "nsd": _n(float(p.normed_std[-1])), "lam": _n(norm_theory(spec.norm).rate(spec.act)),
            "drawn": _n(d.phase_chi1), "ratio": _n(ratio, 2 if norm_theory(spec.norm).batch_dependent else 4),
            "var_ratio": _n(ratio * ratio, 2) if math.isfinite(ratio) else "n/a",
            "trend": f" ({trend})" if trend else "", "mf_kappa": _n(float(mf.kappa[middle_block(spec.depth)]))}


def block_notes(spec, mf) -> list[str]:
    """The sentences a norm or residual run's prediction carries (Prediction.notes)."""
    out: list[str] = []
    if mf.reason is not None:
        return out
    B = spec.batch
    nt = norm_theory(spec.norm)
    if spec.has_norm and nt.batch_dependent:
        lam = nt.rate(spec.act)
        if spec.has_residual:
            out.append(f"{spec.norm.name} backward: the large-batch limit (per-unit projection and the unit's batch "
                       f"variance taken at their means; corrections O(1/{B}))")
        else:
            i = middle_block(len(mf.d2))
            drawn = mf.sw2[i] * mf.d2[i] * mf.kappa[i] / mf.divisor[i]
            out.append(f"{spec.norm.name} backward: the gradient variance grows toward the input by {nt.backward} = "
                       f"{_n(lam)} per block in the large-batch limit; the line drawn for batch {B} uses {_n(drawn)}, "
                       f"that times the O(1/B) factor {_n(float(mf.kappa[i]))} (the projection off the batch mean and "
                       "off n, and the spread of the unit's batch variance; identity: (B-2)/(B-3))")
        narrow = min(spec.arch[1:])
        if narrow < WIDE * B:
            out.append(f"width {narrow} is not much larger than the batch {B}: {spec.norm.name}'s backward theory "
                       f"assumes width >> batch (here under {WIDE}x); expect the measured growth per block to differ "
                       "by about 1% (below the line for relu at width <= 2 x batch)")
    elif spec.has_norm:
        out.append(f"{spec.norm.name} normalises {nt.over}, whatever the weights; backward factor per block "
                   f"{nt.backward} = {_n(nt.rate(spec.act))} at zero-mean normed values, independent of the batch, "
                   "up to O(1/width)")
    if spec.has_residual:
        res = residual_theory(spec.residual)
        if res.v_zero or mf.alpha == 0.0:
            out.append(f"{spec.residual.name}: every block is the identity at init (x^l = x^(l-1) exactly); the "
                       "branch gets no gradient (dLoss/d post = dLoss/d pre = 0), the block output's gradient "
                       "is the loss's at every block")
        else:
            p0, pL = mf.s0, mf.out_m2[-1]
            out.append(f"residual: p^l = p^(l-1) + alpha^2 sigma_v^2 E[phi(n)^2] with alpha = {_n(mf.alpha)}, "
                       f"sigma_v^2 = {_n(float(mf.sv2[0]))}: the block output's second moment goes from "
                       f"p^0 = {_n(p0)} to p^L = {_n(pL)} (x{_n(pL / p0) if p0 > 0 else 'n/a'})")
    return out

# ---------------------------------------------------------------------------------------------
# the records

_BN_BACKWARD = (
    "Forward perfectly normalised; gradients grow by {drawn} per layer toward the input: x{var_ratio} in variance "
    "(x{ratio} in std) over {L} layers. Batchnorm divides the backward signal by the unit's batch std, "
    "sqrt(sigma_w^2 Var[phi]), while W^T multiplies its variance by sigma_w^2 E[phi'^2]: sigma_w cancels, and "
    "each block multiplies the gradient variance by E[phi'^2]/Var[phi] = {lam} in the large-batch limit "
    "(relu: pi/(pi-1) = 1.4669; identity 1) however the weights are scaled. At batch {batch} the drawn line "
    "uses {drawn}: the projection off the batch mean and off n, and the spread of the unit's batch variance, "
    "add O(1/B) (identity: exactly (B-2)/(B-3)). The init cannot fix this; only the activation can (closer to "
    "linear, smaller rate).")
_PER_EXAMPLE_BACKWARD = (
    "Backward: {name} divides the gradient by the example's {by}, while W^T multiplies its variance by "
    "sigma_w^2 E[phi'^2]: each block multiplies the gradient variance by E[phi'^2]/E[phi^2] = {lam} (zero-mean "
    "normed values; {drawn} here), whatever sigma_w and the batch. Over {L} layers the gradient std changes by "
    "x{ratio} from block L to block 1{trend}.")

NORMS: dict[str, NormTheory] = {t.name: t for t in [
    NormTheory("none", "nothing", _none, "sigma_w^2 E[phi'(h)^2] (chi_1)", False, lambda act: math.nan, "", ""),
    NormTheory("batchnorm", "each unit over the batch", _batchnorm,
               "E[phi'(z)^2]/Var[phi(z)]", True, lambda act: batchnorm_rate(act),
               "batchnorm normalises each unit over the batch of {batch} with the biased variance: n = (h - "
               "mean)/sqrt(var + eps), eps = {eps}. Whatever the weights, every unit of `normed` has mean 0 and std "
               "sqrt(var/(var + eps)) = {nsd}: the forward is perfectly normalised.",
               _BN_BACKWARD),
    NormTheory("layernorm", "each example over the units", _layernorm, "E[phi'(z)^2]/E[phi(z)^2]", False,
               lambda act: layernorm_rate(act),
               "layernorm normalises each example over its {width} units: every example's normed vector has mean 0 "
               "and variance 1 (std {nsd} with eps), whatever the weights and the batch.",
               _PER_EXAMPLE_BACKWARD.replace("{by}", "std over the units, sqrt(sigma_w^2 E[phi^2] + sigma_b^2)")),
    NormTheory("rmsnorm", "each example over the units, without centring", _rmsnorm,
               "E[phi'(n)^2]/E[phi(n)^2]", False, lambda act: layernorm_rate(act),
               "rmsnorm divides each example by its root mean square over the units, without centring: the normed "
               "second moment is 1 (eps aside) and its mean is beta/rho = {nmean} (beta the bias mean, rho^2 = q + "
               "beta^2 + eps).",
               _PER_EXAMPLE_BACKWARD.replace("{by}", "root mean square over the units, sqrt(sigma_w^2 E[phi^2] + "
                                                     "sigma_b^2 + beta^2)")),
]}

RESIDUALS: dict[str, ResidualTheory] = {t.name: t for t in [
    ResidualTheory("none", False, lambda c: math.nan, False, lambda L: 1.0, "no skip connection", None),
    ResidualTheory("plain", True, lambda c: float(c.get("alpha")), False, lambda L: 1.0,
                   "x^l = x^(l-1) + alpha V a, alpha as given", None),
    ResidualTheory("rezero", True, lambda c: 0.0, False, lambda L: 1.0,
                   "alpha = 0 at init: every block is the identity, x^l = x^(l-1)",
                   "rezero multiplies the branch by alpha = 0 at init"),
    ResidualTheory("fixup", True, lambda c: 1.0, True, lambda L: 1.0 / L,
                   "V = 0 and W scaled by L^(-1/2): every block is the identity at init",
                   "fixup sets V = 0 and scales W by L^(-1/2) = {L_root} (sigma_w^2 = {sw2})"),
]}
