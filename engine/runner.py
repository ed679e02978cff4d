"""The run: forward (and backward) through L blocks, statistics of every tensor at every block.

One block step (_Trial.block) serves forward-only runs and runs with gradients; block l, input x^(l-1):

    pre     h = W x^(l-1) + b
    normed  n = norm(h)                          (only with a norm; engine/norms.py)
    post    a = phi(n)  (phi(h) without a norm)
    out     x^l = x^(l-1) + alpha * V a           (only with a residual, engine/residual.py; else x^l = a)

and, with gradients, grad = dLoss/da, grad_pre = dLoss/dh, grad_out = dLoss/dx^l (with a residual), for
Loss = sum(x^L * u), u ~ N(0, 1) drawn after the forward pass. What differs between the two kinds of run is
only how the step's tensors are made, one small class each:
- _InPlaceForward (grad=False, inference mode): W, V and the activations live in buffers reused from block
  to block (fresh large allocations cost page faults: measured ~50 per layer at width 256, ~10% of the run),
  the activation is applied in place, the residual stream is updated in place (x += alpha * V a, on a copy
  of the input batch). A norm makes a new tensor per block (torch's norms have no out= form that does not
  copy), so with a norm FastStats stages its values at the end of every block (below: why). Memory is
  O(batch x width) whatever the depth, for every block kind.
- _Autograd (grad=True): fresh tensors, out of place; tensor hooks on h, a and x^l see dLoss/dh, dLoss/da and
  dLoss/dx^l as autograd computes them, so the gradient statistics are autograd's by construction. The
  backward starts at x^L with dLoss/dx^L = u and stops at h^1 (dLoss/dx^0 is not needed).
Both run the same torch functions on the same values (F.linear's matmul, the norm's function, add with
alpha), so a forward-only run and the forward of a run with gradients give the same statistics.
A norm that needs more than one example (batchnorm) refuses a batch of one before the run starts.

The random stream of a trial (generator seeded with seed + t): the input batch, then per block W, b (if any)
and V (with a residual, unless fixup: V = 0), then u. LSUV rescales W on the block input before fixup's
L^(-1/2) is applied. The input pairs of --pair-corr (engine/pairs.py) have a generator of their own and go
through each block beside the batch (PairTrack.block, called once h exists), outside every statistic.

Statistics (engine/stats.py): two small classes with one interface (weight, tensor, relu_post, grad,
end_layer, drain, finish), which also take each tensor's histogram sample:
- FastStats (every trial first): one-pass reductions on the device (float32 accumulation, float64 for float64
  runs; bfloat16/float16 upcast): sum, sum of squares, min, max and the number of non-zero entries (from
  sign(x); exact). Tensors of fewer than BATCH_BELOW entries are copied into a [k, n] stack of their kind and
  reduced together, the forward ones per group of `group_layers` blocks (fixed by the spec, so every kind of
  run makes the same groups and the same float32 sums; a forward-only run bins its histogram samples per
  group too), the gradients when enough wait and at the end of the backward; larger tensors one by one.
  Everything is copied to the host once per trial: no host sync per layer. With a norm the weight sums are
  staged at the end of every block: the norm's new [batch, width] tensor is freed a block later, and small
  result tensors kept alive across blocks settle in its freed space, so the next block's tensor no longer
  fits there and the C heap grows (measured with glibc: the peak memory of a forward-only 2048 x 512 run grew
  ~4 MiB per block until the values were staged). Measured on a 2-core CPU, torch.std/var cost ~10-40x these
  reductions, and count_nonzero is ~10x slower on ReLU outputs (branchy); see benchmarks/bench_engine.py and
  bench_stats_overhead.py.
- ExactStats (a trial again, when FastStats cannot be trusted): float64, two-pass variance, statistics over
  the finite entries only, exact non-finite counts. A sum of squares that is not finite means the tensor had
  an inf/nan (or overflowed float32); a variance tiny next to the second moment (var < VAR_GUARD * E[x^2],
  i.e. |mean| > ~10 std) means the one-pass formula lost precision. In both cases the trial is run again
  (runs are deterministic by seed) with ExactStats. Ordinary runs pay nothing for these checks.
- Activations with a `post_from_pre` flag save passes, from the tensor the activation is applied to (normed
  with a norm, pre without): a ReLU's post min/max are relu(min/max) of that tensor and its non-zeros are
  #(t > 0) = (#nonzero(t) + sum sign(t))/2 (exact); an identity's post is that tensor. RunResult is the same.
- The weight statistics (mean, std of W^l) use the same sums. mean, std, rms, zero_frac follow on the host
  in float64; std is the population std (ddof=0), pooled over batch x units.

Histograms: HIST_BINS linear bins on [-R, R], the same edges for every layer and trial of a run. Tensors
fall in three groups with their own R = HIST_RANGE x rms of the group's tensor at block 1, measured on
trial 0 (one host sync per run, after block 1):
- pre (R from h^1, falling back to the input's rms, then 1): pre, the gradients, and post without a norm;
- normed (R from n^1, falling back to 1): normed, and post after a norm. A norm makes n ~ N(0, 1) whatever
  the scale of h, which can be far from 1 (normal(std=1) weights at width 1024 give std(h) ~ 32): on the pre
  bins all of n would fall into two bins. The post shares these bins because phi is applied to n;
- out (R from x^1, falling back to the input's rms, then 1): the residual stream, which grows with depth
  in its own way (plain) or stays the input (rezero, fixup).
RunResult.hist_edges are the pre group's edges (the JSON's `hist_edges`); the other groups' edges are in
RunResult.tensor_edges (the JSON's `tensor_hist_edges`). Values beyond the edges are counted in the end bins
(an exploding layer piles up at the edges rather than vanishing); NaNs are not counted. To keep the cost
flat, each layer counts the first ceil(HIST_ELEMENTS / n_l) rows of the batch (RunResult.hist_counted says
how many entries), copied into a sample buffer and binned per chunk of layers in one vectorised pass. A
ReLU's post histogram is its input's with everything below 0 moved to the bin of 0, an identity's is its
input's (on the host, bin for bin what binning the post would give); another piecewise-linear activation's
post sample is act(input sample), computed per chunk.

The cyclic garbage collector is paused during a run (a full collection of a process with torch and numpy
loaded took ~100 ms, more than a whole 50-layer run at width 256); reference counting frees everything, and
the previous state is restored afterwards.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import activations, norms, residual
from .bias import make_bias
from .data import prepare
from .device import check_memory, describe, dtype_of, resolve_device
from .errors import Cancelled, InitscopeError, RunError, SpecError
from .inits import init_weight
from .pairs import PairTrack
from .result import STAT_NAMES, TENSORS, RunResult, tensors_of
from .spec import RunSpec
from .stats import (
    BATCH_BELOW,
    BATCH_FLOATS,
    FULL,
    GRAD,
    GRAD_OUT,
    GRAD_PRE,
    MAX,
    MIN,
    NFIN,
    NNZ,
    NORMED,
    NSLOTS,
    OUT,
    POST,
    PRE,
    SHIFT,
    SLOT,
    SUM,
    SUMSQ,
    WEIGHT,
    ExactStats,
    FastStats,
    K,
)
from .theory.band import kernel_of_rows

HIST_BINS = 40
HIST_RANGE = 4.0
HIST_ELEMENTS = 8192
ZERO_BIN = HIST_BINS // 2  # the bin [0, R / (HIST_BINS / 2)): where 0 falls
VAR_GUARD = {torch.float64: 1e-10}  # others (float32 accumulation): DEFAULT_VAR_GUARD
DEFAULT_VAR_GUARD = 1e-2

SAMPLE_FLOATS = 1 << 18  # forward-only runs bin histogram samples in chunks of at most this many floats (1 MiB)


class _Plan:
    """What a run measures and derives, fixed before it starts (the same for every block and trial)."""

    def __init__(self, spec: RunSpec) -> None:
        self.act = activations.get(spec.act)
        self.norm = norms.get(spec.norm)
        self.residual = residual.get(spec.residual, spec.depth)
        self.v_init = residual.branch_init(spec.init) if self.residual is not None else None
        self.tensors = tensors_of(spec)
        self.slots = [SLOT[t] for t in self.tensors]
        self.forward_slots = [s for s in self.slots if s < GRAD]
        self.act_in = NORMED if self.norm is not None else PRE  # the tensor phi is applied to
        self.derive = self.act.post_from_pre  # "relu", "identity" or ""
        # What a fast trial stages per block for the forward pass, as (slot, field), in the order the block
        # step produces them: W, then each forward tensor. A ReLU's (POST, NNZ) place holds sum(sign t) of the
        # activation's input until _Run.complete() turns it into #(t > 0); an identity's post is not measured.
        fields = [(WEIGHT, SUM), (WEIGHT, SUMSQ)]
        for s in self.forward_slots:
            if s == POST and self.derive == "relu":
                fields += [(POST, SUM), (POST, SUMSQ)]
            elif s != POST or not self.derive:
                fields += [(s, f) for f in FULL]
                if s == self.act_in and self.derive == "relu":
                    fields.append((POST, NNZ))
        self.forward_fields = fields
        # Histograms: which tensors are sampled on the device, and each one's edge group.
        self.group = {s: "pre" for s in self.slots}
        if self.norm is not None:
            self.group[NORMED] = self.group[POST] = "normed"
        if self.residual is not None:
            self.group[OUT] = "out"
        # A ReLU's or an identity's post histogram follows from its input's on the host (_Run.derive_hist);
        # another piecewise-linear activation's post sample is act(input sample), computed per chunk.
        self.post_from_sample = self.act.fn_ if self.act.piecewise_linear and not self.derive else None
        self.sampled = [s for s in self.slots if not (s == POST and self.derive)]
        self.sample_post = POST in self.sampled and self.post_from_sample is None  # sampled per layer


class _Buffers:
    """A trial's device buffers: one float64 buffer (raw sums, staged forward values, histogram counts, data
    sums) copied to the host in one transfer, and a float32 buffer of histogram samples, binned in one
    vectorised pass per chunk of layers."""

    def __init__(self, run: _Run) -> None:
        depth, device, plan = run.depth, run.device, run.plan
        self.depth = depth
        self.plan = plan
        self.shapes = {"raw": (depth, NSLOTS, K), "forward": (depth, len(plan.forward_fields)),
                       "hist": (depth, len(TENSORS), HIST_BINS), "data": (2,)}
        sizes = {name: math.prod(shape) for name, shape in self.shapes.items()}
        self.flat = torch.zeros(sum(sizes.values()), dtype=torch.float64, device=device)
        views, start = {}, 0
        for name, n in sizes.items():
            views[name] = self.flat[start:start + n]
            start += n
        self.raw = views["raw"].view(depth, NSLOTS, K)
        self.forward = views["forward"]
        self.hist = views["hist"].view(depth, len(TENSORS), HIST_BINS)
        self.data = views["data"]
        self.row = {s: i for i, s in enumerate(plan.sampled)}
        self.nt = len(plan.sampled)
        self.hist_index = torch.tensor([s - 1 for s in plan.sampled], device=device)
        self.smax = max(run.hist_counted)
        self.chunk = depth if run.spec.grad else run.group_layers  # forward-only: bin each group as it ends
        self.samples = torch.full((self.chunk, self.nt, self.smax), math.nan, dtype=torch.float32, device=device)
        self.rows = self.samples.view(self.chunk * self.nt, self.smax).unbind(0)  # views made once
        self.scaled = torch.empty_like(self.samples)  # binning scratch, reused (no page faults per flush)
        self.index = torch.empty(self.samples.shape, dtype=torch.int32, device=device)
        offsets = torch.arange(self.chunk * self.nt, device=device, dtype=torch.int32) * (HIST_BINS + 1)
        self.offsets = offsets.view(self.chunk, self.nt, 1)
        self.half_bins = torch.full((), HIST_BINS / 2, dtype=torch.float32, device=device)
        self.chunk_start = 0

    def to_host(self) -> dict[str, np.ndarray]:
        flat = self.flat.cpu().numpy().copy()
        out, start = {}, 0
        for name, shape in self.shapes.items():
            n = math.prod(shape)
            out[name] = flat[start:start + n].reshape(shape)
            start += n
        return out

    def sample(self, layer: int, slot: int, flat: Tensor, n: int) -> None:
        """Keep flat[:n] (the first rows of the tensor in `slot`) for the histogram."""
        dst = self.rows[(layer - self.chunk_start) * self.nt + self.row[slot]]
        if n < self.smax:  # narrower layers: pad with NaN, which is not counted
            dst[n:].fill_(math.nan)
            dst = dst[:n]
        dst.copy_(flat[:n])

    def flush(self, upto: int, scales: dict[str, float]) -> None:
        """Bin the samples of layers chunk_start..upto-1 into hist (one pass), then start a new chunk.

        bin = floor(x * scale + HIST_BINS/2) with scale = HIST_BINS / (2R) of the tensor's group, clamped to
        the end bins; 0 falls exactly on HIST_BINS/2 (the bin [0, R/20)), whatever the rounding of scale."""
        n = upto - self.chunk_start
        if n <= 0:
            return
        plan = self.plan
        if plan.post_from_sample is not None:
            post = self.samples[:n, self.row[POST]]
            plan.post_from_sample(post.copy_(self.samples[:n, self.row[plan.act_in]]))
        per_row = [scales[plan.group[s]] for s in plan.sampled]
        if len(set(per_row)) == 1:  # one group: one op
            t = torch.add(self.half_bins, self.samples[:n], alpha=per_row[0], out=self.scaled[:n])
        else:
            for i, scale in enumerate(per_row):
                torch.add(self.half_bins, self.samples[:n, i], alpha=scale, out=self.scaled[:n, i])
            t = self.scaled[:n]
        t.clamp_(0.0, HIST_BINS - 1).nan_to_num_(nan=float(HIST_BINS))
        idx = self.index[:n]
        idx.copy_(t)  # truncation toward zero = floor for t >= 0
        idx = idx.add_(self.offsets[:n]).view(-1)
        size = n * self.nt * (HIST_BINS + 1)
        if idx.is_cpu:
            counts = torch.bincount(idx, minlength=size)
        else:  # bincount's output size would need a host sync on accelerators
            counts = torch.zeros(size, dtype=torch.float64, device=idx.device)
            counts.index_add_(0, idx, torch.ones(idx.numel(), dtype=torch.float64, device=idx.device))
        counts = counts.view(n, self.nt, HIST_BINS + 1)[:, :, :HIST_BINS]
        self.hist[self.chunk_start:upto].index_copy_(1, self.hist_index, counts.to(torch.float64))
        self.chunk_start = upto


# ---- how the block step's tensors are made ---------------------------------------------------------------
class _InPlaceForward:
    """Forward-only: reused buffers (W, V, two activation buffers, the residual stream), in-place activation."""

    def __init__(self, run: _Run) -> None:
        spec, dt, dev = run.spec, run.dtype, run.device
        self.batch = run.batch
        self.residual = run.plan.residual is not None
        nw = max(a * b for a, b in zip(spec.arch[:-1], spec.arch[1:], strict=True))
        self.wbufs = {"w": torch.empty(nw, dtype=dt, device=dev)}
        if self.residual:
            self.wbufs["v"] = torch.empty(nw, dtype=dt, device=dev)
        width = max(spec.arch[1:])
        # h^l is written into the activation buffer x^(l-1) is not in (without a residual they alternate;
        # with one, x lives in `stream`, h in buffer 0 and V a in buffer 1; after a norm, x^l is the norm's
        # own tensor, in place of which the activation was applied)
        self.acts = [torch.empty(self.batch * width, dtype=dt, device=dev) for _ in range(2)]
        self.stream = torch.empty(self.batch * width, dtype=dt, device=dev) if self.residual else None
        self.views: dict[tuple, Tensor] = {}  # views made once per shape

    def _view(self, key: tuple, base: Tensor, shape: tuple[int, int]) -> Tensor:
        v = self.views.get(key)
        if v is None:
            v = self.views[key] = base[:shape[0] * shape[1]].view(shape)
        return v

    def matrix(self, name: str, n_out: int, n_in: int) -> Tensor:
        return self._view((name, n_out, n_in), self.wbufs[name], (n_out, n_in))

    def start(self, x: Tensor) -> Tensor:
        """The block input the first block sees (a copy when the residual stream is updated in place)."""
        if not self.residual:
            return x
        return self._view(("stream", x.shape[1]), self.stream, tuple(x.shape)).copy_(x)

    def linear(self, layer: int, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        n_out = w.shape[0]
        k = 0 if self.residual else layer % 2
        h = self._view(("act", k, n_out), self.acts[k], (self.batch, n_out))
        if b is None:
            return torch.mm(x, w.t(), out=h)
        return torch.addmm(b, x, w.t(), out=h)  # what F.linear does

    def norm(self, norm, h: Tensor) -> Tensor:
        return norm.fn(h)  # a new tensor per block (so FastStats stages every block: the module docstring says why)

    def act(self, activation, n: Tensor) -> Tensor:
        return activation.fn_(n)

    def residual_add(self, x: Tensor, a: Tensor, v: Tensor, alpha: float) -> Tensor:
        br = self._view(("act", 1, v.shape[0]), self.acts[1], (self.batch, v.shape[0]))
        torch.mm(a, v.t(), out=br)  # F.linear without a bias
        return x.add_(br, alpha=alpha)

    def watch(self, t: Tensor, layer: int, slot: int) -> None:
        pass


class _Autograd:
    """With gradients: fresh tensors, out of place, and a tensor hook per watched tensor."""

    def __init__(self, run: _Run, trial: _Trial) -> None:
        self.r = run
        self.trial = trial

    def matrix(self, name: str, n_out: int, n_in: int) -> Tensor:
        return torch.empty(n_out, n_in, device=self.r.device, dtype=self.r.dtype)

    def start(self, x: Tensor) -> Tensor:
        return x

    def linear(self, layer: int, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        h = F.linear(x, w, b)
        if layer == 0:
            h.requires_grad_(True)  # the graph starts at h^1: dLoss/dx^0 is not needed
        return h

    def norm(self, norm, h: Tensor) -> Tensor:
        return norm.fn(h)

    def act(self, activation, n: Tensor) -> Tensor:
        return activation.fn(n)

    def residual_add(self, x: Tensor, a: Tensor, v: Tensor, alpha: float) -> Tensor:
        return torch.add(x, F.linear(a, v), alpha=alpha)

    def watch(self, t: Tensor, layer: int, slot: int) -> None:
        trial = self.trial
        if trial.watched is not None:  # training: one torch.autograd.grad call for all of them (Trial.watched)
            trial.watched.append((t, layer, slot))
            return

        def hook(g: Tensor) -> None:
            trial.grad(layer, slot, g)  # backward runs without grad mode; g does not require grad
            if slot == GRAD_PRE:
                trial.tick()

        t.register_hook(hook)


class _Trial:
    """One trial: the block step over all blocks, with FastStats or (exact=True) ExactStats."""

    def __init__(self, run: _Run, t: int, exact: bool, *, keep: list | None = None, watch_last: bool = False,
                 extra: Callable[[int, Tensor, Tensor, Tensor], None] | None = None) -> None:
        self.r = run
        self.t = t
        self.exact = exact
        # For training (engine/train.py): `keep` collects the drawn (W, b, V) of every block as leaf tensors that
        # require gradients (the same draws as a run); `given` (set by the caller) replaces the draw by those
        # parameters; watch_last also hooks the last block's output (the loss is then not sum(x^L * u));
        # `extra(slot, index, x, scratch)` sees the forward tensors FastStats measures, as rows of blocks `index`
        # (FastStats' on_rows, engine/stats.py).
        self.keep = keep
        self.given: list | None = None
        self.watch_last = watch_last
        # training: a list here collects the watched tensors as (tensor, layer, slot) instead of hooking them; the
        # caller computes their gradients in one torch.autograd.grad call and hands them to grad() (a tensor hook
        # costs ~20 us to register and as much to call, ~40 per step)
        self.watched: list[tuple[Tensor, int, int]] | None = None
        self.buf = _Buffers(run)
        self.stats = ExactStats(run, self.buf) if exact else FastStats(run, self.buf, on_rows=extra)
        self.acc = torch.float64 if run.dtype == torch.float64 or exact else torch.float32
        self.lsuv_iters = [0] * run.depth
        self.probes: dict[str, tuple[Tensor, int]] = {}  # block 1's (sum of squares, size) per edge group
        self.mode = _Autograd(run, self) if run.spec.grad else _InPlaceForward(run)  # how the tensors are made
        # --pair-corr: input pairs carried beside the batch, never in it (engine/pairs.py)
        self.pairs = PairTrack(run, t) if run.spec.pair_corr is not None else None

    # ---- the block step ------------------------------------------------------------------------------
    def block(self, layer: int, x: Tensor, gen: torch.Generator) -> Tensor:
        """Block layer+1: x^(l-1) -> x^l, every tensor measured and sampled; hooks for the gradients."""
        r, plan, make, stats = self.r, self.r.plan, self.mode, self.stats
        last = layer == r.depth - 1
        w, b, v = self.params(layer, gen, x)
        h = make.linear(layer, x, w, b)
        if self.pairs is not None:
            self.pairs.block(w, b, v, h)
        del b
        stats.weight(layer, w.detach())  # training: W is a leaf that requires gradients
        del w
        self.measure(layer, PRE, h)
        make.watch(h, layer, GRAD_PRE)
        n = h
        if plan.norm is not None:
            n = make.norm(plan.norm, h)
            self.measure(layer, NORMED, n)
        a = make.act(plan.act, n)  # forward-only: in place, n is gone
        del h, n
        self.measure_post(layer, a)
        if plan.residual is None:
            x = a
            if not last or self.watch_last:
                make.watch(x, layer, GRAD)
        else:
            make.watch(a, layer, GRAD)
            x = make.residual_add(x, a, v, plan.residual.alpha)
            self.measure(layer, OUT, x)
            if not last or self.watch_last:
                make.watch(x, layer, GRAD_OUT)
        del a, v
        stats.end_layer(layer)
        if layer == 0 and self.probes:
            r.set_edges(self.probes)
        self.tick()
        return x

    def params(self, layer: int, gen: torch.Generator, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """W, b and V of the block, drawn in that order (see the module docstring)."""
        if self.given is not None:
            return self.given[layer]
        r, plan, spec = self.r, self.r.plan, self.r.spec
        n_in, n_out = spec.arch[layer], spec.arch[layer + 1]
        with torch.no_grad():
            w = self.mode.matrix("w", n_out, n_in)
            init_weight(w, spec.init, spec.act, gen)
            b = make_bias(spec.bias, n_in, n_out, device=r.device, dtype=r.dtype, generator=gen)
            if spec.init.name == "lsuv":
                self.lsuv_iters[layer] = _lsuv(w, b, x, spec.init)
            v = None
            if plan.residual is not None:
                if plan.residual.w_scale != 1.0:
                    w.mul_(plan.residual.w_scale)
                v = self.mode.matrix("v", n_out, n_out)
                if plan.residual.v_zero:
                    v.zero_()
                else:
                    init_weight(v, plan.v_init, spec.act, gen)
        if self.keep is not None:
            for p in (w, b, v):
                if p is not None:
                    p.requires_grad_(True)
            self.keep.append((w, b, v))
        return w, b, v

    def measure(self, layer: int, slot: int, t: Tensor) -> None:
        """Measure and sample (and, block 1 of the first trial, probe) a forward tensor."""
        r = self.r
        f = t.detach().view(-1)
        self.stats.tensor(layer, slot, f, sign_sum=slot == r.plan.act_in and r.plan.derive == "relu")
        if layer == 0 and not r.edges_set:
            self.probe(slot, f)

    def measure_post(self, layer: int, a: Tensor) -> None:
        """A ReLU's post: its sums only; an identity's: nothing (both derived on the host, _Run.complete and
        derive_hist); otherwise measured, and sampled unless its sample follows from its input's."""
        plan = self.r.plan
        f = a.detach().view(-1)
        if plan.derive == "relu" and not self.exact:
            self.stats.relu_post(layer, f)
        elif plan.derive != "identity" or self.exact:
            self.stats.tensor(layer, POST, f, sample=plan.sample_post)

    def probe(self, slot: int, f: Tensor) -> None:
        """Keep sum(t^2) (accumulation dtype, on the device) and the size of block 1's tensor of an edge group."""
        if slot in (PRE, NORMED, OUT):
            v = f.to(self.acc)
            self.probes[TENSORS[slot - 1]] = (torch.dot(v, v), v.numel())

    def grad(self, layer: int, slot: int, g: Tensor) -> None:
        self.stats.grad(layer, slot, g)

    def tick(self) -> None:
        r = self.r
        if r.cancelled is not None and r.cancelled():
            raise Cancelled("The run was cancelled.")
        if r.progress is not None and not self.exact:
            r.done += 1
            r.progress(r.done, r.total)

    # ---- the trial -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Ready the trial's buffers for another pass (training measures one trial at many steps)."""
        self.buf.chunk_start = 0
        self.stats.reset()

    def close(self) -> None:
        """Bin the last histogram chunk and move the staged statistics into the buffer (still on the device)."""
        self.stats.drain()
        self.buf.flush(self.r.depth, self.r.hist_scales)
        self.stats.finish()

    def run(self) -> None:
        r = self.r
        gen = torch.Generator(device=r.device).manual_seed(r.spec.seed + self.t)
        x = r.source.batch(r.spec.batch, device=r.device, dtype=r.dtype, generator=gen)
        f = x.reshape(-1).to(self.acc)
        self.buf.data.copy_(torch.stack((f.sum(), torch.dot(f, f))))
        if not r.edges_set:
            self.probes["input"] = (torch.dot(f, f), f.numel())
        if r.spec.grad:
            x = self.forward(x, gen)
            with torch.no_grad():
                draw = torch.float32 if r.dtype in (torch.bfloat16, torch.float16) else r.dtype
                u = torch.empty(x.shape, device=r.device, dtype=draw).normal_(0.0, 1.0, generator=gen).to(r.dtype)
                self.grad(r.depth - 1, GRAD_OUT if r.plan.residual is not None else GRAD, u)
            # loss = sum(x^L * u): its gradient at x^L is 1 * u = u, bit for bit. (x.backward(u) would give the
            # same, but its first call imports sympy through torch.fx: about 0.5 s on a fresh process.)
            (x * u).sum().backward()
        else:
            with torch.inference_mode():
                self.forward(x, gen)
        self.stats.drain()
        self.buf.flush(r.depth, r.hist_scales)
        self.stats.finish()

    def forward(self, x: Tensor, gen: torch.Generator) -> Tensor:
        r, buf = self.r, self.buf
        x = self.mode.start(x)
        for layer in range(r.depth):
            if layer - buf.chunk_start == buf.chunk:
                buf.flush(layer, r.hist_scales)
            x = self.block(layer, x, gen)
        return x


def _lsuv(w: Tensor, b: Tensor | None, x: Tensor, init) -> int:
    """Mishkin & Matas: rescale W (orthogonal start) by target/std(W x + b) until |std - target| < tol or
    max_iter rescalings; returns the number of rescalings. Host syncs here are inherent to LSUV."""
    tol, max_iter, target = float(init.get("tol")), int(init.get("max_iter")), float(init.get("target"))
    iters = 0
    with torch.no_grad():
        while True:
            h = F.linear(x, w, b)
            std = float(h.reshape(-1).double().std(correction=0))
            if not math.isfinite(std) or std == 0.0:
                return iters
            if abs(std - target) < tol or iters >= max_iter:
                return iters
            w.mul_(target / std)
            iters += 1


class _Run:
    def __init__(self, spec: RunSpec, progress, cancelled) -> None:
        self.spec = spec
        self.progress = progress
        self.cancelled = cancelled
        self.device = resolve_device(spec.device)
        self.dtype = dtype_of(spec.dtype)
        self.depth = spec.depth
        self.plan = _Plan(spec)
        check_memory(spec, self.device)
        self.source = prepare(spec)
        self.batch = spec.batch if self.source.rows is None else self.source.rows.shape[0]
        norm = self.plan.norm
        if norm is not None and self.batch < norm.min_batch:
            raise SpecError("batch", self.batch, f"{norm.name} needs at least {norm.min_batch} examples per batch "
                            "(it normalises each unit over the batch)")
        self.hist_rows = [min(self.batch, max(1, math.ceil(HIST_ELEMENTS / n))) for n in spec.arch[1:]]
        self.hist_counted = [rows * n for rows, n in zip(self.hist_rows, spec.arch[1:], strict=True)]
        self.widest = max(self.batch * n for n in spec.arch[1:])  # entries of the largest activation
        # FastStats reduces the small forward tensors of `group_layers` blocks together, and a forward-only run
        # bins their histogram samples per such group: at most SAMPLE_FLOATS samples and BATCH_FLOATS entries
        # of one kind per group. Fixed by the spec, so every kind of run (and a training step) makes the same
        # groups and the same float32 sums.
        forward_sampled = sum(1 for s in self.plan.sampled if s < GRAD)
        small = [self.batch * n for n in spec.arch[1:] if self.batch * n < BATCH_BELOW]
        self.group_layers = max(1, min(self.depth, SAMPLE_FLOATS // (max(1, forward_sampled) * max(self.hist_counted)),
                                       BATCH_FLOATS // max(small, default=1)))
        self.hist_r: dict[str, float] = {}  # R per edge group: the bins span [-R, R]; set after block 1 of trial 0
        self.hist_scales: dict[str, float] = {}
        self.edges_set = False
        self.total = spec.trials * self.depth * (2 if spec.grad else 1)
        self.done = 0

    def set_edges(self, probes: dict[str, tuple[Tensor, int]]) -> None:
        """R = HIST_RANGE x rms per edge group from block 1's sums of squares (the run's one host sync), with
        the fallbacks of the module docstring (pre: the input, then 1; normed: 1; out: the input, then 1)."""
        names = list(probes)
        sums = torch.stack([probes[k][0].double() for k in names]).tolist()
        mean_sq = {k: s / max(1, probes[k][1]) for k, s in zip(names, sums, strict=True)}

        def rms(*keys: str) -> float:
            for key in keys:
                v = math.sqrt(mean_sq[key]) if mean_sq.get(key, -1.0) >= 0 else math.nan
                if math.isfinite(v) and v > 0:
                    return v
            return 1.0

        fallback = {"pre": ("pre", "input"), "normed": ("normed",), "out": ("out", "input")}
        for group in set(self.plan.group.values()):
            r = HIST_RANGE * rms(*fallback[group])
            self.hist_r[group] = r
            self.hist_scales[group] = HIST_BINS / (2 * r)
        self.edges_set = True

    def complete(self, host: dict[str, np.ndarray]) -> None:
        """Fill a fast trial's raw sums from its staged forward values (_Plan.forward_fields), and what it
        derived instead of measuring: a ReLU's post min/max/non-zeros, an identity's post. Any leading axes
        (training completes all recorded steps of a trial at once)."""
        raw, plan = host["raw"], self.plan
        for j, (slot, field) in enumerate(plan.forward_fields):
            raw[..., slot, field] = host["forward"][..., j]
        src = plan.act_in
        if plan.derive == "relu":
            raw[..., POST, MIN] = np.maximum(raw[..., src, MIN], 0.0)
            raw[..., POST, MAX] = np.maximum(raw[..., src, MAX], 0.0)
            raw[..., POST, NNZ] = (raw[..., src, NNZ] + raw[..., POST, NNZ]) / 2  # (nonzero + sum sign(t))/2 = #(t > 0)
        elif plan.derive == "identity":
            raw[..., POST, :] = raw[..., src, :]

    def derive_hist(self, host: dict[str, np.ndarray]) -> None:
        """A ReLU's post histogram is its input's with everything below 0 moved to the bin of 0 (ZERO_BIN; what
        binning relu(t) gives, bin for bin); an identity's is its input's."""
        hist, plan = host["hist"], self.plan
        post, src = POST - 1, plan.act_in - 1
        if plan.derive == "relu":
            hist[..., post, ZERO_BIN] = hist[..., src, :ZERO_BIN + 1].sum(axis=-1)
            hist[..., post, ZERO_BIN + 1:] = hist[..., src, ZERO_BIN + 1:]
            hist[..., post, :ZERO_BIN] = 0.0
        elif plan.derive == "identity":
            hist[..., post, :] = hist[..., src, :]

    def needs_exact(self, host: dict[str, np.ndarray]) -> bool:
        raw = host["raw"]
        slots = self.plan.slots
        vals = raw[:, slots, :NFIN]
        if not (np.isfinite(vals).all() and np.isfinite(raw[:, WEIGHT, :2]).all()):
            return True
        n = np.array([self.batch * w for w in self.spec.arch[1:]], dtype=np.float64)[:, None]
        mean = raw[:, slots, SUM] / n
        second = raw[:, slots, SUMSQ] / n
        var = second - mean * mean
        guard = VAR_GUARD.get(self.dtype, DEFAULT_VAR_GUARD)
        return bool((var < guard * second).any())

    def run_trial(self, t: int) -> tuple[dict[str, np.ndarray], list[int]]:
        trial = _Trial(self, t, exact=False)
        trial.run()
        host = trial.buf.to_host()
        self.complete(host)
        self.derive_hist(host)
        if self.needs_exact(host):
            trial = _Trial(self, t, exact=True)
            trial.run()
            host = trial.buf.to_host()
            host["exact"] = np.ones(1)
            self.derive_hist(host)
        if trial.pairs is not None:
            host["corr_input"], host["corr"] = trial.pairs.to_host(self.depth)
        return host, trial.lsuv_iters

    def edges(self, group: str) -> np.ndarray:
        r = self.hist_r[group]
        return np.linspace(-r, r, HIST_BINS + 1)


def _finish(raw: np.ndarray, exact: bool, n: np.ndarray) -> np.ndarray:
    """[..., L, K] raw sums -> [..., L, 7] statistics in STAT_NAMES order (n: [L] entries per block)."""
    out = np.full(raw.shape[:-1] + (len(STAT_NAMES),), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if exact:
            nfin = raw[..., NFIN]
            shift = raw[..., SHIFT]
        else:
            nfin = n.astype(np.float64)
            shift = np.zeros_like(nfin)
        m1 = raw[..., SUM] / nfin
        var = np.maximum(raw[..., SUMSQ] / nfin - m1 * m1, 0.0)
        mean = shift + m1
        ok = nfin > 0
        out[..., 0] = np.where(ok, mean, np.nan)
        out[..., 1] = np.where(ok, np.sqrt(var), np.nan)
        out[..., 2] = np.where(ok, np.sqrt(var + mean * mean), np.nan)
        out[..., 3] = np.where(ok, raw[..., MIN], np.nan)
        out[..., 4] = np.where(ok, raw[..., MAX], np.nan)
        out[..., 5] = (nfin - raw[..., NNZ]) / n
        out[..., 6] = (n - nfin) / n
    return out


def run(spec: RunSpec, *, progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None) -> RunResult:
    """Run every trial of `spec` and return the measured statistics (see the module docstring)."""
    start = time.perf_counter()
    r = _Run(spec, progress, cancelled)
    hosts: list[dict[str, np.ndarray]] = []
    lsuv: list[list[int]] = []
    # The loop allocates many small tensors but no reference cycles; a full collection of the whole
    # process heap (torch, numpy, the TUI) can take ~100 ms, longer than a run's layers. Pause the cyclic
    # collector for the run (reference counting still frees everything) and restore it afterwards.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for t in range(spec.trials):
            host, iters = r.run_trial(t)
            hosts.append(host)
            lsuv.append(iters)
    except InitscopeError:
        raise
    except (torch.OutOfMemoryError, MemoryError):
        raise RunError(f"The run ran out of memory on {describe(r.device)}; reduce the batch, the widths or "
                       f"the depth{' or turn gradients off' if spec.grad else ''}.") from None
    except RuntimeError as e:
        text = " ".join(str(e).split())
        if "out of memory" in text.lower():
            raise RunError(f"The run ran out of memory on {describe(r.device)}; reduce the batch, the widths or "
                           "the depth.") from None
        raise RunError(f"The run failed on {describe(r.device)}: {text[:200]}.") from None
    finally:
        if gc_was_enabled:
            gc.enable()
    n = np.array([r.batch * w for w in spec.arch[1:]], dtype=np.float64)
    stats = {name: np.stack([_finish(h["raw"][:, SLOT[name]], "exact" in h, n) for h in hosts])
             for name in r.plan.tensors}
    hist = {name: np.stack([h["hist"][:, SLOT[name] - 1] for h in hosts]) for name in r.plan.tensors}
    wn = np.array([a * b for a, b in zip(spec.arch[:-1], spec.arch[1:], strict=True)], dtype=np.float64)
    weight = np.stack([_weight(h["raw"][:, WEIGHT], wn) for h in hosts])
    n0 = r.batch * spec.arch[0]
    data_mean = float(np.mean([h["data"][0] / n0 for h in hosts]))
    data_m2 = float(np.mean([h["data"][1] / n0 for h in hosts]))
    tensor_edges = {name: r.edges(r.plan.group[SLOT[name]]) for name in r.plan.tensors
                    if r.plan.group[SLOT[name]] != "pre"}
    notes = list(r.source.notes)
    exact_trials = sum("exact" in h for h in hosts)
    if exact_trials:
        notes.append(f"{exact_trials} trial(s) had non-finite values or a mean far from zero next to the std, "
                     "so their statistics were recomputed exactly (float64, finite entries only).")
    return RunResult(
        spec=spec,
        device=describe(r.device),
        dtype=spec.dtype,
        elapsed_s=time.perf_counter() - start,
        stats=stats,
        weight=weight,
        hist_edges=r.edges("pre"),
        hist=hist,
        lsuv_iterations=tuple(int(max(col)) for col in zip(*lsuv, strict=True)) if spec.init.name == "lsuv" else None,
        data_mean=data_mean,
        data_second_moment=data_m2,
        notes=tuple(notes),
        hist_counted=tuple(r.hist_counted),
        data_kernel=None if r.source.rows is None else kernel_of_rows(r.source.rows),
        tensor_edges=tensor_edges,
        **_corr(hosts),
    )


def _corr(hosts: list[dict]) -> dict:
    """RunResult.corr ({key: [T, L]}) and corr_input ([T]) from the trials' pair measurements, if any."""
    if "corr" not in hosts[0]:
        return {}
    keys = hosts[0]["corr"]
    return {"corr": {k: np.stack([h["corr"][k] for h in hosts]) for k in keys},
            "corr_input": np.array([h["corr_input"] for h in hosts], dtype=np.float64)}


def _weight(raw: np.ndarray, n: np.ndarray) -> np.ndarray:
    mean = raw[:, 0] / n
    var = np.maximum(raw[:, 1] / n - mean * mean, 0.0)
    return np.stack([mean, np.sqrt(var)], axis=1)


__all__ = ["run", "FastStats", "ExactStats", "HIST_BINS", "HIST_RANGE", "HIST_ELEMENTS"]
