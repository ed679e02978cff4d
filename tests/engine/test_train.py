"""Training (engine/train.py, engine/trainspec.py, engine/labelled.py): one engine with `run`, closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from initscope.engine import run
from initscope.engine.errors import SpecError
from initscope.engine.labelled import load_labelled
from initscope.engine.spec import parse_spec
from initscope.engine.train import _Trainer, compare, train
from initscope.engine.trainspec import parse_train


def _small(**kw):
    base = dict(arch="64-32x3", device="cpu", steps="6", every="1", trials="1")
    base.update(kw)
    return parse_train(**base)


@pytest.mark.parametrize("extra", [{}, {"norm": "layernorm"}, {"residual": "plain(alpha=0.5)", "arch": "64-64x3"},
                                   {"norm": "batchnorm", "act": "tanh"}, {"act": "identity"},
                                   {"act": "leaky_relu(a=0.1)"}, {"act": "tanh", "arch": "64-256x24"}])
def test_step0_forward_statistics_equal_run(tmp_path, extra):
    """Step 0 of training is the runner's block step on the first minibatch with the parameters drawn from the
    same stream (seed + t, W, b, V per block): `initscope run` on that minibatch (file data, which draws
    nothing from the generator) must give the same forward statistics and histograms, bit for bit."""
    spec = _small(seed="3", **extra)
    res = train(spec)
    tr = _Trainer(spec, load_labelled(spec), None, None)
    rows = tr.xtr[tr.batches(0)[0]].double().numpy()
    path = tmp_path / "mb.npy"
    np.save(path, rows)
    texts = {k: v for k, v in spec.body.to_text().items() if k not in ("data", "batch")}
    ref = run(parse_spec(**texts, data=f"file(path={path})", batch="64"))
    for name in ("pre", "normed", "post", "out"):
        if name in ref.stats:
            np.testing.assert_array_equal(res.stats[name][0, 0], ref.stats[name][0], err_msg=name)
            np.testing.assert_array_equal(res.hist[name][0, 0], ref.hist[name][0], err_msg=name)
            np.testing.assert_array_equal(res.edges[name], ref.edges(name))


def test_update_ratio_scales_with_lr():
    """SGD without momentum: the first update is -lr * grad(W0) on the same minibatch from the same W0, so
    log10(std(dW)/std(W)) = log10(lr) + log10(std(grad)/std(W0)): two learning rates differ by log10(lr2/lr1)
    exactly (float32 rounding of lr * g: ~1e-7 relative, so 1e-5 in log10 is ample)."""
    a = train(_small(optimizer="sgd(lr=0.01)", steps="1"))
    b = train(_small(optimizer="sgd(lr=0.1)", steps="1"))
    np.testing.assert_allclose(b.update_ratio["W"][0, 0] - a.update_ratio["W"][0, 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(b.update_ratio["readout"][0, 0] - a.update_ratio["readout"][0, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd(lr=0.01, momentum=0.9)", "sgd(lr=0.01, weight_decay=0.1)"])
def test_update_ratio_momentum_and_decay_first_step(optimizer):
    """The first SGD step with momentum is -lr g (the buffer starts at g), the same as plain SGD; weight decay
    adds wd W to g. So momentum gives plain SGD's ratio exactly, and decay a different (finite) one."""
    plain = train(_small(optimizer="sgd(lr=0.01)", steps="1"))
    other = train(_small(optimizer=optimizer, steps="1"))
    if "momentum" in optimizer:
        np.testing.assert_allclose(other.update_ratio["W"][0, 0], plain.update_ratio["W"][0, 0], atol=1e-6)
    else:
        assert np.all(np.isfinite(other.update_ratio["W"][0, 0]))
        assert not np.allclose(other.update_ratio["W"][0, 0], plain.update_ratio["W"][0, 0], atol=1e-6)


def test_adam_first_update_ratio():
    """Adam's first step: m_hat = g, v_hat = g^2, so dW = -lr g/(|g| + eps) = -lr sign(g) where |g| >> eps
    (tanh: no dead units, every g != 0), std(dW) = lr sqrt(1 - mean(sign g)^2) ~ lr. std(W0) of
    kaiming_normal with tanh's gain 5/3 is (5/3)/sqrt(fan_in) up to the sampling error of a std over
    n_in n_out entries (1/sqrt(2 n) = 1.6% at 64 x 32, 0.007 in log10). So the ratio is
    log10(lr sqrt(fan_in) / (5/3)) within 0.03 (the sign mean's sqrt(1 - m^2) stays above 0.98 for |m| < 0.2)."""
    lr = 1e-3
    r = train(_small(optimizer=f"adam(lr={lr})", steps="1", act="tanh"))
    fan_in = np.array([64, 32, 32])
    np.testing.assert_allclose(r.update_ratio["W"][0, 0], np.log10(lr * np.sqrt(fan_in) / (5 / 3)), atol=0.03)


def test_first_loss_between_jensen_bounds():
    """The readout W_o ~ N(0, 1/n_L), b_o = 0: given x^L, the logits of example i are N(0, |x_i|^2/n_L) per
    class, so the expected cross-entropy E[logsumexp(z) - z_y] = E[logsumexp(z)] lies between log K (logsumexp
    >= log K + mean z) and log E[sum exp z] = log K + s^2/2 (Jensen), s^2 = the mean of |x_i|^2/n_L = the
    last post's rms^2. One minibatch and one readout draw fluctuate around it: 0.3 of slack."""
    for seed in range(3):
        r = train(_small(steps="1", seed=str(seed)))
        s2 = r.stats["post"][0, 0, -1, 2] ** 2
        assert math.log(10) - 0.3 < r.loss[0, 0] < math.log(10) + s2 / 2 + 0.3


def test_extra_fractions_relu_post():
    """A ReLU's post is 0 on about half the entries (pre symmetric about 0 at init), so the one-sided
    fraction x <= 0.05 is >= the zero fraction; the two-sided |x| <= 0.05 is <= the one-sided one (the post
    is never negative, so they are equal)."""
    r = train(_small(steps="1"))
    near, low = r.extra["post"][0, 0, :, 0], r.extra["post"][0, 0, :, 1]
    zero = r.stats["post"][0, 0, :, 5]
    np.testing.assert_array_equal(near, low)
    assert np.all(low >= zero) and np.all(np.isnan(r.extra["post"][0, 0, :, 2]))


def test_tanh_saturation_counted():
    r = train(_small(steps="1", act="tanh", init="kaiming_normal(gain=4)"))
    sat = r.extra["post"][0, 0, :, 2]
    assert np.all((sat > 0.3) & (sat <= 1.0))  # gain 4: pre std ~4, P(|tanh(h)| > 0.97) = P(|h| > 2.09) ~ 0.6


def test_divergence_is_a_result():
    r = train(_small(optimizer="sgd(lr=1e30)", steps="20", act="relu"))
    assert r.diverged[0] is not None
    step, block = r.diverged[0]
    assert 0 <= step < 20 and 0 <= block <= 3
    assert np.isnan(r.evals["test_acc"][0, -1]) and r.notes


def test_trials_and_compare():
    a = train(_small(trials="2", steps="3"))
    m, s = a.headline("test_acc")
    assert 0.0 <= m <= 1.0 and s >= 0.0
    d, spread, exceeds = compare(a, a)
    assert d == 0.0 and not exceeds


def test_teacher_any_width():
    r = train(parse_train(arch="20-40x2", data="teacher(samples=200, classes=3)", device="cpu", steps="3"))
    assert r.classes == 3 and r.split == (160, 40)


def test_labels_that_do_not_fit(tmp_path):
    x = np.zeros((10, 4))
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(9))
    with pytest.raises(SpecError, match="9 labels for 10 input rows"):
        load_labelled(parse_train(arch="4-8", data=f"file(path={tmp_path / 'd.npz'})", batch="2"))
    np.savez(tmp_path / "e.npz", x=x, y=np.full(10, 0.5))
    with pytest.raises(SpecError, match="whole numbers"):
        load_labelled(parse_train(arch="4-8", data=f"file(path={tmp_path / 'e.npz'})", batch="2"))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((10, 4)))
    np.save(tmp_path / "y.npy", np.arange(10) % 2)
    d = load_labelled(parse_train(arch="4-8", data=f"file(path={tmp_path / 'x.npy'}, labels={tmp_path / 'y.npy'})",
                                  batch="2"))
    assert d.classes == 2 and len(d.y_train) == 8
    # standardized with the training split's global mean and std
    assert abs(d.x_train.mean()) < 1e-12 and abs(d.x_train.std() - 1) < 1e-12


def test_digits_split_and_standardization():
    d = load_labelled(parse_train())
    assert d.x_train.shape == (1438, 64) and d.x_test.shape == (359, 64) and d.classes == 10
    assert abs(d.x_train.mean()) < 1e-12 and abs(d.x_train.std() - 1) < 1e-12


@pytest.mark.parametrize(("texts", "field"), [
    ({"steps": "0"}, "steps"), ({"optimizer": "sgd(lr=-1)"}, "optimizer sgd: parameter lr"),
    ({"optimizer": "rmsprop"}, "optimizer"), ({"every": "x"}, "every"), ({"data": "gaussian"}, "data"),
    ({"arch": "10-10"}, "arch"), ({"optimizer": "adam(beta1=1)"}, "optimizer adam: parameter beta1"),
])
def test_bad_values_one_sentence(texts, field):
    with pytest.raises(SpecError) as e:
        parse_train(**texts)
    assert e.value.field == field and "\n" not in str(e.value)


def test_every_default_at_most_200_points():
    s = parse_train(steps="1000")
    assert s.every == 5 and len(s.record_steps()) == 201  # 0, 5, ..., 995 and the last step, 999
    assert parse_train().record_steps() == list(range(100))


def test_adam_runs():
    r = train(_small(optimizer="adam(lr=0.001)", steps="2"))
    assert np.all(np.isfinite(r.loss))
    assert torch.isfinite(torch.tensor(r.update_ratio["W"])).all()


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "identity"])
def test_forward_counts_equal_direct_counts(act):
    """engine/stepstats.py counts a group of blocks at once (the [k, n] rows FastStats hands over, 0/1 floats,
    row sums): the counts must be the integers a direct count gives, blocks of different widths in separate
    groups, and the rows must be left as they were (FastStats owns them). An identity's post is its pre."""
    from initscope.engine.stats import POST, PRE
    from initscope.engine.stepstats import BOUNDS, FORWARD_SLOTS, ForwardCounts

    g = torch.Generator().manual_seed(0)
    derive = {"relu": "relu", "identity": "identity"}.get(act, "")
    counts = ForwardCounts(3, act, derive, PRE, torch.device("cpu"))
    fn = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda t: t}[act]
    seen = []
    for layers, width in (((0, 1), 16), ((2,), 24)):
        pre = torch.randn(len(layers), 8 * width, generator=g) * 0.1
        post = fn(pre * 30)
        index = torch.tensor(layers)
        for slot, x in ((PRE, pre), (POST, post)):
            if slot == POST and derive == "identity":
                continue  # FastStats does not measure an identity's post
            kept = x.clone()
            counts(slot, index, x, torch.empty_like(x))
            assert torch.equal(x, kept)
            seen += [(layer, slot, x[i].numpy()) for i, layer in enumerate(layers)]
    got = counts.take().numpy()
    if derive == "identity":
        seen += [(layer, POST, x) for layer, slot, x in list(seen) if slot == PRE]
    for layer, slot, x in seen:
        k = FORWARD_SLOTS.index(slot)
        assert got[layer, k, 0] == np.sum(np.abs(x) <= 0.05)
        assert got[layer, k, 1] == np.sum(x <= 0.05)
        if slot == POST and act in BOUNDS:
            c, r = BOUNDS[act]
            assert got[layer, k, 2] == np.sum(np.abs(x - c) > 0.97 * r) > 0
        else:
            assert np.isnan(got[layer, k, 2])
    assert np.isnan(counts.take().numpy()).all()  # take() starts afresh
