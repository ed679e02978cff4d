"""Bias initialization, torch side: the bias records' draws (engine/kinds/biases.py).

`make_bias` returns a new bias vector of length fan_out, or None for a kind without a bias term (`none`).
Bias draws come after the weight draw of the same layer, from the same generator, as in
nn.Linear.reset_parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .kinds.biases import BIASES, torch_default_bound
from .textforms import Call


def init_bias(b: Tensor, bias: Call, fan_in: int, generator: torch.Generator | None = None) -> None:
    """Fill b in place as the bias record says (zeros, const(value), normal(std), uniform(bound),
    torch_default)."""
    kind = BIASES.get(bias.name)
    if kind is None or not kind.present:
        raise KeyError(f"bias {bias.name!r} has no vector to draw")
    with torch.no_grad():
        kind.draw(b, kind.values(bias), fan_in, generator)


def make_bias(bias: Call, fan_in: int, fan_out: int, *, device: torch.device, dtype: torch.dtype,
              generator: torch.Generator | None = None) -> Tensor | None:
    """A new bias [fan_out] drawn as `bias` says, or None when the kind has no bias term (`none`).

    Low-precision biases are drawn in float32 and rounded (as the weights are).
    """
    if not BIASES[bias.name].present:
        return None
    draw_dtype = torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype
    b = torch.empty(fan_out, device=device, dtype=draw_dtype)
    init_bias(b, bias, fan_in, generator)
    return b if draw_dtype == dtype else b.to(dtype)


__all__ = ["init_bias", "make_bias", "torch_default_bound"]
