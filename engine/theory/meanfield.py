"""The mean-field recursion of docs/formulas.md section 7, block by block, for any widths.

Per block l (fan_in n_{l-1}, fan_out n_l), with sigma_w^2(l) = n_{l-1} Var[W^l] and bias mean beta_l,
variance sigma_b^2(l):
    pre   h^l ~ N(beta_l, q_l),  q_l = sigma_w^2(l) s_{l-1} + sigma_b^2(l)   (s = SECOND moment, He eq. 7)
    post  m_l = E[phi(h^l)],  s_l = E[phi(h^l)^2],  std = sqrt(s_l - m_l^2)
backward (loss sum(x^L u), u ~ N(0, 1), so Var(g^L) = 1):
    Var(delta^l) = E[phi'(h^l)^2] Var(g^l),   Var(g^{l-1}) = n_l Var[W^l] Var(delta^l)
and the correlation of one unit's pre-activations for two different inputs of the batch:
    c_1 = (sigma_w^2 m_0^2 + sigma_b^2)/q_1,  c_{l+1} = (sigma_w^2 E[phi(u) phi(v)]_{c_l} + sigma_b^2)/q_{l+1}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..kinds.biases import BIASES
from ..kinds.data import DATA
from ..kinds.inits import INITS, scheme_params
from ..spec import RunSpec
from ..textforms import Call
from .gaussian import activation

TRUNC_STD1 = 0.8796256610342398  # std of N(0, 1) truncated to [-2, 2]


@dataclass(frozen=True)
class Weights:
    """What the theory needs of one block's weights and bias."""

    var_w: float  # Var[W_ij] (NaN for lsuv: set by the recursion)
    kind: str  # gaussian | uniform | orthogonal | zeros | lsuv
    bias_mean: float
    bias_var: float


def weight_variance(init: Call, act: Call, n_in: int, n_out: int) -> tuple[float, str, str | None]:
    """(Var[W_ij], kind, reason it cannot be predicted or None), docs/formulas.md 1.4: the scheme record's
    variance rule, distribution kind and caveat (engine/kinds/inits.py), gain=auto resolved to the
    activation's recommended gain."""
    scheme = INITS.get(init.name)
    if scheme is None:
        return math.nan, "?", f"no theory for init {init.name!r}"
    p = scheme_params(init, act)
    return scheme.variance(p, n_in, n_out), scheme.distribution, scheme.caveat(p, n_in, n_out)


def truncated_normal_moments(std: float, a: float, b: float) -> tuple[float, float]:
    """Mean and variance of N(0, std^2) restricted to [a, b] (absolute bounds, as torch).

    In units of std the interval is [alpha, beta] = [a, b]/std. The textbook form
    mean = (pdf(alpha) - pdf(beta))/Z, Z = Phi(beta) - Phi(alpha), divides 0 by 0 once the interval lies
    far in a tail (alpha = 50: Z underflows) and cancels catastrophically for a narrow interval. Instead,
    each side of 0 is integrated from its end nearest 0, p >= 0 (mirrored for negative pieces): with
    z = p + t, the density relative to pdf(p) is exp(-p t - t^2/2), smooth and at most 1, integrated on
    [0, T] by 64-node Gauss-Legendre, where T is the interval's length capped where the exponent reaches
    -_TRUNC_EXPONENT (the mass beyond is below e^-40). Relative error below 1e-10 from the bulk out to
    alpha = 1e6 (tests/engine/theory/test_truncated.py).
    """
    alpha, beta = a / std, b / std
    if beta <= 0.0:  # mirror a piece below 0 to above it
        mean, var = truncated_normal_moments(std, -b, -a)
        return -mean, var
    if alpha >= 0.0:  # one piece, anchored at alpha
        length = _trunc_length(alpha, beta - alpha)
        i0, i1, i2 = _trunc_piece(alpha, length)
        scale = std * length  # std * T: finite where T alone would underflow next to a huge std
        mean_t = i1 / i0
        return a + scale * mean_t, scale * scale * (i2 / i0 - mean_t * mean_t)
    # the interval holds 0: two pieces anchored at 0, [0, beta] and the mirrored [0, -alpha]
    up, down = _trunc_length(0.0, beta), _trunc_length(0.0, -alpha)
    s = max(up, down)
    ru, rd = up / s, down / s
    u0, u1, u2 = _trunc_piece(0.0, up)
    d0, d1, d2 = _trunc_piece(0.0, down)
    m0 = ru * u0 + rd * d0  # moments of z/s
    m1 = (ru * ru * u1 - rd * rd * d1) / m0
    m2 = (ru**3 * u2 + rd**3 * d2) / m0
    scale = std * s
    return scale * m1, scale * scale * max(0.0, m2 - m1 * m1)


_TRUNC_EXPONENT = 40.0


def _trunc_length(p: float, length: float) -> float:
    """min(length, T) with p T + T^2/2 = _TRUNC_EXPONENT (T = 2E/(p + sqrt(p^2 + 2E)), overflow-free)."""
    e2 = 2.0 * _TRUNC_EXPONENT
    return min(length, e2 / (p + math.hypot(p, math.sqrt(e2))))


@lru_cache(maxsize=1)
def _legendre01() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(64)
    return 0.5 * (x + 1.0), 0.5 * w


def _trunc_piece(p: float, length: float) -> tuple[float, float, float]:
    """I_k = int_0^1 x^k exp(-p T x - (T x)^2/2) dx, k = 0, 1, 2, with T = length."""
    x, w = _legendre01()
    t = length * x
    dens = w * np.exp(-(p * t + 0.5 * t * t))
    return float(dens.sum()), float(dens @ x), float(dens @ (x * x))


def bias_moments(bias: Call, n_in: int) -> tuple[float, float]:
    """(mean, variance) of one bias entry: the bias record's (engine/kinds/biases.py)."""
    kind = BIASES[bias.name]
    return kind.moments(kind.values(bias), n_in)


def input_moments(spec: RunSpec, data_mean: float | None, data_second_moment: float | None
                  ) -> tuple[float, float, str | None, str | None]:
    """(mean m_0, second moment s_0, note, reason for no prediction) of the input entries: the data
    record's i.i.d. moments where the spec fixes them, else the ones measured on the batch."""
    d = spec.data
    kind = DATA[d.name]
    iid = kind.iid_moments(kind.values(d))
    if iid is not None:
        m, s0, _ = iid
        return m, s0, None, None
    if data_second_moment is None or not math.isfinite(data_second_moment):
        return math.nan, math.nan, None, (f"the input comes from {d.name}: the prediction needs its second moment, "
                                          "measured by a run (predict(spec, data_second_moment=...))")
    m = 0.0 if data_mean is None or not math.isfinite(data_mean) else float(data_mean)
    note = (f"input second moment {data_second_moment:.4g} measured on the batch ({d.name} data); from layer 1 "
            "on the theory assumes Gaussian pre-activations")
    return m, float(data_second_moment), note, None


@dataclass
class MeanField:
    """Per-block arrays (index l-1 is block l) from the recursion; NaN where nothing is predicted."""

    q: np.ndarray  # pre-activation variance
    pre_mean: np.ndarray
    m1: np.ndarray  # post mean
    m2: np.ndarray  # post second moment
    m4: np.ndarray
    d2: np.ndarray  # E[phi'^2]
    dm1: np.ndarray  # dE[phi]/dq
    dm2: np.ndarray  # dE[phi^2]/dq
    sw2: np.ndarray  # effective sigma_w^2 (n_in Var[W])
    sb2: np.ndarray
    var_w: np.ndarray
    corr: np.ndarray  # correlation of pre-activations of two inputs
    pair4: np.ndarray  # E[phi(u)^2 phi(v)^2] at that correlation
    var_g: np.ndarray  # Var(g^l)
    var_delta: np.ndarray  # Var(delta^l)
    s0: float
    m0: float
    kinds: tuple[str, ...]
    reason: str | None
    notes: tuple[str, ...]


def run_meanfield(spec: RunSpec, data_mean: float | None = None,
                  data_second_moment: float | None = None, data_corr: float | None = None) -> MeanField:
    """data_corr: mean over pairs of rows of x_b . x_b' / mean |x_b|^2, measured on fixed rows (file, digits);
    None: i.i.d. entries, m_0^2/s_0."""
    act = activation(spec.act)
    L = spec.depth
    cols = {k: [math.nan] * L for k in ("q", "pre_mean", "m1", "m2", "m4", "d2", "dm1", "dm2", "sw2", "sb2",
                                        "var_w", "corr", "pair4", "var_g", "var_delta")}
    notes: list[str] = []
    m0, s0, note, reason = input_moments(spec, data_mean, data_second_moment)
    if note:
        notes.append(note)
    kinds = []
    weights = []
    cache: dict[tuple[int, int], Weights] = {}
    for n_in, n_out in zip(spec.fan_in, spec.fan_out, strict=True):
        w = cache.get((n_in, n_out))
        if w is None:
            try:
                vw, kind, why = weight_variance(spec.init, spec.act, n_in, n_out)
                bm, bv = bias_moments(spec.bias, n_in)
            except (ArithmeticError, ValueError) as err:
                vw, kind, bm, bv = math.nan, "?", math.nan, math.nan
                why = f"the weight or bias variance leaves the float64 range ({_what(err)})"
            w = cache[(n_in, n_out)] = Weights(vw, kind, bm, bv)
            reason = reason or why
        kinds.append(w.kind)
        weights.append(w)
    if spec.init.name == "lsuv":
        notes.append(f"LSUV rescales each layer on the batch until std(pre) = {spec.init.get('target'):g} "
                     f"(within {spec.init.get('tol'):g}): that is the prediction by definition")
    if spec.init.name == "zeros":
        notes.append("zero weights: every pre-activation is its bias, exactly")
    if reason is None:
        reason = _forward(spec, act, weights, m0, s0, cols, data_corr)
        vg = 1.0  # backward
        var_g, var_delta, d2, var_w = cols["var_g"], cols["var_delta"], cols["d2"], cols["var_w"]
        for i in range(L - 1, -1, -1):
            var_g[i] = vg
            var_delta[i] = d2[i] * vg
            vg = spec.arch[i + 1] * var_w[i] * var_delta[i]
    arrays = {k: np.array(v, dtype=float) for k, v in cols.items()}
    return MeanField(**arrays, s0=s0, m0=m0, kinds=tuple(kinds), reason=reason, notes=tuple(notes))


def _what(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _forward(spec: RunSpec, act, weights: list[Weights], m0: float, s0: float, cols: dict,
             data_corr: float | None = None) -> str | None:
    """Fill cols block by block; return a reason if the recursion had to stop."""
    q, pre_mean, sw2, sb2, var_w = cols["q"], cols["pre_mean"], cols["sw2"], cols["sb2"], cols["var_w"]
    m1, m2, m4, d2, dm1, dm2 = (cols[k] for k in ("m1", "m2", "m4", "d2", "dm1", "dm2"))
    corr, pair4 = cols["corr"], cols["pair4"]
    s_prev = s0
    c_prev = m0 * m0 / s0 if s0 > 0 else 1.0  # uncentred correlation of two inputs (i.i.d. data)
    if data_corr is not None and math.isfinite(data_corr):
        c_prev = data_corr  # measured on the rows
    for i, w in enumerate(weights):
        n_in = spec.arch[i]
        if w.kind == "lsuv":
            target = float(spec.init.get("target"))
            target2 = target * target
            if not (s_prev > 0 and target2 > w.bias_var):
                return (f"layer {i + 1}: LSUV cannot reach std {math.sqrt(target2):g} (input second moment "
                        f"{s_prev:.3g}, bias variance {w.bias_var:.3g})")
            sw2[i] = (target2 - w.bias_var) / s_prev
            var_w[i] = sw2[i] / n_in
        else:
            var_w[i] = w.var_w
            sw2[i] = w.var_w * n_in
        sb2[i] = w.bias_var
        qi = sw2[i] * s_prev + w.bias_var
        if not math.isfinite(qi) or qi > 1e300:
            return f"layer {i + 1}: the predicted pre-activation variance overflows float64"
        try:
            g = act.moments(w.bias_mean, qi)
            corr_i = (sw2[i] * s_prev * c_prev + w.bias_var) / qi if qi > 0 else 1.0
            e12, pair4_i = act.pair(w.bias_mean, qi, corr_i)
        except (ArithmeticError, ValueError) as err:  # e.g. a bias of 1e300: its powers leave float64
            return f"layer {i + 1}: the Gaussian expectations leave the float64 range ({_what(err)})"
        q[i], pre_mean[i] = qi, w.bias_mean
        m1[i], m2[i], m4[i], d2[i], dm1[i], dm2[i] = g
        corr[i], pair4[i] = corr_i, pair4_i
        c_prev = e12 / g.m2 if g.m2 > 0 else 1.0
        s_prev = g.m2
        if not math.isfinite(s_prev):
            return f"layer {i + 1}: the post-activation second moment is not finite"
    return None
