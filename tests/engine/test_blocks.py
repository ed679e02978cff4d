"""Norm and residual blocks in the runner: every tensor (pre, normed, post, out, grad, grad_pre, grad_out)
against a network built independently with torch ops from the same random stream, the invariants a norm or
a residual kind fixes exactly, the histograms, flat forward-only memory for every block kind, and the
command line's answer to a residual with unequal widths."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from initscope.engine import parse_spec, run
from initscope.engine import runner as runner_mod
from initscope.engine.activations import get as get_act
from initscope.engine.bias import make_bias
from initscope.engine.inits import init_weight
from initscope.engine.result import TENSORS, tensors_of
from initscope.engine.textforms import Call
from initscope.tui.cli import main


def stat(result, tensor, name):
    return result.per_trial(tensor, name)


# ---- an independent network from the same random stream ---------------------------------------------------
def _norm64(name: str, eps: float, h: torch.Tensor) -> torch.Tensor:
    """The norms written out (float64): batchnorm per unit over the batch, layernorm per example over the
    units (both with the biased variance), rmsnorm h / sqrt(mean_units h^2 + eps)."""
    if name == "batchnorm":
        mean, var = h.mean(0, keepdim=True), h.var(0, correction=0, keepdim=True)
        return (h - mean) / torch.sqrt(var + eps)
    if name == "layernorm":
        mean, var = h.mean(1, keepdim=True), h.var(1, correction=0, keepdim=True)
        return (h - mean) / torch.sqrt(var + eps)
    if name == "rmsnorm":
        return h / torch.sqrt(h.pow(2).mean(1, keepdim=True) + eps)
    assert name == "none"
    return h


def reference(spec):
    """The run's network rebuilt in float64 with plain torch ops and autograd: the random stream is the input
    batch, then per block W, b and V (V at the scheme's gain 1; not drawn for fixup, V = 0), then u; fixup
    multiplies W by L^(-1/2); x^l = x^(l-1) + alpha V a with a residual. Returns every tensor per block."""
    gen = torch.Generator().manual_seed(spec.seed)
    x = torch.empty(spec.batch, spec.arch[0]).normal_(0.0, 1.0, generator=gen).double()
    act = get_act(spec.act)
    res = spec.residual.name
    alpha = {"none": None, "plain": spec.residual.get("alpha"), "rezero": 0.0, "fixup": 1.0}[res]
    v_scheme = Call(spec.init.name, tuple((k, 1.0 if k == "gain" else v) for k, v in spec.init.params))
    eps = spec.norm.get("eps")
    out = {t: [] for t in TENSORS}
    for n_in, n_out in zip(spec.arch[:-1], spec.arch[1:], strict=True):
        w = torch.empty(n_out, n_in)
        init_weight(w, spec.init, spec.act, gen)
        b = make_bias(spec.bias, n_in, n_out, device=torch.device("cpu"), dtype=torch.float32, generator=gen)
        if res == "fixup":
            w = w * spec.depth ** -0.5
        v = torch.zeros(n_out, n_out)
        if res in ("plain", "rezero"):
            init_weight(v, v_scheme, spec.act, gen)
        h = F.linear(x, w.double(), None if b is None else b.double())
        if not h.requires_grad:
            h.requires_grad_()
        n = _norm64(spec.norm.name, eps, h)
        a = act.fn(n)
        if alpha is not None:
            x = x + alpha * (a @ v.double().t())
        else:
            x = a
        for t, name in ((h, "pre"), (n, "normed"), (a, "post"), (x, "out")):
            t.retain_grad()
            out[name].append(t)
    u = torch.empty(x.shape).normal_(0.0, 1.0, generator=gen).double()
    (x * u).sum().backward()
    out["grad"] = [t.grad for t in out["post"]]
    out["grad_pre"] = [t.grad for t in out["pre"]]
    out["grad_out"] = [t.grad for t in out["out"]]
    return out


def summarize(t: torch.Tensor) -> list[float]:
    v = t.detach().double().reshape(-1)
    return [v.mean().item(), v.std(correction=0).item(), v.pow(2).mean().sqrt().item(), v.min().item(),
            v.max().item(), (v == 0).double().mean().item(), 0.0]


BLOCKS = [
    ("batchnorm", "none", "relu"),
    ("layernorm", "none", "tanh"),
    ("rmsnorm", "none", "gelu"),
    ("none", "plain(alpha=0.7)", "relu"),
    ("none", "rezero", "tanh"),
    ("none", "fixup", "relu"),
    ("batchnorm", "plain", "identity"),
    ("layernorm", "plain(alpha=0.3)", "general_relu(leak=0.1, sub=0.4, maxv=2)"),
    ("rmsnorm", "fixup", "sigmoid"),
]


@pytest.mark.parametrize(("norm", "residual", "act"), BLOCKS)
def test_every_tensor_equals_the_independent_network(norm, residual, act):
    spec = parse_spec(arch="16x4", norm=norm, residual=residual, act=act, bias="normal(std=0.2)",
                      init="xavier_normal", batch="9", seed="5")
    r = run(spec)
    assert r.tensors == tensors_of(spec)
    ref = reference(spec)
    for tensor in r.tensors:
        for layer in range(spec.depth):
            expected = summarize(ref[tensor][layer])
            got = r.stats[tensor][0, layer]
            # float32 run vs float64 reference: each op rounds at 2^-24 ~ 6e-8 relative; through 4 blocks,
            # a norm's division by a batch std of 9 values and the backward, 1e-5 relative (plus 1e-6 absolute
            # for means near 0) is ~100x that and still far below any real mistake (a wrong eps, a missing
            # alpha, a wrong tensor are all >= 1e-3)
            assert np.allclose(got, expected, rtol=1e-5, atol=1e-6), (tensor, layer, got, expected)


@pytest.mark.parametrize("grad", ["false", "true"])
def test_deep_norm_residual_runs_land_in_their_blocks(grad):
    # pre, normed, post and out of 30 blocks of 64 x 256, stacked per kind and reduced in groups of blocks
    # (engine/stats.py; W staged every block with a norm): every block's statistics must be its own
    spec = parse_spec(arch="256x30", norm="batchnorm", residual="plain(alpha=0.2)", act="relu", batch="64",
                      seed="3", grad=grad)
    assert 1 < runner_mod._Run(spec, None, None).group_layers < spec.depth
    r = run(spec)
    ref = reference(spec)
    for tensor in ("pre", "normed", "post", "out"):
        for layer in range(spec.depth):
            assert np.allclose(r.stats[tensor][0, layer], summarize(ref[tensor][layer]), rtol=1e-4, atol=1e-6), \
                (tensor, layer)


# ---- what a norm or a residual fixes exactly --------------------------------------------------------------
def _units_var(h: torch.Tensor, dim: int) -> np.ndarray:
    return h.detach().var(dim, correction=0).numpy()


@pytest.mark.parametrize("eps", [1e-5, 1.0])
def test_batchnorm_normalises_every_unit_over_the_batch(eps):
    # per unit: mean 0, variance var_u/(var_u + eps) (eps inside the square root), so the pooled mean is 0
    # and the pooled std is sqrt(mean over units of var_u/(var_u + eps)); eps = 1 makes eps visible (~0.82)
    spec = parse_spec(arch="64x4", norm=f"batchnorm(eps={eps})", batch="128", seed="2")
    r = run(spec)
    ref = reference(spec)
    for layer in range(spec.depth):
        var = _units_var(ref["pre"][layer], 0)
        expected = math.sqrt(np.mean(var / (var + eps)))
        # float32: a unit's mean of 128 normalised values is exact to ~1e-7; pooled std to ~1e-6 relative
        assert stat(r, "normed", "mean")[0, layer] == pytest.approx(0.0, abs=1e-6)
        assert stat(r, "normed", "std")[0, layer] == pytest.approx(expected, rel=1e-5)
    if eps == 1.0:
        assert stat(r, "normed", "std")[0, 0] < 0.9


def test_layernorm_and_rmsnorm_normalise_every_example():
    eps = 0.5  # large, so that the eps term is visible
    ln = parse_spec(arch="48x3", norm=f"layernorm(eps={eps})", act="tanh", batch="40", seed="4")
    rms = parse_spec(arch="48x3", norm=f"rmsnorm(eps={eps})", act="tanh", batch="40", seed="4")
    r_ln, r_rms = run(ln), run(rms)
    ref_ln, ref_rms = reference(ln), reference(rms)
    for layer in range(ln.depth):
        var = _units_var(ref_ln["pre"][layer], 1)  # per example over the units
        assert stat(r_ln, "normed", "mean")[0, layer] == pytest.approx(0.0, abs=1e-6)
        assert stat(r_ln, "normed", "std")[0, layer] == pytest.approx(math.sqrt(np.mean(var / (var + eps))), rel=1e-5)
        ms = ref_rms["pre"][layer].detach().pow(2).mean(1).numpy()  # per example second moment
        assert stat(r_rms, "normed", "rms")[0, layer] == pytest.approx(math.sqrt(np.mean(ms / (ms + eps))), rel=1e-5)


@pytest.mark.parametrize("kind", ["rezero", "fixup"])
def test_rezero_and_fixup_blocks_are_the_identity(kind):
    # x^l = x^(l-1) + 0 * V a (rezero) or + V a with V = 0 (fixup): out is the input batch, bit for bit, at
    # every block; dLoss/da = alpha V^T g = 0, so grad and grad_pre are 0 and grad_out is u at every block
    spec = parse_spec(arch="32x5", residual=kind, batch="64", seed="7")
    assert spec.depth == 4
    r = run(spec)
    out = r.stats["out"][0]
    assert (out == out[0]).all()
    std_in = math.sqrt(r.data_second_moment - r.data_mean ** 2)
    assert stat(r, "out", "mean")[0, 0] == r.data_mean and stat(r, "out", "std")[0, 0] == std_in
    assert (stat(r, "grad", "std")[0] == 0).all() and (stat(r, "grad", "zero_frac")[0] == 1).all()
    assert (stat(r, "grad_pre", "std")[0] == 0).all()
    g = r.stats["grad_out"][0]
    assert (g == g[-1]).all()
    # the branch runs all the same: a ReLU's pre-activation of the input has std ~ sqrt(2) at block 1
    # (fixup: times L^(-1/2)); 32 x 64 entries give a few per cent of sampling error
    expected = math.sqrt(2) * (4 ** -0.5 if kind == "fixup" else 1.0)
    assert stat(r, "pre", "std")[0, 0] == pytest.approx(expected, rel=0.1)


def test_fixup_scales_the_first_weight_by_one_over_sqrt_depth():
    # block 1's W is the first draw after the input in both runs; fixup multiplies it by L^(-1/2)
    common = dict(arch="128x10", batch="16", seed="11", grad="false")  # 9 blocks: L^(-1/2) = 1/3
    plain, fixup = run(parse_spec(**common)), run(parse_spec(residual="fixup", **common))
    assert fixup.weight[0, 0, 1] == pytest.approx(plain.weight[0, 0, 1] / 3, rel=1e-6)
    assert stat(fixup, "pre", "std")[0, 0] == pytest.approx(stat(plain, "pre", "std")[0, 0] / 3, rel=1e-5)


def test_the_branch_weight_is_drawn_at_gain_1():
    # kaiming_normal's auto gain is sqrt(2) for W, 1 for V: Var[V] = 1/n, so with He W and a ReLU, block 1
    # adds E[relu(h)^2] = 1 (h ~ N(0, 2)) to the input's second moment 1: out std ~ sqrt(2); alpha scales it
    for alpha, expected in [(1.0, math.sqrt(2)), (0.5, math.sqrt(1.25))]:
        r = run(parse_spec(arch="512x2", residual=f"plain(alpha={alpha})", batch="512", grad="false", seed="1"))
        # 512 x 512 entries; the per-unit spread of W and V rows adds ~1/sqrt(512) = 4% to the pooled std's
        # relative error at most: 3% is about the 2-sigma bound of each
        assert stat(r, "out", "std")[0, 0] == pytest.approx(expected, rel=0.03)


# ---- the one block step ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("norm", "residual", "act"), BLOCKS)
def test_forward_only_equals_the_forward_of_a_run_with_gradients(norm, residual, act):
    common = dict(arch="24x4", norm=norm, residual=residual, act=act, bias="normal(std=0.1)", batch="12", seed="6")
    fwd, both = run(parse_spec(grad="false", **common)), run(parse_spec(grad="true", **common))
    for tensor in fwd.stats:
        assert np.allclose(fwd.stats[tensor], both.stats[tensor], rtol=1e-6, atol=1e-7), tensor
        assert np.array_equal(fwd.hist[tensor], both.hist[tensor]), tensor


@pytest.mark.parametrize("grad", ["false", "true"])
@pytest.mark.parametrize(("derived", "measured", "blocks"), [
    ("relu", "general_relu(leak=0, sub=0)", dict(norm="batchnorm")),
    ("relu", "general_relu(leak=0, sub=0)", dict(norm="layernorm", residual="plain")),
    ("identity", "leaky_relu(a=1)", dict(norm="rmsnorm", residual="plain(alpha=0.5)")),
])
def test_derived_post_follows_the_normed_tensor(derived, measured, blocks, grad):
    # relu and identity derive their post (min, max, zeros, histogram) from the tensor they are applied to,
    # the normed one after a norm; general_relu(leak=0) and leaky_relu(a=1) measure it: same numbers
    common = dict(arch="40x3", init="normal(std=0.2)", bias="normal(std=0.3)", batch="200", seed="4", grad=grad,
                  **blocks)
    a, b = run(parse_spec(act=derived, **common)), run(parse_spec(act=measured, **common))
    for tensor in a.stats:
        assert np.allclose(a.stats[tensor], b.stats[tensor], rtol=1e-6, atol=1e-7), tensor
        assert np.array_equal(a.hist[tensor], b.hist[tensor]), tensor
    assert a.tensor_edges.keys() == b.tensor_edges.keys()


def test_exact_statistics_agree_with_fast_ones_for_every_tensor(monkeypatch):
    spec = parse_spec(arch="48x3", norm="layernorm", residual="plain(alpha=0.5)", bias="normal(std=0.2)",
                      batch="33", seed="2")
    fast = run(spec)
    monkeypatch.setattr(runner_mod._Run, "needs_exact", lambda self, host: True)
    exact = run(spec)
    assert fast.tensors == exact.tensors == TENSORS
    for tensor in fast.stats:
        assert np.allclose(fast.stats[tensor], exact.stats[tensor], rtol=1e-5, atol=1e-7), tensor
        assert np.array_equal(fast.hist[tensor], exact.hist[tensor]), tensor


def test_an_exploding_residual_stream_is_a_result():
    # plain residual with normal(std=1) weights: the branch multiplies the stream's scale by ~sqrt(n/2) per
    # block, so float32 overflows within 40 blocks; out and the first non-finite block say where
    r = run(parse_spec(arch="256x40", init="normal(std=1)", residual="plain", batch="16", grad="false"))
    first = r.first_nonfinite_layer()
    assert first is not None and first < 40
    assert stat(r, "out", "nonfinite_frac")[0, -1] > 0


# ---- histograms -------------------------------------------------------------------------------------------
def test_normed_and_out_have_their_own_bins():
    # normal(std=1) weights at width 256 give std(h^1) ~ 16, but the normed tensor is ~N(0, 1): on the pre's
    # bins it would fill two bins; its own bins span 4 x rms(n^1) ~ 4, shared by the post (phi(n))
    r = run(parse_spec(arch="256x3", init="normal(std=1)", norm="batchnorm", residual="plain(alpha=0.1)",
                       batch="64", grad="false"))
    assert r.hist_edges[-1] == pytest.approx(runner_mod.HIST_RANGE * stat(r, "pre", "rms")[0, 0], rel=1e-4)
    normed = r.edges("normed")
    assert normed[-1] == pytest.approx(runner_mod.HIST_RANGE * stat(r, "normed", "rms")[0, 0], rel=1e-4)
    assert np.array_equal(r.edges("post"), normed) and set(r.tensor_edges) == {"normed", "post", "out"}
    assert r.edges("out")[-1] == pytest.approx(runner_mod.HIST_RANGE * stat(r, "out", "rms")[0, 0], rel=1e-4)
    assert (r.hist["normed"][0, 0] > 0).sum() > 10  # spread over the bins, not piled into two
    counted = r.hist_counted[0]
    for t in r.tensors:
        assert r.hist[t][0, 0].sum() == counted, t


# ---- memory -----------------------------------------------------------------------------------------------
CHILD = """
import json, sys
from initscope.engine import parse_spec, run
run(parse_spec(arch=sys.argv[1], batch="2048", grad="false", bias="none", norm=sys.argv[2], residual=sys.argv[3]))
print(json.dumps(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize(("norm", "residual"), [("batchnorm", "none"), ("layernorm", "plain"), ("rmsnorm", "fixup")])
def test_forward_only_memory_does_not_grow_with_depth(norm, residual):
    # one activation is 2048 x 512 x 4 B = 4 MiB; keeping a tensor per block would add >= 4 MiB per block
    def peak_kib(arch):
        out = subprocess.run([sys.executable, "-c", CHILD, arch, norm, residual], capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    shallow, deep = peak_kib("512x4"), peak_kib("512x64")
    assert deep - shallow < 40 * 1024, (shallow, deep)  # 60 more blocks kept would be >= 240 MiB


# ---- bad input --------------------------------------------------------------------------------------------
def test_batchnorm_on_a_batch_of_one_is_refused_in_one_sentence(capsys):
    code = main(["run", "--arch", "8-8", "--batch", "1", "--norm", "batchnorm"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == ("initscope: batch: '1' is not valid; batchnorm needs at least 2 examples per batch (it normalises "
                   "each unit over the batch).\n")


def test_a_residual_with_unequal_widths_exits_2_naming_the_block(capsys):
    code = main(["run", "--arch", "32-32-16-16", "--residual", "plain"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("initscope: residual: 'plain' is not valid; block 2 maps 32 -> 16"), err
    assert err.count("\n") == 1 and "Traceback" not in err
