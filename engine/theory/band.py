"""The finite-width band: one standard deviation, over seeds, of a single network's pooled std.

docs/band.md derives every formula here; in short, block by block (n = fan_out, B = batch, f = the share
of q_l that comes through the weights, sigma_w^2 s_{l-1}/q_l):

    pre   v_pre = (1 + f^2 v_S(l-1)) (1 + [2 f^2 tau + 4 f (1 - f) p + k_b (1 - f)^2 + D_w] / n) - 1
    post  v_S   = (1 + eta^2 f^2 v_S(l-1)) (1 + Sigma[phi^2] / (n m2^2) + eta^2 D/n) - 1
          v_V   = (1 + zeta^2 f^2 v_S(l-1)) (1 + Sigma[(phi - m1)^2] / (n Var[phi]^2) + zeta^2 D/n) - 1

v_* is the relative variance (over seeds) of a pooled second moment or variance; the band is
std * (1 -/+ sqrt(v)/2) by the delta method. tau = tr(A^2)/tr(A)^2 of the previous post's batch
second-moment matrix A; Sigma[g] = (1/B) Var g(u) + (1 - 1/B) Cov(g(u), g(v)) for one unit, taken at
the pre correlation c -/+ its spread over pairs; D/n the length noise that weights or biases that are not
Gaussian add or remove. The batch's kernel (mean pair correlation, its spread, the spread of row norms)
is propagated too, so that real data (digits, files) and correlated inputs get their own band.

No band (NaN, with a reason) where the delta method is out of its depth: a relative spread above
MAX_REL, constant pre- or post-activations, overflow, or where the mean-field recursion stops.

Plain blocks only (linear + activation): for blocks with a norm or a residual (engine/theory/blocks.py)
no band is derived or checked for coverage yet, and predict() draws none, with `no_band_reason`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MAX_REL = 0.4  # beyond +-40% the std is visibly skewed (lognormal): a symmetric band covers 80-90%, not 68%
_QUAD_N = 64  # Gauss-Hermite nodes for the Hermite coefficients of phi, phi^2, phi^3
_HERMITE_K = 32  # terms of the Mehler series for two-input covariances
_SLOPE_STEP = 0.02  # smallest correlation step for the slope of the correlation map


def no_band_reason(block: str) -> str:
    """Why a norm or residual run has no band: block is engine.theory.blocks.block_name(spec)."""
    return f"no finite-width band for {block} blocks yet (docs/band.md derives it for plain blocks only)"


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
def _hermite() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes x and weights w (standard normal) and the normalised Hermite polynomials
    H[k] = He_k(x)/sqrt(k!), k = 0.._HERMITE_K, at the nodes."""
    x, w = np.polynomial.hermite_e.hermegauss(_QUAD_N)
    he = np.empty((_HERMITE_K + 1, x.size))
    he[0], he[1] = 1.0, x
    for k in range(1, _HERMITE_K):
        he[k + 1] = x * he[k] - k * he[k - 1]
    norm = np.sqrt([float(math.factorial(k)) for k in range(_HERMITE_K + 1)])
    return x, w / math.sqrt(2 * math.pi), he / norm[:, None]


def _arccos(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For unit-variance u, v with correlation c: E relu(u) relu(v), E relu(u)^2 relu(v)^2 (arc-cosine
    kernels), E relu(u)^2 relu(v) = (1 + c)^2/(2 sqrt(2 pi)) and
    E relu(u)^3 relu(v) = (s^3 + 3 c^2 s/2)/pi + 3c/4 + 3 c asin(c)/(2 pi), s = sqrt(1 - c^2) (docs/band.md)."""
    c = np.clip(c, -1.0, 1.0)
    t = np.arccos(c)
    s = np.sqrt(1.0 - c * c)
    e11 = (s + (np.pi - t) * c) / (2 * np.pi)
    e22 = (3 * s * c + (np.pi - t) * (1 + 2 * c * c)) / (2 * np.pi)
    e21 = (1 + c) ** 2 / (2 * math.sqrt(2 * math.pi))
    e31 = (s**3 + 1.5 * c * c * s) / np.pi + 0.75 * c + 1.5 * c * np.arcsin(c) / np.pi
    return e11, e22, e21, e31


def _series(act, mu: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, ...]:
    """What the Mehler series needs of every block, phi evaluated once at the Gauss-Hermite nodes of
    N(mu_l, q_l): (E phi, E phi^k for phi, phi^2, phi^3, phit^2, E phi^4, the one-input covariances,
    the products a_k b_k of the Hermite coefficients for the four pairs, k >= 1)."""
    x, w, he = _hermite()
    with np.errstate(over="ignore", invalid="ignore"):
        f, _ = act(mu[:, None] + np.sqrt(q)[:, None] * x)  # [L, N]
        g1 = f @ w
        fs = np.stack((f, f * f, f**3, (f - g1[:, None]) ** 2), axis=1)  # phi, phi^2, phi^3, phit^2: [L, 4, N]
        coef = (fs * w) @ he.T  # [L, 4, K + 1]: E f He_k/sqrt(k!)
        mom = fs @ w  # the grid's own means
        m4 = (f**4) @ w
        # the one-input covariances (c = 1) on the same nodes: phi phi, phi^2 phi^2, phit^2 phit^2, phi^3 phi
        one = np.stack((mom[:, 1] - g1 * g1, m4 - mom[:, 1] ** 2, (fs[:, 3] ** 2) @ w - mom[:, 3] ** 2,
                        m4 - mom[:, 2] * g1), axis=1)  # [L, 4]
        prod = coef[:, [0, 1, 3, 2], 1:] * coef[:, [0, 1, 3, 0], 1:]  # a_k b_k of (phi phi), (phi^2 phi^2),
    return g1, mom, m4, one, prod  # (phit^2 phit^2), (phi^3 phi), k >= 1


def _pair_table(act, mu: np.ndarray, q: np.ndarray, c: np.ndarray, m1: np.ndarray, m2: np.ndarray,
                m4: np.ndarray, series: tuple[np.ndarray, ...] | None) -> np.ndarray:
    """For block l's pre (u, v) ~ N(mu_l, q_l) with correlation c[l, k]: [L, K, 4] of
    e12 = E phi(u) phi(v),  Cov(phi(u)^2, phi(v)^2),  Cov(phit(u)^2, phit(v)^2) with phit = phi - E phi,
    y2 = E (phi(u) phi(v) - (chat/2)(phi(u)^2 + phi(v)^2))^2 with chat = e12/E phi^2.
    Exact for relu-like phi with mu = 0 (m1, m2, m4: its moments); else the Mehler series
    Cov(f(u), g(v)) = sum_k a_k b_k c^k over the Hermite coefficients of f and g (1-d Gauss-Hermite, all blocks
    at once), summed from c = 1 down (its value there is the one-input covariance) where c > 1/2."""
    c = np.clip(c, -1.0, 1.0)
    if act.slope is not None and np.all(mu == 0.0):
        a, qq = act.slope, q[:, None]
        k11, k22, k21, k31 = _arccos(c)
        n11, n22, n21, n31 = _arccos(-c)
        e12 = qq * ((1 + a * a) * k11 - 2 * a * n11)  # phi(u) = relu(u) - a relu(-u): pairs (u, -v) have -c
        e22 = qq**2 * ((1 + a**4) * k22 + 2 * a * a * n22)
        e21 = qq**1.5 * ((1 - a**3) * k21 + (a * a - a) * n21)
        e31 = qq**2 * ((1 + a**4) * k31 - (a + a**3) * n31)
        mm1, mm2, mm4 = m1[:, None], m2[:, None], m4[:, None]
        var = mm2 - mm1 * mm1
        centred = e22 - 4 * mm1 * e21 + 2 * mm1**2 * mm2 + 4 * mm1**2 * e12 - 3 * mm1**4
        chat = e12 / mm2
        y2 = e22 - 2 * chat * e31 + 0.5 * chat * chat * (mm4 + e22)
        return np.stack([e12, e22 - mm2 * mm2, centred - var * var, y2], axis=-1)
    g1, mom, m4, one, prod = series
    with np.errstate(over="ignore", invalid="ignore"):
        k = np.arange(1, _HERMITE_K + 1)
        ck = c[:, :, None, None] ** k  # [L, M, 1, K]
        direct = (prod[:, None] * ck).sum(axis=-1)  # Mehler: Cov(f(u), g(v)) = sum_k a_k b_k c^k
        anchored = one[:, None] - (prod[:, None] * (1.0 - ck)).sum(axis=-1)  # the same, tail taken from c = 1
        cov = np.where((c > 0.5)[:, :, None], anchored, direct)  # [L, M, 4]
        m2, m4 = mom[:, 1][:, None], m4[:, None]
        e12 = g1[:, None] ** 2 + cov[..., 0]
        e22 = m2 * m2 + cov[..., 1]
        e31 = (mom[:, 2] * g1)[:, None] + cov[..., 3]
        chat = e12 / m2
        y2 = e22 - 2 * chat * e31 + 0.5 * chat * chat * (m4 + e22)
    return np.stack([e12, cov[..., 1], cov[..., 2], y2], axis=-1)


def _centred_fourth(act, mu: np.ndarray, q: np.ndarray, m1: np.ndarray, m2: np.ndarray, m4: np.ndarray,
                    series: tuple[np.ndarray, ...] | None) -> np.ndarray:
    """E (phi(h) - m1)^4 = m4 - 4 m1 m3 + 6 m1^2 m2 - 3 m1^4 for h ~ N(mu_l, q_l); m3 = E phi^3 is
    (1 - a^3) 2 q^1.5/sqrt(2 pi) for relu-like phi with mu = 0, else from the Gauss-Hermite nodes."""
    if series is None:
        m3 = (1.0 - act.slope**3) * 2.0 * q**1.5 / math.sqrt(2 * math.pi)
    else:
        m3 = series[1][:, 2]
    return m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1**4


@dataclass
class Band:
    """Relative one-sigma half-widths of the pre and post std, [L] each (NaN: no band), and why some are NaN."""

    rel_pre: np.ndarray
    rel_post: np.ndarray
    reason: str | None
    rel_m2: np.ndarray | None = None  # relative sd of the post's pooled second moment, sqrt(v_S) (NaN: none)


def _length_noise_change(kind: str, f: float, tau: float, feature_var: float, n_in: int, n_out: int) -> float:
    """D_w: how much a weight law that is not Gaussian changes 2 f^2 tau, the relative variance of one unit's
    pre second moment given the input (times n; docs/band.md, "weights")."""
    if kind == "uniform":  # excess kurtosis -6/5 of a uniform entry
        return -1.2 * f * f * (1.0 + feature_var) / n_in
    if kind == "orthogonal":  # rows of a random orthogonal matrix: no length noise, and the sum is fixed
        return 2 * f * f * (max(0.0, tau - 1.0 / n_in) * max(0.0, 1.0 - n_out / n_in) - tau)
    return 0.0


def _valid_prefix(mf, kernel: InputKernel) -> tuple[int, str | None]:
    """How many leading blocks the band can cover, and why it stops there (None: all of them)."""
    for i, (q, m1, m2) in enumerate(zip(mf.q.tolist(), mf.m1.tolist(), mf.m2.tolist(), strict=True)):
        if not (math.isfinite(q) and math.isfinite(m2)):
            return i, None  # the mean field stopped: its own reason says why
        if not q > 0:
            return i, f"layer {i + 1}: the pre-activations are constant (no weight or bias noise)"
        if not (m2 > 0 and m2 - m1 * m1 > 1e-12 * m2):
            return i, f"layer {i + 1}: the predicted post-activation is constant (std 0)"
    return len(mf.q), None


def _spreads(tab: np.ndarray, f: np.ndarray, m2: np.ndarray, fan_out, nu0: float, step: float) -> np.ndarray:
    """spread_l = f_l sqrt(nu_{l-1}): the spread over pairs of inputs of block l's pre correlation, from the
    recursion for nu, the variance over pairs of the post's normalised correlation (docs/band.md, "kernel"):
    nu_l = (dchat/dc)^2 spread_l^2 + y2/(n_l m2^2). tab: the pair table at c -/+ step."""
    spread = np.empty(len(f))
    nu = nu0
    for i in range(len(f)):
        spread[i] = f[i] * math.sqrt(max(0.0, nu))
        lo, hi = tab[i, 0], tab[i, 1]
        slope = (hi[0] - lo[0]) / (2 * step * m2[i])
        nu = slope * slope * spread[i] ** 2 + max(0.0, 0.5 * (lo[3] + hi[3])) / (fan_out[i] * m2[i] ** 2)
    return spread


def band(mf, act, fan_in, fan_out, kernel: InputKernel, bias_kurtosis: float = 2.0,
         lsuv: tuple[float, float] | None = None) -> Band:
    """The band of every block (docs/band.md). mf: meanfield.MeanField; act: gaussian.Activation;
    kernel: the input batch's InputKernel; bias_kurtosis: Var(b^2)/Var(b)^2 of a zero-mean bias entry
    (2 Gaussian, 0.8 uniform); lsuv: LSUV's (target, tol) on std(pre) (the pre band is then +-tol)."""
    L = len(fan_out)
    rel_pre = np.full(L, math.nan)
    rel_post = np.full(L, math.nan)
    rel_m2 = np.full(L, math.nan)
    n_ok, why = _valid_prefix(mf, kernel)
    reasons = [why] if why else []
    if n_ok:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught below, as a reason
            _fill(mf, act, fan_in, fan_out, kernel, bias_kurtosis, lsuv, n_ok, rel_pre, rel_post, reasons, rel_m2)
    for name, rel in (("pre", rel_pre), ("post", rel_post)):
        wide = np.flatnonzero(rel > MAX_REL)
        if wide.size:
            reasons.append(f"layer {wide[0] + 1}: one network's {name} std spreads more than +-{100 * MAX_REL:g}% "
                           "(the widths are too small for the depth), beyond a one-sigma band")
            rel[wide] = math.nan
    return Band(rel_pre, rel_post, "; ".join(reasons) or None, rel_m2)


def _fill(mf, act, fan_in, fan_out, kernel, bias_kurtosis, lsuv, n_ok, rel_pre, rel_post, reasons,
          rel_m2=None) -> None:
    k = slice(0, n_ok)
    q, mu, c, m1, m2, m4 = mf.q[k], mf.pre_mean[k], mf.corr[k], mf.m1[k], mf.m2[k], mf.m4[k]
    s_prev = np.concatenate(([mf.s0], m2[:-1]))
    f = np.minimum(1.0, mf.sw2[k] * s_prev / q)
    # pass 1: every block's pair table at c -/+ step, for the slope of the correlation map and the spreads
    step = _SLOPE_STEP
    series = None if act.slope is not None and np.all(mu == 0.0) else _series(act, mu, q)
    near = _pair_table(act, mu, q, np.stack((c - step, c + step), axis=1), m1, m2, m4, series)
    spread = _spreads(near, f, m2, fan_out, kernel.corr_var, step)
    # pass 2: where the pairs spread wider than the step, average the table at c -/+ spread
    wide = np.flatnonzero(spread > step)
    pair = 0.5 * (near[:, 0] + near[:, 1])
    if wide.size:
        cw = np.stack((c[wide] - spread[wide], c[wide] + spread[wide]), axis=1)
        sub = None if series is None else tuple(a[wide] for a in series)
        far = _pair_table(act, mu[wide], q[wide], cw, m1[wide], m2[wide], m4[wide], sub)
        pair[wide] = 0.5 * (far[:, 0] + far[:, 1])
    c4 = _centred_fourth(act, mu, q, m1, m2, m4, series)
    ok = np.isfinite(pair).all(axis=1) & np.isfinite(c4)
    if not ok.all():
        n_ok = int(np.flatnonzero(~ok)[0])
        reasons.append(f"layer {n_ok + 1}: the fourth moments of the post-activations overflow float64")
    inv_b = 1.0 / max(1, kernel.batch)
    chat, nu, dd, fv, v_s = kernel.corr, kernel.corr_var, kernel.norm_var, kernel.feature_var, kernel.seed_var
    Q, M1, M2, M4, C4, DM1, DM2, F = (a.tolist() for a in (q, m1, m2, m4, c4, mf.dm1[k], mf.dm2[k], f))
    S_PREV, SB2 = s_prev.tolist(), mf.sb2[k].tolist()
    PAIR, SPREAD = pair.tolist(), spread.tolist()
    for i in range(n_ok):
        qi, m1i, m2i, fi, n, kind = Q[i], M1[i], M2[i], F[i], fan_out[i], mf.kinds[i]
        tau = kernel.tau if i == 0 else (1.0 + dd * (1.0 - inv_b)) * inv_b + (1.0 - inv_b) * (chat * chat + nu)
        p = chat + (1.0 - chat) * inv_b  # |batch mean of x|^2 / (n s)
        # LSUV starts from orthogonal weights (gain 1) and rescales only while |std(pre) - target| >= tol on
        # the batch: a rescaled block has its pooled pre variance fixed (no inherited spread, no pooled
        # length noise), one left alone spreads as orthogonal weights do
        rescaled = kind == "lsuv" and lsuv is not None and abs(
            math.sqrt(min(1.0, fan_in[i] / n) * S_PREV[i] + SB2[i]) - lsuv[0]) >= lsuv[1]
        inherited = 0.0 if rescaled else fi * fi * v_s
        d_w = _length_noise_change("orthogonal" if kind == "lsuv" else kind, fi, tau, fv, fan_in[i], n)
        d_b = (bias_kurtosis - 2.0) * (1.0 - fi) ** 2
        length = 2 * fi * fi * tau + 4 * fi * (1.0 - fi) * p + 2 * (1.0 - fi) ** 2
        if kind == "lsuv":
            rel_pre[i] = lsuv[1] / math.sqrt(qi) if lsuv is not None else math.nan
        else:
            rel_pre[i] = 0.5 * math.sqrt(max(0.0, (1.0 + inherited) * (1.0 + max(0.0, length + d_w + d_b) / n) - 1.0))
        # post: one unit's column over the batch is Gaussian given the previous layer; per unit, the batch
        # average of phi^2 (second moment) and of (phi - m1)^2 (variance) fluctuate by
        # (1/B) Var(one input) + (1 - 1/B) Cov(two inputs)
        e12, cov22, covc, _ = PAIR[i]
        var = m2i - m1i * m1i
        sig_s = inv_b * (M4[i] - m2i * m2i) + (1.0 - inv_b) * cov22
        sig_v = inv_b * (C4[i] - var * var) + (1.0 - inv_b) * covc
        eta = qi * DM2[i] / m2i
        zeta = qi * (DM2[i] - 2 * m1i * DM1[i]) / var
        extra = -length / n if rescaled else (d_w + d_b) / n
        s_fresh = sig_s / (n * m2i * m2i) + eta * eta * extra
        v_fresh = sig_v / (n * var * var) + zeta * zeta * extra
        rel_post[i] = 0.5 * math.sqrt(max(0.0, (1.0 + zeta * zeta * inherited) * (1.0 + max(0.0, v_fresh)) - 1.0))
        v_s = (1.0 + eta * eta * inherited) * (1.0 + max(0.0, s_fresh)) - 1.0
        if rel_m2 is not None:
            rel_m2[i] = math.sqrt(max(0.0, v_s))
        # the post's kernel, for the next block
        chat = e12 / m2i
        nu = (SPREAD[i + 1] / F[i + 1]) ** 2 if i + 1 < n_ok and F[i + 1] > 0 else nu
        dd = eta * eta * fi * fi * dd + max(0.0, M4[i] - m2i * m2i - cov22) / (n * m2i * m2i)
        fv = max(0.0, sig_s) / (m2i * m2i)


@dataclass(frozen=True)
class MomentShift:
    """The finite-width mean of the last post's pooled second moment m2^L (docs/formulas.md 17.6).

    rel_shift: (E[m2^L] - m2_MF^L)/m2_MF^L, the concavity of the length map at finite width;
    input_gain: a = d ln m2^L / d ln m0 = prod_l eta_l f_l, how much of the input's own second moment m0 the
    last layer still remembers (1: all of it, as a linear or relu stack; ~0 deep in the chaotic phase)."""

    rel_shift: float
    input_gain: float


def moment_shift(mf, act, fan_out, kernel: InputKernel) -> MomentShift:
    """Given the previous layer, the units of block l are i.i.d. and each input row b's pre is Gaussian with
    variance qhat_b = sigma_w^2 |x_b^(l-1)|^2/n_(l-1) + sigma_b^2, so E[m2^l | x^(l-1)] = mean_b M2(qhat_b),
    M2(q) = E phi(N(mu, q))^2. To second order in the spread of qhat_b about q_l (dm: the mean shift of m2^l,
    r_l: the relative variance of one row's |x_b^l|^2/n_l over seeds and rows):

        dq_l  = sigma_w^2 dm_(l-1)                                   (dm_0 = 0: E m0 is exact)
        dm_l  = M2'(q_l) dq_l + (1/2) M2''(q_l) (f_l q_l)^2 r_(l-1)
        r_l   = (eta_l f_l)^2 r_(l-1) + (E phi^4 - m2^2)/(n_l m2^2),  r_0 = the input rows' norm_var + seed_var

    with f_l = sigma_w^2 s_(l-1)/q_l and eta_l = q_l M2'(q_l)/m2_l as in band(). M2'' by a central difference
    (step 1e-3 q) of the Gauss-Hermite M2. A concave M2 (tanh) pulls E[m2] below the mean field; relu's M2 is
    linear and its shift is 0. NaN where the mean field stopped or a layer is constant."""
    x, w, _ = _hermite()
    n_ok, _ = _valid_prefix(mf, kernel)
    if n_ok < len(fan_out):
        return MomentShift(math.nan, math.nan)

    def m2_at(mu: float, q: float) -> float:
        f, _ = act(mu + math.sqrt(q) * x)
        return float((f * f) @ w)

    r = kernel.norm_var + kernel.seed_var
    dm, gain, s_prev = 0.0, 1.0, mf.s0
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(n_ok):
            q, mu, m2 = float(mf.q[i]), float(mf.pre_mean[i]), float(mf.m2[i])
            f = min(1.0, float(mf.sw2[i]) * s_prev / q)
            step = 1e-3 * q
            curv = (m2_at(mu, q + step) - 2.0 * m2_at(mu, q) + m2_at(mu, q - step)) / (step * step)
            dm = float(mf.dm2[i]) * float(mf.sw2[i]) * dm + 0.5 * curv * (f * q) ** 2 * r
            eta = q * float(mf.dm2[i]) / m2
            r = (eta * f) ** 2 * r + max(0.0, float(mf.m4[i]) - m2 * m2) / (fan_out[i] * m2 * m2)
            gain *= eta * f
            s_prev = m2
    return MomentShift(dm / float(mf.m2[-1]), gain)
