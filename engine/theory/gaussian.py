"""Gaussian expectations of every catalog activation, h ~ N(mu, q), q = sigma^2, z = (h - mu)/sigma.

`activation(act).moments(mu, q)` returns `GMoments`: E[phi], E[phi^2], E[phi^4], E[phi'^2] and the
q-derivatives dE[phi]/dq, dE[phi^2]/dq, from  d/dq E[f(h)] = E[f(h) (z^2 - 1)] / (2 q)  (the derivative
of the Gaussian density; it needs no derivative of f, so jumps and kinks are no trouble).

Methods (relative error below 1e-6 everywhere we test, see tests/engine/theory/test_gaussian.py):
- piecewise-linear phi (identity, relu, leaky_relu, general_relu with leak, sub and the maxv clamp):
  exact, from the partial moments of the standard normal on each segment [alpha, beta]:
      I_0 = Phi(beta) - Phi(alpha),
      I_k = alpha^(k-1) pdf(alpha) - beta^(k-1) pdf(beta) + (k-1) I_(k-2)
  and E[(A + B z)^p z^j 1_seg] = sum_k binom(p, k) A^(p-k) B^k I_(k+j)  (phi = a h + c on the segment).
- elu / selu: exact; the negative branch uses E[e^(k h) 1_(h <= 0)] = e^(k mu + k^2 q/2) Phi(-(mu + k q)/sigma).
- smooth phi (tanh, sigmoid, gelu, silu, softplus):
  sigma <= 1: Gauss-Hermite in z, 96 nodes (phi(mu + sigma z) is analytic in a strip of half-width
  >= pi/2; error ~1e-9);
  sigma > 1: phi = phi_pl + r, with phi_pl the piecewise-linear asymptote (sign, step or relu) done
  exactly as above and r (decaying exponentially away from h = 0, with a jump or kink there)
  integrated on each half-line h > 0, h < 0 by 64-node Gauss-Laguerre.
  Plain Gauss-Hermite is off by ~4e-3 at a kink and far more for tanh(sigma z) with a large sigma.
`Activation.pair(mu, q, c)` gives E[phi(u) phi(v)] and E[phi(u)^2 phi(v)^2] for (u, v) jointly normal
(mean mu, variance q, correlation c): closed forms for relu-like phi (arc-cosine kernels of degree 1 and
2, Cho & Saul 2009), 2-D Gauss-Hermite (20 x 20) otherwise (~2e-2 at kinks): it feeds only the
correlation map and the finite-width band.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ..kinds.activations import (  # noqa: F401 - SELU_*, leaky_segments: this module's public names too
    ACTIVATIONS,
    SELU_ALPHA,
    SELU_LAMBDA,
    EluLike,
    PiecewiseLinear,
    Segments,
    Smooth,
    homogeneous_slope,
    leaky_segments,
)
from ..textforms import Call

SQRT2 = math.sqrt(2.0)
SQRT2PI = math.sqrt(2.0 * math.pi)
INF = math.inf

_GH_N = 96
_LAG_N = 64
_SIGMA_SWITCH = 1.0
_PAIR_N = 20
_PHI_H = 0.005


class GMoments(NamedTuple):
    """Gaussian expectations for h ~ N(mu, q)."""

    m1: float  # E[phi(h)]
    m2: float  # E[phi(h)^2]
    m4: float  # E[phi(h)^4]
    d2: float  # E[phi'(h)^2]
    dm1: float  # dE[phi]/dq
    dm2: float  # dE[phi^2]/dq

    @property
    def var(self) -> float:
        return max(0.0, self.m2 - self.m1 * self.m1)


_NAN = GMoments(*(math.nan,) * 6)


def pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / SQRT2PI if math.isfinite(x) else 0.0


def Phi(x: float) -> float:
    """Standard normal CDF, accurate in both tails (erfc)."""
    return 0.5 * math.erfc(-x / SQRT2)


def exp_Phi(a: float, x: float) -> float:
    """e^a * Phi(x) without overflow or underflow when a is large and x very negative."""
    if x > -30.0:
        p = Phi(x)
        return math.exp(min(a + math.log(p), 700.0)) if p > 0.0 else 0.0
    # Phi(x) = pdf(x)/|x| * (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8), relative error < 1e-12 here
    y = 1.0 / (x * x)
    series = 1 - y + 3 * y**2 - 15 * y**3 + 105 * y**4
    return math.exp(min(a - 0.5 * x * x, 700.0)) / (SQRT2PI * -x) * series


# ---------------------------------------------------------------------------------------------
# piecewise-linear functions: segments (lo, hi, slope, intercept), phi(x) = slope * x + intercept
# on lo < x <= hi (engine/kinds/activations.py; the derivative at a breakpoint is the left segment's)


def _partial_std_moments(alpha: float, beta: float, kmax: int) -> list[float]:
    """I_k = int_alpha^beta z^k pdf(z) dz for k = 0..kmax."""
    if alpha > 0:  # both in the upper tail: upper-tail probabilities avoid the cancellation
        i0 = 0.5 * math.erfc(alpha / SQRT2) - 0.5 * math.erfc(beta / SQRT2)
    else:
        i0 = Phi(beta) - Phi(alpha)
    out = [i0]
    pa, pb = pdf(alpha), pdf(beta)
    for k in range(1, kmax + 1):
        ta = alpha ** (k - 1) * pa if pa else 0.0
        tb = beta ** (k - 1) * pb if pb else 0.0
        out.append(ta - tb + ((k - 1) * out[k - 2] if k >= 2 else 0.0))
    return out


def _pl_sums(segs: Segments, mu: float, sigma: float) -> tuple[float, float, float, float, float, float]:
    """Exact (E[g], E[g^2], E[g^4], E[g'^2], E[g (z^2-1)], E[g^2 (z^2-1)]) for piecewise-linear g."""
    m1 = m2 = m4 = d2 = e1 = e2 = 0.0
    for lo, hi, a, c in segs:
        alpha = -INF if lo == -INF else (lo - mu) / sigma
        beta = INF if hi == INF else (hi - mu) / sigma
        if beta <= alpha:
            continue
        i = _partial_std_moments(alpha, beta, 6)
        big_a, big_b = a * mu + c, a * sigma
        aa, ab, bb = big_a * big_a, big_a * big_b, big_b * big_b
        m1 += big_a * i[0] + big_b * i[1]
        m2 += aa * i[0] + 2 * ab * i[1] + bb * i[2]
        m4 += (aa * aa * i[0] + 4 * aa * ab * i[1] + 6 * aa * bb * i[2] + 4 * ab * bb * i[3]
               + bb * bb * i[4])
        d2 += a * a * i[0]
        e1 += big_a * (i[2] - i[0]) + big_b * (i[3] - i[1])
        e2 += aa * (i[2] - i[0]) + 2 * ab * (i[3] - i[1]) + bb * (i[4] - i[2])
    return m1, m2, m4, d2, e1, e2


def _pl_vec(segs: Segments, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    breaks, slopes, icepts = _pl_table(segs)
    k = np.searchsorted(breaks, x, side="left")  # segment k: breaks[k-1] < x <= breaks[k]
    a = slopes.take(k)
    return a * x + icepts.take(k), a


@lru_cache(maxsize=64)
def _pl_table(segs: Segments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array([hi for _, hi, _, _ in segs[:-1]]), np.array([a for _, _, a, _ in segs]),
            np.array([c for _, _, _, c in segs]))


# ---------------------------------------------------------------------------------------------
# smooth activations: vectorised phi and phi'


@lru_cache(maxsize=1)
def _gh() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(_GH_N)
    return x, w / SQRT2PI, x * x - 1.0


@lru_cache(maxsize=1)
def _lag() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.laguerre.laggauss(_LAG_N)
    return x, w * np.exp(x)  # int_0^inf g(t) dt = sum (w e^x) g(x)


@lru_cache(maxsize=1)
def _phi_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = np.arange(-1800, 1801) * _PHI_H
    return grid, np.array([Phi(t) for t in grid]), np.exp(-0.5 * grid * grid) / SQRT2PI


def _ncdf(x: np.ndarray) -> np.ndarray:
    """Vectorised Phi: a cubic Taylor step from a 0.005 grid (Phi' = pdf, Phi'' = -x pdf,
    Phi''' = (x^2 - 1) pdf); absolute error below 1e-10; 0 or 1 beyond |x| = 9."""
    grid, vals, dens = _phi_table()
    xc = np.clip(x, -9.0, 9.0)
    i = ((xc + 9.0) * (1.0 / _PHI_H)).astype(np.intp)
    np.minimum(i, grid.size - 2, out=i)
    g = grid.take(i)
    d = xc - g
    return vals.take(i) + dens.take(i) * d * (1.0 - 0.5 * g * d + (g * g - 1.0) * d * d / 6.0)


ncdf = _ncdf  # for the records' smooth phi (gelu)


# ---------------------------------------------------------------------------------------------
# the activation object


class Activation:
    """One catalog activation, ready for Gaussian expectations. Build with `activation(call)`."""

    def __init__(self, call: Call) -> None:
        self.call = call
        kind = ACTIVATIONS.get(call.name)
        if kind is None:
            raise ValueError(f"no Gaussian expectations for activation {call.name!r}")
        shape = kind.shape(kind.values(call))  # the record's theory shape (engine/kinds/activations.py)
        self.segments: Segments | None = None
        self.elu: tuple[float, float] | None = None  # (alpha, scale)
        self.smooth = None  # (phi and phi', piecewise-linear asymptote)
        if isinstance(shape, PiecewiseLinear):
            self.segments = shape.segments
        elif isinstance(shape, EluLike):
            self.elu = (shape.alpha, shape.scale)
        elif isinstance(shape, Smooth):
            self.smooth = (shape.fn, shape.asymptote)
        else:
            raise ValueError(f"activation {call.name!r}: unknown theory shape {type(shape).__name__}")
        # homogeneous relu-like phi(x) = relu(x) - a relu(-x): its negative slope a, else None
        self.slope: float | None = None if self.segments is None else homogeneous_slope(self.segments)

        if self.slope is not None:
            m1, m2, m4, d2, e1, e2 = _pl_sums(self.segments, 0.0, 1.0)
            self._unit = GMoments(m1, m2, m4, d2, e1 / 2, e2 / 2)

    @property
    def homogeneous(self) -> bool:
        """phi(c x) = c phi(x) for c > 0 (identity, relu, leaky relu): the length map is linear."""
        return self.slope is not None

    def __call__(self, x) -> tuple[np.ndarray, np.ndarray]:
        """phi(x) and phi'(x), vectorised."""
        x = np.asarray(x, dtype=float)
        if self.segments is not None:
            return _pl_vec(self.segments, x)
        if self.elu is not None:
            alpha, scale = self.elu
            ex = np.exp(np.minimum(x, 0.0))
            return (np.where(x > 0, scale * x, scale * alpha * (ex - 1.0)),
                    np.where(x > 0, scale, scale * alpha * ex))
        return self.smooth[0](x)

    def moments(self, mu: float, q: float) -> GMoments:
        """Expectations for h ~ N(mu, q) (q = 0: h = mu exactly; derivatives then NaN)."""
        if not (math.isfinite(mu) and math.isfinite(q)) or q < 0:
            return _NAN
        if q == 0.0:
            f, d = self(np.array([mu]))
            f0, d0 = float(f[0]), float(d[0])
            return GMoments(f0, f0 * f0, f0**4, d0 * d0, math.nan, math.nan)
        sigma = math.sqrt(q)
        if self.slope is not None and mu == 0.0:  # homogeneous: scale the q = 1 values
            u = self._unit
            return GMoments(u.m1 * sigma, u.m2 * q, u.m4 * q * q, u.d2, u.m1 / (2 * sigma), u.m2)
        if self.segments is not None:
            m1, m2, m4, d2, e1, e2 = _pl_sums(self.segments, mu, sigma)
            return GMoments(m1, m2, m4, d2, e1 / (2 * q), e2 / (2 * q))
        if self.elu is not None:
            return self._elu_moments(mu, q, sigma)
        return self._smooth_moments(mu, q, sigma)

    def _smooth_moments(self, mu: float, q: float, sigma: float) -> GMoments:
        fn, segs = self.smooth
        if sigma <= _SIGMA_SWITCH:
            z, w, z2m1 = _gh()
            f, d = fn(mu + sigma * z)
            f2 = f * f
            wd = w * z2m1
            return GMoments(float(w @ f), float(w @ f2), float(w @ (f2 * f2)), float(w @ (d * d)),
                            float(wd @ f) / (2 * q), float(wd @ f2) / (2 * q))
        m1, m2, m4, d2, e1, e2 = _pl_sums(segs, mu, sigma)
        t, w = _lag()
        x = np.concatenate((t, -t))
        z = (x - mu) / sigma
        dens = np.concatenate((w, w)) * np.exp(-0.5 * z * z) / (sigma * SQRT2PI)
        f, d = fn(x)
        g, dg = _pl_vec(segs, x)
        f2, g2 = f * f, g * g
        r1, r2 = f - g, f2 - g2
        dz = dens * (z * z - 1.0)
        return GMoments(m1 + float(dens @ r1), m2 + float(dens @ r2), m4 + float(dens @ (f2 * f2 - g2 * g2)),
                        d2 + float(dens @ (d * d - dg * dg)),
                        (e1 + float(dz @ r1)) / (2 * q), (e2 + float(dz @ r2)) / (2 * q))

    def _elu_moments(self, mu: float, q: float, sigma: float) -> GMoments:
        # phi = scale * h (h > 0), scale * alpha * (e^h - 1) (h <= 0)
        alpha, scale = self.elu
        p1, p2, p4, pd, pe1, pe2 = _pl_sums(((0.0, INF, scale, 0.0),), mu, sigma)
        e = [Phi(-mu / sigma)]  # E[e^(k h) 1_(h <= 0)], k = 0..4
        de = [pdf(-mu / sigma) * mu / (2 * q * sigma)]  # and its q-derivative
        for k in range(1, 5):
            a, x = k * mu + 0.5 * k * k * q, -(mu + k * q) / sigma
            e.append(exp_Phi(a, x))
            dens = math.exp(min(a - 0.5 * x * x, 700.0)) / SQRT2PI
            de.append(0.5 * k * k * e[k] + dens * (mu - k * q) / (2 * q * sigma))
        sa = scale * alpha
        neg1, neg2 = e[1] - e[0], e[2] - 2 * e[1] + e[0]  # E[(e^h - 1)^p 1_(h <= 0)]
        neg4 = e[4] - 4 * e[3] + 6 * e[2] - 4 * e[1] + e[0]
        dneg1, dneg2 = de[1] - de[0], de[2] - 2 * de[1] + de[0]
        sa2 = sa * sa  # products, not **: a huge alpha gives inf (no prediction), not an OverflowError
        return GMoments(p1 + sa * neg1, p2 + sa2 * neg2, p4 + sa2 * sa2 * neg4, pd + sa2 * e[2],
                        pe1 / (2 * q) + sa * dneg1, pe2 / (2 * q) + sa2 * dneg2)

    def pair(self, mu: float, q: float, c: float) -> tuple[float, float]:
        """(E[phi(u) phi(v)], E[phi(u)^2 phi(v)^2]), (u, v) ~ N(mu, q) each with correlation c."""
        c = min(1.0, max(-1.0, c))
        if not q > 0.0 or not math.isfinite(q):
            f, _ = self(np.array([mu]))
            f0 = float(f[0])
            return f0 * f0, f0**4
        if self.slope is not None and mu == 0.0:
            a = self.slope  # phi(u) = relu(u) - a relu(-u); the cross terms pair c with -c
            k11 = (1 + a * a) * arccos_kernel1(c) - 2 * a * arccos_kernel1(-c)
            k22 = (1 + a**4) * arccos_kernel2(c) + 2 * a * a * arccos_kernel2(-c)
            return q * k11, q * q * k22
        z1, z2, w = _gh2()
        s = math.sqrt(q)
        f, _ = self(np.concatenate((mu + s * z1, mu + s * (c * z1 + math.sqrt(max(0.0, 1 - c * c)) * z2))))
        fu, fv = f[: z1.size], f[z1.size:]
        return float(w @ (fu * fv)), float(w @ (fu * fu * fv * fv))


@lru_cache(maxsize=64)
def activation(call: Call) -> Activation:
    """The (cached) Activation for a resolved catalog call."""
    return Activation(call)


def moments(act: Call, mu: float, q: float) -> GMoments:
    """Shorthand: activation(act).moments(mu, q)."""
    return activation(act).moments(mu, q)


def arccos_kernel1(c: float) -> float:
    """E[relu(u) relu(v)], unit-variance u, v with correlation c: (sin t + (pi - t) cos t)/(2 pi), t = acos c."""
    c = min(1.0, max(-1.0, c))
    t = math.acos(c)
    return (math.sin(t) + (math.pi - t) * c) / (2 * math.pi)


def arccos_kernel2(c: float) -> float:
    """E[relu(u)^2 relu(v)^2]: (3 sin t cos t + (pi - t)(1 + 2 cos^2 t))/(2 pi), t = acos c."""
    c = min(1.0, max(-1.0, c))
    t = math.acos(c)
    return (3 * math.sin(t) * c + (math.pi - t) * (1 + 2 * c * c)) / (2 * math.pi)


@lru_cache(maxsize=1)
def _gh2() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(_PAIR_N)
    w = w / SQRT2PI
    z1, z2 = np.meshgrid(x, x, indexing="ij")
    return z1.ravel(), z2.ravel(), np.outer(w, w).ravel()
