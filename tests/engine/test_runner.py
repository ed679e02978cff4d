"""The runner against theory (docs/formulas.md sections 7 and 12), against autograd, and its contract:
reproducible, no crash on overflow, cancellable, flat memory in forward-only runs, clean errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from initscope.engine import Cancelled, RunError, SpecError, parse_spec, run
from initscope.engine import runner as runner_mod
from initscope.engine import stats as stats_mod
from initscope.engine.activations import get as get_act
from initscope.engine.bias import make_bias
from initscope.engine.device import check_memory, estimate_bytes
from initscope.engine.inits import init_weight
from initscope.engine.result import STAT_NAMES


def stat(result, tensor, name):
    return result.per_trial(tensor, name)


def finite_width_tol(widths, trials, sigmas=3.0):
    """docs/formulas.md 12.1 tolerance guidance: 3 sqrt((prod(1 + 5/n_j) - 1)/seeds) on seed-averaged std^2."""
    return sigmas * math.sqrt((np.prod([1 + 5 / n for n in widths]) - 1) / trials)


# ---- theory ---------------------------------------------------------------------------------------
def test_R2_he_relu_first_layer():
    # Layer 1 sees iid N(0,1) input, so pooled statistics fluctuate only by O(1/sqrt(fan_in*fan_out)):
    # relative SE of the std ~ sqrt(2/(1024*1024)) ~ 1.4e-3; 1% is ~7 SE.
    r = run(parse_spec(arch="1024-1024", batch="4096", grad="false", seed="0"))
    assert stat(r, "pre", "std")[0, 0] == pytest.approx(math.sqrt(2), rel=0.01)
    assert stat(r, "post", "mean")[0, 0] == pytest.approx(1 / math.sqrt(math.pi), rel=0.01)
    assert stat(r, "post", "std")[0, 0] == pytest.approx(math.sqrt(1 - 1 / math.pi), rel=0.01)
    assert stat(r, "post", "zero_frac")[0, 0] == pytest.approx(0.5, abs=0.01)
    assert stat(r, "pre", "mean")[0, 0] == pytest.approx(0.0, abs=0.01)
    assert r.weight[0, 0, 1] == pytest.approx(math.sqrt(2 / 1024), rel=0.01)
    assert r.data_second_moment == pytest.approx(1.0, abs=0.01)


def test_R3_he_relu_grad_pre_std_every_layer():
    # Backward from u ~ N(0,1) has no shared per-unit offsets (u is zero-mean and fresh), so the backward
    # std is preserved up to small finite-width noise: docs/formulas.md 12.1 lists 0.7092-0.7156 (<= 1.2%) at
    # width 1024, depth 10; at width 512 the noise is sqrt(2) larger, so 3% (~2.5x that) is the bound.
    r = run(parse_spec(arch="512-512x6", batch="1024", trials="2", seed="1"))
    gp = stat(r, "grad_pre", "std").mean(axis=0)
    assert np.allclose(gp, 1 / math.sqrt(2), rtol=0.03), gp
    assert np.allclose(stat(r, "grad", "std").mean(axis=0), 1.0, rtol=0.03)
    assert stat(r, "grad", "std")[:, -1] == pytest.approx([1.0, 1.0], rel=0.01)  # g^L = u


def test_R4_xavier_relu_halves_the_variance_per_layer():
    widths, trials = [1024] * 4, 4
    r = run(parse_spec(arch="1024-1024x5", init="xavier_normal", batch="1024", trials=str(trials), grad="false"))
    q = (stat(r, "pre", "std") ** 2).mean(axis=0)
    for layer in range(1, 5):
        tol = finite_width_tol(widths[:layer], trials)
        assert q[layer] / q[layer - 1] == pytest.approx(0.5, rel=max(tol, 0.01)), (layer, q)


def test_R6_R7_torch_default_shrinks_by_sqrt6():
    n, trials = 256, 4
    r = run(parse_spec(arch=f"{n}-{n}x4", init="torch_default", batch="1024", trials=str(trials)))
    q = (stat(r, "pre", "std") ** 2).mean(axis=0)
    pred = [1 / 3 + 1 / (3 * n)]  # q^1 = sigma_w^2 E[x^2] + sigma_b^2 with E[x^2] = 1
    for _ in range(3):
        pred.append(pred[-1] / 6 + 1 / (3 * n))  # ReLU halves the second moment: q/2 * 1/3 + 1/(3n)
    for layer in range(4):
        tol = finite_width_tol([n] * layer, trials) if layer else 0.02
        assert q[layer] == pytest.approx(pred[layer], rel=tol), (layer, q, pred)
    d = stat(r, "grad_pre", "std").mean(axis=0)
    ratios = d[:-1] / d[1:]
    assert np.allclose(ratios, math.sqrt(1 / 6), rtol=0.05), ratios  # R7, backward: no offsets, ~1%/layer noise


def test_lsuv_reaches_the_target_every_layer():
    spec = parse_spec(arch="64-128-96-96-96-80", init="lsuv(tol=0.05, max_iter=10)", act="tanh",
                      bias="normal(std=0.1)", batch="256", grad="false", trials="2")
    r = run(spec)
    assert np.all(np.abs(stat(r, "pre", "std") - 1.0) < 0.05)
    assert r.lsuv_iterations is not None and len(r.lsuv_iterations) == 5
    assert all(0 <= it <= 10 for it in r.lsuv_iterations)


def test_lsuv_max_iter_is_respected():
    r = run(parse_spec(arch="32-32x3", init="lsuv(tol=0.001, max_iter=1, target=3)", act="tanh",
                       bias="normal(std=1)", batch="64", grad="false"))
    assert all(it <= 1 for it in r.lsuv_iterations)


# ---- against autograd --------------------------------------------------------------------------------
def reference_stats(spec):
    """A plain autograd implementation with the same random stream: per-block tensors in float64."""
    gen = torch.Generator().manual_seed(spec.seed)
    x = torch.empty(spec.batch, spec.arch[0]).normal_(0.0, 1.0, generator=gen).double().requires_grad_()
    act = get_act(spec.act)
    hs, xs = [], []
    for n_in, n_out in zip(spec.arch[:-1], spec.arch[1:], strict=True):
        w = torch.empty(n_out, n_in)
        init_weight(w, spec.init, spec.act, gen)
        b = make_bias(spec.bias, n_in, n_out, device=torch.device("cpu"), dtype=torch.float32, generator=gen)
        h = F.linear(x, w.double(), None if b is None else b.double())
        h.retain_grad()
        x = act.fn(h)
        x.retain_grad()
        hs.append(h)
        xs.append(x)
    u = torch.empty(x.shape).normal_(0.0, 1.0, generator=gen).double()
    (x * u).sum().backward()
    return {"pre": hs, "post": xs, "grad": [t.grad for t in xs], "grad_pre": [t.grad for t in hs]}


def summarize(t: torch.Tensor) -> list[float]:
    v = t.detach().double().reshape(-1)
    return [v.mean().item(), v.std(correction=0).item(), v.pow(2).mean().sqrt().item(), v.min().item(),
            v.max().item(), (v == 0).double().mean().item(), 0.0]


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu", "general_relu(leak=0.1, sub=0.4, maxv=2)", "identity",
                                 "sigmoid"])
def test_statistics_equal_autograd(act):
    spec = parse_spec(arch="16-12-10-8", act=act, bias="normal(std=0.2)", init="xavier_normal", batch="7",
                      seed="5")
    r = run(spec)
    ref = reference_stats(spec)
    for tensor in ("pre", "post", "grad", "grad_pre"):
        for layer in range(3):
            expected = summarize(ref[tensor][layer])
            got = r.stats[tensor][0, layer]
            # float32 run vs float64 reference: relative 1e-5 plus an absolute floor for means near 0
            assert np.allclose(got, expected, rtol=1e-5, atol=1e-6), (tensor, layer, got, expected)


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("grad", ["false", "true"])
@pytest.mark.parametrize(("arch", "batch"), [("64-256x40", "64"), ("16-256-8-256-8", "600")])
def test_grouped_and_large_tensors_land_in_their_blocks(act, grad, arch, batch):
    # FastStats stacks small tensors and reduces them per group of blocks (engine/stats.py): 40 blocks of
    # 64 x 256 make two or three groups (one partial); 600 x 256 tensors take the one-by-one path between
    # small 600 x 8 ones. Every block's statistics must be its own.
    spec = parse_spec(arch=arch, act=act, init="xavier_normal", bias="normal(std=0.1)", batch=batch, seed="3",
                      grad=grad)
    r = run(spec)
    group = runner_mod._Run(spec, None, None).group_layers
    if arch.startswith("64"):
        assert 1 < group < spec.depth
    else:
        assert {int(batch) * w >= stats_mod.BATCH_BELOW for w in spec.arch[1:]} == {True, False}
    ref = reference_stats(spec)
    for tensor in r.stats:
        for layer in range(spec.depth):
            assert np.allclose(r.stats[tensor][0, layer], summarize(ref[tensor][layer]), rtol=1e-4, atol=1e-6), \
                (tensor, layer)


@pytest.mark.parametrize("grad", ["false", "true"])
@pytest.mark.parametrize(("derived", "measured"), [("relu", "general_relu(leak=0, sub=0)"),
                                                   ("identity", "leaky_relu(a=1)")])
def test_derived_post_statistics_and_histograms_equal_measured_ones(derived, measured, grad):
    # relu and identity derive their post (min, max, zeros, histogram) from the pre; general_relu(leak=0)
    # and leaky_relu(a=1) compute the same function but measure everything: same draws, same numbers
    common = dict(arch="32-48-40-24", init="normal(std=0.2)", bias="normal(std=0.3)", batch="300", seed="4",
                  grad=grad)
    a, b = run(parse_spec(act=derived, **common)), run(parse_spec(act=measured, **common))
    assert np.array_equal(a.hist_edges, b.hist_edges)
    for tensor in a.stats:
        assert np.allclose(a.stats[tensor], b.stats[tensor], rtol=1e-6, atol=1e-7), tensor
        assert np.array_equal(a.hist[tensor], b.hist[tensor]), tensor
    if derived == "relu":  # the comparison means something only if the post has zeros to place
        assert stat(a, "post", "zero_frac")[0].min() > 0.2


@pytest.mark.parametrize("arch", ["512-1-512", "8-1-8-1-8", "64-48-32x3-16"])
def test_forward_only_equals_the_forward_of_a_run_with_gradients(arch):
    # forward-only runs reuse buffers and views per shape (bottlenecks where n_out of one layer equals
    # n_in of another); runs with gradients allocate fresh tensors: the same draws, the same numbers
    common = dict(arch=arch, act="tanh", bias="normal(std=0.1)", batch="8", seed="6")
    fwd, both = run(parse_spec(grad="false", **common)), run(parse_spec(grad="true", **common))
    for tensor in ("pre", "post"):
        assert np.allclose(fwd.stats[tensor], both.stats[tensor], rtol=1e-6, atol=1e-7), tensor


def test_exact_mode_agrees_with_fast_mode(monkeypatch):
    spec = parse_spec(arch="64-48-32", act="relu", bias="normal(std=0.2)", batch="33", seed="2")
    fast = run(spec)
    monkeypatch.setattr(runner_mod._Run, "needs_exact", lambda self, host: True)
    exact = run(spec)
    for tensor in fast.stats:
        assert np.allclose(fast.stats[tensor], exact.stats[tensor], rtol=1e-5, atol=1e-7), tensor
        assert np.array_equal(fast.hist[tensor], exact.hist[tensor])
    assert exact.notes and "recomputed exactly" in exact.notes[-1]


def test_mean_far_from_zero_is_still_accurate():
    # sigmoid of a tiny pre-activation: post mean 0.5, std ~2.5e-3; the one-pass formula would lose it
    spec = parse_spec(arch="256-256x2", init="normal(std=0.0005)", act="sigmoid", batch="512", grad="false")
    r = run(spec)
    pre_std = stat(r, "pre", "std")[0]
    assert stat(r, "post", "std")[0, 0] == pytest.approx(pre_std[0] / 4, rel=1e-3)  # sigmoid'(0) = 1/4


# ---- overflow is a result ----------------------------------------------------------------------------
def test_exploding_run_reports_the_first_nonfinite_layer():
    r = run(parse_spec(arch="256-256x40", init="normal(std=1)", batch="64", grad="false"))
    first = r.first_nonfinite_layer()
    assert first is not None and 20 < first <= 40  # x11.3 per layer: float32 (3.4e38) overflows near layer 36
    assert stat(r, "pre", "nonfinite_frac")[0, -1] > 0
    assert np.isfinite(stat(r, "pre", "std")[0, : first - 1]).all()


def test_exploding_run_with_gradients_does_not_crash():
    # std grows by sqrt(256/2) ~ 11.3 per layer: 11.3^40 ~ 1e42 overflows float32 (3.4e38)
    r = run(parse_spec(arch="256-256x40", init="normal(std=1)", batch="16"))
    assert r.first_nonfinite_layer() is not None
    assert (stat(r, "grad", "nonfinite_frac")[0] > 0).any()


# ---- reproducibility, dtypes ---------------------------------------------------------------------------
def test_same_seed_same_stats_and_trials_differ():
    spec = parse_spec(arch="64-64x3", batch="32", trials="2", seed="9")
    a, b = run(spec), run(spec)
    for tensor in a.stats:
        assert np.array_equal(a.stats[tensor], b.stats[tensor])
        assert np.array_equal(a.hist[tensor], b.hist[tensor])
    assert not np.array_equal(a.stats["pre"][0], a.stats["pre"][1])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64"])
def test_low_and_high_precision_dtypes(dtype):
    r = run(parse_spec(arch="256-256x3", batch="256", dtype=dtype))
    assert r.dtype == dtype
    # bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 per value): layer 1 within 3%
    assert stat(r, "pre", "std")[0, 0] == pytest.approx(math.sqrt(2), rel=0.03)
    assert all(np.isfinite(r.stats[t]).all() for t in r.stats)


def test_result_layout():
    r = run(parse_spec(arch="20-30-10", batch="16", trials="3"))
    assert set(r.stats) == {"pre", "post", "grad", "grad_pre"}
    assert r.stats["pre"].shape == (3, 2, len(STAT_NAMES))
    assert r.weight.shape == (3, 2, 2)
    assert r.hist_edges.shape == (runner_mod.HIST_BINS + 1,)
    assert r.hist["post"].shape == (3, 2, runner_mod.HIST_BINS)
    assert r.hist["pre"][0, 0].sum() == r.hist_counted[0] == 16 * 30
    assert r.device == "cpu" and r.elapsed_s > 0
    fwd = run(parse_spec(arch="20-30-10", batch="16", grad="false"))
    assert set(fwd.stats) == {"pre", "post"} and not fwd.has_grad


def test_histogram_edges_and_counts():
    r = run(parse_spec(arch="64-64x3", batch="200", grad="false", init="kaiming_normal", bias="none"))
    edges = r.hist_edges
    rms1 = stat(r, "pre", "rms")[0, 0]
    assert edges[-1] == pytest.approx(-edges[0]) and edges[-1] == pytest.approx(runner_mod.HIST_RANGE * rms1, rel=1e-4)
    assert np.allclose(np.diff(edges), np.diff(edges)[0])
    # relu post: the zeros fill the bin starting at 0
    zero_bin = np.searchsorted(edges, 0.0, side="right") - 1
    assert r.hist["post"][0, 0, zero_bin] >= stat(r, "post", "zero_frac")[0, 0] * r.hist_counted[0] * 0.9


# ---- progress, cancellation, devices, memory ----------------------------------------------------------
def test_progress_called_once_per_layer_pass():
    calls = []
    run(parse_spec(arch="8-8x4", batch="4", trials="2"), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 16) for i in range(1, 17)]


def test_cancellation_raises_cancelled():
    seen = []

    def cancelled():
        seen.append(1)
        return len(seen) >= 3

    with pytest.raises(Cancelled):
        run(parse_spec(arch="8-8x10", batch="4", grad="false"), cancelled=cancelled)
    assert len(seen) == 3


def test_cancellation_during_the_backward_pass():
    seen = []

    def cancelled():
        seen.append(1)
        return len(seen) >= 6  # 4 forward layers, then the second backward layer

    with pytest.raises(Cancelled):
        run(parse_spec(arch="8-8x4", batch="4"), cancelled=cancelled)
    assert len(seen) == 6


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_one_sentence():
    with pytest.raises(SpecError) as e:
        run(parse_spec(arch="8-8", device="cuda"))
    assert str(e.value) == ("device: 'cuda' is not valid; this machine has no CUDA GPU "
                            "(torch.cuda.is_available() is False); use cpu or auto.")


def test_a_run_that_cannot_fit_is_refused_before_it_starts():
    spec = parse_spec(arch="65536-65536x4", batch="65536")
    assert estimate_bytes(spec) > 64 * 2**30
    with pytest.raises(RunError) as e:
        check_memory(spec, torch.device("cpu"))
    text = str(e.value)
    assert "GiB" in text and "reduce" in text and "\n" not in text
    with pytest.raises(RunError):
        run(spec)


def test_forward_estimate_is_flat_in_depth_and_grad_is_not():
    a = parse_spec(arch="512-512x10", batch="1024", grad="false")
    b = parse_spec(arch="512-512x200", batch="1024", grad="false")
    assert estimate_bytes(a) == estimate_bytes(b)
    assert estimate_bytes(b.with_changes(grad="true")) > 10 * estimate_bytes(a.with_changes(grad="true")) / 2


CHILD = """
import json, sys
from initscope.engine import parse_spec, run
run(parse_spec(arch=sys.argv[1], batch="2048", grad="false", bias="none"))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (pytest) across fork+exec
print(json.dumps(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_forward_only_memory_does_not_grow_with_depth():
    # one activation is 2048 x 512 x 4 B = 4 MiB; keeping every layer's would add ~4 MiB per layer
    def peak_kib(arch):
        out = subprocess.run([sys.executable, "-c", CHILD, arch], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    shallow, deep = peak_kib("512-512x4"), peak_kib("512-512x64")
    assert deep - shallow < 40 * 1024, (shallow, deep)  # 60 more layers kept would be ~240 MiB


def test_a_run_with_gradients_does_not_import_sympy():
    # x.backward(u) imports sympy through torch.fx on its first call (~0.5 s of every app start and CLI run)
    child = ("import sys; from initscope import engine; engine.run(engine.parse_spec(arch='8-8x2', batch='4', grad='true')); "
             "print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_counts_stay_exact_beyond_float32_integers(act, monkeypatch):
    # 17 x 986897 = 16777249 entries: odd and above 2^24, so not a float32 integer; no entry is 0
    spec = parse_spec(arch="1-986897", batch="17", act=act, bias="none", grad="false", seed="1")
    n = spec.batch * spec.arch[1]
    assert n > stats_mod.EXACT_COUNT and n % 2 == 1
    fast = run(spec)
    monkeypatch.setattr(runner_mod._Run, "needs_exact", lambda self, host: True)
    exact = run(spec)  # float64 throughout, counts from (x != 0).sum()
    for tensor in ("pre", "post"):
        assert stat(fast, tensor, "zero_frac")[0, 0] == stat(exact, tensor, "zero_frac")[0, 0], tensor
    assert stat(fast, "pre", "zero_frac")[0, 0] == 0.0
