"""Activations: every catalog name maps to the right torch function; in-place equals out-of-place."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from initscope.engine import activations
from initscope.engine.catalog import ACTIVATIONS, resolve
from scipy.special import ndtr

X = torch.linspace(-8, 8, 2001, dtype=torch.float64)


def reference(text: str, x: torch.Tensor) -> torch.Tensor:
    call = resolve("act", text)
    p = call.kwargs
    name = call.name
    if name == "relu":
        return torch.clamp(x, min=0)
    if name == "leaky_relu":
        return torch.where(x > 0, x, p["a"] * x)
    if name == "general_relu":  # fast.ai GeneralRelu.forward
        y = torch.where(x > 0, x, p["leak"] * x) - p["sub"]
        return y.clamp_max(p["maxv"]) if p["maxv"] is not None else y
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return 1 / (1 + torch.exp(-x))
    if name == "gelu":
        return x * torch.from_numpy(ndtr(x.numpy()))
    if name == "silu":
        return x / (1 + torch.exp(-x))
    if name == "selu":
        alpha, lam = 1.6732632423543772, 1.0507009873554805
        return lam * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))
    if name == "elu":
        return torch.where(x > 0, x, p["alpha"] * (torch.exp(x) - 1))
    if name == "softplus":
        return torch.log1p(torch.exp(x))
    if name == "identity":
        return x
    raise AssertionError(name)


CASES = list(ACTIVATIONS) + ["leaky_relu(a=0.2)", "general_relu(leak=0.1, sub=0.4, maxv=6)", "elu(alpha=0.5)"]


@pytest.mark.parametrize("text", CASES)
def test_matches_formula(text):
    act = activations.get(resolve("act", text))
    assert torch.allclose(act.fn(X), reference(text, X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text", CASES)
def test_inplace_equals_out_of_place(text):
    act = activations.get(resolve("act", text))
    x = torch.randn(64, 33, generator=torch.Generator().manual_seed(0))
    expected = act.fn(x)
    assert torch.equal(act.fn_(x.clone()), expected)


@pytest.mark.parametrize("text", CASES)
def test_monotone_flag_is_true_to_the_function(text):
    act = activations.get(resolve("act", text))
    y = act.fn(X)
    non_decreasing = bool((y[1:] >= y[:-1]).all())
    assert act.monotone == non_decreasing


def test_gelu_is_the_exact_erf_form_not_tanh():
    act = activations.get(resolve("act", "gelu"))
    x = torch.tensor([1.0], dtype=torch.float64)
    assert act.fn(x).item() == pytest.approx(1.0 * 0.5 * (1 + math.erf(1 / math.sqrt(2))), rel=1e-15)
    assert not torch.allclose(act.fn(X), F.gelu(X, approximate="tanh"), rtol=1e-9, atol=1e-9)
