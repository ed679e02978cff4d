"""Gaussian expectations against closed forms (docs/formulas.md 5, 6.2, 6.3) and scipy quadrature."""

import math

import numpy as np
import pytest
from initscope.engine.catalog import resolve
from initscope.engine.theory.gaussian import SELU_ALPHA, SELU_LAMBDA, activation, arccos_kernel1, moments
from scipy import integrate

# the oracle asks quad for 1e-13; where it cannot quite get there it warns, and 1e-6 is what we check
pytestmark = pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")


def act(text):
    return activation(resolve("act", text))


def quad_moments(a, mu, q):
    """scipy oracle: E[phi], E[phi^2], E[phi^4], E[phi'^2] and the two q-derivatives, split at kinks."""
    s = math.sqrt(q)

    def f(h, p):
        y, d = a(np.array([h]))
        y, d = float(y[0]), float(d[0])
        z = (h - mu) / s
        val = {1: y, 2: y * y, 4: y**4, 0: d * d, -1: y * (z * z - 1) / (2 * q), -2: y * y * (z * z - 1) / (2 * q)}[p]
        return val * math.exp(-0.5 * z * z) / (s * math.sqrt(2 * math.pi))

    kinks = [x for seg in a.segments for x in seg[:2]] if a.segments else []
    lo, hi = mu - 40 * s, mu + 40 * s
    pts = sorted({p for p in [0.0, mu, -50, -10, -3, -1, 1, 3, 10, 50, *kinks] if lo < p < hi and math.isfinite(p)})
    return [integrate.quad(f, lo, hi, args=(p,), points=pts, limit=2000, epsabs=0, epsrel=1e-13)[0]
            for p in (1, 2, 4, 0, -1, -2)]


ACTS = ["identity", "relu", "leaky_relu(a=0.2)", "general_relu(leak=0.1, sub=0.4, maxv=6)",
        "general_relu(sub=0.5, maxv=1)", "general_relu(leak=0.1, sub=2, maxv=-1)", "tanh", "sigmoid", "gelu",
        "silu", "softplus", "selu", "elu", "elu(alpha=0.3)"]


@pytest.mark.parametrize("name", ACTS)
def test_moments_against_quadrature(name):
    a = act(name)
    for mu in (0.0, -1.3, 4.0):
        for q in (1e-4, 0.3, 1.5, 25.0, 900.0):
            got = a.moments(mu, q)
            want = quad_moments(a, mu, q)
            for k, (x, y) in enumerate(zip(got, want, strict=True)):
                scale = max(abs(y), 1e-9 * (1 + abs(mu)) ** 4)
                # values: 1e-6 relative; the q-derivatives also against an absolute floor
                floor = 1e-6 * (1 + abs(got.m2)) / q if k >= 4 else 0.0
                assert abs(x - y) <= 1e-6 * scale + floor, (name, mu, q, k, x, y)


@pytest.mark.parametrize("name", ACTS)
def test_q_derivatives_against_finite_differences(name):
    a = act(name)
    for mu, q in ((0.0, 0.5), (0.3, 2.0), (-1.0, 9.0)):
        g, h = a.moments(mu, q), 1e-5 * q
        up, dn = a.moments(mu, q + h), a.moments(mu, q - h)
        assert g.dm1 == pytest.approx((up.m1 - dn.m1) / (2 * h), rel=1e-5, abs=1e-8)
        assert g.dm2 == pytest.approx((up.m2 - dn.m2) / (2 * h), rel=1e-5, abs=1e-8)


def test_relu_closed_forms_R1():
    for sigma in (0.1, 1.0, 3.0):
        g = act("relu").moments(0.0, sigma**2)
        assert g.m1 == pytest.approx(0.3989422804 * sigma, rel=1e-9)
        assert g.m2 == pytest.approx(sigma**2 / 2, rel=1e-12)
        assert math.sqrt(g.var) == pytest.approx(0.5838193701 * sigma, rel=1e-9)
        assert g.m4 == pytest.approx(1.5 * sigma**4, rel=1e-12)
        assert g.d2 == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("a, mean, second, std", [(0.01, 0.3949529, 0.50005, 0.5865682),
                                                  (0.2, 0.3191538, 0.52, 0.6466381)])
def test_leaky_closed_forms(a, mean, second, std):
    g = act(f"leaky_relu(a={a})").moments(0.0, 1.0)
    assert g.m1 == pytest.approx(mean, rel=1e-6)
    assert g.m2 == pytest.approx(second, rel=1e-9)
    assert math.sqrt(g.var) == pytest.approx(std, rel=1e-6)


# docs/formulas.md 6.3: z ~ N(0, 1)
TABLE_63 = [
    ("identity", 0, 1, 1, 1),
    ("relu", 0.3989423, 0.5, 0.5838194, 0.5),
    ("tanh", 0, 0.3942945, 0.6279287, 0.4644029),
    ("sigmoid", 0.5, 0.2933790, 0.2082763, 0.0448362),
    ("selu", 0, 1, 1, 1.0715750),
    ("gelu", 0.2820948, 0.4252215, 0.5879150, None),
    ("silu", 0.2066210, 0.3557755, 0.5595385, None),
]


@pytest.mark.parametrize("name, mean, second, std, dsq", TABLE_63)
def test_table_6_3(name, mean, second, std, dsq):
    g = act(name).moments(0.0, 1.0)
    tol = 1e-6
    assert g.m1 == pytest.approx(mean, rel=tol, abs=5e-8)
    assert g.m2 == pytest.approx(second, rel=tol, abs=5e-8)
    assert math.sqrt(g.var) == pytest.approx(std, rel=tol, abs=5e-8)
    if dsq is not None:
        assert g.d2 == pytest.approx(dsq, rel=tol)


def test_selu_constants_S5_and_fixed_point_S1():
    e12 = math.erfc(1 / math.sqrt(2))
    alpha = -math.sqrt(2 / math.pi) / (math.exp(0.5) * e12 - 1)
    lam = (1 - math.sqrt(math.e) * e12) * math.sqrt(
        2 * math.pi / (2 + math.pi - 2 * math.sqrt(math.e) * (2 + math.pi) * e12 + math.e * math.pi * e12**2
                       + 2 * math.e**2 * math.erfc(math.sqrt(2))))
    assert alpha == pytest.approx(1.6732632423543772, rel=1e-14) and SELU_ALPHA == pytest.approx(alpha, rel=1e-14)
    assert lam == pytest.approx(1.0507009873554805, rel=1e-14) and SELU_LAMBDA == pytest.approx(lam, rel=1e-14)
    g = act("selu").moments(0.0, 1.0)
    assert g.m1 == pytest.approx(0.0, abs=1e-12)
    assert g.var == pytest.approx(1.0, rel=1e-12)
    # the mean/variance map's Jacobian entries at (0, 1) (docs/formulas.md 5): d var/d nu = 0.782648
    assert g.dm2 == pytest.approx(0.782648, rel=1e-5)


def test_gauss_hermite_is_not_used_at_kinks():
    # plain 301-node Gauss-Hermite gives 0.39785 for the relu mean (docs/formulas.md 6.3 numerics)
    assert moments(resolve("act", "relu"), 0.0, 1.0).m1 == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-14)


def test_general_relu_clamp_edge_cases():
    # maxv below -sub with no leak: the function is the constant maxv
    g = act("general_relu(sub=1, maxv=-2)").moments(0.3, 2.0)
    assert (g.m1, g.m2, g.d2) == pytest.approx((-2.0, 4.0, 0.0), abs=1e-12)
    # q = 0: h = mu exactly
    g = act("general_relu(leak=0.1, sub=0.4, maxv=6)").moments(10.0, 0.0)
    assert (g.m1, g.d2) == (6.0, 0.0)


def test_arccos_kernel_C1():
    # c' = 2 k1(c) at sigma_w^2 = 2 (docs/formulas.md 6.2)
    pairs = {0: 0.3183099, 0.25: 0.4533099, 0.5: 0.6089978, 0.75: 0.7880021, 0.9: 0.9095384, 0.99: 0.9903003,
             -0.5: 0.1089978, -1: 0}
    for c, want in pairs.items():
        assert 2 * arccos_kernel1(c) == pytest.approx(want, abs=5e-8)
    c, seq = 0.0, []
    for _ in range(10):
        c = 2 * arccos_kernel1(c)
        seq.append(c)
    assert seq == pytest.approx([0.318310, 0.493731, 0.604826, 0.680954, 0.735946, 0.777229, 0.809148, 0.834416,
                                 0.854809, 0.871536], abs=1e-6)


def quad_pair(a, mu, q, c, p):
    """scipy oracle for E[(phi(u) phi(v))^p], (u, v) ~ N(mu, q) with correlation c, split where v = 0."""
    s, r = math.sqrt(q), math.sqrt(1 - c * c)

    def inner(z1):
        u = a(np.array([mu + s * z1]))[0][0]

        def g(z2):
            v = a(np.array([mu + s * (c * z1 + r * z2)]))[0][0]
            return (u * v) ** p * math.exp(-0.5 * z2 * z2) / math.sqrt(2 * math.pi)

        k = (-mu / s - c * z1) / r
        return (integrate.quad(g, -12, k, epsrel=1e-10)[0] + integrate.quad(g, k, 12, epsrel=1e-10)[0]) \
            * math.exp(-0.5 * z1 * z1) / math.sqrt(2 * math.pi)

    return integrate.quad(inner, -12, -mu / s)[0] + integrate.quad(inner, -mu / s, 12)[0]


@pytest.mark.parametrize("name", ["relu", "leaky_relu(a=0.3)", "tanh", "selu", "general_relu(sub=0.4)"])
def test_pair_moments_against_quadrature(name):
    a = act(name)
    for mu, q, c in ((0.0, 1.3, 0.4), (0.0, 2.0, -0.6)):
        e11, e22 = a.pair(mu, q, c)
        tol = 1e-6 if a.homogeneous else 3e-2  # 2-D Gauss-Hermite elsewhere (~2e-2 at kinks): band only
        assert e11 == pytest.approx(quad_pair(a, mu, q, c, 1), rel=tol, abs=1e-6)
        assert e22 == pytest.approx(quad_pair(a, mu, q, c, 2), rel=tol, abs=1e-6)
