"""The mean-field correlation map for pairs of inputs, and the depth scales (docs/formulas.md section 17).

numpy only. Two inputs x_a, x_b with the same second moment s and cross moment k = E[x_a x_b] (per entry)
give, through a block with sigma_w^2, bias mean beta and bias variance sigma_b^2, pre-activations that are
(for one unit, over the weights) jointly Gaussian with mean beta, variance q = sigma_w^2 s + sigma_b^2 and
centred correlation

    rho = (sigma_w^2 k + sigma_b^2) / q                                   (the weights have mean 0)

The measured quantity is the uncentred cosine of two rows (sum_i a_i b_i / (|a| |b|)); its mean-field value is

    pre   c = (sigma_w^2 k + sigma_b^2 + beta^2) / (q + beta^2)
    post  c = E[phi(u) phi(v)] / E[phi(u)^2],  (u, v) ~ N(beta, q) with correlation rho

and the next block sees s' = E[phi^2], k' = E[phi(u) phi(v)] (with a residual s' and k' add to the skip's).
E[phi(u) phi(v)]: the arc-cosine kernel of degree 1 (Cho & Saul 2009) for relu-like phi with beta = 0,
    (1 + a^2) k1(c) - 2 a k1(-c),  k1(c) = (sin t + (pi - t) cos t) / (2 pi), t = arccos c
(phi(x) = relu(x) - a relu(-x)), else 2-D Gauss-Hermite, vectorised, with 20 to 64 nodes per axis by the std (_PAIR_NODES).

Depth scales at the fixed point q* of q -> sigma_w^2 E[phi(h)^2] + sigma_b^2:
    chi_1 = sigma_w^2 E[phi'(h)^2]                     (the slope of the correlation map at c = 1)
    xi_q  = -1 / ln(sigma_w^2 dE[phi^2]/dq)            (the slope of the length map at q*)
    xi_c  = -1 / ln(sigma_w^2 E[phi'(u) phi'(v)])      at (q*, c*), = -1/ln chi_1 when c* = 1
with c* the stable fixed point of the correlation map (1 when chi_1 < 1). xi_c is math.inf at chi_1 = 1 and
for relu-like phi without bias (there the map does not depend on q and 1 - c^l decays as a power of l).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..kinds.data import DATA
from ..spec import RunSpec
from ..textforms import Call
from .blocks import PreStats, norm_theory, residual_theory
from .diagnostics import fixed_point
from .gaussian import Activation, _gh, _lag, _partial_std_moments, _pl_sums, _pl_vec, activation

CRIT_TOL = 1e-9  # |chi_1 - 1| below this counts as critical: xi_c = inf
DEFAULT_PAIRS = 32  # pairs per trial when engine/pairs.py is absent (it sets PAIRS)


@dataclass(frozen=True)
class DepthScales:
    """The fixed point of the length map and the depth scales there (NaN where undefined, inf at criticality)."""

    q_star: float
    c_star: float
    chi1: float
    xi_q: float
    xi_c: float


# ---------------------------------------------------------------------------------------------
# vectorised Gaussian expectations (arrays over cells); the same nodes and formulas as gaussian.py, so a
# cell computed here equals the scalar recursion of meanfield.py to rounding


def moments_vec(act: Activation, mu: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, ...]:
    """(E[phi], E[phi^2], E[phi'^2], dE[phi^2]/dq) for h ~ N(mu, q), arrays of one shape."""
    mu, q = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(q, dtype=float))
    out = tuple(np.full(q.shape, math.nan) for _ in range(4))
    ok = np.isfinite(mu) & np.isfinite(q) & (q > 0)
    if act.slope is not None and not np.any(mu[ok]):
        u = act._unit
        out[0][ok], out[1][ok] = u.m1 * np.sqrt(q[ok]), u.m2 * q[ok]
        out[2][ok], out[3][ok] = u.d2, u.m2
        rest = ~ok
    elif act.smooth is not None:
        tab = ok & (mu == 0.0) & (q >= _MTAB_QMIN) & (q <= _MTAB_QMAX)
        if q.size < _MTAB_MIN_CELLS and act not in _MTABLES:
            tab[:] = False  # a few values: the quadrature is cheaper than building the table (within 1e-9)
        if tab.any():
            vals = _moment_lookup(act, q[tab])
            for j in range(4):
                out[j][tab] = vals[j]
        _smooth_vec(act, mu, q, ok & ~tab, out)
        rest = ~ok
    else:
        rest = np.ones(q.shape, dtype=bool)
    for idx in zip(*np.nonzero(rest), strict=True):  # the scalar path: q = 0, non-finite, elu, shifted relu
        g = act.moments(float(mu[idx]), float(q[idx]))
        out[0][idx], out[1][idx], out[2][idx], out[3][idx] = g.m1, g.m2, g.d2, g.dm2
    return out


# E[phi], E[phi^2], E[phi'^2], dE[phi^2]/dq of a smooth phi at zero mean, tabulated once per activation on
# ln q with step 0.004 over [1e-4, 1e4] (the per-spec Gaussian expectations, gaussian.Activation.moments, at
# every point) and read by 4-point cubic interpolation: relative error below 1e-9 (3.4e-10 at most, next to
# q = 1 where the quadrature switches method; tests/engine/theory/test_correlation.py). Fewer than 64 values
# at once use the quadrature itself until the table exists., so the phase grid needs no quadrature per cell and layer.
_MTAB_QMIN, _MTAB_QMAX, _MTAB_STEP = 1e-4, 1e4, 0.004


_MTAB_MIN_CELLS = 64
_MTABLES: dict[Activation, tuple[np.ndarray, float]] = {}


def _moment_table(act: Activation) -> tuple[np.ndarray, float]:
    got = _MTABLES.get(act)
    if got is None:
        got = _MTABLES[act] = _build_moment_table(act)
    return got


def _build_moment_table(act: Activation) -> tuple[np.ndarray, float]:
    x0 = math.log(_MTAB_QMIN) - 2 * _MTAB_STEP
    lnq = x0 + _MTAB_STEP * np.arange(int((math.log(_MTAB_QMAX) - x0) / _MTAB_STEP) + 4)
    q = np.exp(lnq)
    out = tuple(np.full(q.shape, math.nan) for _ in range(4))
    _smooth_vec(act, np.zeros(q.shape), q, np.ones(q.shape, dtype=bool), out)
    return np.stack(out), x0


def _moment_lookup(act: Activation, q: np.ndarray) -> np.ndarray:
    tab, x0 = _moment_table(act)
    fx = (np.log(q) - x0) / _MTAB_STEP
    ix = np.clip(np.floor(fx).astype(np.intp), 1, tab.shape[1] - 3)
    w = _cubic_weights(fx - ix)
    return sum(w[:, a] * tab[:, ix + a - 1] for a in range(4))


def _smooth_vec(act: Activation, mu: np.ndarray, q: np.ndarray, ok: np.ndarray, out: tuple) -> None:
    """gaussian.Activation._smooth_moments over arrays (Gauss-Hermite for sigma <= 1, else asymptote + Laguerre)."""
    fn, segs = act.smooth
    sigma = np.sqrt(np.where(ok, q, 1.0))
    small = ok & (sigma <= 1.0)
    if small.any():
        z, w, z2m1 = _gh()
        m, s, qq = mu[small], sigma[small], q[small]
        f, d = fn(m[:, None] + s[:, None] * z)
        f2 = f * f
        out[0][small], out[1][small], out[2][small] = f @ w, f2 @ w, (d * d) @ w
        out[3][small] = (f2 @ (w * z2m1)) / (2 * qq)
    big = ok & (sigma > 1.0)
    at0 = big & (mu == 0.0)
    if at0.any() and all(lo in (-math.inf, 0.0) and hi in (0.0, math.inf) for lo, hi, _, _ in segs):
        out[0][at0], out[1][at0], out[2][at0], out[3][at0] = _pl_sums_mu0(segs, sigma[at0])
    else:
        at0[:] = False
    for idx in zip(*np.nonzero(big & ~at0), strict=True):
        m, s = float(mu[idx]), float(sigma[idx])
        m1, m2, _, d2, _, e2 = _pl_sums(segs, m, s)
        out[0][idx], out[1][idx], out[2][idx], out[3][idx] = m1, m2, d2, e2
    if big.any():
        t, w = _lag()
        x = np.concatenate((t, -t))
        m, s, qq = mu[big][:, None], sigma[big][:, None], q[big]
        zz = (x - m) / s
        dens = np.concatenate((w, w)) * np.exp(-0.5 * zz * zz) / (s * math.sqrt(2 * math.pi))
        f, d = fn(x)
        g, dg = _pl_vec(segs, x)
        dz = dens * (zz * zz - 1.0)
        out[0][big] += dens @ (f - g)
        out[1][big] += dens @ (f * f - g * g)
        out[2][big] += dens @ (d * d - dg * dg)
        out[3][big] = (out[3][big] + dz @ (f * f - g * g)) / (2 * qq)


def _pl_sums_mu0(segs, sigma: np.ndarray) -> tuple[np.ndarray, ...]:
    """gaussian._pl_sums at mu = 0 for segments that break only at 0, over an array of sigma: every segment's
    ends in units of sigma are 0 or +-inf, so its partial moments I_k are constants."""
    m1 = np.zeros(sigma.shape)
    m2, d2, e2 = m1.copy(), m1.copy(), m1.copy()
    for lo, hi, a, c in segs:
        i = _partial_std_moments(lo, hi, 6)  # lo/sigma = lo here (0 or +-inf)
        b = a * sigma
        m1 += c * i[0] + b * i[1]
        m2 += c * c * i[0] + 2 * c * b * i[1] + b * b * i[2]
        d2 += a * a * i[0]
        e2 += c * c * (i[2] - i[0]) + 2 * c * b * (i[3] - i[1]) + b * b * (i[4] - i[2])
    return m1, m2, d2, e2


def pair_vec(act: Activation, mu: np.ndarray, q: np.ndarray, c: np.ndarray, deriv: bool = False
             ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """E[phi(u) phi(v)] (and with deriv E[phi'(u) phi'(v)]) for (u, v) ~ N(mu, q) with correlation c."""
    mu, q, c = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (mu, q, c)))
    c = np.clip(c, -1.0, 1.0)
    e = np.full(q.shape, math.nan)
    ed = np.full(q.shape, math.nan)
    ok = np.isfinite(mu) & np.isfinite(q) & (q > 0) & np.isfinite(c)
    if act.slope is not None and not np.any(mu[ok]):
        a = act.slope
        t = np.arccos(c[ok])
        k1p = (np.sin(t) + (math.pi - t) * c[ok]) / (2 * math.pi)  # k1(c)
        k1m = (np.sin(t) - t * c[ok]) / (2 * math.pi)  # k1(-c): arccos(-c) = pi - t
        e[ok] = q[ok] * ((1 + a * a) * k1p - 2 * a * k1m)
        ed[ok] = (1 + a * a) * (math.pi - t) / (2 * math.pi) + a * t / math.pi
    elif ok.any():
        sigma = np.sqrt(np.where(ok, q, 0.0))
        if act.smooth is not None and not deriv:  # zero mean, q inside the table: interpolate it
            tab = ok & (mu == 0.0) & (q >= _TAB_QMIN) & (q <= _TAB_QMAX)
            if tab.any():
                e[tab] = _table_lookup(act, q[tab], c[tab])
                ok = ok & ~tab
        for n, sel in _node_groups(sigma, ok):
            z1, z2, w = _gh2n(n)
            m, s, cc = mu[sel][:, None], sigma[sel][:, None], c[sel][:, None]
            fu, du = act(m + s * z1)
            fv, dv = act(m + s * (cc * z1 + np.sqrt(np.maximum(0.0, 1 - cc * cc)) * z2))
            e[sel] = (fu * fv) @ w
            if deriv:
                ed[sel] = (du * dv) @ w
    bad = np.isfinite(mu) & np.isfinite(q) & (q <= 0)  # a constant: phi(mu)^2
    if bad.any():
        f, d = act(mu[bad])
        e[bad], ed[bad] = f * f, d * d
    return (e, ed) if deriv else e


# 2-D Gauss-Hermite node counts per axis by the std sigma of u and v: phi(mu + sigma z) has its nearest
# singularity (tanh: a pole) at distance ~pi/(2 sigma) from the real axis, so the error grows with sigma.
# Measured on tanh against 200 x 200 nodes (E[phi phi] / E[phi' phi'] at c = 0.9): sigma 0.5, 20 nodes:
# 1e-9 / 3e-8; sigma 1, 32: 6e-7 / 8e-6; sigma 1.5, 64: 4e-7 / 5e-6; sigma 2, 64: 1e-5 / 1e-4;
# sigma 3, 64: 4e-4 / 2e-3 (and ~5x that at c = 0.999).
_PAIR_NODES = ((0.5, 20), (1.0, 32), (math.inf, 64))


def _node_groups(sigma: np.ndarray, ok: np.ndarray):
    lo = 0.0
    for top, n in _PAIR_NODES:
        sel = ok & (sigma > lo) & (sigma <= top)
        if sel.any():
            yield n, sel
        lo = top


@lru_cache(maxsize=8)
def _gh2n(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / math.sqrt(2.0 * math.pi)
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    return z1.ravel(), z2.ravel(), np.outer(w, w).ravel()


# The pair map of a smooth phi at zero mean, tabulated per activation (row by row, as needed) on ln q (step 0.1,
# q in [1e-4, 9]) and theta = arccos c (49 points on [0, pi]; the map is smooth in theta even where it is
# steep in c near c = +-1), from 2-D Gauss-Hermite with enough nodes for each sigma (_TABLE_NODES), and read
# by 4 x 4-point cubic interpolation. Measured on tanh against 200 x 200 nodes (tests/engine/theory/
# test_correlation.py): error below 1e-6 for q <= 9. The per-spec prediction and the phase grid both read
# it, so they agree to rounding, and a 50 x 50 grid of 100 layers needs no 2-D quadrature per layer.
_TAB_QMIN, _TAB_QMAX = 1e-4, 9.0
_TAB_DLNQ = 0.1
_TAB_NTHETA = 49
_TABLE_NODES = ((0.5, 24), (1.0, 40), (2.0, 96), (math.inf, 160))


class _PairTable:
    """The table of one activation, filled row by row (one ln q each) as lookups need them: a single
    prediction computes the few rows around its q's, a phase grid all of them; a row's values do not depend
    on when it is computed."""

    def __init__(self, act: Activation) -> None:
        self.act = act
        self.x0 = math.log(_TAB_QMIN) - 2 * _TAB_DLNQ
        self.lnq = self.x0 + _TAB_DLNQ * np.arange(int((math.log(_TAB_QMAX) - self.x0) / _TAB_DLNQ) + 4)
        self.dth = math.pi / (_TAB_NTHETA - 1)
        self.theta = np.arange(-2, _TAB_NTHETA + 2) * self.dth  # two extra points each side (cos is even)
        x = np.linspace(-6.0, 6.0, 121)
        self.odd = bool(np.array_equal(act(-x)[0], -act(x)[0]))  # tanh: E(pi - theta) = -E(theta)
        self.tab = np.full((self.lnq.size, self.theta.size), math.nan)
        self.done = np.zeros(self.lnq.size, dtype=bool)

    def rows(self, which: np.ndarray) -> np.ndarray:
        for i in np.unique(which)[~self.done[np.unique(which)]]:
            self._fill(int(i))
        return self.tab

    def _fill(self, i: int) -> None:
        m = self.theta.size // 2 + 1 if self.odd else self.theta.size  # theta[j] + theta[-1 - j] = pi
        c = np.cos(self.theta[:m])
        sg = math.exp(0.5 * self.lnq[i])
        n = next(k for top, k in _TABLE_NODES if sg <= top)
        z1, z2, w = _gh2n(n)
        fu = self.act(sg * z1)[0]
        fv = self.act(sg * (c[:, None] * z1 + np.sqrt(np.maximum(0.0, 1 - c * c))[:, None] * z2))[0]
        self.tab[i, :m] = (fv * fu) @ w
        if self.odd:
            self.tab[i, m:] = -self.tab[i, self.theta.size - m - 1::-1]
        self.done[i] = True


@lru_cache(maxsize=16)
def _pair_table(act: Activation) -> _PairTable:
    return _PairTable(act)


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """4-point Lagrange weights at offsets -1, 0, 1, 2 for t in [0, 1)."""
    return np.stack((-t * (t - 1) * (t - 2) / 6, (t + 1) * (t - 1) * (t - 2) / 2,
                     -(t + 1) * t * (t - 2) / 2, (t + 1) * t * (t - 1) / 6), axis=-1)


def _table_lookup(act: Activation, q: np.ndarray, c: np.ndarray) -> np.ndarray:
    t = _pair_table(act)
    fx = (np.log(q) - t.x0) / _TAB_DLNQ
    fy = (np.arccos(c) - t.theta[0]) / t.dth
    ix = np.clip(np.floor(fx).astype(np.intp), 1, t.lnq.size - 3)
    iy = np.clip(np.floor(fy).astype(np.intp), 1, t.theta.size - 3)
    tab = t.rows(np.concatenate((ix - 1, ix, ix + 1, ix + 2)))
    wx, wy = _cubic_weights(fx - ix), _cubic_weights(fy - iy)
    out = np.zeros(q.shape)
    for a in range(4):
        for b in range(4):
            out += wx[:, a] * wy[:, b] * tab[ix + a - 1, iy + b - 1]
    return out


# ---------------------------------------------------------------------------------------------
# depth scales and the critical line


def depth_scales(act: Call, sigma_w2: float, sigma_b2: float, mu: float = 0.0) -> DepthScales:
    """q*, c*, chi_1 at q*, xi_q and xi_c for sigma_w^2, sigma_b^2 (and bias mean mu) at every block
    (math.inf at criticality, NaN where undefined: no stable fixed point, or q* = 0 for non-relu-like phi)."""
    d = depth_scales_vec(activation(act), np.array([sigma_w2], float), np.array([sigma_b2], float),
                         np.array([mu], float))
    return DepthScales(*(float(d[k][0]) for k in ("q_star", "c_star", "chi1", "xi_q", "xi_c")))


def _xi(slope: np.ndarray) -> np.ndarray:
    """-1/ln(slope): inf at slope 1, NaN outside (0, 1]; a slope above 1 has no finite depth scale."""
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = -1.0 / np.log(slope)
    xi[np.abs(slope - 1.0) <= CRIT_TOL] = math.inf
    xi[~(slope > 0) | (slope > 1.0 + CRIT_TOL)] = math.nan
    return xi


def depth_scales_vec(act: Activation, sw2: np.ndarray, sb2: np.ndarray, mu: np.ndarray,
                     q_start: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """depth_scales for arrays of (sigma_w^2, sigma_b^2, mu); keys q_star, c_star, chi1, xi_q, xi_c.

    chi1 is the one of Diagnostics.phase_chi1: at q* where a stable fixed point exists (or q* = 0, chi_1 as
    q -> 0+), else NaN here (phase.py falls back to the last block's)."""
    n = sw2.size
    nan = np.full(n, math.nan)
    qs, cs, chi, xq, xc = nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy()
    hom = act.slope is not None and not np.any(mu)
    if hom:  # relu-like, no bias mean: E[phi^2] = k q, the length map q -> slope q + sigma_b^2 is linear
        slope = sw2 * act._unit.m2
        chi[:] = sw2 * act._unit.d2
        below = slope < 1.0 - CRIT_TOL
        nob = sb2 == 0
        qs[below] = np.where(nob[below], 0.0, sb2[below] / (1.0 - slope[below]))
        xq[:] = _xi(slope)
        # no bias: the c-map does not depend on q or sigma_w, 1 - c^l decays as a power of l (xi_c = inf)
        cs[nob] = 1.0
        xc[nob] = math.inf
        cs[below & ~nob] = 1.0
        xc[below & ~nob] = _xi(chi[below & ~nob])
        xq[~below & ~nob] = math.nan  # q grows without end
        return {"q_star": qs, "c_star": cs, "chi1": chi, "xi_q": xq, "xi_c": xc}
    qstar = _fixed_points(act, sw2, sb2, mu, q_start)
    pos = np.isfinite(qstar) & (qstar > 0)
    zero = qstar == 0
    qs[:] = qstar
    m = moments_vec(act, mu, np.where(pos, qstar, 1.0))
    chi[pos] = sw2[pos] * m[2][pos]
    xq[pos] = _xi(sw2[pos] * m[3][pos])
    if zero.any():
        m0 = moments_vec(act, mu[zero], np.full(int(zero.sum()), 1e-24))
        chi[zero] = sw2[zero] * m0[2]
        xq[zero] = _xi(sw2[zero] * m0[3])
    ordered = pos & (chi < 1.0 - CRIT_TOL)
    crit = pos & (np.abs(chi - 1.0) <= CRIT_TOL)
    cs[ordered | crit] = 1.0
    xc[ordered] = -1.0 / np.log(chi[ordered])
    xc[crit] = math.inf
    chaos = pos & (chi > 1.0 + CRIT_TOL)
    if chaos.any():
        c, slope = _c_star(act, sw2[chaos], sb2[chaos], mu[chaos], qstar[chaos])
        cs[chaos] = c
        xc[chaos] = _xi(slope)
    return {"q_star": qs, "c_star": cs, "chi1": chi, "xi_q": xq, "xi_c": xc}


def _fixed_points(act: Activation, sw2: np.ndarray, sb2: np.ndarray, mu: np.ndarray,
                  q_start: np.ndarray | None) -> np.ndarray:
    """q* of every cell: vectorised Newton in log q, the scalar diagnostics.fixed_point where it does not
    settle on a stable root (NaN: no stable fixed point)."""
    start = np.ones(sw2.size) if q_start is None else np.asarray(q_start, dtype=float)
    lq = np.log(np.where(np.isfinite(start) & (start > 0), start, 1.0))
    done = np.zeros(sw2.size, dtype=bool)
    with np.errstate(all="ignore"):
        for _ in range(40):
            live = ~done
            if not live.any():
                break
            q = np.exp(lq[live])
            mm = moments_vec(act, mu[live], q)
            f = sw2[live] * mm[1] + sb2[live] - q
            df = (sw2[live] * mm[3] - 1.0) * q
            conv = np.abs(f) < 1e-12 * q
            idx = np.flatnonzero(live)
            done[idx[conv & (df < 0)]] = True
            step = np.clip(f / df, -2.0, 2.0)
            step[conv | ~np.isfinite(step)] = 0.0
            lq[idx] -= step
            stuck = (conv & ~(df < 0)) | ~np.isfinite(f / df) | (lq[idx] < -28) | (lq[idx] > 28)
            done[idx[stuck]] = True
            lq[idx[stuck]] = math.nan  # handed to the scalar search below
    q = np.exp(lq)
    if q_start is not None:  # a root far from where the recursion went (across an unstable one): re-check
        far = np.isfinite(q) & ~((q <= 2.0 * start) & (start <= 2.0 * q))
        q[far] = math.nan
    for i in np.flatnonzero(~np.isfinite(q)):
        fp = fixed_point(act, float(sw2[i]), float(sb2[i]), float(mu[i]),
                         float(start[i]), False)
        q[i] = fp.q if fp.kind in ("stable", "zero") and fp.q is not None else math.nan
    return q


def _c_map(act, sw2, sb2, mu, q, c, deriv=False):
    e = pair_vec(act, mu, q, c, deriv)
    if deriv:
        return (sw2 * e[0] + sb2) / q, sw2 * e[1]
    return (sw2 * e + sb2) / q


def _c_star(act: Activation, sw2, sb2, mu, q) -> tuple[np.ndarray, np.ndarray]:
    """The stable fixed point c* < 1 of rho -> (sigma_w^2 E[phi(u) phi(v)] + sigma_b^2)/q* (chaotic cells,
    slope chi_1 > 1 at rho = 1) and the map's slope sigma_w^2 E[phi'(u) phi'(v)] there. Safeguarded secant
    (a centred difference of the map, step 1e-5, for the slope, also the one returned) inside the bracket [-1, 1 - 1e-9], where f = map - id is
    >= 0 at -1 and < 0 just below 1; bisection when the step leaves the bracket."""
    lo = np.full(sw2.size, -1.0)
    hi = np.full(sw2.size, 1.0 - 1e-9)
    c = np.zeros(sw2.size)
    h = 1e-5
    with np.errstate(all="ignore"):
        for _ in range(100):
            f = _c_map(act, sw2, sb2, mu, q, c) - c
            lo = np.where(f > 0, c, lo)
            hi = np.where(f <= 0, c, hi)
            up, down = np.minimum(c + h, 1.0), np.maximum(c - h, -1.0)
            slope = (_c_map(act, sw2, sb2, mu, q, up) - _c_map(act, sw2, sb2, mu, q, down)) / (up - down)
            newton = c - f / (slope - 1.0)
            inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
            nxt = np.where(inside, newton, 0.5 * (lo + hi))
            if np.all(np.abs(nxt - c) < 1e-13):
                c = nxt
                break
            c = nxt
        up, down = np.minimum(c + h, 1.0), np.maximum(c - h, -1.0)
        slope = (_c_map(act, sw2, sb2, mu, q, up) - _c_map(act, sw2, sb2, mu, q, down)) / (up - down)
    return c, slope


def critical_sigma_w2(act: Call, sigma_b2: float) -> float:
    """sigma_w^2 with chi_1 = 1 at the fixed point q* (tanh, sigma_b^2 = 0.05: 1.760955, q* = 0.570048).

    At the critical point sigma_w^2 = 1/E[phi'(h)^2] and q* = sigma_w^2 E[phi(h)^2] + sigma_b^2, so q* is the
    root of g(q) = E[phi^2]/E[phi'^2] + sigma_b^2 - q (the largest, found on a log grid and bisected).
    relu-like phi: E[phi'^2] does not depend on q, so chi_1 = 1 at sigma_w^2 = 1/E[phi'^2] whatever
    sigma_b^2 (relu: 2; with sigma_b^2 > 0 there is no fixed point there, q grows linearly). NaN when g has
    no root in q in [1e-10, 1e10] and no root at q -> 0."""
    a = activation(act)
    if not (math.isfinite(sigma_b2) and sigma_b2 >= 0):
        return math.nan
    if a.slope is not None:
        return 1.0 / a._unit.d2

    def g(lq: np.ndarray) -> np.ndarray:
        q = np.exp(lq)
        m = moments_vec(a, np.zeros_like(q), q)
        return m[1] / m[2] + sigma_b2 - q

    grid = np.linspace(math.log(1e-10), math.log(1e10), 81)
    vals = g(grid)
    for k in range(len(grid) - 1, 0, -1):  # the largest crossing, + below, - above
        if vals[k - 1] > 0 >= vals[k]:
            lo, hi = grid[k - 1], grid[k]
            for _ in range(70):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if g(np.array([mid]))[0] > 0 else (lo, mid)
            q = math.exp(0.5 * (lo + hi))
            return float(1.0 / moments_vec(a, np.zeros(1), np.array([q]))[2][0])
    if sigma_b2 == 0 and np.all(vals <= 0):  # q* = 0: chi_1 -> sigma_w^2 phi'(0)^2
        return float(1.0 / a.moments(0.0, 1e-24).d2)
    return math.nan


# ---------------------------------------------------------------------------------------------
# the pair correlations of one spec


def pairs_per_trial() -> int:
    """P, the pairs a run measures per trial (engine/pairs.py's PAIRS)."""
    try:
        from .. import pairs as _pairs
    except ImportError:
        return DEFAULT_PAIRS
    return int(getattr(_pairs, "PAIRS", DEFAULT_PAIRS))


def input_pair_corr(spec: RunSpec, c: float) -> float:
    """The expected uncentred cosine c^0 of the input pairs: (C v + m^2)/(v + m^2) for i.i.d. data of mean m,
    variance v (the pairs mix centred entries, x_b = m + C (x_a - m) + sqrt(1 - C^2)(z - m)); C for fixed rows
    (made with exactly that cosine)."""
    kind = DATA[spec.data.name]
    iid = kind.iid_moments(kind.values(spec.data))
    if iid is None:
        return float(c)
    m, s0 = iid[0], iid[1]
    return (c * (s0 - m * m) + m * m) / s0 if s0 > 0 else math.nan


@dataclass
class PairCorrelation:
    """Mean-field c^l of a pair's tensors, [L] each (NaN: none), and why some are NaN."""

    pre: np.ndarray
    post: np.ndarray
    out: np.ndarray  # NaN without a residual
    rho: np.ndarray  # centred correlation of the pre-activations about the bias mean (what the integrals use)
    reason: str | None


def pair_correlations(spec: RunSpec, mf, c0: float) -> PairCorrelation:
    """The correlation map from c^0 (the input pairs' uncentred cosine) through the blocks of spec, on the
    mean field mf (meanfield.run_meanfield: q, bias mean, sigma_w^2, sigma_b^2, post second moments).

    norm: layernorm and rmsnorm rescale each row (rmsnorm exactly; layernorm also centres it over the units),
    so they keep the centred correlation of h (engine/theory/blocks.py); batchnorm normalises the pair rows
    with the batch's statistics: no prediction. residual: x^l = x^(l-1) + alpha V a adds alpha^2 sigma_v^2
    E[a_a a_b] to the cross moment as it adds alpha^2 sigma_v^2 E[a^2] to the second moment."""
    L = spec.depth
    pre, post, out, rho = (np.full(L, math.nan) for _ in range(4))
    if mf.reason is not None:
        return PairCorrelation(pre, post, out, rho, mf.reason)
    if spec.has_norm and norm_theory(spec.norm).batch_dependent:
        return PairCorrelation(pre, post, out, rho, f"no pair correlation prediction under {spec.norm.name}: "
                               "the pair rows are normalised with the batch's per-unit statistics")
    if not math.isfinite(c0):
        return PairCorrelation(pre, post, out, rho, "the input pairs' correlation is not finite")
    act = activation(spec.act)
    res = residual_theory(spec.residual)
    nt = norm_theory(spec.norm) if spec.has_norm else None
    s, k = mf.s0, c0 * mf.s0
    for i in range(L):
        q, beta, sw2, sb2 = (float(a[i]) for a in (mf.q, mf.pre_mean, mf.sw2, mf.sb2))
        if not (math.isfinite(q) and q > 0 and math.isfinite(k)):
            why = "the pre-activations are constant" if q == 0 else "the mean field stops here"
            return PairCorrelation(pre, post, out, rho, f"layer {i + 1}: {why}")
        r = (sw2 * k + sb2) / q
        rho[i] = r
        pre[i] = (sw2 * k + sb2 + beta * beta) / (q + beta * beta)
        mean, var, corr = beta, q, r
        if nt is not None:
            nd = nt.normed(spec.norm, PreStats(beta, q, math.nan, r, spec.batch, spec.arch[i + 1]))
            mean, var, corr = nd.mean, nd.var, nd.corr
        e12 = float(pair_vec(act, np.array([mean]), np.array([var]), np.array([corr]))[0])
        m2 = float(mf.m2[i])
        post[i] = e12 / m2 if m2 > 0 else math.nan
        if res.is_residual:
            a2 = mf.alpha * mf.alpha * float(mf.sv2[i])
            k = k + (a2 * e12 if a2 else 0.0)
            s = float(mf.out_m2[i])
            out[i] = k / s if s > 0 else math.nan
        else:
            k, s = e12, m2
    return PairCorrelation(pre, post, out, rho, None)


# ---------------------------------------------------------------------------------------------
# the finite-width band of the measured c^l of the pre-activations (docs/formulas.md section 17.4)

_BAND_NODES = 10  # Gauss-Hermite nodes per axis of the 4-D integrals of the band (the sd within 2% of 16 nodes)
_FD_STEP = 1e-4  # relative step of the finite differences for the Jacobian of the kernel map


@lru_cache(maxsize=2)
def _gh4(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / math.sqrt(2.0 * math.pi)
    grids = np.meshgrid(x, x, x, x, indexing="ij")
    ws = np.meshgrid(w, w, w, w, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1), np.prod([g.ravel() for g in ws], axis=0)


def _kernel_cov(act, beta: float, q: float, rho: float, rho_x: float) -> tuple[np.ndarray, np.ndarray,
                                                                                 np.ndarray, np.ndarray]:
    """For one unit, (u_a, u_b, u_a', u_b') ~ N(beta, q) with correlation rho within a pair and rho_x
    across two pairs: the 3 x 3 covariances of v = (f_a^2, f_b^2, f_a f_b) for the same pair and for two
    different pairs, for f = the pre-activation itself and f = phi (returns pre_same, pre_cross, post_same,
    post_cross)."""
    R = np.array([[1, rho, rho_x, rho_x], [rho, 1, rho_x, rho_x], [rho_x, rho_x, 1, rho], [rho_x, rho_x, rho, 1]])
    lam, U = np.linalg.eigh(R)
    M = U * np.sqrt(np.maximum(lam, 0.0))
    z, w = _gh4(_BAND_NODES)
    h = beta + math.sqrt(q) * (z @ M.T)
    out = []
    for f in (h, act(h)[0]):
        v1 = np.stack((f[:, 0] ** 2, f[:, 1] ** 2, f[:, 0] * f[:, 1]), axis=1)
        v2 = np.stack((f[:, 2] ** 2, f[:, 3] ** 2, f[:, 2] * f[:, 3]), axis=1)
        m1 = w @ v1
        same = (v1 * w[:, None]).T @ v1 - np.outer(m1, m1)
        cross = (v1 * w[:, None]).T @ v2 - np.outer(m1, w @ v2)
        out += [same, cross]
    return tuple(out)


def _pair_unequal(act, beta: float, qa: float, qb: float, cov: float) -> float:
    """E[phi(u_a) phi(u_b)], u_a ~ N(beta, qa), u_b ~ N(beta, qb), Cov = cov (2-D Gauss-Hermite)."""
    sa = math.sqrt(qa)
    r = cov / sa
    t = math.sqrt(max(0.0, qb - r * r))
    n = next(k for top, k in _PAIR_NODES if max(sa, math.sqrt(qb)) <= top)
    z1, z2, w = _gh2n(n)
    return float(w @ (act(beta + sa * z1)[0] * act(beta + r * z1 + t * z2)[0]))


def _kernel_jacobian(act, beta: float, sw2: float, sb2: float, s: float, k: float) -> np.ndarray:
    """d(E[phi_a^2], E[phi_b^2], E[phi_a phi_b]) / d(s_a, s_b, k) at s_a = s_b = s: how one block maps a
    change of the input pair's kernel to the change of the post's kernel."""
    A, B = sw2 * s + sb2, sw2 * k + sb2
    dm2 = moments_vec(act, np.array([beta]), np.array([A]))[3][0]
    _, epp = pair_vec(act, np.array([beta]), np.array([A]), np.array([B / A]), deriv=True)
    h = _FD_STEP * A
    de_da = (_pair_unequal(act, beta, A + h, A, B) - _pair_unequal(act, beta, A - h, A, B)) / (2 * h)
    J = np.zeros((3, 3))
    J[0, 0] = J[1, 1] = sw2 * dm2
    J[2, 0] = J[2, 1] = sw2 * de_da
    J[2, 2] = sw2 * float(epp[0])
    return J


def _input_cov(spec: RunSpec, c: float, pairs: int) -> np.ndarray | None:
    """Covariance of the mean over pairs of the input pairs' (s_a, s_b, k) (per-entry averages over n_0):
    Gaussian entries of the data's mean and variance (uniform data: its mean and variance, the same
    Gaussian formula); fixed rows: 0 (the pairs' cosine is C exactly; the spread of row lengths is left out).
    None: no i.i.d. moments."""
    kind = DATA[spec.data.name]
    iid = kind.iid_moments(kind.values(spec.data))
    if iid is None:
        return np.zeros((3, 3))
    m, s0 = iid[0], iid[1]
    v = s0 - m * m
    same, _, _, _ = _kernel_cov(activation(spec.act), m, v, c, 0.0) if v > 0 else (np.zeros((3, 3)),) * 4
    return same / (spec.arch[0] * pairs)


def pair_band(spec: RunSpec, mf, pc: PairCorrelation, c_input: float, pairs: int | None = None
              ) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(lo, hi, reason): one standard deviation, over networks, of the mean over `pairs` pairs of the cosine of
    the pre-activations, around the mean-field c^l (plain blocks only).

    Linear response, block by block (docs/formulas.md 17.4): the realised kernel K = (s_a, s_b, k) of a pair's
    block input deviates from its mean-field value by dK; the block's N = n_l units are i.i.d. given it, so
      pre kernel   dH = sigma_w^2 dK + eta,            c_pre = H_ab / sqrt(H_aa H_bb)
      post kernel  dK' = J dK + eps                     (J = _kernel_jacobian)
    with eta, eps the sampling noise of a mean over N units. Averaged over P pairs, the noise covariance is
    (Sigma_same / P + (1 - 1/P) Sigma_cross) / N: two pairs share the weights, and their units correlate by
    the mean-field correlation of two independent inputs (meanfield corr). The input's dK: P pairs of n_0
    Gaussian entries."""
    L = spec.depth
    nan = np.full(L, math.nan)
    if spec.has_norm or spec.has_residual:
        return nan, nan.copy(), "no finite-width band for the pair correlation of norm or residual blocks yet"
    if pc.reason is not None or mf.reason is not None:
        return nan, nan.copy(), pc.reason or mf.reason
    P = pairs or pairs_per_trial()
    act = activation(spec.act)
    C = _input_cov(spec, float(getattr(spec, "pair_corr", None) or c_input), P)
    s, k = mf.s0, c_input * mf.s0
    sd = np.full(L, math.nan)
    with np.errstate(all="ignore"):
        for i in range(L):
            q, beta, sw2, sb2 = (float(a[i]) for a in (mf.q, mf.pre_mean, mf.sw2, mf.sb2))
            rho, rho_x, n = float(pc.rho[i]), float(mf.corr[i]), spec.arch[i + 1]
            if not (math.isfinite(q) and q > 0 and math.isfinite(rho) and math.isfinite(rho_x)):
                break
            pre_s, pre_x, post_s, post_x = _kernel_cov(act, beta, q, rho, rho_x)
            Q, Kp = q + beta * beta, sw2 * k + sb2 + beta * beta
            g = np.array([-0.5 * Kp / (Q * Q), -0.5 * Kp / (Q * Q), 1.0 / Q])
            cov_h = sw2 * sw2 * C + (pre_s / P + (1 - 1 / P) * pre_x) / n
            sd[i] = math.sqrt(max(0.0, float(g @ cov_h @ g)))
            J = _kernel_jacobian(act, beta, sw2, sb2, s, k)
            C = J @ C @ J.T + (post_s / P + (1 - 1 / P) * post_x) / n
            s, k = float(mf.m2[i]), float(mf.m2[i]) * float(pc.post[i])
    ok = np.isfinite(sd)
    reason = None if ok.all() else f"layer {int(np.flatnonzero(~ok)[0]) + 1}: no band past here"
    # a cosine lies in [-1, 1]: the band's edges too (the band at the ReLU critical point reached 1.002)
    return np.clip(pc.pre - sd, -1.0, 1.0), np.clip(pc.pre + sd, -1.0, 1.0), reason
