"""Bias initialization: the catalog's bias entries as torch code.

`make_bias` returns a new bias vector of length fan_out, or None for `none` (no bias add at all).
Bias draws come after the weight draw of the same layer, from the same generator, as in
nn.Linear.reset_parameters.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import init as tinit

from .textforms import Call


def torch_default_bound(fan_in: int) -> float:
    """nn.Linear's bias bound: 1/sqrt(fan_in) (0 when fan_in is 0)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def init_bias(b: Tensor, bias: Call, fan_in: int, generator: torch.Generator | None = None) -> None:
    """Fill b in place: zeros, const(value), normal(std), uniform(bound) or torch_default."""
    p = bias.kwargs
    with torch.no_grad():
        if bias.name == "zeros":
            tinit.zeros_(b)
        elif bias.name == "const":
            tinit.constant_(b, float(p["value"]))
        elif bias.name == "normal":
            tinit.normal_(b, 0.0, float(p["std"]), generator=generator)
        elif bias.name == "uniform":
            bound = float(p["bound"])
            tinit.uniform_(b, -bound, bound, generator=generator)
        elif bias.name == "torch_default":
            bound = torch_default_bound(fan_in)
            tinit.uniform_(b, -bound, bound, generator=generator)
        else:
            raise KeyError(f"bias {bias.name!r} has no implementation")


def make_bias(bias: Call, fan_in: int, fan_out: int, *, device: torch.device, dtype: torch.dtype,
              generator: torch.Generator | None = None) -> Tensor | None:
    """A new bias [fan_out] drawn as `bias` says, or None when bias is `none`.

    Low-precision biases are drawn in float32 and rounded (as the weights are).
    """
    if bias.name == "none":
        return None
    draw_dtype = torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype
    b = torch.empty(fan_out, device=device, dtype=draw_dtype)
    init_bias(b, bias, fan_in, generator)
    return b if draw_dtype == dtype else b.to(dtype)


__all__ = ["init_bias", "make_bias", "torch_default_bound"]
