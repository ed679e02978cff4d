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
  The counts are taken on the [k, n] stacks the runner's FastStats has just reduced (engine/stats.py: the
  tensors of one kind and size from a group of blocks), so they cost no copy: each count is one comparison
  written as 0/1 into FastStats' scratch buffer and one row sum. A float32 sum of 0/1 is exact up to 2^24
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

from .stats import EXACT_COUNT, NORMED, OUT, POST, PRE

NEAR_ZERO = 0.05
SATURATION = 0.97
EXTRA_NAMES = ("near_zero", "fastai_low", "saturated")
FORWARD_SLOTS = (PRE, NORMED, POST, OUT)
BOUNDS = {"tanh": (0.0, 1.0), "sigmoid": (0.5, 0.5)}  # (centre c, half-range r) of bounded activations


class ForwardCounts:
    """The runner's `extra` callback (FastStats.on_rows, engine/stats.py): counts the forward tensors of a
    recorded step as FastStats hands them over, a [k, n] group of blocks at a time (the module docstring's
    formulas), and take() returns them. An identity's post is its input: its counts are the input's."""

    def __init__(self, depth: int, act_name: str, derive: str, act_in: int, device: torch.device) -> None:
        self.depth = depth
        self.bound = BOUNDS.get(act_name)
        self.derive = derive  # a ReLU's post is >= 0: |x| <= c and x <= c count the same
        self.act_in = act_in
        self.device = device
        self.out = self._empty()

    def _empty(self) -> Tensor:
        return torch.full((self.depth, len(FORWARD_SLOTS), len(EXTRA_NAMES)), math.nan, dtype=torch.float64,
                          device=self.device)

    def __call__(self, slot: int, index: Tensor, x: Tensor, scratch: Tensor) -> None:
        """Count rows x [k, n] (blocks `index`) of tensor `slot`; scratch: a free buffer of x's shape and dtype
        (x itself is not written). A float sum of 0/1 is exact up to 2^24 entries (float64 beyond)."""
        acc = torch.float64 if x.shape[1] > EXACT_COUNT else x.dtype
        k = FORWARD_SLOTS.index(slot)
        low = torch.le(x, NEAR_ZERO, out=scratch).sum(1, dtype=acc).double()
        self.out[index, k, 1] = low
        if slot == POST and self.bound is not None:
            c, r = self.bound
            d = torch.sub(x, c, out=scratch).abs_() if c else torch.abs(x, out=scratch)
            self.out[index, k, 2] = torch.gt(d, SATURATION * r, out=scratch).sum(1, dtype=acc).double()
        if slot == POST and self.derive == "relu":
            self.out[index, k, 0] = low
        else:
            near = torch.le(torch.abs(x, out=scratch), NEAR_ZERO, out=scratch)
            self.out[index, k, 0] = near.sum(1, dtype=acc).double()

    def take(self) -> Tensor:
        """[L, len(FORWARD_SLOTS), 3] counts (EXTRA_NAMES order; float64, NaN where a block has no such tensor
        or count) of the tensors seen since the last take(); the caller keeps it."""
        out, self.out = self.out, self._empty()
        if self.derive == "identity":
            post, src = FORWARD_SLOTS.index(POST), FORWARD_SLOTS.index(self.act_in)
            out[:, post, :2] = out[:, src, :2]
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
