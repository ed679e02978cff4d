"""Measured (engine.run, torch on CPU) against predicted, with tolerances from theory, not tuned.

ReLU family: >= 8 seeds; the seed average of std^2 must sit within 3 sqrt((prod(1 + 5/n_j) - 1)/seeds)
of the prediction (docs/formulas.md 12.1). Contracting activations: 2% on a single seed at width >= 512
(docs/formulas.md 12.1), or 3 band widths where our band is wider. Runs are seeded, so these are
deterministic on a given machine.
"""

import math

import numpy as np
import pytest

pytest.importorskip("torch")

from initscope import engine  # noqa: E402
from initscope.engine.spec import parse_spec  # noqa: E402
from initscope.engine.theory import predict  # noqa: E402
from initscope.engine.theory.band import relu_moment_ratio  # noqa: E402


def run(**kw):
    spec = parse_spec(device="cpu", dtype="float32", **kw)
    return spec, engine.run(spec), predict(spec)


def relu_tolerance(widths, seeds):
    return 3 * math.sqrt((relu_moment_ratio(widths) - 1) / seeds)


@pytest.mark.parametrize("act, init", [("relu", "kaiming_normal"), ("leaky_relu(a=0.2)", "kaiming_normal"),
                                       ("relu", "xavier_normal")])
def test_relu_family_seed_average(act, init):
    spec, r, p = run(arch="256x7", batch=512, trials=8, grad="false", act=act, init=init)
    tol = relu_tolerance(spec.fan_out, spec.trials)
    m2 = (r.per_trial("pre", "std") ** 2).mean(axis=0)
    np.testing.assert_allclose(m2 / p.pre_std**2, 1.0, atol=tol)
    post = (r.per_trial("post", "std") ** 2).mean(axis=0)
    np.testing.assert_allclose(post / p.post_std**2, 1.0, atol=tol)
    np.testing.assert_allclose(r.headline("post", "mean") / p.post_mean, 1.0, atol=tol)
    # the band is calibrated: the spread over seeds of std(pre) at the last block is within a factor
    # ~2.5 of the predicted one-sigma band (8 seeds estimate a std to about +-25%)
    spread = r.per_trial("pre", "std")[:, -1].std(ddof=1) / p.pre_std[-1]
    band = p.pre_std_hi[-1] / p.pre_std[-1] - 1
    assert band / 2.5 < spread < band * 2.5


def test_he_relu_gradients():
    spec, r, p = run(arch="256x5", batch=256, trials=8)
    tol = relu_tolerance(spec.fan_out, spec.trials)
    g2 = (r.per_trial("grad_pre", "std") ** 2).mean(axis=0)
    np.testing.assert_allclose(g2 / p.grad_pre_std**2, 1.0, atol=tol)
    g2 = (r.per_trial("grad", "std") ** 2).mean(axis=0)
    np.testing.assert_allclose(g2 / p.grad_std**2, 1.0, atol=tol)


@pytest.mark.parametrize("act, init, bias", [("tanh", "xavier_normal", "zeros"),
                                             ("tanh", "xavier_normal(gain=1.6666666666666667)", "zeros"),
                                             ("selu", "lecun_normal", "zeros"), ("identity", "orthogonal", "zeros"),
                                             ("tanh", "xavier_normal", "const(value=0.3)"),
                                             ("gelu", "kaiming_normal", "normal(std=0.2)")])
def test_contracting_activations_single_seed(act, init, bias):
    spec, r, p = run(arch="512x9", batch=1024, act=act, init=init, bias=bias)
    for got, want, band in ((r.headline("pre", "std"), p.pre_std, p.pre_std_hi / p.pre_std - 1),
                            (r.headline("post", "std"), p.post_std, p.post_std_hi / p.post_std - 1)):
        tol = np.maximum(0.02, 3 * band)
        np.testing.assert_array_less(np.abs(got / want - 1), tol)
    # pooled pre mean: per-unit offsets do not average over the batch, only over the n units:
    # 0 +- std * sqrt((c + 1/batch) / n), c the correlation of two inputs' pre-activations (docs/formulas.md 12.1)
    mean_tol = 3 * p.pre_std * np.sqrt((np.clip(p.corr, 0, 1) + 1 / spec.batch) / np.array(spec.fan_out))
    np.testing.assert_array_less(np.abs(r.headline("pre", "mean") - p.pre_mean), mean_tol)


def test_torch_default_bias_floor():
    spec, r, p = run(arch="256x9", batch=512, trials=8, grad="false", init="torch_default")
    tol = relu_tolerance(spec.fan_out, spec.trials)
    m2 = (r.per_trial("pre", "std") ** 2).mean(axis=0)
    np.testing.assert_allclose(m2 / p.pre_std**2, 1.0, atol=tol)
    assert p.pre_std[-1] == pytest.approx(math.sqrt(2 / (5 * 256)), rel=0.01)


def test_general_relu_sub_and_clamp():
    spec, r, p = run(arch="256x7", batch=512, trials=8, grad="false",
                     act="general_relu(leak=0.1, sub=0.4, maxv=1.5)", init="kaiming_normal")
    tol = relu_tolerance(spec.fan_out, spec.trials)
    np.testing.assert_allclose((r.per_trial("pre", "std") ** 2).mean(axis=0) / p.pre_std**2, 1.0, atol=tol)
    np.testing.assert_array_less(np.abs(r.headline("post", "mean") - p.post_mean), tol * p.post_std)


def test_lsuv_hits_its_target():
    spec, r, p = run(arch="256x6", batch=512, init="lsuv(target=1, tol=0.05)", act="tanh", grad="false")
    got = r.headline("pre", "std")
    assert np.all((got >= p.pre_std_lo - 1e-6) & (got <= p.pre_std_hi + 1e-6))


def test_file_data_uses_the_measured_second_moment(tmp_path):
    x = np.random.default_rng(1).uniform(0, 2, size=(512, 256)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    spec = parse_spec(arch="256x5", batch=512, data=f"file(path={path})", device="cpu", act="tanh",
                      init="xavier_normal", grad="false")
    r = engine.run(spec)
    assert not predict(spec).ok
    bare = predict(spec, data_mean=r.data_mean, data_second_moment=r.data_second_moment)
    assert bare.ok and np.isnan(bare.pre_std_hi).all() and "kernel" in bare.band_reason  # rows unknown: no band
    p = predict(spec, data_mean=r.data_mean, data_second_moment=r.data_second_moment, data_kernel=r.data_kernel)
    np.testing.assert_array_equal(p.pre_std_hi, r.theory.pre_std_hi)  # what engine.run attaches
    assert p.ok and p.input_second_moment == pytest.approx(4 / 3, rel=0.01)
    # inputs with mean 1 are strongly correlated (c = 0.75): the band, not 2%, sets the tolerance
    np.testing.assert_array_less(np.abs(r.headline("pre", "std") / p.pre_std - 1),
                                 np.maximum(0.02, 3 * (p.pre_std_hi / p.pre_std - 1)))
