"""The correlation map for input pairs, the depth scales and the critical line (docs/formulas.md 17).

Reference values: docs/formulas.md 6.1, 6.2 and 17 (computed with high-order quadrature and root finding).
Tolerances: the printed digits of a reference number, unless stated."""

from __future__ import annotations

import math

import numpy as np
import pytest
from initscope.engine.catalog import resolve
from initscope.engine.spec import parse_spec
from initscope.engine.theory import predict
from initscope.engine.theory.correlation import (
    _gh2n,
    _pair_unequal,
    _table_lookup,
    critical_sigma_w2,
    depth_scales,
    moments_vec,
    pair_correlations,
    pair_vec,
)
from initscope.engine.theory.gaussian import activation
from initscope.engine.theory.meanfield import run_meanfield

TANH = resolve("act", "tanh")
RELU = resolve("act", "relu")


def relu_cmap(c: float) -> float:
    """c' = [sqrt(1 - c^2) + (pi - arccos c) c] / pi: ReLU without bias, any sigma_w."""
    return (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi


def test_tanh_critical_point():
    sw2 = critical_sigma_w2(TANH, 0.05)
    assert sw2 == pytest.approx(1.760955, abs=1e-6)
    d = depth_scales(TANH, sw2, 0.05)
    assert d.q_star == pytest.approx(0.570048, abs=1e-6)
    assert d.chi1 == pytest.approx(1.0, abs=1e-9)
    assert d.c_star == 1.0 and d.xi_c == math.inf


@pytest.mark.parametrize("sb2, sw2", [(0.0, 1.0), (0.01, 1.424205), (0.1, 1.986073), (0.5, 2.843167),
                                      (1.0, 3.443211), (2.0, 4.266395)])
def test_tanh_critical_line(sb2, sw2):
    assert critical_sigma_w2(TANH, sb2) == pytest.approx(sw2, abs=2e-6)


def test_relu_critical_point():
    assert critical_sigma_w2(RELU, 0.0) == 2.0
    d = depth_scales(RELU, 2.0, 0.0)
    assert d.chi1 == 1.0 and d.xi_c == math.inf and d.c_star == 1.0


@pytest.mark.parametrize("sw2, q, chi, c, xq, xc", [
    (1.0, 0.193593, 0.759032, 1.0, 1.748, 3.627),
    (1.5, 0.418037, 0.938636, 1.0, 1.683, 15.79),
    (2.0, 0.721762, 1.047666, 0.744082, 1.388, 25.21),
    (2.5, 1.063958, 1.133516, 0.446804, 1.180, 11.80),
    (3.0, 1.428008, 1.208934, 0.299318, 1.042, 9.05),
    (4.0, 2.195494, 1.342402, 0.165065, 0.873, 6.98),
])
def test_tanh_depth_scales(sw2, q, chi, c, xq, xc):
    d = depth_scales(TANH, sw2, 0.05)
    assert d.q_star == pytest.approx(q, abs=1e-6)
    assert d.chi1 == pytest.approx(chi, abs=1e-6)
    # the pair-map table is good to ~1e-7 here; c* moves by that over 1 - slope, slope = e^(-1/xi_c) (0.96 at 2.0)
    assert d.c_star == pytest.approx(c, abs=1e-5)
    assert d.xi_q == pytest.approx(xq, abs=1e-3)
    assert d.xi_c == pytest.approx(xc, abs=6e-3)  # printed to 4 significant digits


def test_relu_ordered_xi_c():
    d = depth_scales(RELU, 1.0, 0.1)
    assert d.chi1 == 0.5 and d.q_star == pytest.approx(0.2)
    assert d.xi_c == pytest.approx(-1 / math.log(0.5), rel=1e-12)  # 1.4427
    # and the recursion itself: 1 - c^l shrinks by chi_1 = 1/2 per block once q sits at q* = 0.2
    spec = parse_spec(arch="16-16x40", act="relu", init="xavier_normal(gain=1)", bias="normal(std=0.316227766)",
                      pair_corr="0.2")
    mf = run_meanfield(spec)
    assert mf.sw2[-1] == pytest.approx(1.0) and mf.sb2[-1] == pytest.approx(0.1)
    gap = 1 - pair_correlations(spec, mf, 0.2).pre
    assert gap[30] / gap[29] == pytest.approx(0.5, rel=1e-4)  # + O(sqrt(1 - c)) from the map's curvature


@pytest.mark.parametrize("c, want", [(0.0, 0.3183099), (0.25, 0.4533099), (0.5, 0.6089978), (0.75, 0.7880021),
                                     (0.9, 0.9095384), (0.99, 0.9903003), (-0.5, 0.1089978), (-1.0, 0.0)])
def test_relu_cmap_closed_form(c, want):
    a = activation(RELU)
    for q in (0.3, 2.0, 17.0):  # the normalised map does not depend on q
        assert float(pair_vec(a, 0.0, q, c)) / (q / 2) == pytest.approx(want, abs=1e-7)
    assert relu_cmap(c) == pytest.approx(want, abs=1e-7)


def test_relu_cmap_independent_of_sigma_w():
    posts = []
    for gain in (0.5, 1.0, 1.41421356, 3.0):
        spec = parse_spec(arch="32-32x6", act="relu", init=f"kaiming_normal(gain={gain})", pair_corr="0.3")
        pc = pair_correlations(spec, run_meanfield(spec), 0.3)
        posts.append(pc.post)
        c = 0.3
        for post in pc.post:
            c = relu_cmap(c)
            assert post == pytest.approx(c, abs=1e-12)
    assert np.allclose(posts, posts[0], rtol=0, atol=1e-13)


def test_relu_critical_power_law():
    """At (2, 0), from c^0 = 0: l^2 (1 - c^l) = 12.85, 30.35, 35.77, 39.37 at l = 10, 50, 100, 200, on its way
    to 9 pi^2 / 2 = 44.41."""
    spec = parse_spec(arch="8-8x200", act="relu", init="kaiming_normal", pair_corr="0")
    pc = pair_correlations(spec, run_meanfield(spec), 0.0)
    for layer, want in ((10, 12.85), (50, 30.35), (100, 35.77), (200, 39.37)):
        assert layer * layer * (1 - pc.post[layer - 1]) == pytest.approx(want, abs=0.006)
    assert pc.pre[1:] == pytest.approx(pc.post[:-1], abs=1e-15)  # no bias: the next pre keeps the cosine


def test_gauss_hermite_cmap_relu():
    """The 2-D Gauss-Hermite rule (the path of every phi without a closed form) on ReLU against the arc-cosine
    closed form: the kink at 0 limits it to an error ~1/n with n nodes per axis (measured max over c in
    {-0.5, 0, 0.5, 0.9}: 6.7e-3, 4.2e-3, 2.1e-3 at n = 20, 32, 64), which is why relu-like phi use the
    closed form and smooth phi the table (error below 2e-6, test_pair_table_matches_fine_quadrature)."""
    a = activation(RELU)
    prev = math.inf
    for n, bound in ((20, 8e-3), (32, 5e-3), (64, 2.5e-3)):
        z1, z2, w = _gh2n(n)
        err = 0.0
        for c in (-0.5, 0.0, 0.5, 0.9):
            v = c * z1 + math.sqrt(1 - c * c) * z2
            err = max(err, abs(float((np.maximum(z1, 0) * np.maximum(v, 0)) @ w) - float(pair_vec(a, 0.0, 1.0, c))))
        assert err < bound and err < prev
        prev = err
    assert _pair_unequal(a, 0.0, 1.0, 1.0, 0.5) == pytest.approx(float(pair_vec(a, 0.0, 1.0, 0.5)), abs=5e-3)


def test_moment_table_matches_quadrature():
    """The tabulated zero-mean moments of smooth phi against gaussian.Activation.moments: relative 1e-9 (measured
    3.4e-10 at most, at q = 1 where the quadrature switches from Gauss-Hermite to the split rule)."""
    q = np.exp(np.linspace(math.log(1e-4), math.log(1e4), 97)) * 1.0037
    for name in ("tanh", "gelu", "sigmoid"):
        a = activation(resolve("act", name))
        got = np.array(moments_vec(a, np.zeros(q.size), q))
        want = np.array([[g.m1, g.m2, g.d2, g.dm2] for g in (a.moments(0.0, x) for x in q)]).T
        assert np.all(np.abs(got - want) <= 1e-9 * np.maximum(np.abs(want), 1e-3))


def test_pair_table_matches_fine_quadrature():
    """The tabulated tanh pair map against 200 x 200 Gauss-Hermite nodes, q in [1e-4, 4]: 2e-6."""
    a = activation(TANH)
    rng = np.random.default_rng(5)
    q = np.exp(rng.uniform(math.log(1e-4), math.log(4.0), 40))
    c = np.concatenate((rng.uniform(-1, 1, 30), 1 - 10 ** rng.uniform(-6, -1, 10)))
    got = _table_lookup(a, q, c)
    z1, z2, w = _gh2n(200)
    for g, qq, cc in zip(got, q, c, strict=True):
        s = math.sqrt(qq)
        want = (a(s * z1)[0] * a(s * (cc * z1 + math.sqrt(1 - cc * cc) * z2))[0]) @ w
        assert g == pytest.approx(want, abs=2e-6)


def test_prediction_fields():
    off = predict(parse_spec(arch="16-16x4", act="tanh"))
    assert np.isnan(off.pair_corr_pre).all() and np.isnan(off.pair_corr_pre_lo).all() and off.pair_corr_reason
    on = predict(parse_spec(arch="16-16x4", act="tanh", bias="normal(std=0.3)", pair_corr="0.5"))
    sw2 = float(on.sigma_w2[0])  # N(0, 1) input: s0 = 1, c0 = 0.5
    assert on.pair_corr_pre[0] == pytest.approx((sw2 * 0.5 + 0.09) / (sw2 + 0.09), rel=1e-12)
    assert np.all(on.pair_corr_pre_lo < on.pair_corr_pre) and np.all(on.pair_corr_pre < on.pair_corr_pre_hi)
    assert np.isnan(on.pair_corr_out).all() and on.pair_corr_reason is None
    js = on.diagnostics_json()
    d = depth_scales(TANH, float(on.sigma_w2[-1]), 0.09)
    assert js["xi_c"] == pytest.approx(d.xi_c, rel=1e-6) and js["q_star"] == pytest.approx(d.q_star, rel=1e-9)
    assert js["c_star"] == pytest.approx(d.c_star, rel=1e-6) and js["xi_q"] == pytest.approx(d.xi_q, rel=1e-9)


def test_prediction_residual_and_norms():
    res = predict(parse_spec(arch="16-16x3", act="relu", residual="plain", pair_corr="0.4"))
    assert np.isfinite(res.pair_corr_out).all()
    assert res.pair_corr_pre[1] == pytest.approx(res.pair_corr_out[0], rel=1e-12)  # no bias: h keeps x's cosine
    assert np.isnan(res.pair_corr_pre_lo).all() and "residual" in res.pair_corr_reason
    rms = predict(parse_spec(arch="16-16x3", act="relu", norm="rmsnorm", pair_corr="0.4"))
    plain = predict(parse_spec(arch="16-16x3", act="relu", pair_corr="0.4"))
    assert rms.pair_corr_post == pytest.approx(plain.pair_corr_post, rel=1e-9)  # a row rescaling keeps cosines
    bn = predict(parse_spec(arch="16-16x3", act="relu", norm="batchnorm", pair_corr="0.4"))
    assert np.isnan(bn.pair_corr_pre).all() and "batchnorm" in bn.pair_corr_reason


# ---------------------------------------------------------------------------------------------
# coverage of the band over many seeds: the runner's own pair measurement (engine/pairs.py)


@pytest.mark.parametrize("text", ["act=relu;init=kaiming_normal;pair_corr=0.5",
                                  "act=tanh;init=xavier_normal(gain=1.5);bias=normal(std=0.3);pair_corr=0.3"])
def test_band_coverage(text):
    """A one-sigma band should hold 50-90% of single networks at every block (68% if it were exact and
    Gaussian). 150 trials: the binomial sd of a coverage near 0.7 is 0.037, so [0.5, 0.9] is >= 5 sd wide;
    the band's half-width against the measured sd within 35% (the sd of an sd over 150 trials is 6%; the
    linear response overestimates deep ReLU blocks by ~25%, measured)."""
    from initscope.engine import run

    torch = pytest.importorskip("torch")
    spec = parse_spec(arch="96-96x12", trials="150", batch="8", grad="false", device="cpu",
                      **dict(t.split("=", 1) for t in text.split(";")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matmuls: one thread is ~15x faster than two on a busy 2-core machine
    try:
        m = run(spec).corr["pre"]
    finally:
        torch.set_num_threads(threads)
    p = predict(spec)
    assert p.pair_corr_reason is None
    lo, hi = p.pair_corr_pre_lo, p.pair_corr_pre_hi
    cover = ((m >= lo) & (m <= hi)).mean(axis=0)
    assert np.all((cover >= 0.5) & (cover <= 0.9)), cover
    sd = m.std(axis=0, ddof=1)
    assert np.all(np.abs((hi - lo) / 2 / sd - 1) < 0.35), (hi - lo) / 2 / sd
    se = sd / math.sqrt(m.shape[0])  # and the mean over trials sits on the mean field (4 standard errors)
    assert np.all(np.abs(m.mean(axis=0) - p.pair_corr_pre) < 4 * se + 1e-3), (m.mean(axis=0) - p.pair_corr_pre) / se


def test_the_pair_band_stays_inside_the_range_of_a_cosine():
    """At the ReLU critical point c^l climbs toward 1 while its one-sigma band is wider than 1 - c^l: the band's
    upper edge went to 1.002 at block 20 before it was clipped to the largest cosine there is."""
    p = predict(parse_spec(arch="64-64x20", init="kaiming_normal", act="relu", batch="64", pair_corr="0.9"))
    assert np.all(p.pair_corr_pre_hi <= 1.0) and np.all(p.pair_corr_pre_lo >= -1.0)
    assert p.pair_corr_pre_hi[-1] == 1.0  # clipped: pre + sd > 1 there
    assert np.all(p.pair_corr_pre_lo < p.pair_corr_pre)
