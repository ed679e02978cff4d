"""Activations: catalog names -> torch functions.

`get(act)` returns an `Activation` with
- `fn(h)`: out-of-place, differentiable (used when gradients are asked for);
- `fn_(h)`: may overwrite h and return it (forward-only runs: no extra buffer per layer);
- `monotone`/`piecewise_linear`: what the runner may derive from the pre-activation statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .textforms import Call


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[Tensor], Tensor]
    fn_: Callable[[Tensor], Tensor]
    monotone: bool  # non-decreasing: min/max of act(h) are act(min h), act(max h)
    piecewise_linear: bool  # act evaluated on a scalar equals act evaluated inside a big tensor, bit for bit
    # what the runner derives from the tensor the activation is applied to instead of measuring the post:
    # "relu" (min/max/zeros and histogram of relu(t) follow from t's), "identity" (the post is t), "" (nothing)
    post_from_pre: str = ""


def _identity(h: Tensor) -> Tensor:
    return h


def _general_relu(leak: float, sub: float, maxv: float | None) -> tuple[Callable, Callable]:
    """fast.ai's GeneralRelu: leaky_relu(x, leak), then -= sub, then clamp_max(maxv) if maxv."""

    def fn(h: Tensor) -> Tensor:
        x = F.leaky_relu(h, leak)
        if sub:
            x = x - sub
        if maxv is not None:
            x = x.clamp_max(maxv)
        return x

    def fn_(h: Tensor) -> Tensor:
        x = F.leaky_relu(h, leak, inplace=True)
        if sub:
            x.sub_(sub)
        if maxv is not None:
            x.clamp_max_(maxv)
        return x

    return fn, fn_


def get(act: Call) -> Activation:
    """The torch implementation of a resolved activation call."""
    name = act.name
    p = act.kwargs
    if name == "relu":
        return Activation(name, torch.relu, torch.relu_, True, True, post_from_pre="relu")
    if name == "leaky_relu":
        a = float(p["a"])
        return Activation(name, lambda h: F.leaky_relu(h, a), lambda h: F.leaky_relu(h, a, inplace=True),
                          True, True, post_from_pre="")
    if name == "general_relu":
        maxv = p.get("maxv")
        fn, fn_ = _general_relu(float(p["leak"]), float(p["sub"]), None if maxv is None else float(maxv))
        return Activation(name, fn, fn_, True, True, post_from_pre="")
    if name == "tanh":
        return Activation(name, torch.tanh, torch.tanh_, True, False, post_from_pre="")
    if name == "sigmoid":
        return Activation(name, torch.sigmoid, torch.sigmoid_, True, False, post_from_pre="")
    if name == "gelu":
        return Activation(name, lambda h: F.gelu(h, approximate="none"),
                          lambda h: F.gelu(h, approximate="none"), False, False, post_from_pre="")
    if name == "silu":
        return Activation(name, F.silu, lambda h: F.silu(h, inplace=True), False, False, post_from_pre="")
    if name == "selu":
        return Activation(name, F.selu, lambda h: F.selu(h, inplace=True), True, False, post_from_pre="")
    if name == "elu":
        alpha = float(p["alpha"])
        return Activation(name, lambda h: F.elu(h, alpha), lambda h: F.elu(h, alpha, inplace=True), True, False, post_from_pre="")
    if name == "softplus":
        return Activation(name, F.softplus, F.softplus, True, False, post_from_pre="")
    if name == "identity":
        return Activation(name, _identity, _identity, True, True, post_from_pre="identity")
    raise KeyError(f"activation {name!r} has no implementation")


__all__ = ["Activation", "get"]
