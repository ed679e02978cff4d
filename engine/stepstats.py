"""What a recorded training step measures beyond the runner's block statistics, for all blocks at once.

A recorded step of `initscope train` (engine/train.py) runs the runner's block step (engine/runner.py), so
its per-tensor mean, std, rms, min, max, zero and non-finite fractions and histograms are the runner's own
(step 0 equals `initscope run`). What training adds is computed here, once per step for every block
together, so that its cost is a handful of ops per step rather than a few per tensor and block (at width
256 and minibatch 64 a tensor is 16384 floats: a reduction over it takes ~4 us, the op around it as long):

- ForwardCounts, per forward tensor x (pre, normed, post, out) of n entries:
      near_zero  = #(|x| <= 0.05) / n
      fastai_low = #(x <= 0.05) / n              (one-sided, the fast.ai course's "near zero")
      saturated  = #(|x - c| > 0.97 r) / n       (post of a bounded activation: tanh c = 0, r = 1 as
                                                  Karpathy measures it; sigmoid c = r = 1/2; NaN otherwise)
  The tensors of one kind and size are stacked into one [k, n] matrix (one copy); each count is one
  comparison written as 0/1 into a float buffer and one row sum. A float32 sum of 0/1 is exact up to 2^24
  entries (float64 beyond). (A count as a boolean tensor's sum costs ~3x more on the CPU: measured ~40 us
  against ~15 us per tensor at n = 16384, and it was most of a recorded step's time.)
- update_sums, per weight matrix M: (sum, sum of squares) of M, for the update-to-data ratio
      log10(std(M_after - M_before) / std(M_before)),   std^2 = sum(M^2)/n - (sum(M)/n)^2   (population),
  the squares as one foreach norm over all matrices (|M|_2^2), the sums one op per matrix.
Everything stays on the device; nothing here syncs with the host.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .runner import EXACT_COUNT, NORMED, OUT, POST, PRE

NEAR_ZERO = 0.05
SATURATION = 0.97
EXTRA_NAMES = ("near_zero", "fastai_low", "saturated")
FORWARD_SLOTS = (PRE, NORMED, POST, OUT)
BOUNDS = {"tanh": (0.0, 1.0), "sigmoid": (0.5, 0.5)}  # (centre c, half-range r) of bounded activations


class ForwardCounts:
    """The runner's `extra` callback: keeps a reference to every forward tensor of a recorded step (no copy:
    with gradients the block step's tensors are fresh and autograd keeps most of them anyway), and take()
    counts them all (the module docstring's formulas)."""

    def __init__(self, depth: int, act_name: str, relu: bool, device: torch.device) -> None:
        self.depth = depth
        self.bound = BOUNDS.get(act_name)
        self.relu = relu  # a ReLU's post is >= 0: |x| <= c and x <= c count the same
        self.device = device
        self.pending: dict[tuple[int, int, torch.dtype], list[tuple[int, Tensor]]] = {}  # (slot, n, dtype)
        self.stacks: dict[tuple[int, int, torch.dtype], Tensor] = {}  # [k, n] stacking buffers, reused
        self.indicators: dict[tuple[int, int], Tensor] = {}  # [k, n] float32 0/1 buffers, reused
        self.rows: dict[tuple[int, ...], Tensor] = {}  # block indices of a group, made once

    def __call__(self, layer: int, slot: int, flat: Tensor) -> None:
        self.pending.setdefault((slot, flat.numel(), flat.dtype), []).append((layer, flat))

    def _buffers(self, key: tuple[int, int, torch.dtype], k: int) -> tuple[Tensor, Tensor]:
        n, dtype = key[1], key[2]
        x = self.stacks.get(key)
        if x is None or x.shape[0] != k:
            x = self.stacks[key] = torch.empty(k, n, dtype=dtype, device=self.device)
        ind = self.indicators.get((k, n))
        if ind is None:
            ind = self.indicators[(k, n)] = torch.empty(k, n, dtype=torch.float32, device=self.device)
        return x, ind

    def take(self) -> Tensor:
        """[L, len(FORWARD_SLOTS), 3] counts (EXTRA_NAMES order; float64, NaN where a block has no such tensor
        or count) of the tensors seen since the last take(); a fresh tensor (the caller keeps it)."""
        out = torch.full((self.depth, len(FORWARD_SLOTS), len(EXTRA_NAMES)), math.nan, dtype=torch.float64,
                         device=self.device)
        for key, items in self.pending.items():
            slot, n = key[0], key[1]
            layers = tuple(layer for layer, _ in items)
            rows = self.rows.get(layers)
            if rows is None:
                rows = self.rows[layers] = torch.tensor(layers, dtype=torch.long, device=self.device)
            x, ind = self._buffers(key, len(items))
            torch.stack([f for _, f in items], out=x)  # x is ours from here on: overwritten in place below
            acc = torch.float64 if n > EXACT_COUNT else torch.float32
            k = FORWARD_SLOTS.index(slot)
            low = torch.le(x, NEAR_ZERO, out=ind).sum(1, dtype=acc).double()
            out[rows, k, 1] = low
            if slot == POST and self.bound is not None:
                c, r = self.bound
                d = torch.sub(x, c, out=ind).abs_() if c else torch.abs(x, out=ind)
                out[rows, k, 2] = torch.gt(d, SATURATION * r, out=ind).sum(1, dtype=acc).double()
            if slot == POST and self.relu:
                out[rows, k, 0] = low
            else:
                out[rows, k, 0] = torch.le(x.abs_(), NEAR_ZERO, out=ind).sum(1, dtype=acc).double()
        self.pending = {}
        return out


def update_sums(matrices: list[Tensor]) -> Tensor:
    """[len(matrices), 2]: (sum, sum of squares) of each matrix, float32 accumulation (float64 for float64
    matrices); the squares from one foreach norm over all of them."""
    norms = torch.stack(torch._foreach_norm(matrices))
    sums = torch.stack([m.sum() for m in matrices])
    if norms.dtype != torch.float64:
        norms, sums = norms.float(), sums.float()
    return torch.stack((sums, norms * norms), dim=1)


def log_ratio(delta: np.ndarray, before: np.ndarray, n: np.ndarray) -> np.ndarray:
    """log10(std(dW)/std(W)) from [..., 2] sums (sum, sum of squares) over n entries; population stds."""
    def std(v):
        m = v[..., 0] / n
        return np.sqrt(np.maximum(v[..., 1] / n - m * m, 0.0))

    with np.errstate(all="ignore"):
        return np.log10(std(delta) / std(before))


__all__ = ["ForwardCounts", "update_sums", "log_ratio", "EXTRA_NAMES", "NEAR_ZERO", "SATURATION", "FORWARD_SLOTS"]
