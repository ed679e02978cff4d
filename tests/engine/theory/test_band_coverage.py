"""The finite-width band is a one-sigma band: over many seeds it holds about two thirds of single networks.

For every activation family (docs/band.md), 48 seeds (the engine's trials) of small nets; at shallow and
deep blocks, for the pre and the post std, the share of seeds whose std lies inside [lo, hi]. For a
one-sigma band the share is about 68%; pooled over a family's cases, blocks and tensors it must lie in
[50%, 90%] (the issue's acceptance range). Each single (case, block, tensor) share of 48 seeds has a
binomial sd of about 7%: it must lie in [30%, 97%], more than 5 sd from 68% on the low side, which
catches a band that is wrong for one tensor or one block (the old band held 0-20% of digits seeds at
block 1). Seeded, so deterministic on a given machine.
"""

import numpy as np
import pytest

pytest.importorskip("torch")

from initscope import engine  # noqa: E402
from initscope.engine.spec import parse_spec  # noqa: E402

SEEDS = 48
WIDTH, DEPTH, BATCH = 128, 10, 128
BLOCKS = (1, 2, 5, 10)

# (act, init, bias, data) per family: zero and nonzero biases, Gaussian and uniform weights, i.i.d. and real data
FAMILIES = {
    "relu": [("relu", "kaiming_normal", "zeros", "gaussian"),
             ("relu", "kaiming_uniform", "normal(std=0.2)", "gaussian"),
             ("relu", "kaiming_normal", "zeros", "digits")],
    "leaky and general relu": [("leaky_relu(a=0.2)", "kaiming_normal", "const(value=0.1)", "gaussian"),
                               ("general_relu(leak=0.1, sub=0.4)", "kaiming_normal", "zeros", "gaussian"),
                               ("general_relu(sub=0.5)", "kaiming_normal", "zeros", "gaussian")],
    "tanh and sigmoid": [("tanh", "xavier_normal", "zeros", "gaussian"),
                         ("sigmoid", "xavier_normal", "zeros", "gaussian"),
                         ("tanh", "normal(std=0.15)", "normal(std=0.3)", "gaussian"),
                         ("tanh", "xavier_normal", "zeros", "digits")],
    "smooth": [("gelu", "kaiming_normal", "zeros", "gaussian"), ("silu", "kaiming_normal", "zeros", "gaussian"),
               ("elu", "kaiming_normal", "normal(std=0.1)", "gaussian"),
               ("softplus", "kaiming_normal", "zeros", "gaussian"), ("selu", "lecun_normal", "zeros", "gaussian")],
    "identity": [("identity", "lecun_normal", "zeros", "gaussian"),
                 ("identity", "xavier_uniform", "zeros", "uniform(low=0, high=1)")],
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def shares(act, init, bias, data) -> dict[tuple[int, str], float]:
    """{(block, tensor): share of seeds inside the band}."""
    n0 = 64 if data == "digits" else WIDTH
    spec = parse_spec(arch=f"{n0}-{WIDTH}x{DEPTH}", batch=BATCH, trials=SEEDS, grad="false", act=act, init=init,
                      bias=bias, data=data, device="cpu", dtype="float32", seed=7)
    r = engine.run(spec)
    p = r.theory
    out = {}
    for tensor in ("pre", "post"):
        got = r.per_trial(tensor, "std")
        lo, hi = getattr(p, f"{tensor}_std_lo"), getattr(p, f"{tensor}_std_hi")
        for b in BLOCKS:
            assert np.isfinite(lo[b - 1]) and np.isfinite(hi[b - 1]), (act, init, bias, data, tensor, b, p.band_reason)
            out[b, tensor] = float(np.mean((got[:, b - 1] >= lo[b - 1]) & (got[:, b - 1] <= hi[b - 1])))
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_band_holds_two_thirds_of_single_networks(family):
    pooled = []
    for case in FAMILIES[family]:
        cells = shares(*case)
        for (block, tensor), share in cells.items():
            assert 0.30 <= share <= 0.97, f"{case}, block {block}, {tensor} std: {share:.0%} of seeds in the band"
        pooled += list(cells.values())
    assert 0.50 <= np.mean(pooled) <= 0.90, f"{family}: {np.mean(pooled):.0%} of seeds in the band"


def test_lsuv_post_band_follows_whether_lsuv_rescaled():
    # LSUV starts from orthogonal weights and rescales a block only when its std(pre) misses the target by
    # tol or more: at block 1 (std 1 = target) it does not, so the post spreads as orthogonal weights make
    # it, inherited input noise included (a band that assumed a fixed pre held 33-54% of seeds there)
    pooled = []
    for act in ("relu", "tanh"):
        spec = parse_spec(arch=f"{WIDTH}-{WIDTH}x{DEPTH}", batch=BATCH, trials=SEEDS, grad="false", act=act,
                          init="lsuv", device="cpu", dtype="float32", seed=7)
        r = engine.run(spec)
        p = r.theory
        got = r.per_trial("post", "std")
        for b in BLOCKS:
            share = float(np.mean((got[:, b - 1] >= p.post_std_lo[b - 1]) & (got[:, b - 1] <= p.post_std_hi[b - 1])))
            assert 0.30 <= share <= 0.97, f"lsuv {act}, block {b}, post std: {share:.0%} of seeds in the band"
            pooled.append((b, share))
    first = np.mean([s for b, s in pooled if b == 1])
    assert 0.50 <= first <= 0.90, f"block 1: {first:.0%} of seeds in the band"
    assert 0.50 <= np.mean([s for _, s in pooled]) <= 0.90
