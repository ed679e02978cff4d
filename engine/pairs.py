"""Correlated input pairs (`--pair-corr C`): how the correlation of two inputs propagates through the blocks.

With spec.pair_corr = C the runner carries PAIRS extra pairs of input rows (x_a, x_b) through the same blocks
as the batch (the same W, b, V, the same norm and residual), and measures at every block, for the tensors
pre h, post a (and out x^l with a residual), the mean over the pairs of the cosine similarity

    c = sum_i a_i b_i / (|a| |b|)          (uncentred: the mean-field c = q_ab / sqrt(q_aa q_bb))

accumulated in float64 on the device and copied back once per trial (docs/pairs.md). The pair rows are drawn
from their own generator, seeded with PAIR_SEED_SALT + seed + t (t the trial), and never enter the batch: every
other statistic, histogram and gradient of a run is bit-identical with the pairs on or off. They carry no
gradient and no loss. A pair whose two rows are not both non-zero has no cosine and is left out of the mean
(e.g. a ReLU row that is all zeros); a non-finite value makes the block's mean NaN.

How the pairs are made (x_a, z independent):
- i.i.d. data (gaussian, uniform), m the data's mean: x_a, z drawn like the data, and
  x_b = m + C (x_a - m) + sqrt(1 - C^2) (z - m): x_b has the data's mean and variance v and its centred
  correlation with x_a is C. The expected uncentred c^0 is (C v + m^2) / (v + m^2) (what the theory starts
  from: engine/theory/correlation.py input_pair_corr), = C for
  mean-zero data. For uniform data x_b is not uniform (a sum of two uniforms), only its mean and variance match.
- fixed rows (file, digits): x_a a row of the data, r another row (chosen by the pair generator), and
  x_b = C x_a + sqrt(1 - C^2) |x_a| u with u the unit vector of r's part orthogonal to x_a (of a Gaussian
  vector's, when r is parallel to x_a or there is one row): |x_b| = |x_a| and the cosine of the pair is
  exactly C (up to rounding).
The realised c^0 of the pair rows is measured like every block's (RunResult.corr_input).

Batchnorm normalises the pair rows with the batch rows' statistics (per unit: mean and biased variance of
the batch's h, as F.batch_norm in training mode computes them), so the pairs do not change what the batch sees.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a run needs it
    from torch import Tensor

PAIRS = 32  # pairs per trial: the sd of a mean of PAIRS cosines is ~(1 - C^2)/sqrt(PAIRS n) (docs/pairs.md)
PAIR_SEED_SALT = 0x5EED_0F_9A1C  # the pair generator's seed is salt + seed + t, away from every trial's seed
CORR_TENSORS = ("pre", "post", "out")  # measured per block ("out" only with a residual)


def pair_seed(seed: int, trial: int) -> int:
    """The seed of trial `trial`'s pair generator (within torch's range of seeds)."""
    return (PAIR_SEED_SALT + seed + trial) % (1 << 64)


def mean_cosine(t: Tensor) -> Tensor:
    """0-d float64: the mean over pairs of cos(t[k], t[P + k]), t of shape [2P, n]; pairs with a zero row are
    left out, a non-finite value gives NaN, no defined pair gives NaN. On the device, no host sync."""
    import torch

    a, b = t.detach().to(torch.float64).reshape(2, t.shape[0] // 2, -1).unbind(0)
    na, nb = (a * a).sum(1), (b * b).sum(1)
    ok = (na != 0) & (nb != 0)  # NaN != 0 holds, so NaN rows stay in and make the mean NaN
    cos = torch.where(ok, (a * b).sum(1) / torch.sqrt(na * nb), 0.0)
    return cos.sum() / ok.sum()


def make_pairs(source, c: float, *, device, dtype, generator) -> Tensor:
    """[2 PAIRS, n_0] input rows in the run's dtype: x_a in the first PAIRS rows, x_b below (module docstring)."""
    import torch

    s = math.sqrt(1.0 - c * c)
    f64 = torch.float64
    if source.rows is None:
        from .kinds.data import DATA

        m = DATA[source.call.name].iid_moments(source.call.kwargs)[0]
        xa = source.batch(PAIRS, device=device, dtype=f64, generator=generator)
        z = source.batch(PAIRS, device=device, dtype=f64, generator=generator)
        xb = (xa - m).mul_(c).add_(z - m, alpha=s).add_(m)
    else:
        rows = torch.as_tensor(source.rows, device=device, dtype=f64)
        n = rows.shape[0]
        i = torch.randint(n, (PAIRS,), device=device, generator=generator)
        j = (i + torch.randint(1, max(n, 2), (PAIRS,), device=device, generator=generator)) % n
        g = torch.randn(PAIRS, rows.shape[1], device=device, dtype=f64, generator=generator)
        xa = rows[i]
        unit_a = xa / xa.norm(dim=1, keepdim=True).clamp_min(1e-300)

        def perp(v: Tensor) -> Tensor:
            return v - (v * unit_a).sum(1, keepdim=True) * unit_a

        r, gp = perp(rows[j]), perp(g)
        usable = r.norm(dim=1, keepdim=True) > 1e-9 * rows[j].norm(dim=1, keepdim=True)
        u = torch.where(usable, r, gp)
        u = u / u.norm(dim=1, keepdim=True)
        xb = c * xa + s * xa.norm(dim=1, keepdim=True) * u
    return torch.cat((xa, xb)).to(dtype)


class PairTrack:
    """A trial's pair rows, carried block by block beside the batch (engine/runner.py calls `block`)."""

    def __init__(self, run, t: int) -> None:
        import torch

        spec = run.spec
        self.plan = run.plan
        gen = torch.Generator(device=run.device).manual_seed(pair_seed(spec.seed, t))
        self.x = make_pairs(run.source, spec.pair_corr, device=run.device, dtype=run.dtype, generator=gen)
        self.input = mean_cosine(self.x)
        self.keys = ("pre", "post", "out") if run.plan.residual is not None else ("pre", "post")
        self.vals: list[Tensor] = []  # 0-d, len(keys) per block, stacked and copied back once (to_host)

    def block(self, w: Tensor, b: Tensor | None, v: Tensor | None, h: Tensor) -> None:
        """Block l for the pair rows: the same W, b, norm, activation and residual as the batch (whose
        pre-activations h give batchnorm its statistics); their correlations kept on the device."""
        import torch
        import torch.nn.functional as F

        plan = self.plan
        with torch.no_grad():
            hp = F.linear(self.x, w.detach(), None if b is None else b.detach())
            self.vals.append(mean_cosine(hp))
            n = hp
            if plan.norm is not None:
                if plan.norm.per_batch:
                    var, mean = torch.var_mean(h.detach(), dim=0, correction=0)
                    n = F.batch_norm(hp, mean, var, training=False, eps=plan.norm.eps)
                else:
                    n = plan.norm.fn(hp)
            a = plan.act.fn(n)
            self.vals.append(mean_cosine(a))
            if plan.residual is None:
                self.x = a
            else:
                self.x = torch.add(self.x, F.linear(a, v.detach()), alpha=plan.residual.alpha)
                self.vals.append(mean_cosine(self.x))

    def to_host(self, depth: int):
        """(input c^0, {key: [L] float64}) on the host, one copy; non-finite values as NaN."""
        import numpy as np
        import torch

        flat = torch.stack([self.input, *self.vals]).cpu().numpy().astype(np.float64)
        flat[~np.isfinite(flat)] = np.nan
        per_block = flat[1:].reshape(depth, len(self.keys))
        return float(flat[0]), {k: per_block[:, i].copy() for i, k in enumerate(self.keys)}


__all__ = ["PAIRS", "CORR_TENSORS", "make_pairs", "mean_cosine", "PairTrack", "pair_seed"]
