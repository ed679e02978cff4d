"""The statistics of the block step's tensors (engine/runner.py), kept on the device until a trial ends.

Per tensor t of n entries the runner needs five raw sums, from which the host computes mean, std, rms, min,
max and the zero fraction in float64 (runner._finish):
    sum(t),  sum(t^2),  min(t),  max(t),  #(t != 0)  [ + sum(sign t) for a ReLU's input: #(relu(t) > 0)
                                                        = (#(t != 0) + sum(sign t)) / 2, exactly ]
and of every W^l its sum and sum of squares. Two classes with one interface (weight, tensor, relu_post, grad,
end_layer, drain, finish):

- FastStats (every trial first): one-pass device reductions in the accumulation dtype (float32; float64 for
  float64 runs; bfloat16/float16 are upcast), no host sync. #(t != 0) is sum(sign(t)^2): exact, since a
  float32 sum of 0s and 1s is exact up to 2^24 entries (EXACT_COUNT; beyond it counts are float64).
  Where a tensor goes depends only on its size, so a run and a training step take the same path:
  * small tensors (fewer than BATCH_BELOW entries) are copied into a row of a [k, n] stack of their kind
    (slot) and size, and reduced together, one op per statistic for k blocks. Forward tensors are reduced
    every `group` blocks (_Run.group_layers: fixed by the spec, so a run with and without gradients and a
    training step make the same groups, hence the same float32 sums bit for bit); gradients when
    BATCH_FLOATS entries wait, and at the end of the backward. At width 256 and batch 64 a tensor is 16384
    floats: one reduction over it takes ~4 us and the op around it about as long, so one op per block and
    statistic cost more than the data;
  * large tensors are reduced one by one (the data costs more than the op there): sum, dot(t, t), aminmax,
    sign written into one reused buffer, dot(sign, sign).
  The histogram sample of a tensor (its first rows, engine/runner._Buffers) is taken from its row of the
  stack, one copy per group; a large tensor's when it is measured. The values land in two stages ([depth,
  forward fields] and [depth, gradient slots, 5]) copied into the trial's float64 buffer at the end.
  An optional `on_rows(slot, index, x, scratch)` sees every forward group after it is measured (training's
  extra counts, engine/stepstats.py): x [k, n] rows of blocks `index` (a slice, or a tensor of block indices
  where the blocks are not consecutive), read-only; scratch a free buffer of x's shape and dtype.
- ExactStats (a trial again, when FastStats cannot be trusted; see runner.py): float64, two-pass variance,
  over the finite entries only, with exact non-finite counts, one tensor at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .result import TENSORS

# Slots of the raw buffer: the weight W^l, then one per tensor (TENSORS[k] is slot k + 1).
WEIGHT = 0
PRE, NORMED, POST, OUT, GRAD, GRAD_PRE, GRAD_OUT = range(1, len(TENSORS) + 1)
SLOT = {name: k + 1 for k, name in enumerate(TENSORS)}
NSLOTS = len(TENSORS) + 1
GRAD_SLOTS = (GRAD, GRAD_PRE, GRAD_OUT)  # the gradient stage holds these, in this order
# raw fields per (layer, slot); FastStats fills the first five (weight: the first two)
SUM, SUMSQ, MIN, MAX, NNZ, NFIN, SHIFT = range(7)
K = 7
FULL = (SUM, SUMSQ, MIN, MAX, NNZ)  # what FastStats measures of a tensor
EXACT_COUNT = 1 << 24  # float32 sums count exactly up to 2^24; larger tensors count in float64
BATCH_BELOW = 1 << 17  # tensors of fewer entries are stacked and reduced together ...
BATCH_FLOATS = 1 << 20  # ... gradients once this many entries wait (4 MiB of float32); forward groups: group_layers


class _Stack:
    """Rows of one kind (slot) and size n waiting to be reduced together: [rows, n] in the accumulation dtype."""

    def __init__(self, rows: int, n: int, dtype: torch.dtype, device: torch.device) -> None:
        self.x = torch.empty(rows, n, dtype=dtype, device=device)
        self.row = self.x.unbind(0)  # views made once
        self.layers: list[int] = []

    def add(self, layer: int, flat: Tensor) -> None:
        self.row[len(self.layers)].copy_(flat)  # converts to the accumulation dtype
        self.layers.append(layer)


class FastStats:
    """One-pass device reductions, small tensors stacked (see the module docstring); no host sync."""

    exact = False

    def __init__(self, run, buf, on_rows: Callable[[int, Tensor, Tensor, Tensor], None] | None = None) -> None:
        plan = run.plan
        self.buf = buf
        self.device = run.device
        self.depth = run.depth
        self.group = run.group_layers
        self.on_rows = on_rows
        self.counted = run.hist_counted  # histogram sample size per layer
        self.acc = torch.float64 if run.dtype == torch.float64 else torch.float32
        # a tensor of more than EXACT_COUNT entries has its counts in float64, so the stages are float64 too
        self.stage_dtype = torch.float64 if run.widest > EXACT_COUNT else self.acc
        self.fields = plan.forward_fields
        self.forward_stage = torch.zeros((run.depth, len(self.fields)), dtype=self.stage_dtype, device=run.device)
        self.grad_stage = (torch.zeros((run.depth, len(GRAD_SLOTS), NFIN), dtype=self.stage_dtype,
                                       device=run.device) if run.spec.grad else None)
        self.cols: dict[tuple[int, bool, bool], slice] = {}  # see _columns
        self.stage_weights_every_block = plan.norm is not None  # runner.py's docstring: the norm's freed tensor
        self.weights: list[Tensor] = []  # sum, sum of squares of W per pending block
        self.weight_layers: list[int] = []
        self.stacks: dict[tuple[int, int], _Stack] = {}  # forward (slot, n)
        self.scratch = torch.empty(0, dtype=self.acc, device=run.device)  # shared by the stacks' reductions
        self.kinds: dict[int, tuple[bool, bool, bool]] = {}  # forward slot -> (full, sign_sum, sample)
        self.sign_buf = torch.empty(run.widest, dtype=self.acc, device=run.device)  # large tensors; reused
        self.signs: dict[int, Tensor] = {}  # sign_buf[:n], made once per n
        self.pending: list[tuple[int, int, Tensor]] = []  # gradients waiting for drain(): (layer, slot, g)
        self.pending_floats = 0
        self.grad_bufs: tuple[Tensor, Tensor] | None = None  # stacked gradients and their scratch, reused
        self.index: dict[tuple[int, ...], Tensor] = {}  # index tensors of scattered groups of blocks, made once

    # ---- reductions --------------------------------------------------------------------------------------
    def _columns(self, slot: int, full: bool, sign_sum: bool) -> slice:
        """The forward stage's columns (_Plan.forward_fields) of what the reduction of a `slot` tensor gives:
        sum, sum of squares [, min, max, non-zeros [, sum(sign), in the place of (POST, NNZ)]]: adjacent by
        construction of the fields, so a slice (a write is then a plain copy, not an index_put)."""
        key = (slot, full, sign_sum)
        cols = self.cols.get(key)
        if cols is None:
            where = [(slot, f) for f in (FULL if full else (SUM, SUMSQ))] + ([(POST, NNZ)] if sign_sum else [])
            at = [self.fields.index(w) for w in where]
            assert at == list(range(at[0], at[0] + len(at))), (slot, at)
            cols = self.cols[key] = slice(at[0], at[0] + len(at))
        return cols

    def _where(self, layers: tuple[int, ...]) -> slice | Tensor:
        """Blocks `layers` as an index: a slice when they are consecutive (the usual case: a write is a plain
        copy), else an index tensor, made once per group."""
        if layers == tuple(range(layers[0], layers[0] + len(layers))):
            return slice(layers[0], layers[0] + len(layers))
        index = self.index.get(layers)
        if index is None:
            index = self.index[layers] = torch.tensor(layers, dtype=torch.long, device=self.device)
        return index

    def _flat(self, v: Tensor) -> Tensor:
        if v.dim() != 1:
            v = v.reshape(-1)
        return v if v.dtype == self.acc else v.to(self.acc)

    def _reduce(self, f: Tensor, full: bool, sign_sum: bool) -> list[Tensor]:
        """A large tensor: sum, sum of squares [, min, max, number of non-zeros (dot(sign x, sign x), sign left
        in sign_buf) [, sum(sign x)]], no host sync."""
        vals = [f.sum(), torch.dot(f, f)]  # read-only passes first, while f is in cache
        if not full:
            return vals
        vals += torch.aminmax(f)
        n = f.numel()
        if n not in self.signs:
            self.signs[n] = self.sign_buf[:n]
        sg = torch.sign(f, out=self.signs[n])
        big = n > EXACT_COUNT
        vals.append(torch.linalg.vector_norm(sg, 1, dtype=torch.float64) if big else torch.dot(sg, sg))
        if sign_sum:
            vals.append(sg.sum(dtype=torch.float64) if big else sg.sum())
        return vals

    @staticmethod
    def _reduce_rows(x: Tensor, scratch: Tensor, full: bool = True, sign_sum: bool = False) -> Tensor:
        """[k, n] rows (fewer than EXACT_COUNT entries each) -> [k, 2 | 5 | 6]: per row the sum, sum of squares
        [, min, max, #(x != 0) = sum(|sign x|) [, sum(sign x)]]. Products and signs go into `scratch` (a fresh
        [k, n] temporary per call, as vecdot makes, costs page faults: ~4x the op at k n = 20 x 16384)."""
        vals = [x.sum(1), torch.mul(x, x, out=scratch).sum(1)]
        if not full:
            return torch.stack(vals, dim=1)
        vals += [x.amin(1), x.amax(1)]  # aminmax(dim=1) is ~10x slower than these two on the CPU
        sg = torch.sign(x, out=scratch)
        sign_total = sg.sum(1) if sign_sum else None
        vals.append(sg.abs_().sum(1))
        if sign_total is not None:
            vals.append(sign_total)
        return torch.stack(vals, dim=1)

    def _sample_rows(self, layers: tuple[int, ...], slot: int, x: Tensor) -> None:
        """The first counted[layer] entries of each row are its histogram sample (one copy for the group: the
        rows have one size, so one sample size)."""
        buf = self.buf
        index = self._where(tuple(layer - buf.chunk_start for layer in layers))
        m = self.counted[layers[0]]
        buf.samples[index, buf.row[slot], :m] = x[:, :m].to(buf.samples.dtype)
        if m < buf.smax:
            buf.samples[index, buf.row[slot], m:] = math.nan

    # ---- the forward pass --------------------------------------------------------------------------------
    def weight(self, layer: int, w: Tensor) -> None:
        wf = self._flat(w)
        self.weights += [wf.sum(), torch.dot(wf, wf)]
        self.weight_layers.append(layer)

    def tensor(self, layer: int, slot: int, t: Tensor, *, sample: bool = True, sign_sum: bool = False) -> None:
        """Measure (and with `sample`, sample for the histogram) a forward tensor; with sign_sum also sum(sign t),
        from which the host derives a ReLU's #(relu(t) > 0)."""
        self._forward(layer, slot, t, sample, full=True, sign_sum=sign_sum)

    def relu_post(self, layer: int, t: Tensor) -> None:
        """A ReLU's post: only its sum and sum of squares (the rest is derived on the host)."""
        self._forward(layer, POST, t, False, full=False, sign_sum=False)

    def _forward(self, layer: int, slot: int, t: Tensor, sample: bool, full: bool, sign_sum: bool) -> None:
        self.kinds[slot] = (full, sign_sum, sample)
        n = t.numel()
        if n < BATCH_BELOW:
            stack = self.stacks.get((slot, n))
            if stack is None:
                stack = self.stacks[(slot, n)] = _Stack(self.group, n, self.acc, self.device)
                if self.scratch.numel() < self.group * n:
                    self.scratch = torch.empty(self.group * n, dtype=self.acc, device=self.device)
            stack.add(layer, t.reshape(-1))
            return
        f = self._flat(t)
        if sample:
            self.buf.sample(layer, slot, f, self.counted[layer])
        cols = self._columns(slot, full, sign_sum)
        self.forward_stage[layer, cols] = torch.stack(self._reduce(f, full, sign_sum)).to(self.stage_dtype)
        if self.on_rows is not None:
            self.on_rows(slot, slice(layer, layer + 1), f.view(1, -1), self.sign_buf[:n].view(1, -1))

    def end_layer(self, layer: int) -> None:
        if self.stage_weights_every_block:
            self._stage_weights()
        if (layer + 1) % self.group == 0 or layer + 1 == self.depth:  # the last group ends with the forward pass
            self._reduce_forward()

    def _reduce_forward(self) -> None:
        """Reduce every waiting forward stack (one group of blocks) into the stage, and sample it."""
        for (slot, n), stack in self.stacks.items():
            if not stack.layers:
                continue
            layers = tuple(stack.layers)
            full, sign_sum, sample = self.kinds[slot]
            k = len(layers)
            x, scratch = stack.x[:k], self.scratch[:k * n].view(k, n)
            cols = self._columns(slot, full, sign_sum)
            index = self._where(layers)
            self.forward_stage[index, cols] = \
                self._reduce_rows(x, scratch, full, sign_sum).to(self.stage_dtype)
            if sample:
                self._sample_rows(layers, slot, x)
            if self.on_rows is not None:
                self.on_rows(slot, index, x, scratch)
            stack.layers.clear()
        self._stage_weights()

    def _stage_weights(self) -> None:
        if self.weight_layers:
            sums = torch.stack(self.weights).view(-1, 2).to(self.stage_dtype)
            self.forward_stage[self._where(tuple(self.weight_layers)), :2] = sums
            self.weights.clear()
            self.weight_layers.clear()

    # ---- the backward pass -------------------------------------------------------------------------------
    def grad(self, layer: int, slot: int, g: Tensor) -> None:
        """Measure and sample a gradient: a small one waits for drain() to be reduced with the others."""
        g = g.detach()
        if g.numel() >= BATCH_BELOW:
            x = self._flat(g).view(1, -1)
            self._stage_grads(x, self.sign_buf[:x.shape[1]].view(1, -1), slot, (layer,))
            return
        self.pending.append((layer, slot, g))
        self.pending_floats += g.numel()
        if self.pending_floats >= BATCH_FLOATS:
            self.drain()

    def drain(self) -> None:
        """Reduce everything waiting: forward stacks, and the gradients, those of one slot and size stacked into
        one [k, n] matrix (one copy) and reduced once for all k blocks."""
        self._reduce_forward()
        groups: dict[tuple[int, int], list[tuple[int, Tensor]]] = {}
        for layer, slot, g in sorted(self.pending, key=lambda item: item[0]):  # blocks in order: slices, not indices
            groups.setdefault((slot, g.numel()), []).append((layer, g))
        self.pending = []
        self.pending_floats = 0
        for (slot, n), items in groups.items():
            k = len(items)
            if self.grad_bufs is None or self.grad_bufs[0].numel() < k * n:  # at most BATCH_FLOATS + n
                self.grad_bufs = (torch.empty(k * n, dtype=self.acc, device=self.device),
                                  torch.empty(k * n, dtype=self.acc, device=self.device))
            x = self.grad_bufs[0][:k * n].view(k, n)
            torch.stack([g.reshape(-1).to(self.acc) for _, g in items], out=x)
            self._stage_grads(x, self.grad_bufs[1][:k * n].view(k, n), slot, tuple(layer for layer, _ in items))

    def _stage_grads(self, x: Tensor, scratch: Tensor, slot: int, layers: tuple[int, ...]) -> None:
        """Row i of x [k, n] is the gradient at block layers[i]: its five sums into grad_stage, its first
        counted[layer] entries into the histogram samples. A NaN entry makes the sums NaN (so `run`
        recomputes the trial exactly). Beyond EXACT_COUNT entries the counts are float64."""
        index = self._where(layers)
        if x.shape[1] > EXACT_COUNT:
            f = x.view(-1)
            vals = torch.stack([v.to(torch.float64) for v in self._reduce(f, True, False)]).view(1, -1)
        else:
            vals = self._reduce_rows(x, scratch)
        self.grad_stage[index, GRAD_SLOTS.index(slot)] = vals.to(self.stage_dtype)
        self._sample_rows(layers, slot, x)  # rows of one size: blocks of one width, so one sample size

    # ---- the trial ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget anything waiting (training measures one trial at many steps; a step ends with finish())."""
        for stack in self.stacks.values():
            stack.layers.clear()
        self.weights.clear()
        self.weight_layers.clear()
        self.pending = []
        self.pending_floats = 0

    def finish(self) -> None:
        self.drain()
        self.buf.forward.copy_(self.forward_stage.view(-1))
        if self.grad_stage is not None:
            self.buf.raw[:, GRAD:, :NFIN].copy_(self.grad_stage)


class ExactStats:
    """Over the finite entries, in float64, two-pass; written straight into the raw buffer (device)."""

    exact = True

    def __init__(self, run, buf) -> None:
        self.raw = buf.raw
        self.buf = buf
        self.counted = run.hist_counted

    @staticmethod
    def _exact(t: Tensor) -> Tensor:
        """sum and sum of squares of (x - mean), min, max, non-zeros, finite count, mean."""
        f = t.reshape(-1).double()
        fin = torch.isfinite(f)
        n = fin.sum().double()
        mean = torch.where(fin, f, 0.0).sum() / n.clamp_min(1.0)
        d = torch.where(fin, f - mean, 0.0)
        mn = torch.where(fin, f, math.inf).amin()
        mx = torch.where(fin, f, -math.inf).amax()
        nnz = (fin & (f != 0)).sum().double()
        return torch.stack([d.sum(), torch.dot(d, d), mn, mx, nnz, n, mean])

    def weight(self, layer: int, w: Tensor) -> None:
        wf = w.reshape(-1).double()
        self.raw[layer, WEIGHT, :2].copy_(torch.stack((wf.sum(), torch.dot(wf, wf))))

    def tensor(self, layer: int, slot: int, t: Tensor, *, sample: bool = True, sign_sum: bool = False) -> None:
        if sample:
            self.buf.sample(layer, slot, t.reshape(-1), self.counted[layer])
        self.raw[layer, slot].copy_(self._exact(t))

    def relu_post(self, layer: int, t: Tensor) -> None:
        self.tensor(layer, POST, t, sample=False)

    def end_layer(self, layer: int) -> None:
        pass

    def grad(self, layer: int, slot: int, g: Tensor) -> None:
        self.buf.sample(layer, slot, g.reshape(-1), self.counted[layer])
        self.raw[layer, slot].copy_(self._exact(g))

    def drain(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def finish(self) -> None:
        pass


__all__ = ["FastStats", "ExactStats"]
