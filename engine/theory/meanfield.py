"""The mean-field recursion of docs/formulas.md section 7, block by block, for any widths.

Per block l (fan_in n_{l-1}, fan_out n_l), with sigma_w^2(l) = n_{l-1} Var[W^l] and bias mean beta_l,
variance sigma_b^2(l):
    pre   h^l ~ N(beta_l, q_l),  q_l = sigma_w^2(l) s_{l-1} + sigma_b^2(l)   (s = SECOND moment, He eq. 7)
    post  m_l = E[phi(h^l)],  s_l = E[phi(h^l)^2],  std = sqrt(s_l - m_l^2)
backward (loss sum(x^L u), u ~ N(0, 1), so Var(g^L) = 1):
    Var(delta^l) = E[phi'(h^l)^2] Var(g^l),   Var(g^{l-1}) = n_l Var[W^l] Var(delta^l)
and the correlation of one unit's pre-activations for two different inputs of the batch:
    c_1 = (sigma_w^2 m_0^2 + sigma_b^2)/q_1,  c_{l+1} = (sigma_w^2 E[phi(u) phi(v)]_{c_l} + sigma_b^2)/q_{l+1}.

With a norm and/or a residual (docs/formulas.md 16; each kind's record in engine/theory/blocks.py) the
block input x^(l-1) has second moment s and cross moment k = E[x_a x_b] (two examples); the norm turns
h ~ N(beta, q) into the Gaussian n ~ N(mu_n, r) that phi sees, and
    out    s_l = s_{l-1} + alpha^2 sigma_v^2 E[phi(n)^2],  k_l = k_{l-1} + alpha^2 sigma_v^2 E[phi(n_a) phi(n_b)]
           (sigma_v^2 = n Var[V]; without a residual s_l = E[phi(n)^2], k_l = E[phi(n_a) phi(n_b)])
    back   Var(delta^l) = E[phi'(n)^2] Var(g^l) kappa_l / D_l
           residual: Var(g^l) = alpha^2 sigma_v^2 Var(g_out^l),
                     Var(g_out^{l-1}) = Var(g_out^l) + n_l Var[W^l] Var(delta^l)
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
from .blocks import PreStats, batchnorm_batch_factor, batchnorm_post_cross, norm_theory, residual_theory
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
    """Per-block arrays (index l-1 is block l) from the recursion; NaN where nothing is predicted.

    m1, m2, m4, d2, dm1, dm2 are the activation's expectations at the Gaussian it sees: h without a norm,
    the normed n with one (engine/theory/blocks.py)."""

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
    var_g: np.ndarray  # Var(g^l), g = dLoss/d post
    var_delta: np.ndarray  # Var(delta^l), delta = dLoss/d pre
    normed_mean: np.ndarray  # pooled mean of n = norm(h) (NaN without a norm)
    normed_var: np.ndarray  # its variance about that mean
    divisor: np.ndarray  # the norm's backward divisor D (1 without a norm)
    kappa: np.ndarray  # the finite-batch factor of batchnorm's backward (1 otherwise)
    out_mean: np.ndarray  # pooled mean of the block output x^l (NaN without a residual)
    out_m2: np.ndarray  # its second moment
    var_gout: np.ndarray  # Var(dLoss/dx^l) at the block output (NaN without a residual)
    sv2: np.ndarray  # sigma_v^2 = n Var[V] of the residual branch's second linear (NaN without one)
    s0: float
    m0: float
    kinds: tuple[str, ...]
    reason: str | None
    notes: tuple[str, ...]
    alpha: float = math.nan  # the residual branch multiplier (NaN without a residual)
    norm: str = "none"
    residual: str = "none"


_COLS = ("q", "pre_mean", "m1", "m2", "m4", "d2", "dm1", "dm2", "sw2", "sb2", "var_w", "corr", "pair4", "var_g",
         "var_delta", "normed_mean", "normed_var", "divisor", "kappa", "out_mean", "out_m2", "var_gout", "sv2")


def with_unit_gain(init: Call) -> Call:
    """The init call with its `gain` set to 1 (a scheme without a gain as it is): how the residual branch's
    V is drawn."""
    if init.get("gain", _ABSENT) is _ABSENT:
        return init
    return Call(init.name, tuple((k, 1.0 if k == "gain" else v) for k, v in init.params))


_ABSENT = object()


def branch_variance(spec: RunSpec, n: int) -> tuple[float, str | None]:
    """(Var[V], reason or None) of the residual branch's V [n, n]: the run's scheme at gain 1 (lsuv: its
    orthogonal start at gain 1, Var 1/n; fixup: V = 0)."""
    if residual_theory(spec.residual).v_zero:
        return 0.0, None
    if spec.init.name == "lsuv":
        return 1.0 / n, None
    vv, _, why = weight_variance(with_unit_gain(spec.init), spec.act, n, n)
    return vv, why


def run_meanfield(spec: RunSpec, data_mean: float | None = None,
                  data_second_moment: float | None = None, data_corr: float | None = None) -> MeanField:
    """data_corr: mean over pairs of rows of x_b . x_b' / mean |x_b|^2, measured on fixed rows (file, digits);
    None: i.i.d. entries, m_0^2/s_0."""
    act = activation(spec.act)
    L = spec.depth
    cols = {k: [math.nan] * L for k in _COLS}
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
    res = residual_theory(spec.residual)
    alpha = res.alpha(spec.residual) if res.is_residual else math.nan
    if res.is_residual and reason is None:
        try:
            vv, why = branch_variance(spec, spec.arch[1])
        except (ArithmeticError, ValueError) as err:
            vv, why = math.nan, f"the branch weight variance leaves the float64 range ({_what(err)})"
        reason = reason or why
        cols["sv2"] = [spec.arch[1] * vv] * L
    if reason is None:
        reason = _forward(spec, act, weights, m0, s0, cols, data_corr, alpha if res.is_residual else None,
                          res.weight_scale(L))
        _backward(spec, cols, alpha if res.is_residual else None)  # NaN past a block where the forward stopped
        if reason is None and spec.has_norm and norm_theory(spec.norm).batch_dependent and spec.batch <= 3 \
                and not res.is_residual:
            reason = (f"{spec.norm.name} over a batch of {spec.batch}: no gradient prediction below a batch of 4 (with 2 "
                      "examples the normed values are +-1 and almost no gradient passes; with 3 the unit's batch "
                      "variance has no finite inverse mean)")
    arrays = {k: np.array(v, dtype=float) for k, v in cols.items()}
    return MeanField(**arrays, s0=s0, m0=m0, kinds=tuple(kinds), reason=reason, notes=tuple(notes),
                     alpha=alpha, norm=spec.norm.name, residual=spec.residual.name)


def _backward(spec: RunSpec, cols: dict, alpha: float | None) -> None:
    """Var(g), Var(delta) (and Var(g_out) with a residual) from the loss's Var = 1 at block L down to block 1."""
    L = spec.depth
    var_g, var_delta, d2, var_w = cols["var_g"], cols["var_delta"], cols["d2"], cols["var_w"]
    div, kappa = cols["divisor"], cols["kappa"]
    if alpha is None:
        vg = 1.0
        for i in range(L - 1, -1, -1):
            var_g[i] = vg
            var_delta[i] = d2[i] * vg * kappa[i] / div[i]
            vg = spec.arch[i + 1] * var_w[i] * var_delta[i]
        return
    var_gout, sv2 = cols["var_gout"], cols["sv2"]
    a2 = alpha * alpha
    vo = 1.0
    for i in range(L - 1, -1, -1):
        var_gout[i] = vo
        var_g[i] = a2 * sv2[i] * vo  # dLoss/da = alpha V^T dLoss/dx^l
        var_delta[i] = d2[i] * var_g[i] * kappa[i] / div[i]
        vo = vo + spec.arch[i + 1] * var_w[i] * var_delta[i]  # skip + W^T delta, uncorrelated


def _what(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _forward(spec: RunSpec, act, weights: list[Weights], m0: float, s0: float, cols: dict,
             data_corr: float | None = None, alpha: float | None = None, w_scale: float = 1.0) -> str | None:
    """Fill cols block by block; return a reason if the recursion had to stop.

    alpha: the residual branch multiplier (None: no residual); w_scale multiplies Var[W] (fixup: 1/L)."""
    q, pre_mean, sw2, sb2, var_w = cols["q"], cols["pre_mean"], cols["sw2"], cols["sb2"], cols["var_w"]
    m1, m2, m4, d2, dm1, dm2 = (cols[k] for k in ("m1", "m2", "m4", "d2", "dm1", "dm2"))
    corr, pair4 = cols["corr"], cols["pair4"]
    nt = norm_theory(spec.norm)
    has_norm = spec.has_norm
    s_prev = s0
    c_prev = m0 * m0 / s0 if s0 > 0 else 1.0  # uncentred correlation of two inputs (i.i.d. data)
    if data_corr is not None and math.isfinite(data_corr):
        c_prev = data_corr  # measured on the rows
    B = spec.batch
    for i, w in enumerate(weights):
        n_in = spec.arch[i]
        if w.kind == "lsuv":
            target = float(spec.init.get("target"))
            target2 = target * target
            if not (s_prev > 0 and target2 > w.bias_var):
                return (f"layer {i + 1}: LSUV cannot reach std {math.sqrt(target2):g} (input second moment "
                        f"{s_prev:.3g}, bias variance {w.bias_var:.3g})")
            sw2[i] = (target2 - w.bias_var) / s_prev * w_scale  # fixup scales W after LSUV's calibration
            var_w[i] = sw2[i] / n_in
        else:
            var_w[i] = w.var_w if w_scale == 1.0 else w.var_w * w_scale
            sw2[i] = var_w[i] * n_in
        sb2[i] = w.bias_var
        qi = sw2[i] * s_prev + w.bias_var
        if not math.isfinite(qi) or qi > 1e300:
            return f"layer {i + 1}: the predicted pre-activation variance overflows float64"
        try:
            corr_i = (sw2[i] * s_prev * c_prev + w.bias_var) / qi if qi > 0 else 1.0
            if has_norm:
                unit_var = (B - 1) / B * sw2[i] * s_prev * (1.0 - c_prev)
                nd = nt.normed(spec.norm, PreStats(w.bias_mean, qi, unit_var, corr_i, B, spec.arch[i + 1]))
                g = act.moments(nd.mean, nd.var)
                e12, pair4_i = act.pair(nd.mean, nd.var, nd.corr)
                if nt.batch_dependent and B > 1:  # each unit is centred exactly over the batch (blocks.py)
                    e12 = batchnorm_post_cross(g.m1, g.var, B)
                cols["normed_mean"][i], cols["normed_var"][i], cols["divisor"][i] = nd.mean, nd.var, nd.divisor
            else:
                g = act.moments(w.bias_mean, qi)
                e12, pair4_i = act.pair(w.bias_mean, qi, corr_i)
                cols["divisor"][i] = 1.0
        except (ArithmeticError, ValueError) as err:  # e.g. a bias of 1e300: its powers leave float64
            return f"layer {i + 1}: the Gaussian expectations leave the float64 range ({_what(err)})"
        cols["kappa"][i] = 1.0
        if has_norm and nt.batch_dependent and alpha is None:
            cols["kappa"][i] = batchnorm_batch_factor(spec.act, B, last=i == len(weights) - 1)
        q[i], pre_mean[i] = qi, w.bias_mean
        m1[i], m2[i], m4[i], d2[i], dm1[i], dm2[i] = g
        corr[i], pair4[i] = corr_i, pair4_i
        if alpha is None:
            c_prev = e12 / g.m2 if g.m2 > 0 else 1.0
            s_prev = g.m2
        else:  # x^l = x^(l-1) + alpha V a: the branch adds alpha^2 sigma_v^2 E[a a'] to every moment
            a2 = alpha * alpha * cols["sv2"][i]
            k_next = s_prev * c_prev + (a2 * e12 if a2 else 0.0)
            s_next = s_prev + (a2 * g.m2 if a2 else 0.0)
            c_prev = k_next / s_next if s_next > 0 else 1.0
            s_prev = s_next
            cols["out_mean"][i], cols["out_m2"][i] = m0, s_next
        if not math.isfinite(s_prev):
            return f"layer {i + 1}: the {'block output' if alpha is not None else 'post-activation'} second " \
                   "moment is not finite"
    return None
