"""Init schemes against torch.nn.init: bit parity on the same generator state, PyTorch's own KS method
(scipy.stats.kstest, p > 1e-4, see docs/formulas.md section 13), exact bounds, orthogonality, and the
reference numbers G1-G8 and B1-B8 of docs/formulas.md section 12."""

from __future__ import annotations

import math

import pytest
import torch
from initscope.engine import inits
from initscope.engine.bias import init_bias, make_bias
from initscope.engine.catalog import ACTIVATIONS, INITS, activation_gain, resolve
from initscope.engine.errors import SpecError
from scipy import stats
from torch import nn
from torch.nn import init

P_MIN = 1e-4  # PyTorch's test_init.py threshold


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def draw(init_text: str, shape=(256, 512), act_text: str = "relu", seed: int = 0, dtype=torch.float32):
    w = torch.empty(shape, dtype=dtype)
    inits.init_weight(w, resolve("init", init_text), resolve("act", act_text), gen(seed))
    return w


def torch_draw(fn, shape=(256, 512), seed: int = 0, **kw):
    w = torch.empty(shape)
    fn(w, generator=gen(seed), **kw)
    return w


@pytest.mark.parametrize("name", list(INITS))
def test_every_catalog_scheme_has_an_implementation(name):
    w = draw(name, (8, 12))
    assert w.shape == (8, 12) and torch.isfinite(w).all()


# ---- bit parity with torch.nn.init (same generator state -> same bits) ---------------------------------
@pytest.mark.parametrize("ours, theirs, kw", [
    ("kaiming_normal", init.kaiming_normal_, dict(nonlinearity="relu")),
    ("kaiming_normal(mode=fan_out)", init.kaiming_normal_, dict(nonlinearity="relu", mode="fan_out")),
    ("kaiming_uniform", init.kaiming_uniform_, dict(nonlinearity="relu")),
    ("kaiming_uniform(mode=fan_out)", init.kaiming_uniform_, dict(nonlinearity="relu", mode="fan_out")),
    ("xavier_normal", init.xavier_normal_, {}),
    ("xavier_uniform(gain=1.5)", init.xavier_uniform_, dict(gain=1.5)),
    ("orthogonal(gain=2)", init.orthogonal_, dict(gain=2.0)),
    ("trunc_normal(std=0.5, a=-1, b=0.75)", init.trunc_normal_, dict(std=0.5, a=-1.0, b=0.75)),
    ("normal(std=0.3)", init.normal_, dict(std=0.3)),
    ("uniform(bound=0.2)", init.uniform_, dict(a=-0.2, b=0.2)),
    ("lecun_normal", init.kaiming_normal_, dict(nonlinearity="linear")),
    ("lecun_uniform", init.kaiming_uniform_, dict(nonlinearity="linear")),
    ("torch_default", init.kaiming_uniform_, dict(a=math.sqrt(5))),
])
def test_bit_parity_with_torch_nn_init(ours, theirs, kw):
    assert torch.equal(draw(ours), torch_draw(theirs, **kw))


@pytest.mark.parametrize("act, kw", [("tanh", dict(nonlinearity="tanh")),
                                     ("leaky_relu(a=0.2)", dict(a=0.2)),  # default nonlinearity leaky_relu
                                     ("sigmoid", dict(nonlinearity="sigmoid")),
                                     ("selu", dict(nonlinearity="selu"))])
def test_kaiming_auto_gain_matches_calculate_gain(act, kw):
    assert torch.equal(draw("kaiming_normal", act_text=act), torch_draw(init.kaiming_normal_, **kw))


def test_torch_default_equals_nn_linear_reset_parameters():
    torch.manual_seed(123)
    lin = nn.Linear(512, 256)
    g = gen(123)  # a fresh CPU generator seeded like torch.manual_seed gives the same stream
    w = torch.empty(256, 512)
    inits.init_weight(w, resolve("init", "torch_default"), resolve("act", "relu"), g)
    b = make_bias(resolve("bias", "torch_default"), 512, 256, device=torch.device("cpu"), dtype=torch.float32,
                  generator=g)
    assert torch.equal(w, lin.weight.detach()) and torch.equal(b, lin.bias.detach())


# ---- gains: G1-G8 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("act, expected", [
    ("tanh", 1.6666666666666667), ("relu", 1.4142135623730951), ("leaky_relu", 1.4141428569978354),
    ("leaky_relu(a=10)", 0.14071950894605836), ("leaky_relu(a=0.2)", math.sqrt(2 / 1.04)),
    ("leaky_relu(a=0)", 1.4142135623730951), ("selu", 0.75), ("sigmoid", 1.0), ("identity", 1.0),
])
def test_gains_G1_to_G7(act, expected):
    call = resolve("act", act)
    assert activation_gain(call) == pytest.approx(expected, rel=1e-15)
    torch_name = {"identity": "linear"}.get(call.name, call.name)
    assert init.calculate_gain(torch_name, call.get("a")) == pytest.approx(expected, rel=1e-15)


def test_G8_leaky_relu_slope_must_be_a_number():
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(SpecError):
        resolve("act", "leaky_relu(a=true)")


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_has_a_gain(name):
    assert activation_gain(resolve("act", name)) > 0


# ---- distributions: PyTorch's KS method ----------------------------------------------------------------
def ks(w: torch.Tensor, dist: str, args) -> float:
    return stats.kstest(w.double().flatten().numpy(), dist, args=args).pvalue


@pytest.mark.parametrize("text, std", [
    ("kaiming_normal", math.sqrt(2 / 512)),  # B4
    ("kaiming_normal(mode=fan_out)", math.sqrt(2 / 256)),  # B5
    ("kaiming_normal(gain=0.7)", 0.7 / math.sqrt(512)),
    ("xavier_normal(gain=1.3)", 1.3 * math.sqrt(2 / 768)),
    ("lecun_normal", 1 / math.sqrt(512)),
    ("normal(std=0.05)", 0.05),
])
def test_normal_schemes_pass_ks(text, std):
    w = draw(text, seed=7)
    assert ks(w, "norm", (0.0, std)) > P_MIN
    n = w.numel()  # sample std within 4 standard errors, SE = std / sqrt(2n)
    assert abs(w.double().std().item() - std) < 4 * std / math.sqrt(2 * n)


@pytest.mark.parametrize("text, bound", [
    ("xavier_uniform", math.sqrt(6 / 768)),  # B1
    ("kaiming_uniform", math.sqrt(6 / 512)),  # B2
    ("torch_default", 1 / math.sqrt(512)),  # B3
    ("lecun_uniform(gain=2)", 2 * math.sqrt(3 / 512)),
    ("uniform(bound=0.25)", 0.25),
])
def test_uniform_schemes_bounds_and_ks(text, bound):
    w = draw(text, seed=3)
    assert w.abs().max().item() <= bound * (1 + 1e-6)
    assert w.abs().max().item() > bound * 0.999  # 131072 draws reach the edge
    assert ks(w, "uniform", (-bound, 2 * bound)) > P_MIN
    if text == "torch_default":  # B3: Var * 3 * fan_in = 1
        assert w.double().var().item() * 3 * 512 == pytest.approx(1.0, abs=4 * math.sqrt(0.8 / w.numel()))


def test_B3_torch_default_bias_bound():
    b = torch.empty(20000)
    init_bias(b, resolve("bias", "torch_default"), 512, gen(1))
    assert b.abs().max().item() <= 1 / math.sqrt(512) and b.abs().max().item() > 0.999 / math.sqrt(512)


@pytest.mark.parametrize("std, a, b, expected_std", [(1.0, -2.0, 2.0, 0.8796256610342398),  # B6
                                                     (0.02, -2.0, 2.0, 0.02)])  # B7
def test_trunc_normal_absolute_bounds_and_B6_B7(std, a, b, expected_std):
    w = draw(f"trunc_normal(std={std}, a={a}, b={b})", (300, 400), seed=5)
    assert w.min().item() >= a and w.max().item() <= b
    assert ks(w, "truncnorm", (a / std, b / std, 0.0, std)) > P_MIN
    n = w.numel()
    assert abs(w.double().std().item() - expected_std) < 4 * expected_std / math.sqrt(2 * n)


@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (20, 30), (300, 500), (500, 300)])
@pytest.mark.parametrize("gain", [1.0, 0.37, 1.9])
def test_B8_orthogonal(shape, gain):
    w = draw(f"orthogonal(gain={gain})", shape, seed=11).double()
    r, c = shape
    prod = w @ w.T if r <= c else w.T @ w
    # float32 QR: docs/formulas.md (B8) lists 2.9e-6 at 300x500; 1e-5 scaled by gain^2 leaves room, still tight
    assert torch.allclose(prod, gain ** 2 * torch.eye(min(r, c), dtype=torch.float64), atol=1e-5 * gain ** 2, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("name", ["orthogonal", "kaiming_normal", "trunc_normal", "torch_default"])
def test_other_dtypes(dtype, name):
    w = draw(name, (64, 128), dtype=dtype)
    assert w.dtype == dtype and torch.isfinite(w).all()


def test_bias_kinds():
    cpu, f32 = torch.device("cpu"), torch.float32
    assert make_bias(resolve("bias", "none"), 4, 5, device=cpu, dtype=f32) is None
    assert torch.equal(make_bias(resolve("bias", "zeros"), 4, 5, device=cpu, dtype=f32), torch.zeros(5))
    assert torch.equal(make_bias(resolve("bias", "const(value=0.25)"), 4, 5, device=cpu, dtype=f32),
                       torch.full((5,), 0.25))
    b = make_bias(resolve("bias", "normal(std=0.1)"), 4, 50000, device=cpu, dtype=f32, generator=gen())
    assert ks(b, "norm", (0.0, 0.1)) > P_MIN
    b = make_bias(resolve("bias", "uniform(bound=0.3)"), 4, 50000, device=cpu, dtype=f32, generator=gen())
    assert b.abs().max().item() <= 0.3 and ks(b, "uniform", (-0.3, 0.6)) > P_MIN
