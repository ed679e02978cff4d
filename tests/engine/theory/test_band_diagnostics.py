"""The finite-width band (docs/band.md) and the diagnostics (phase, fixed point, vanishing depth)."""

import math

import numpy as np
import pytest
from initscope.engine.catalog import resolve
from initscope.engine.spec import parse_spec
from initscope.engine.theory import predict
from initscope.engine.theory.band import MAX_REL, leaky_kappa, relu_moment_ratio
from initscope.engine.theory.gaussian import activation


def test_H1_moment_ratio():
    assert relu_moment_ratio([32] * 10) == pytest.approx(4.2709, abs=1e-4)


# Var(g)/Var(relu)^2 for g = relu^2 - 2 E[relu] relu, h ~ N(0, 1): the fresh noise of a pooled relu std
# (E relu = 1/sqrt(2 pi), E relu^2 = 1/2, E relu^3 = 2/sqrt(2 pi), E relu^4 = 3/2)
KAPPA_RELU_STD = (1.5 - 3 / math.pi - (0.5 - 1 / math.pi) ** 2) / (0.5 - 0.5 / math.pi) ** 2  # 4.4077


def test_band_with_one_input_is_the_exact_product():
    # batch 1, a Gaussian input drawn afresh every seed (|x|^2 spreads by 2/n0): the pooled pre second moment
    # of block d spreads by (1 + 2/n0) prod_{j<d} (1 + 5/n_j) (1 + 2/n_d) exactly; the post std by
    # (1 + 2/n0) prod_{j<d} (1 + 5/n_j) (1 + 4.4077/n_d) (delta method); varying widths
    n0, widths = 128, [128, 256, 64, 192, 128]
    p = predict(parse_spec(arch="-".join(map(str, [n0, *widths])), batch=1))
    for d in range(1, len(widths) + 1):
        inherited = (1 + 2 / n0) * relu_moment_ratio(widths[: d - 1])
        r_pre = inherited * (1 + 2 / widths[d - 1])
        assert p.pre_std_hi[d - 1] / p.pre_std[d - 1] - 1 == pytest.approx(0.5 * math.sqrt(r_pre - 1), rel=1e-9)
        r_post = inherited * (1 + KAPPA_RELU_STD / widths[d - 1])
        assert p.post_std_hi[d - 1] / p.post_std[d - 1] - 1 == pytest.approx(0.5 * math.sqrt(r_post - 1), rel=1e-9)
    np.testing.assert_allclose(p.pre_std_lo + p.pre_std_hi, 2 * p.pre_std)
    assert p.band_reason is None


def test_no_band_where_the_spread_is_too_wide():
    # width 16, 12 relu layers: one input's std spreads by about +-0.5 sqrt(1.3^12 - 1) = +-1.2, far from a
    # symmetric one-sigma band: none is drawn from the first layer beyond +-40%, and the reason says where
    p = predict(parse_spec(arch="16x13", batch=1))
    rel = p.pre_std_hi / p.pre_std - 1
    first = int(np.flatnonzero(np.isnan(rel))[0])
    assert 0 < first < 12 and np.isnan(rel[first:]).all() and np.all(rel[:first] <= MAX_REL)
    assert np.isfinite(p.pre_std).all()  # the prediction itself stands
    assert f"layer {first + 1}: one network's pre std spreads more than +-40%" in p.band_reason
    assert p.diagnostics_json()["band_reason"] == p.band_reason


@pytest.mark.parametrize("a", [0.0, 0.01, 0.2, 0.5, 1.0])
def test_leaky_kappa_matches_the_fourth_moment(a):
    g = activation(resolve("act", f"leaky_relu(a={a})")).moments(0.0, 1.7)
    assert leaky_kappa(a) == pytest.approx(g.m4 / g.m2**2 - 1, rel=1e-12)
    assert leaky_kappa(0.0) == 5.0 and leaky_kappa(1.0) == 2.0


def test_batch_pooling_and_orthogonal_weights_shrink_the_band():
    one = predict(parse_spec(arch="1024x11", batch=1))
    many = predict(parse_spec(arch="1024x11", batch=4096))
    orth = predict(parse_spec(arch="1024x11", batch=4096, init="orthogonal(gain=1.4142135623730951)"))
    rel = lambda p: p.pre_std_hi[-1] / p.pre_std[-1] - 1  # noqa: E731
    # single input, fresh Gaussian input: +-0.5 sqrt((1 + 2/1024) (1 + 5/1024)^9 (1 + 4.4077/1024) - 1) at
    # width 1024, depth 10 (post); measured over 12 seeds with batch 4096 (pre, layer 10): 8.6%
    want = 0.5 * math.sqrt((1 + 2 / 1024) * (1 + 5 / 1024) ** 9 * (1 + KAPPA_RELU_STD / 1024) - 1)
    assert one.post_std_hi[-1] / one.post_std[-1] - 1 == pytest.approx(want, rel=1e-9)
    assert 0.06 < rel(many) < 0.10
    assert rel(orth) < rel(many)


def test_contracting_activations_self_average():
    for act, init in (("tanh", "xavier_normal"), ("selu", "lecun_normal"), ("sigmoid", "xavier_normal")):
        p = predict(parse_spec(arch="1024x11", batch=4096, act=act, init=init))
        assert np.all(p.pre_std_hi / p.pre_std - 1 < 0.03), act


def test_phases_and_fixed_points():
    he = predict(parse_spec(arch="512x11"))
    assert he.diagnostics.phase == "critical" and he.diagnostics.fixed_point.kind == "every"
    assert he.diagnostics.leaves_at is None
    tanh = predict(parse_spec(arch="512x11", act="tanh", init="xavier_normal"))
    assert tanh.diagnostics.fixed_point.kind == "zero" and tanh.diagnostics.phase == "critical"
    sig = predict(parse_spec(arch="512x11", act="sigmoid", init="xavier_normal"))
    assert sig.diagnostics.phase == "ordered"


def test_vanishing_depth_extrapolated_beyond_the_net():
    p = predict(parse_spec(arch="512x11", init="xavier_normal"))
    d = p.diagnostics
    # std_l = 2^(-(l-1)/2) < 1e-3 first at l = 21
    assert (d.leaves_at, d.leaves_how, d.leaves_extrapolated) == (21, "vanish", True)
    np.testing.assert_allclose(d.signal_growth[1:], math.sqrt(0.5))
    assert d.grad_ratio == pytest.approx(2 ** -4.5)
    deep = predict(parse_spec(arch="512x31", init="xavier_normal")).diagnostics
    assert (deep.leaves_at, deep.leaves_extrapolated) == (21, False)


def test_exploding_inside_and_beyond_the_net():
    d = predict(parse_spec(arch="512x6", init="normal(std=1)")).diagnostics
    assert (d.leaves_at, d.leaves_how, d.leaves_extrapolated) == (3, "explode", False)
    # sigma_w^2 = 2 with a bias: q grows linearly by sigma_b^2 = 0.01 a layer from 2
    d = predict(parse_spec(arch="512x11", bias="normal(std=0.1)")).diagnostics
    assert d.leaves_how == "explode" and d.leaves_extrapolated
    assert d.leaves_at == 10 + math.ceil((1e6 - 2.1) / 0.01)
    # critical tanh decays algebraically (q ~ 1/(2 l)): a very deep estimate
    d = predict(parse_spec(arch="512x11", act="tanh", init="xavier_normal")).diagnostics
    assert d.leaves_how == "vanish" and d.leaves_extrapolated and d.leaves_at > 1e4


def test_diagnostics_json_is_plain():
    import json

    for kw in ({}, {"init": "xavier_normal"}, {"act": "tanh"}, {"data": "digits"}):
        doc = predict(parse_spec(arch="64x5", **kw)).diagnostics_json()
        json.dumps(doc, allow_nan=False)
        assert doc["phase"] in ("ordered", "critical", "chaotic", "unknown")
