"""Normalization kinds: catalog names (engine/catalog.py NORMS) -> torch functions.

`get(norm)` returns a `Norm`, or None for `none`: `fn(h)` maps the pre-activations h [batch, n] to normed
values n = norm(h), out of place and differentiable (runs with gradients); `into(h, out)` writes the same
values, bit for bit, into a given buffer (forward-only runs). A fresh [batch, n] tensor per block, kept while
the block's small statistics tensors are made, fragments the C heap: measured with glibc, the peak memory of
a 2048 x 512 run grew by 4 MiB per block until the statistics were staged. `into` uses batch_norm's out=
kernel for batchnorm, and the function on blocks of rows for the per-example norms (layernorm's out= form
makes a whole new tensor and copies it; rms_norm has none). Scale 1 and shift 0 everywhere:

- batchnorm(eps): per unit over the batch, n = (h - mean_b h) / sqrt(var_b h + eps), var with divisor B
  (biased): torch.nn.functional.batch_norm(h, None, None, training=True, eps=eps), what BatchNorm1d does in
  training mode;
- layernorm(eps): per example over the units, n = (h - mean_u h) / sqrt(var_u h + eps) (biased):
  torch.nn.functional.layer_norm(h, (n,), eps=eps);
- rmsnorm(eps): per example, n = h / sqrt(mean_u h^2 + eps): torch.nn.functional.rms_norm(h, (n,), eps=eps).

A new kind is one entry in _KINDS (and its catalog entry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .textforms import Call


@dataclass(frozen=True)
class Norm:
    name: str
    fn: Callable[[Tensor], Tensor]  # n = norm(h), h of shape [batch, units]; a new tensor
    into: Callable[[Tensor, Tensor], Tensor]  # the same values written into out (same shape), returned
    min_batch: int  # examples a batch needs (batchnorm: 2, a variance over one example is 0)


ROWS_PER_BLOCK = 1 << 14  # per-example norms' `into`: entries per block of rows (temporaries of 64 KiB)
# at least this many rows per block: torch's CPU rms_norm reduces a lone row with threads of its own (other
# bits); from two rows on it goes row by row (checked at 1, 2 and 16 threads)
MIN_ROWS = 8


def _batchnorm(eps: float) -> tuple[Callable, Callable]:
    def fn(h: Tensor) -> Tensor:
        return F.batch_norm(h, None, None, training=True, eps=eps)

    def into(h: Tensor, out: Tensor) -> Tensor:
        mean, invstd = h.new_empty(h.shape[1]), h.new_empty(h.shape[1])  # per unit, in h's dtype
        torch.ops.aten.native_batch_norm.out(h, None, None, None, None, True, 0.0, eps, out=out, save_mean=mean,
                                             save_invstd=invstd)
        return out

    return fn, into


def _by_rows(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """A per-example norm written into out one block of rows at a time: its temporaries stay small, and a
    row's result does not depend on the other rows (the same bits as fn on the whole batch)."""

    def into(h: Tensor, out: Tensor) -> Tensor:
        rows = h.shape[0]
        step = max(MIN_ROWS, ROWS_PER_BLOCK // max(1, h.shape[1]))
        start = 0
        while start < rows:
            stop = rows if rows - start < 2 * step else start + step  # no short last block
            out[start:stop].copy_(fn(h[start:stop]))
            start = stop
        return out

    return into


def _layernorm(eps: float) -> tuple[Callable, Callable]:
    def fn(h: Tensor) -> Tensor:
        return F.layer_norm(h, (h.shape[-1],), eps=eps)

    return fn, _by_rows(fn)


def _rmsnorm(eps: float) -> tuple[Callable, Callable]:
    def fn(h: Tensor) -> Tensor:
        return F.rms_norm(h, (h.shape[-1],), eps=eps)

    return fn, _by_rows(fn)


_KINDS: dict[str, tuple[Callable[[float], tuple[Callable, Callable]], int]] = {  # (functions, min_batch)
    "batchnorm": (_batchnorm, 2),
    "layernorm": (_layernorm, 1),
    "rmsnorm": (_rmsnorm, 1),
}


def get(norm: Call) -> Norm | None:
    """The torch implementation of a resolved norm call; None for `none`."""
    if norm.name == "none":
        return None
    try:
        make, min_batch = _KINDS[norm.name]
    except KeyError:
        raise KeyError(f"norm {norm.name!r} has no implementation") from None
    fn, into = make(float(norm.get("eps")))
    return Norm(norm.name, fn, into, min_batch)


__all__ = ["Norm", "get"]
