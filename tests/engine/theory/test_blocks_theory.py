"""Norm and residual blocks: engine/theory/blocks.py and the recursion through them, against the closed
forms of docs/formulas.md section 16 and against a small torch simulation of the block."""

import json
import math

import numpy as np
import pytest
from initscope.engine.catalog import NORMS as CATALOG_NORMS
from initscope.engine.catalog import RESIDUALS as CATALOG_RESIDUALS
from initscope.engine.catalog import resolve
from initscope.engine.numbers import fmt_num
from initscope.engine.spec import parse_spec
from initscope.engine.theory import explain, predict
from initscope.engine.theory.blocks import (
    NORMS,
    RESIDUALS,
    batchnorm_batch_factor,
    batchnorm_rate,
    layernorm_rate,
    residual_he_relu_growth,
    unit_expectations,
)

RELU_MEAN = 1 / math.sqrt(2 * math.pi)  # 0.3989423
RELU_STD = math.sqrt(0.5 - 1 / (2 * math.pi))  # 0.5838194
TANH_RATE = 0.4644029024488 / 0.3942944903978  # E[tanh'^2]/E[tanh^2] at N(0, 1), docs/formulas.md 6.3


def P(**kw):
    return predict(parse_spec(**kw))


def act(text):
    return resolve("act", text)


# --- the registries ------------------------------------------------------------------------------------


def test_every_catalog_norm_and_residual_has_a_theory_record():
    assert set(NORMS) == set(CATALOG_NORMS)
    assert set(RESIDUALS) == set(CATALOG_RESIDUALS)
    for name, rec in NORMS.items():
        assert rec.name == name and rec.over and rec.backward and callable(rec.normed) and callable(rec.rate)
        if name != "none":  # a norm's words: Explain fills these templates (no name-keyed text elsewhere)
            assert rec.forward_story and rec.backward_story and rec.rate(act("relu")) > 0
    for name, rec in RESIDUALS.items():
        assert rec.name == name and rec.words and callable(rec.alpha) and callable(rec.weight_scale)
        assert rec.is_residual == (name != "none")
        call = resolve("residual", name)
        if rec.is_residual and (rec.v_zero or rec.alpha(call) == 0.0):
            assert rec.identity_story  # a kind that starts as the identity says how


# --- closed forms --------------------------------------------------------------------------------------


def test_batchnorm_rate_closed_forms():
    assert batchnorm_rate(act("relu")) == pytest.approx(math.pi / (math.pi - 1), rel=1e-12)  # 1.46694
    assert batchnorm_rate(act("relu")) == pytest.approx(1.46694, abs=1e-5)
    assert batchnorm_rate(act("tanh")) == pytest.approx(TANH_RATE, rel=1e-8)  # tanh is odd: Var = E[phi^2]
    assert batchnorm_rate(act("tanh")) == pytest.approx(1.1778, abs=1e-4)
    assert batchnorm_rate(act("identity")) == 1.0


def test_layernorm_rate_closed_forms():
    assert layernorm_rate(act("relu")) == pytest.approx(1.0, rel=1e-12)  # E[phi'^2] = E[phi^2] = 1/2
    assert layernorm_rate(act("leaky_relu(a=0.1)")) == pytest.approx(1.0, rel=1e-12)  # both (1 + a^2)/2
    assert layernorm_rate(act("tanh")) == pytest.approx(1.1778, abs=1e-4)
    assert layernorm_rate(act("identity")) == 1.0


def test_unit_expectations_relu():
    u = unit_expectations(act("relu"))
    assert u["m1"] == pytest.approx(RELU_MEAN, rel=1e-9)
    assert math.sqrt(u["var"]) == pytest.approx(RELU_STD, rel=1e-9)
    assert u["d2"] == pytest.approx(0.5, rel=1e-9) and u["d1"] == pytest.approx(0.5, rel=1e-9)
    assert u["zd1"] == pytest.approx(RELU_MEAN, rel=1e-9)  # E[z 1(z > 0)] = 1/sqrt(2 pi)
    assert u["z2d2"] == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize("B", [4, 5, 8, 16, 64, 256, 1024])
def test_batchnorm_batch_factor_identity_is_b_minus_2_over_b_minus_3(B):
    assert batchnorm_batch_factor(act("identity"), B) == pytest.approx((B - 2) / (B - 3), rel=1e-9)
    # last block: the loss's u is not centred over the batch: (B - 2)(B - 1)/(B (B - 3))
    assert batchnorm_batch_factor(act("identity"), B, last=True) == pytest.approx(
        (B - 2) * (B - 1) / (B * (B - 3)), rel=1e-9)


@pytest.mark.parametrize("B", [16, 64, 256])
def test_batchnorm_batch_factor_relu_closed_form(B):
    # A/E[phi'^2] = 2 (Var[phi'] + E[z^2 phi'^2] - E[z phi']^2) = 2 (1/4 + 1/2 - 1/(2 pi)) = 3/2 - 1/pi
    want = (B - 2.5 + 1 / math.pi) / (B - 3)
    assert batchnorm_batch_factor(act("relu"), B) == pytest.approx(want, rel=1e-9)
    assert batchnorm_batch_factor(act("relu"), 256) * math.pi / (math.pi - 1) == pytest.approx(1.471686, abs=1e-6)


def test_batchnorm_batch_factor_needs_four_examples():
    assert math.isnan(batchnorm_batch_factor(act("relu"), 3))


def test_residual_he_relu_growth_closed_form():
    assert residual_he_relu_growth(50, 1 / math.sqrt(50)) == pytest.approx((1 + 1 / 50) ** 50, rel=1e-14)
    assert residual_he_relu_growth(50, 1 / math.sqrt(50)) == pytest.approx(2.692, abs=5e-4)
    assert residual_he_relu_growth(50, 1.0) == 2.0**50


# --- batchnorm through predict -------------------------------------------------------------------------


def test_batchnorm_relu_forward_is_phi_of_a_standard_normal():
    p = P(arch="1024x21", norm="batchnorm", batch=256)
    assert p.ok
    np.testing.assert_array_equal(p.normed_mean, 0.0)
    np.testing.assert_allclose(p.normed_std, 1.0, atol=1e-5)  # sqrt(v/(v + eps)), v ~ 1, eps = 1e-5
    np.testing.assert_allclose(p.post_mean, RELU_MEAN, rtol=1e-5)  # 0.3989
    np.testing.assert_allclose(p.post_std, RELU_STD, rtol=1e-5)  # 0.5838
    assert p.pre_std[0] == pytest.approx(math.sqrt(2), rel=1e-12)  # He on N(0, 1) input
    np.testing.assert_allclose(p.pre_std[1:], 1.0, rtol=1e-5)  # sigma_w^2 E[relu(z)^2] = 2 x 1/2
    np.testing.assert_array_equal(p.pre_mean, 0.0)
    assert np.isnan(p.out_std).all() and np.isnan(p.grad_out_std).all()


def test_batchnorm_normed_std_with_a_large_eps():
    # block 1: unit batch variance v = (B-1)/B sigma_w^2 Var[x] = (B-1)/B x 2, normed std sqrt(v/(v + eps))
    B, eps = 64, 0.5
    p = P(arch="512x4", norm=f"batchnorm(eps={eps})", batch=B)
    v = (B - 1) / B * 2.0
    assert p.normed_std[0] == pytest.approx(math.sqrt(v / (v + eps)), rel=1e-12)
    r = v / (v + eps)
    assert p.post_std[0] == pytest.approx(RELU_STD * math.sqrt(r), rel=1e-12)


def test_batchnorm_relu_gradient_grows_by_lambda_kappa():
    B = 256
    p = P(arch="1024x31", norm="batchnorm", batch=B)
    var = p.grad_std**2
    rates = var[:-1] / var[1:]
    lam_kappa = math.pi / (math.pi - 1) * (B - 2.5 + 1 / math.pi) / (B - 3)
    # blocks 2..L-1 see the BN'd input: the unit's batch variance is sigma_w^2 Var[phi] (+ eps)
    np.testing.assert_allclose(rates[1:-1], lam_kappa, rtol=1e-4)  # eps = 1e-5 against v = 0.68
    assert p.chi1[10] == pytest.approx(lam_kappa, rel=1e-4)
    assert lam_kappa / (math.pi / (math.pi - 1)) - 1 < 0.004  # the large-batch limit is 0.3% below
    # grad_pre = grad through the norm: Var(delta) = E[phi'^2] Var(g) kappa / D, D = v + eps with v the unit's
    # batch variance sigma_w^2 Var[relu(n)] = 2 r Var[relu(z)], r = the previous block's normed variance
    d = 2 * p.normed_std[:-2] ** 2 * RELU_STD**2 + 1e-5
    k = (B - 2.5 + 1 / math.pi) / (B - 3)
    np.testing.assert_allclose(p.grad_pre_std[1:-1] ** 2, 0.5 * var[1:-1] * k / d, rtol=1e-9)
    assert p.diagnostics.phase == "chaotic"
    assert p.diagnostics.grad_ratio**2 == pytest.approx(np.prod(rates), rel=1e-9)


def test_batchnorm_forward_and_backward_do_not_depend_on_the_weight_scale():
    a = P(arch="512x11", norm="batchnorm", batch=128)
    b = P(arch="512x11", norm="batchnorm", batch=128, init="normal(std=0.3)")
    np.testing.assert_allclose(a.post_std, b.post_std, rtol=1e-4)  # eps/v differs only
    ra, rb = a.grad_std[:-1] / a.grad_std[1:], b.grad_std[:-1] / b.grad_std[1:]
    np.testing.assert_allclose(ra[1:], rb[1:], rtol=1e-3)  # eps = 1e-5 against v = 46 x 0.34 or 0.68


@pytest.mark.parametrize("B", [16, 64, 256])
def test_batchnorm_identity_rate_is_b_minus_2_over_b_minus_3(B):
    p = P(arch="512x13", norm="batchnorm", batch=B, act="identity", init="kaiming_normal")
    r = p.grad_std[:-1] ** 2 / p.grad_std[1:] ** 2
    np.testing.assert_allclose(r[1:-1], (B - 2) / (B - 3), rtol=2e-5)  # eps = 1e-5 on v = 1


def test_batchnorm_tanh_large_batch_rate():
    p = P(arch="1024x21", norm="batchnorm", batch=1 << 20, act="tanh")
    r = p.grad_std[:-1] ** 2 / p.grad_std[1:] ** 2
    np.testing.assert_allclose(r[1:-1], 1.1778072, rtol=1e-5)  # kappa = 1 + O(1e-6) at B = 2^20


def test_batchnorm_notes_say_large_batch_limit_and_warn_on_narrow_width():
    p = P(arch="512x11", norm="batchnorm", batch=256)
    text = " ".join(p.notes)
    assert "large-batch limit" in text and "1.4669" in text
    assert "not much larger than the batch" in text
    wide = P(arch="2048x11", norm="batchnorm", batch=256)
    assert "not much larger" not in " ".join(wide.notes)


def test_batchnorm_tiny_batch_keeps_the_forward_and_says_why_no_gradient():
    p = P(arch="64x5", norm="batchnorm", batch=3)
    assert "batch of 3" in p.reason
    assert np.isfinite(p.post_std).all() and np.isnan(p.grad_std[:-1]).all() and np.isnan(p.grad_pre_std).all()
    assert p.grad_std[-1] == 1.0  # the loss's own gradient at the last post


# --- layernorm, rmsnorm --------------------------------------------------------------------------------


@pytest.mark.parametrize("a, rate", [("relu", 1.0), ("tanh", TANH_RATE), ("identity", 1.0)])
@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_layernorm_rmsnorm_backward_factor(norm, a, rate):
    p = P(arch="1024x16", norm=norm, act=a, batch=8)
    r = p.grad_std[:-1] ** 2 / p.grad_std[1:] ** 2
    np.testing.assert_allclose(r[1:], rate, rtol=3e-5)  # eps/q = 1e-5 or 1e-6
    q = P(arch="1024x16", norm=norm, act=a, batch=4096)  # independent of the batch
    np.testing.assert_allclose(q.grad_std, p.grad_std, rtol=1e-12)
    np.testing.assert_allclose(p.normed_std, 1.0, atol=1e-5)
    assert p.diagnostics.phase == ("critical" if rate == 1.0 else "chaotic")


def test_layernorm_tanh_forward():
    p = P(arch="512x11", norm="layernorm", act="tanh")
    np.testing.assert_array_equal(p.normed_mean, 0.0)
    np.testing.assert_allclose(p.post_std, math.sqrt(0.3942944904), rtol=1e-5)  # std of tanh(N(0, 1))
    # pre: sigma_w^2 E[x^2] with sigma_w^2 = (5/3)^2 and E[tanh(z)^2] = 0.3942945
    np.testing.assert_allclose(p.pre_std[1:], 5 / 3 * math.sqrt(0.3942944904), rtol=1e-5)


def test_rmsnorm_with_a_bias_mean():
    # block 1: h ~ N(0.3, 2) per example over units: rho^2 = 2 + 0.09 + 1e-6, n ~ N(0.3/rho, 2/rho^2)
    p = P(arch="512x6", norm="rmsnorm", bias="const(value=0.3)")
    rho2 = 2 + 0.09 + 1e-6
    assert p.normed_mean[0] == pytest.approx(0.3 / math.sqrt(rho2), rel=1e-12)
    assert p.normed_std[0] == pytest.approx(math.sqrt(2 / rho2), rel=1e-12)
    assert p.normed_mean[0] ** 2 + p.normed_std[0] ** 2 == pytest.approx(1.0, abs=1e-6)  # second moment 1
    assert p.pre_mean[0] == 0.3


# --- residual blocks -----------------------------------------------------------------------------------


def test_residual_he_relu_alpha_one_over_sqrt_depth():
    L = 50
    p = P(arch=f"512x{L + 1}", residual=f"plain(alpha={1 / math.sqrt(L)!r})")
    assert p.ok
    assert p.out_std[-1] ** 2 == pytest.approx((1 + 1 / L) ** L, rel=1e-12)  # p^L = p^0 (1 + 1/L)^L
    assert p.out_std[-1] ** 2 == pytest.approx(2.692, abs=5e-4)
    np.testing.assert_allclose(p.out_std**2, (1 + 1 / L) ** np.arange(1, L + 1), rtol=1e-12)
    np.testing.assert_array_equal(p.out_mean, 0.0)
    # dLoss/dx^l: factor 1 + alpha^2 sigma_v^2 sigma_w^2 E[phi'^2] = 1 + 1/L per block, from block L down
    np.testing.assert_allclose(p.grad_out_std**2, (1 + 1 / L) ** np.arange(L - 1, -1, -1), rtol=1e-12)
    np.testing.assert_allclose(p.chi1, 1 + 1 / L, rtol=1e-12)
    # the branch: grad = alpha V^T grad_out (sigma_v^2 = 1), grad_pre = grad/sqrt(2) (relu, E[phi'^2] = 1/2)
    np.testing.assert_allclose(p.grad_std**2, p.grad_out_std**2 / L, rtol=1e-12)
    np.testing.assert_allclose(p.grad_pre_std**2, p.grad_std**2 / 2, rtol=1e-12)
    assert p.diagnostics.phase == "n/a" and p.diagnostics.fixed_point.kind == "none"


def test_residual_he_relu_alpha_one_doubles():
    p = P(arch="256x31", residual="plain")
    np.testing.assert_allclose(p.out_std**2, 2.0 ** np.arange(1, 31), rtol=1e-12)
    np.testing.assert_allclose(p.pre_std**2, 2 * 2.0 ** np.arange(0, 30), rtol=1e-12)


def test_residual_tanh_second_moment_recursion():
    # p^l = p^(l-1) + E[tanh(sqrt(sigma_w^2 p^(l-1)) z)^2], sigma_w^2 = (5/3)^2, sigma_v^2 = 1, by the trapezoid
    # rule on a fine grid (tanh(7 z) turns over within 1/7: step 1.2e-4 is exact to rounding)
    z = np.linspace(-12, 12, 200001)
    w = np.exp(-z * z / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    p_, want = 1.0, []
    for _ in range(20):
        p_ += float(w @ np.tanh(math.sqrt(25 / 9 * p_) * z) ** 2)
        want.append(p_)
    p = P(arch="512x21", residual="plain", act="tanh")
    np.testing.assert_allclose(p.out_std**2, want, rtol=1e-8)


@pytest.mark.parametrize("init, sv2", [("kaiming_normal", 1.0), ("kaiming_normal(gain=3)", 1.0),
                                       ("xavier_normal(gain=2)", 1.0), ("lecun_normal", 1.0),
                                       ("torch_default", 1 / 3), ("normal(std=0.1)", 100 * 0.01),
                                       ("lsuv", 1.0)])
def test_residual_branch_v_is_the_scheme_at_gain_one(init, sv2):
    p = P(arch="100x6", residual="plain(alpha=0.5)", init=init)
    assert p.meanfield.sv2[0] == pytest.approx(sv2, rel=1e-12)


@pytest.mark.parametrize("residual", ["rezero", "fixup"])
def test_rezero_and_fixup_start_as_the_identity(residual):
    L = 20
    p = P(arch=f"512x{L + 1}", residual=residual)
    np.testing.assert_array_equal(p.out_std, 1.0)  # x^l = x^0 ~ N(0, 1)
    np.testing.assert_array_equal(p.out_mean, 0.0)
    np.testing.assert_array_equal(p.grad_std, 0.0)  # the branch gets no gradient
    np.testing.assert_array_equal(p.grad_pre_std, 0.0)
    np.testing.assert_array_equal(p.grad_out_std, 1.0)
    # every branch sees x^0: pre variance sigma_w^2 = 2 (fixup: 2/L)
    np.testing.assert_allclose(p.pre_std**2, 2.0 / (L if residual == "fixup" else 1), rtol=1e-12)
    assert p.diagnostics.grad_ratio == 1.0


def test_fixup_scales_w_after_lsuv_calibrates_it():
    # LSUV makes std(pre) = target on the block input, then fixup multiplies W by L^(-1/2)
    L = 16
    p = P(arch=f"128x{L + 1}", init="lsuv(target=1)", residual="fixup")
    np.testing.assert_allclose(p.pre_std, 1 / math.sqrt(L), rtol=1e-12)


def test_residual_keeps_the_input_mean():
    p = P(arch="128x6", residual="plain", data="gaussian(mean=0.5, std=1)")
    np.testing.assert_array_equal(p.out_mean, 0.5)
    assert p.out_std[0] ** 2 == pytest.approx(1.25 + 2 * 1.25 * 0.5 - 0.25, rel=1e-12)  # p^1 - m^2, relu He


@pytest.mark.parametrize("norm, add", [("batchnorm", 0.5), ("layernorm", 0.5)])
def test_norm_plus_residual_adds_a_constant_per_block(norm, add):
    # the branch input is normalised: each block adds alpha^2 sigma_v^2 E[relu(n)^2] = alpha^2 / 2 (r ~ 1)
    L, alpha = 30, 0.5
    p = P(arch=f"1024x{L + 1}", norm=norm, residual=f"plain(alpha={alpha})", batch=256)
    np.testing.assert_allclose(p.out_std**2, 1 + alpha**2 * add * np.arange(1, L + 1), rtol=1e-5)  # eps/v


def test_layernorm_tanh_residual_adds_e_tanh_squared():
    p = P(arch="512x11", norm="layernorm", residual="plain", act="tanh")
    np.testing.assert_allclose(np.diff(p.out_std**2), 0.3942944904, rtol=1e-5)


# --- json, band, diagnostics, explain ------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["none", "batchnorm", "layernorm", "rmsnorm"])
@pytest.mark.parametrize("residual", ["none", "plain", "rezero", "fixup"])
@pytest.mark.parametrize("a", ["relu", "tanh", "gelu"])
def test_every_block_gives_plain_json_band_reason_and_words(norm, residual, a):
    p = P(arch="64x5", norm=norm, residual=residual, act=a, batch=32)
    doc = p.to_json()
    json.dumps(doc, allow_nan=False)
    layer = p.layer_json(2)
    assert (layer["normed_std"] is None) == (norm == "none")
    assert (layer["out_std"] is None) == (residual == "none")
    assert (layer["grad_out_std"] is None) == (residual == "none")
    assert np.isfinite(p.post_std).all() and np.isfinite(p.grad_pre_std).all()
    lines = p.diagnostics.lines()
    text = explain(parse_spec(arch="64x5", norm=norm, residual=residual, act=a, batch=32), p).to_text()
    if norm == "none" and residual == "none":
        assert "block" not in doc["diagnostics"]  # a plain stack's JSON is as before
        return
    assert doc["diagnostics"]["block"] and doc["diagnostics"]["block_lines"] == lines
    assert np.isnan(p.pre_std_lo).all() and np.isnan(p.post_std_hi).all()
    assert p.band_reason.startswith("no finite-width band for ")
    assert lines[0].startswith("chi_1")  # the app's panel adds its own chi_1 phase line otherwise
    if residual != "none":
        assert p.diagnostics.phase == "n/a" and "do not apply" in lines[0]
        assert not any(w in " ".join(lines) for w in ("ordered", "chaotic"))
    assert "No finite-width band" in text


def test_explain_batchnorm_contrast_with_the_runs_numbers():
    spec = parse_spec(arch="1024x51", norm="batchnorm", batch=256)
    p = predict(spec)
    text = explain(spec, p).to_text()
    assert "Forward perfectly normalised; gradients grow by 1.4717 per layer toward the input" in text
    assert "pi/(pi-1) = 1.4669" in text
    ratio = (p.grad_std[0] / p.grad_std[-1]) ** 2  # 49 blocks at 1.4717 and block 1's own factor
    assert 1.5e8 < ratio < 2.5e8
    assert f"x{fmt_num(ratio, 3)} in variance" in text.replace("\n", " ")


def test_explain_residual_recursion_with_p_L():
    spec = parse_spec(arch="512x51", residual=f"plain(alpha={1 / math.sqrt(50)!r})")
    text = explain(spec).to_text().replace("\n", " ")
    assert "p^L = 2.6916" in text and "(1 + 1/L)^L" in text
    text = explain(parse_spec(residual="rezero")).to_text().replace("\n", " ")
    assert "every block is the identity" in text


# --- against a torch simulation of the block ----------------------------------------------------------


def _simulate(n, B, L, a, norm, alpha=None, seed=0):
    """The block of docs/formulas.md 16 in torch (float64): per-block stds of grad (and out, grad_out)."""
    import torch  # the test needs torch; the theory itself never imports it

    g = torch.Generator().manual_seed(seed)
    phi = {"relu": torch.relu, "tanh": torch.tanh}[a]
    gain = {"relu": math.sqrt(2), "tanh": 5 / 3}[a]
    x = torch.randn(B, n, generator=g, dtype=torch.float64, requires_grad=True)
    posts, outs, cur = [], [], x
    for _ in range(L):
        h = cur @ (torch.randn(n, n, generator=g, dtype=torch.float64) * (gain / math.sqrt(n))).T
        if norm == "batchnorm":
            h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5)
        elif norm == "layernorm":
            h = (h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True) + 1e-5)
        post = phi(h)
        post.retain_grad()
        posts.append(post)
        if alpha is not None:
            cur = cur + alpha * post @ (torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)).T
            cur.retain_grad()
            outs.append(cur)
        else:
            cur = post
    (cur * torch.randn(B, n, generator=g, dtype=torch.float64)).sum().backward()
    grad = np.array([t.grad.std(unbiased=False).item() for t in posts])
    out = np.array([t.std(unbiased=False).item() for t in outs])
    grad_out = np.array([t.grad.std(unbiased=False).item() for t in outs])
    return grad, out, grad_out


def _rate(grad, lo, hi):
    """The per-block growth of the gradient variance toward the input, fitted over blocks lo..hi-1."""
    ls = np.arange(lo, hi)
    return math.exp(-np.polyfit(ls, np.log(grad[lo:hi] ** 2), 1)[0])


def test_batchnorm_relu_rate_matches_a_torch_simulation():
    # width 1024 = 8 x batch 128, 12 blocks, one seed: over 5 seeds the fitted rate spread by 0.2%, and the
    # line sat 0.1-0.2% above the mean (docs/formulas.md 16.2); 1% is 4 such spreads plus that gap (a
    # plain relu stack or layernorm would give 1, no norm's rate for relu is within 30%)
    n, B, L = 1024, 128, 12
    grad, _, _ = _simulate(n, B, L, "relu", "batchnorm")
    p = P(arch=f"{n}x{L + 1}", norm="batchnorm", batch=B)
    assert _rate(grad, 1, L - 1) == pytest.approx(p.chi1[5], rel=0.01)
    assert p.chi1[5] == pytest.approx(1.4765, abs=1e-4)


def test_layernorm_tanh_rate_matches_a_torch_simulation():
    # batch 8: the layernorm factor does not depend on the batch; O(1/width) = 0.2% at width 512, plus the
    # seed spread of a 10-block fit (0.3% over seeds, docs/formulas.md 16.2): 1.5%
    n, B, L = 512, 8, 12
    grad, _, _ = _simulate(n, B, L, "tanh", "layernorm")
    assert _rate(grad, 1, L - 1) == pytest.approx(TANH_RATE, rel=0.015)


def test_residual_relu_matches_a_torch_simulation():
    # measured over 6 seeds at width 512, batch 64, 20 blocks, alpha = 1/sqrt(20): p^L = 2.656 +- 0.079 (3%:
    # each block's branch scale is one draw of W and V, shared by the batch) against 2.6533, and the
    # gradient-variance ratio block 1 / block L 2.543 +- 0.021 (0.8%) against 1.05^19 = 2.527. Tolerances
    # of about 3.3 such sds: 10% and 3% (the wrong sigma_v^2 = 2 would give 6.7, alpha^2/2 per block 1.63)
    n, B, L = 512, 64, 20
    alpha = 1 / math.sqrt(L)
    _, out, grad_out = _simulate(n, B, L, "relu", None, alpha=alpha)
    p = P(arch=f"{n}x{L + 1}", residual=f"plain(alpha={alpha!r})")
    assert out[-1] ** 2 == pytest.approx(p.out_std[-1] ** 2, rel=0.10)
    assert (grad_out[0] / grad_out[-1]) ** 2 == pytest.approx((p.grad_out_std[0] / p.grad_out_std[-1]) ** 2,
                                                               rel=0.03)
