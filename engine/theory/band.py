"""The finite-width band: how far one network's pooled std may sit from the infinite-width curve.

docs/band.md derives every formula here; in short, layer by layer (n = fan_out, B = batch, f = the share
of q_l that comes through the weights, sigma_w^2 s_{l-1}/q_l):

    pre   v_pre = (1 + f^2 v_S(l-1)) (1 + [2 f^2 tau + 4 f (1 - f) p + k_b (1 - f)^2 + D_w] / n) - 1
    post  v_S   = (1 + eta^2 f^2 v_S(l-1)) (1 + Sigma[phi^2, phi^2] / (n m2^2) + eta^2 D/n) - 1
          v_V   = (1 + zeta^2 f^2 v_S(l-1)) (1 + Sigma[g, g] / (n Var[phi]^2) + zeta^2 D/n) - 1,  g = phi^2 - 2 m1 phi

v_* is the relative variance (over seeds) of a pooled second moment or variance; the band is
std * (1 -/+ sqrt(v)/2), one standard deviation of the std by the delta method.
tau = tr(A^2)/tr(A)^2 of the previous post's batch second-moment matrix A (1/B + c^2 + the spread of the
empirical correlations for i.i.d. rows), Sigma = (1/B) Cov(one input) + (1 - 1/B) Cov(two inputs) of one
unit averaged over the batch, taken at the pre-activation correlation c -/+ its spread across pairs, and
D/n the length noise that weights or biases that are not Gaussian add or remove (uniform, orthogonal).
The batch's own kernel (its mean correlation, the spread of its pair correlations and of its row norms)
is propagated too, so that real data (digits, files) and correlated inputs get their own band.

No band (NaN, with a reason) where the delta method is out of its depth: a relative spread above
MAX_REL, a post-activation that is constant, or where the infinite-width recursion itself stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MAX_REL = 0.4  # beyond +-40% the std is visibly skewed (lognormal): a symmetric band covers 80-90%, not 68%
_QUAD_N = 24  # Gauss-Hermite nodes per axis for the two-input expectations
_SLOPE_STEP = 0.02  # smallest correlation step for the slope of the correlation map


def relu_moment_ratio(widths, kappa: float = 5.0) -> float:
    """E[M_d^2]/E[M_d]^2 = prod_j (1 + kappa/n_j) for M_j = (2/n_j) |relu(h^j)|^2, one input, He-Gaussian
    weights, no bias (n = 32, d = 10: 4.2709)."""
    return float(np.prod([1.0 + kappa / n for n in widths]))


def leaky_kappa(a: float) -> float:
    """Var(phi(h)^2)/E[phi(h)^2]^2 for phi = leaky relu with slope a, h ~ N(0, q)."""
    return 6 * (1 + a**4) / (1 + a * a) ** 2 - 1


@dataclass(frozen=True)
class InputKernel:
    """The input batch's kernel, as the band needs it. With K_bb' = x_b . x_b', k = mean_b K_bb and the
    normalised correlations rho_bb' = K_bb'/sqrt(K_bb K_b'b') of pairs b != b':

    batch: B, the rows in the batch;  tau: tr(A^2)/tr(A)^2 of A = X^T X / B, i.e. sum_{b,b'} K_bb'^2/(B k)^2;
    corr, corr_var: mean and variance over pairs of rho;  norm_var: variance over rows of K_bb/k;
    feature_var: variance over features j of mean_b x_bj^2, over its mean squared;
    seed_var: relative variance across seeds of the pooled second moment (0: the same rows every trial).
    """

    batch: int
    tau: float
    corr: float
    corr_var: float
    norm_var: float
    feature_var: float
    seed_var: float


def kernel_of_rows(x) -> InputKernel:
    """The InputKernel of fixed rows x [B, n0] (file or digits data: the same rows in every trial).

    Costs two B x B or n0 x n0 Gram matrices, whichever are smaller."""
    x = np.asarray(x, dtype=np.float64)
    b, n0 = x.shape
    norms = np.einsum("ij,ij->i", x, x)
    k = float(norms.mean())
    col = (x * x).mean(axis=0)
    feature_var = float(col.var() / col.mean() ** 2) if col.mean() > 0 else 0.0
    if not k > 0:
        return InputKernel(b, 1.0, 1.0, 0.0, 0.0, feature_var, 0.0)
    norm_var = float(norms.var()) / (k * k)
    tau = _frobenius2(x) / (b * k) ** 2
    if b < 2:
        return InputKernel(b, tau, 1.0, 0.0, norm_var, feature_var, 0.0)
    alive = norms > 0
    u = x[alive] / np.sqrt(norms[alive])[:, None]  # unit rows
    m = u.shape[0]
    pairs = max(1, m * (m - 1))
    total = u.sum(axis=0)
    corr = (float(total @ total) - m) / pairs
    corr_var = max(0.0, (_frobenius2(u) - m) / pairs - corr * corr)
    return InputKernel(b, tau, corr, corr_var, norm_var, feature_var, 0.0)


def _frobenius2(x: np.ndarray) -> float:
    """sum_{b,b'} (x_b . x_b')^2, from the smaller of the two Gram matrices."""
    gram = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x
    return float(np.einsum("ij,ij->", gram, gram))


def iid_kernel(m0: float, s0: float, m4: float, n0: int, batch: int) -> InputKernel:
    """The InputKernel of i.i.d. entries drawn afresh every trial (mean m0, E[x^2] = s0, E[x^4] = m4)."""
    if not s0 > 0:
        return InputKernel(batch, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    c = m0 * m0 / s0
    kx = max(0.0, m4 / (s0 * s0) - 1.0)  # Var(x^2)/E[x^2]^2
    corr_var = (1.0 - c * c) / n0
    inv_b = 1.0 / batch
    tau = (1.0 + kx / n0 * (1.0 - inv_b)) * inv_b + (1.0 - inv_b) * (c * c + corr_var)
    return InputKernel(batch, tau, c, corr_var, kx / n0, kx * inv_b, kx / (n0 * batch))


@lru_cache(maxsize=1)
def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(_QUAD_N)
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    return z1.ravel(), z2.ravel(), np.outer(w, w).ravel() / (2 * math.pi)


def _pair_covariances(act, mu: float, q: float, cs: list[float]) -> np.ndarray:
    """For each correlation c in cs, over (u, v) ~ N(mu, q) with correlation c:
    [E phi(u) phi(v), Cov(phi(u)^2, phi(v)^2), Cov(phi(u)^2, phi(v)), Cov(phi(u), phi(v)), E phi(u)^3 phi(v),
    E phi^4]; c = 1 gives the
    one-input (co)variances. Gauss-Hermite on a 24 x 24 grid; exact kernels for relu-like phi where known."""
    z1, z2, w = _grid()
    s = math.sqrt(q)
    u = mu + s * z1
    vs = [mu + s * (c * z1 + math.sqrt(max(0.0, 1.0 - c * c)) * z2) for c in cs]
    with np.errstate(over="ignore", invalid="ignore"):
        return _covariances(act, mu, q, cs, u, [*vs], w)


def _covariances(act, mu, q, cs, u, vs, w) -> np.ndarray:
    f, _ = act(np.concatenate([u, *vs]))
    fu = f[: u.size]
    m1, m2 = float(w @ fu), float(w @ (fu * fu))
    out = np.empty((len(cs), 6))
    for j, c in enumerate(cs):
        fv = f[u.size * (j + 1): u.size * (j + 2)]
        e12, e22, e21 = float(w @ (fu * fv)), float(w @ (fu * fu * fv * fv)), float(w @ (fu * fu * fv))
        e31, m4 = float(w @ (fu * fu * fu * fv)), float(w @ fu**4)
        if act.slope is not None and mu == 0.0:
            e12, e22 = act.pair(mu, q, c)  # exact arc-cosine kernels (the grid is off by ~1e-2 at a kink)
            m1, m2, m4 = act.moments(mu, q)[:3]
            if c == 1.0:  # one input: phi^3 = relu(h)^3 - a^3 relu(-h)^3, E relu(h)^3 = 2 q^1.5/sqrt(2 pi)
                e21, e31 = (1.0 - act.slope**3) * 2.0 * q**1.5 / math.sqrt(2 * math.pi), m4
        out[j] = (e12, e22 - m2 * m2, e21 - m2 * m1, e12 - m1 * m1, e31, m4)
    return out


@dataclass
class Band:
    """Relative one-sigma half-widths of the pre and post std, [L] each (NaN: no band), and why some are NaN."""

    rel_pre: np.ndarray
    rel_post: np.ndarray
    reason: str | None


def _length_noise_change(kind: str, f: float, tau: float, feature_var: float, n_in: int, n_out: int) -> float:
    """D_w: how much a weight law that is not Gaussian changes 2 f^2 tau, the relative variance of one unit's
    pre second moment given the input (times n; docs/band.md, "weights")."""
    if kind == "uniform":  # excess kurtosis -6/5 of a uniform entry
        return -1.2 * f * f * (1.0 + feature_var) / n_in
    if kind == "orthogonal":  # rows of a random orthogonal matrix: no length noise, and the sum is fixed
        return 2 * f * f * (max(0.0, tau - 1.0 / n_in) * max(0.0, 1.0 - n_out / n_in) - tau)
    return 0.0


def band(mf, act, fan_in, fan_out, kernel: InputKernel, bias_kurtosis: float = 2.0,
         lsuv_tol: float | None = None) -> Band:
    """The band of every block (docs/band.md). mf: meanfield.MeanField; act: gaussian.Activation;
    kernel: the input batch's InputKernel; bias_kurtosis: Var(b^2)/Var(b)^2 of a zero-mean bias entry
    (2 Gaussian, 0.8 uniform); lsuv_tol: LSUV's tolerance on std(pre) (the pre band is then +-tol)."""
    L = len(fan_out)
    rel_pre = np.full(L, math.nan)
    rel_post = np.full(L, math.nan)
    reasons: list[str] = []
    inv_b = 1.0 / max(1, kernel.batch)
    Q, MU, CORR, SW2 = (a.tolist() for a in (mf.q, mf.pre_mean, mf.corr, mf.sw2))
    M1, M2, DM1, DM2 = (a.tolist() for a in (mf.m1, mf.m2, mf.dm1, mf.dm2))
    s = mf.s0
    chat, nu, dd, fv, v_s = kernel.corr, kernel.corr_var, kernel.norm_var, kernel.feature_var, kernel.seed_var
    for i in range(L):
        q, mu, m1, m2, n, kind = Q[i], MU[i], M1[i], M2[i], fan_out[i], mf.kinds[i]
        if not (math.isfinite(q) and math.isfinite(m2) and math.isfinite(s)):
            break
        if not q > 0:
            reasons.append(f"layer {i + 1}: the pre-activations are constant (no weight or bias noise)")
            break
        f = min(1.0, SW2[i] * s / q)
        tau = kernel.tau if i == 0 else (1.0 + dd * (1.0 - inv_b)) * inv_b + (1.0 - inv_b) * (chat * chat + nu)
        p = chat + (1.0 - chat) * inv_b  # |batch mean of x|^2 / (n s)
        lsuv = kind == "lsuv"
        inherited = 0.0 if lsuv else f * f * v_s
        d_w = _length_noise_change(kind, f, tau, fv, fan_in[i], n)
        d_b = (bias_kurtosis - 2.0) * (1.0 - f) ** 2
        length = 2 * f * f * tau + 4 * f * (1.0 - f) * p + 2 * (1.0 - f) ** 2
        if lsuv:
            rel_pre[i] = (lsuv_tol or 0.0) / math.sqrt(q)
        else:
            rel_pre[i] = 0.5 * math.sqrt(max(0.0, (1.0 + inherited) * (1.0 + max(0.0, length + d_w + d_b) / n) - 1.0))
        # post: one unit's column over the batch is Gaussian given the previous layer
        c = CORR[i]
        spread = f * math.sqrt(max(0.0, nu))  # spread of the pre correlations over pairs
        step = max(spread, _SLOPE_STEP)
        lo, hi = max(-1.0, c - step), min(1.0, c + step)
        one, pl, ph = _pair_covariances(act, mu, q, [1.0, lo, hi])
        if not (np.isfinite(one).all() and np.isfinite(pl).all() and np.isfinite(ph).all()):
            reasons.append(f"layer {i + 1}: the fourth moments of the post-activations overflow float64")
            break
        w_lo = w_hi = 0.5
        if spread < _SLOPE_STEP:  # the pairs sit at c: interpolate there
            w_hi = (c - lo) / (hi - lo) if hi > lo else 0.5
            w_lo = 1.0 - w_hi
        pair = w_lo * pl + w_hi * ph
        sig = inv_b * one[1:] + (1.0 - inv_b) * pair[1:]  # [phi^2 phi^2, phi^2 phi, phi phi]
        var = m2 - m1 * m1
        if not (m2 > 0 and var > 1e-12 * m2):
            reasons.append(f"layer {i + 1}: the predicted post-activation is constant (std 0)")
            break
        eta = q * DM2[i] / m2
        zeta = q * (DM2[i] - 2 * m1 * DM1[i]) / var
        extra = (d_w + d_b) / n if not lsuv else -length / n  # LSUV fixes the pooled length
        s_fresh = sig[0] / (n * m2 * m2) + eta * eta * extra
        g_fresh = (sig[0] - 4 * m1 * sig[1] + 4 * m1 * m1 * sig[2]) / (n * var * var) + zeta * zeta * extra
        rel_post[i] = 0.5 * math.sqrt(max(0.0, (1.0 + zeta * zeta * inherited) * (1.0 + max(0.0, g_fresh)) - 1.0))
        v_s = (1.0 + eta * eta * inherited) * (1.0 + max(0.0, s_fresh)) - 1.0
        # the post's kernel, for the next block
        e12 = w_lo * pl[0] + w_hi * ph[0]
        slope = (ph[0] - pl[0]) / (hi - lo) / m2 if hi > lo else 0.0
        chat = e12 / m2
        # fresh spread of rho over n units: Var(phi_u phi_v - (chat/2)(phi_u^2 + phi_v^2))/(n m2^2), delta method
        y2 = (pair[1] + m2 * m2) - 2 * chat * pair[4] + 0.5 * chat * chat * (pair[5] + pair[1] + m2 * m2)
        nu = slope * slope * spread * spread + max(0.0, y2 - (e12 - chat * m2) ** 2) / (n * m2 * m2)
        dd = eta * eta * f * f * dd + max(0.0, one[1] - pair[1]) / (n * m2 * m2)
        fv = max(0.0, sig[0]) / (m2 * m2)
        s = m2
    for name, rel in (("pre", rel_pre), ("post", rel_post)):
        wide = np.flatnonzero(rel > MAX_REL)
        if wide.size:
            reasons.append(f"layer {wide[0] + 1}: one network's {name} std spreads more than +-{100 * MAX_REL:g}% "
                           "(the widths are too small for the depth), beyond a one-sigma band")
            rel[wide] = math.nan
    return Band(rel_pre, rel_post, "; ".join(reasons) or None)
