"""Normalization kinds: catalog names (engine/catalog.py NORMS) -> torch functions.

`get(norm)` returns a `Norm` whose `fn(h)` maps the pre-activations h [batch, n] to normed values
n = norm(h), out of place and differentiable (the same function serves forward-only runs and runs with
gradients), or None for `none`. Scale 1 and shift 0 everywhere:

- batchnorm(eps): per unit over the batch, n = (h - mean_b h) / sqrt(var_b h + eps), var with divisor B
  (biased): torch.nn.functional.batch_norm(h, None, None, training=True, eps=eps), what BatchNorm1d does in
  training mode; it needs at least 2 examples (min_batch);
- layernorm(eps): per example over the units, n = (h - mean_u h) / sqrt(var_u h + eps) (biased):
  torch.nn.functional.layer_norm(h, (n,), eps=eps);
- rmsnorm(eps): per example, n = h / sqrt(mean_u h^2 + eps): torch.nn.functional.rms_norm(h, (n,), eps=eps).

A new kind is one entry in _KINDS (and its catalog entry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from .textforms import Call


@dataclass(frozen=True)
class Norm:
    name: str
    fn: Callable[[Tensor], Tensor]  # n = norm(h), h of shape [batch, units]; a new tensor
    min_batch: int  # examples a batch needs (batchnorm: 2; the variance of one example is 0)
    eps: float = 0.0  # the eps under the square root
    per_batch: bool = False  # statistics per unit over the batch (batchnorm), not per example


def _batchnorm(eps: float) -> Callable[[Tensor], Tensor]:
    return lambda h: F.batch_norm(h, None, None, training=True, eps=eps)


def _layernorm(eps: float) -> Callable[[Tensor], Tensor]:
    return lambda h: F.layer_norm(h, (h.shape[-1],), eps=eps)


def _rmsnorm(eps: float) -> Callable[[Tensor], Tensor]:
    return lambda h: F.rms_norm(h, (h.shape[-1],), eps=eps)


_KINDS: dict[str, tuple[Callable[[float], Callable[[Tensor], Tensor]], int, bool]] = {
    # name: (function, min_batch, per_batch)
    "batchnorm": (_batchnorm, 2, True),
    "layernorm": (_layernorm, 1, False),
    "rmsnorm": (_rmsnorm, 1, False),
}


def get(norm: Call) -> Norm | None:
    """The torch implementation of a resolved norm call; None for `none`."""
    if norm.name == "none":
        return None
    try:
        make, min_batch, per_batch = _KINDS[norm.name]
    except KeyError:
        raise KeyError(f"norm {norm.name!r} has no implementation") from None
    eps = float(norm.get("eps"))
    return Norm(norm.name, make(eps), min_batch, eps, per_batch)


__all__ = ["Norm", "get"]
