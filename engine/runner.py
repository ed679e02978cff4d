"""The run: forward (and backward) through L linear+activation blocks, statistics at every block.

How the statistics are computed (the speed design; see benchmarks/bench_engine.py for the numbers):
- Per block and tensor (pre h^l, post x^l, grad g^l, grad_pre delta^l) the device computes a few
  one-pass reductions (float32 accumulation, float64 for float64 runs; bfloat16/float16 tensors are
  upcast to float32 first): sum, sum of squares (a dot product), min and max (aminmax), and the number
  of non-zero entries (dot(sign x, sign x), sign written into one reused buffer; float32 counts exactly
  only up to 2^24, so a larger tensor counts in float64: EXACT_COUNT); the read-only passes
  run first, while the tensor is still in cache. The 0-d results of the forward pass are collected and
  stacked into a staging buffer every STAGE_VALUES values (one op for many blocks), gradients per tensor
  (torch.stack(out=...)); everything is copied to the host once per trial: no host sync per layer.
  Measured on a 2-core CPU, torch.std/var cost ~10-40x these, and count_nonzero is ~10x slower on ReLU
  outputs (branchy); see the benchmarks. What these passes cost by themselves (no engine around them)
  is measured by benchmarks/bench_stats_overhead.py ("floor").
- ReLU and identity save passes: a ReLU's post min/max are relu(pre min/max) and its non-zeros are
  #(h > 0) = (#nonzero(h) + sum sign(h))/2 (exact); an identity's post is its pre. RunResult is the same.
- The weight statistics (mean, std of W^l) use the same sums.
- mean, std, rms, zero_frac follow on the host in float64. std is the population std (ddof=0),
  pooled over batch x units.
- Non-finite entries and precision: a sum of squares that is not finite means the tensor had an
  inf/nan (or overflowed float32). A variance that is tiny next to the second moment
  (var < VAR_GUARD * E[x^2], i.e. |mean| > ~10 std) means the one-pass formula lost precision. In both
  cases the trial is run again (runs are deterministic by seed) in exact mode: float64, two-pass
  variance, statistics over the finite entries only, exact non-finite counts. So the fast path is never
  trusted where it could be wrong, and ordinary runs pay nothing for these checks.
- Histograms: HIST_BINS linear bins on [-R, R], the same edges for every layer, tensor and trial of a
  run, with R = HIST_RANGE x rms(h^1) measured on trial 0 (the one host sync of a run; falls back to the
  input's rms, then 1). Values beyond the edges are counted in the end bins (an exploding layer piles up
  at the edges rather than vanishing); NaNs are not counted. To keep the cost flat, each layer counts the
  first ceil(HIST_ELEMENTS / n_l) rows of the batch (RunResult.hist_counted says how many entries),
  copied into a sample buffer and binned per chunk of layers in one vectorised pass. A ReLU's post
  histogram is its pre's with everything below 0 moved to the bin of 0, an identity's is its pre's
  (both on the host, bin for bin what binning the post would give); another piecewise-linear
  activation's post sample is act(pre sample), computed per chunk.
- The cyclic garbage collector is paused during a run (a full collection of a process with torch and
  numpy loaded took ~100 ms, more than a whole 50-layer run at width 256); reference counting frees
  everything, and the previous state is restored afterwards.
- Forward-only runs hold one block at a time (W^l is drawn, used and dropped; the activation is applied
  in place). With gradients, autograd keeps what backward needs; tensor hooks on h^l and x^l see
  delta^l and g^l as autograd computes them, so the grad statistics are autograd's by construction.
  The backward starts at x^L with dL/dx^L = u ~ N(0, 1) (from loss = sum(x^L * u)), and stops at
  h^1 (dL/dx^0 is not needed).
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

from . import activations
from .bias import make_bias
from .data import prepare
from .device import check_memory, describe, dtype_of, resolve_device
from .errors import Cancelled, InitscopeError, RunError
from .inits import init_weight
from .result import STAT_NAMES, TENSORS, RunResult
from .spec import RunSpec
from .theory.band import kernel_of_rows

HIST_BINS = 40
HIST_RANGE = 4.0
HIST_ELEMENTS = 8192
ZERO_BIN = HIST_BINS // 2  # the bin [0, R / (HIST_BINS / 2)): where 0 falls
VAR_GUARD = {torch.float64: 1e-10}  # others (float32 accumulation): DEFAULT_VAR_GUARD
DEFAULT_VAR_GUARD = 1e-2

WEIGHT, PRE, POST, GRAD, GRAD_PRE = range(5)  # slots of the raw buffer (TENSORS[k] is slot k + 1)
# raw fields per (layer, slot); fast mode fills the first five (weight: the first two)
SUM, SUMSQ, MIN, MAX, NNZ, NFIN, SHIFT = range(7)
K = 7
SAMPLE_FLOATS = 1 << 18  # forward-only runs bin histogram samples in chunks of at most this many floats (1 MiB)
EXACT_COUNT = 1 << 24  # float32 sums count exactly up to 2^24; larger tensors count in float64
STAGE_VALUES = 512  # a fast trial stacks its 0-d forward results into one buffer once this many are pending

# What a fast trial stages per block for the forward pass, as (slot, field), in order. A ReLU's post min/max
# are derived on the host, and its (POST, NNZ) place holds sum(sign h) until _Run.complete() turns it into
# #(h > 0); an identity's post is its pre.
_WEIGHT_FIELDS = [(WEIGHT, SUM), (WEIGHT, SUMSQ)]
_PRE_FIELDS = [(PRE, f) for f in (SUM, SUMSQ, MIN, MAX, NNZ)]
_POST_FIELDS = [(POST, f) for f in (SUM, SUMSQ, MIN, MAX, NNZ)]
FORWARD_FIELDS = {
    "relu": _WEIGHT_FIELDS + _PRE_FIELDS + [(POST, NNZ), (POST, SUM), (POST, SUMSQ)],
    "identity": _WEIGHT_FIELDS + _PRE_FIELDS,
    None: _WEIGHT_FIELDS + _PRE_FIELDS + _POST_FIELDS,
}


class _Buffers:
    """A trial's device buffers: one float64 buffer (raw sums, staged forward values, histogram counts, data
    sums) copied to the host in one transfer, and a float32 buffer of histogram samples, binned in one
    vectorised pass per chunk of layers."""

    def __init__(self, run: _Run) -> None:
        depth, device = run.depth, run.device
        self.depth = depth
        self.shapes = {"raw": (depth, 5, K), "forward": (depth, len(FORWARD_FIELDS[run.derive])),
                       "hist": (depth, 4, HIST_BINS), "data": (2,)}
        sizes = {name: math.prod(shape) for name, shape in self.shapes.items()}
        self.flat = torch.zeros(sum(sizes.values()), dtype=torch.float64, device=device)
        views, start = {}, 0
        for name, n in sizes.items():
            views[name] = self.flat[start:start + n]
            start += n
        self.raw = views["raw"].view(depth, 5, K)
        self.forward = views["forward"]
        self.hist = views["hist"].view(depth, 4, HIST_BINS)
        self.data = views["data"]
        # Which tensors are sampled (0 pre, 1 post, 2 grad, 3 grad_pre). A ReLU's or an identity's post
        # histogram follows from the pre's on the host (_Run.derive_hist); another piecewise-linear
        # activation's post sample is act(pre sample), computed per chunk in flush().
        self.post_from_pre = run.act.fn_ if run.act.piecewise_linear and run.derive is None else None
        self.sampled = [0] + ([1] if run.derive is None else []) + ([2, 3] if run.spec.grad else [])
        self.row = {k: i for i, k in enumerate(self.sampled)}
        self.sample_post = 1 in self.row and self.post_from_pre is None  # sampled per layer
        self.nt = len(self.sampled)
        self.sampled_index = torch.tensor(self.sampled, device=device)
        self.smax = max(run.hist_counted)
        self.chunk = depth if run.spec.grad else max(1, min(depth, SAMPLE_FLOATS // (self.nt * self.smax)))
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

    def sample(self, layer: int, k: int, flat: Tensor, n: int) -> None:
        """Keep flat[:n] (the first rows of tensor k: 0 pre, 1 post, 2 grad, 3 grad_pre) for the histogram."""
        dst = self.rows[(layer - self.chunk_start) * self.nt + self.row[k]]
        if n < self.smax:  # narrower layers: pad with NaN, which is not counted
            dst[n:].fill_(math.nan)
            dst = dst[:n]
        dst.copy_(flat[:n])

    def flush(self, upto: int, scale: float) -> None:
        """Bin the samples of layers chunk_start..upto-1 into hist (one pass), then start a new chunk.

        bin = floor(x * scale + HIST_BINS/2) with scale = HIST_BINS / (2R), clamped to the end bins; 0 falls
        exactly on HIST_BINS/2 (the bin [0, R/20)), whatever the rounding of scale."""
        n = upto - self.chunk_start
        if n <= 0:
            return
        if self.post_from_pre is not None:
            post = self.samples[:n, self.row[1]]
            self.post_from_pre(post.copy_(self.samples[:n, 0]))
        t = torch.add(self.half_bins, self.samples[:n], alpha=scale, out=self.scaled[:n])
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
        self.hist[self.chunk_start:upto].index_copy_(1, self.sampled_index, counts.to(torch.float64))
        self.chunk_start = upto


class _Trial:
    """One trial's computation; `exact` selects the careful (float64, two-pass, finite-only) statistics."""

    def __init__(self, run: _Run, t: int, exact: bool) -> None:
        self.r = run
        self.t = t
        self.exact = exact
        self.buf = _Buffers(run)
        self.lsuv_iters = [0] * run.depth
        self.acc = torch.float64 if run.dtype == torch.float64 or exact else torch.float32
        # Fast mode: the 0-d results of the forward reductions are collected in `vals` and stacked into
        # `forward_stage` every STAGE_VALUES values (one op for many layers; bounded memory), which is
        # copied into the float64 buffer at the end of the trial. Gradients are stacked per tensor into
        # `grad_stage`. No host sync.
        self.vals: list[Tensor] = []
        self.staged = 0  # layers already stacked into forward_stage
        self.nfields = len(FORWARD_FIELDS[run.derive])
        # a tensor of more than EXACT_COUNT entries has its counts in float64, so the stages are float64 too
        stage = torch.float64 if run.widest > EXACT_COUNT else self.acc
        self.forward_stage = torch.zeros(run.depth * self.nfields, dtype=stage, device=run.device)
        self.grad_stage = torch.zeros((run.depth, 2, NFIN), dtype=stage, device=run.device) if run.spec.grad else None
        self.sign_buf = torch.empty(run.widest, dtype=self.acc, device=run.device)  # reused: no page faults
        self.signs: dict[int, Tensor] = {}  # sign_buf[:n], made once per n

    # ---- statistics -------------------------------------------------------------------------------
    def _flat(self, v: Tensor) -> Tensor:
        if v.dim() != 1:
            v = v.reshape(-1)
        return v if v.dtype == self.acc else v.to(self.acc)

    def _fast(self, f: Tensor) -> list[Tensor]:
        """sum, sum of squares, min, max, number of non-zeros (dot(sign x, sign x)): four passes over x and
        one over sign(x) (left in sign_buf), no host sync."""
        s1, s2 = f.sum(), torch.dot(f, f)  # read-only passes first, while f is in cache
        mn, mx = torch.aminmax(f)
        n = f.numel()
        if n not in self.signs:
            self.signs[n] = self.sign_buf[:n]
        sg = torch.sign(f, out=self.signs[n])
        nnz = torch.dot(sg, sg) if n <= EXACT_COUNT else torch.linalg.vector_norm(sg, 1, dtype=torch.float64)
        return [s1, s2, mn, mx, nnz]

    def _sign_sum(self, n: int) -> Tensor:
        """sum(sign h) of the last _fast call on n entries (exact: float64 beyond EXACT_COUNT)."""
        sg = self.signs[n]
        return sg.sum() if n <= EXACT_COUNT else sg.sum(dtype=torch.float64)

    def _exact(self, f: Tensor) -> Tensor:
        """Over the finite entries, in float64, two-pass: sum and sum of squares of (x - mean), min, max,
        non-zeros, finite count, mean."""
        f = f.double()
        fin = torch.isfinite(f)
        n = fin.sum().double()
        mean = torch.where(fin, f, 0.0).sum() / n.clamp_min(1.0)
        d = torch.where(fin, f - mean, 0.0)
        mn = torch.where(fin, f, math.inf).amin()
        mx = torch.where(fin, f, -math.inf).amax()
        nnz = (fin & (f != 0)).sum().double()
        return torch.stack([d.sum(), torch.dot(d, d), mn, mx, nnz, n, mean])

    def _pre(self, layer: int, w: Tensor, h: Tensor) -> None:
        """Statistics of W and h (a flat view), before the activation may overwrite h."""
        wf, f = self._flat(w), self._flat(h)
        if self.exact:
            self.buf.raw[layer, WEIGHT, :2].copy_(torch.stack((wf.sum(), torch.dot(wf, wf))))
            self.buf.raw[layer, PRE].copy_(self._exact(f))
            return
        self.vals += [wf.sum(), torch.dot(wf, wf)] + self._fast(f)
        if self.r.derive == "relu":  # #(h > 0) = (#nonzero + sum sign h) / 2 (on the host)
            self.vals.append(self._sign_sum(f.numel()))

    def _post(self, layer: int, x: Tensor) -> None:
        """Statistics of x (a flat view); a fast trial derives what it can (FORWARD_FIELDS)."""
        derive = self.r.derive
        if self.exact:
            self.buf.raw[layer, POST].copy_(self._exact(self._flat(x)))
        elif derive is None:
            self.vals += self._fast(self._flat(x))
        elif derive == "relu":
            f = self._flat(x)
            self.vals += (f.sum(), torch.dot(f, f))
        # identity: the post is the pre
        if len(self.vals) >= STAGE_VALUES:
            self._stage(layer + 1)

    def _stage(self, upto: int) -> None:
        """Stack the pending forward values of layers staged..upto-1 into forward_stage (one op)."""
        if self.vals:
            k = self.nfields
            torch.stack(self.vals, out=self.forward_stage[self.staged * k:upto * k])
            self.vals.clear()
        self.staged = upto

    def grad_stats(self, layer: int, slot: int, g: Tensor) -> None:
        f = self._flat(g)
        if self.exact:
            self.buf.raw[layer, slot].copy_(self._exact(f))
        else:
            torch.stack(self._fast(f), out=self.grad_stage[layer, slot - GRAD])
        self.buf.sample(layer, slot - 1, g.reshape(-1), self.r.hist_counted[layer])

    def finish(self) -> None:
        if not self.exact:
            self._stage(self.r.depth)
            self.buf.forward.copy_(self.forward_stage)
            if self.grad_stage is not None:
                self.buf.raw[:, GRAD:, :NFIN].copy_(self.grad_stage)

    # ---- the blocks ---------------------------------------------------------------------------------
    def _block_params(self, layer: int, gen: torch.Generator, x: Tensor,
                      w: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        r = self.r
        n_in, n_out = r.spec.arch[layer], r.spec.arch[layer + 1]
        if w is None:
            w = torch.empty(n_out, n_in, device=r.device, dtype=r.dtype)
        init_weight(w, r.spec.init, r.spec.act, gen)
        b = make_bias(r.spec.bias, n_in, n_out, device=r.device, dtype=r.dtype, generator=gen)
        if r.spec.init.name == "lsuv":
            self.lsuv_iters[layer] = _lsuv(w, b, x, r.spec.init)
        return w, b

    def _tick(self) -> None:
        r = self.r
        if r.cancelled is not None and r.cancelled():
            raise Cancelled("The run was cancelled.")
        if r.progress is not None and not self.exact:
            r.done += 1
            r.progress(r.done, r.total)

    def run(self) -> None:
        r = self.r
        gen = torch.Generator(device=r.device).manual_seed(r.spec.seed + self.t)
        x = r.source.batch(r.spec.batch, device=r.device, dtype=r.dtype, generator=gen)
        f = self._flat(x)
        self.buf.data.copy_(torch.stack((f.sum(), torch.dot(f, f))))
        if r.spec.grad:
            self._forward_backward(x, gen)
        else:
            with torch.inference_mode():
                self._forward(x, gen)
        self.buf.flush(r.depth, r.hist_scale)
        self.finish()

    def _first_pre(self, h: Tensor, x0: Tensor) -> None:
        """Fix the histogram range from rms(h^1) of the first trial (the run's one host sync)."""
        r = self.r
        if not r.hist_r:
            rms = 0.0
            for v in (h, x0):  # fall back to the input's rms, then 1
                f = v.detach().reshape(-1).to(self.acc)
                rms = math.sqrt(float(torch.dot(f, f)) / max(1, f.numel())) if f.numel() else 0.0
                if math.isfinite(rms) and rms > 0:
                    break
            if not (math.isfinite(rms) and rms > 0):
                rms = 1.0
            r.set_hist_range(HIST_RANGE * rms)

    def _forward(self, x: Tensor, gen: torch.Generator) -> None:
        r, buf, act, spec = self.r, self.buf, self.r.act, self.r.spec
        x0 = x
        # Reused buffers: W, and two activation buffers used in turn (h^l is written into the one x^{l-1}
        # is not in). Fresh large allocations every layer cost page faults (measured ~50 per layer at
        # width 256, ~10% of the run); reuse keeps memory flat and the loop allocation-free. The views are
        # made once per shape.
        wbuf = torch.empty(max(a * b for a, b in zip(spec.arch[:-1], spec.arch[1:], strict=True)),
                           dtype=r.dtype, device=r.device)
        width = max(spec.arch[1:])
        acts = [torch.empty(r.batch * width, dtype=r.dtype, device=r.device) for _ in range(2)]
        w_views: dict[tuple[int, int], Tensor] = {}  # (n_out, n_in) -> W
        h_views: dict[tuple[int, int], Tensor] = {}  # (buffer, n_out) -> h, flat
        for layer in range(r.depth):
            if layer - buf.chunk_start == buf.chunk:
                buf.flush(layer, r.hist_scale)
            n_in, n_out = spec.arch[layer], spec.arch[layer + 1]
            if (n_out, n_in) not in w_views:
                w_views[n_out, n_in] = wbuf[:n_out * n_in].view(n_out, n_in)
            if (layer % 2, n_out) not in h_views:
                h_views[layer % 2, n_out] = acts[layer % 2][:r.batch * n_out]
            w, b = self._block_params(layer, gen, x, w_views[n_out, n_in])
            hf = h_views[layer % 2, n_out]
            h = hf.view(r.batch, n_out)
            if b is None:
                torch.mm(x, w.t(), out=h)
            else:
                torch.addmm(b, x, w.t(), out=h)  # what F.linear does
            del b
            if layer == 0:
                self._first_pre(hf, x0)
            n = r.hist_counted[layer]
            buf.sample(layer, 0, hf, n)
            self._pre(layer, w, hf)
            del w
            x = act.fn_(h)
            del h
            xf = x.view(-1)
            if buf.sample_post:
                buf.sample(layer, 1, xf, n)
            self._post(layer, xf)
            self._tick()

    def _forward_backward(self, x: Tensor, gen: torch.Generator) -> None:
        r, buf, act = self.r, self.buf, self.r.act
        x0 = x
        for layer in range(r.depth):
            with torch.no_grad():
                w, b = self._block_params(layer, gen, x)
            h = F.linear(x, w, b)
            del b
            if layer == 0:
                h.requires_grad_(True)
                self._first_pre(h, x0)
            # detached views: the statistics are not recorded by autograd
            hf = h.detach().view(-1)
            n = r.hist_counted[layer]
            buf.sample(layer, 0, hf, n)
            self._pre(layer, w, hf)
            del w, hf
            h.register_hook(self._hook(layer, GRAD_PRE))
            x = act.fn(h)
            del h
            xf = x.detach().view(-1)
            if buf.sample_post:
                buf.sample(layer, 1, xf, n)
            self._post(layer, xf)
            del xf
            if layer < r.depth - 1:
                x.register_hook(self._hook(layer, GRAD))
            self._tick()
        with torch.no_grad():
            draw = torch.float32 if r.dtype in (torch.bfloat16, torch.float16) else r.dtype
            u = torch.empty(x.shape, device=r.device, dtype=draw).normal_(0.0, 1.0, generator=gen).to(r.dtype)
            self.grad_stats(r.depth - 1, GRAD, u)
        # loss = sum(x^L * u): its gradient at x^L is 1 * u = u, bit for bit. (x.backward(u) would give the
        # same, but its first call imports sympy through torch.fx: about 0.5 s on a fresh process.)
        (x * u).sum().backward()

    def _hook(self, layer: int, slot: int) -> Callable[[Tensor], None]:
        def hook(g: Tensor) -> None:
            self.grad_stats(layer, slot, g)  # backward runs without grad mode; g does not require grad
            if slot == GRAD_PRE:
                self._tick()

        return hook


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
        self.act = activations.get(spec.act)
        check_memory(spec, self.device)
        self.source = prepare(spec)
        self.batch = spec.batch if self.source.rows is None else self.source.rows.shape[0]
        self.hist_rows = [min(self.batch, max(1, math.ceil(HIST_ELEMENTS / n))) for n in spec.arch[1:]]
        self.hist_counted = [rows * n for rows, n in zip(self.hist_rows, spec.arch[1:], strict=True)]
        self.widest = max(self.batch * n for n in spec.arch[1:])  # entries of the largest activation
        self.derive = spec.act.name if spec.act.name in ("relu", "identity") else None
        self.hist_r = 0.0  # R: the bins span [-R, R]; set by the first block of trial 0
        self.hist_scale = 0.0
        self.total = spec.trials * self.depth * (2 if spec.grad else 1)
        self.done = 0

    def set_hist_range(self, r: float) -> None:
        self.hist_r = r
        self.hist_scale = HIST_BINS / (2 * r)

    def complete(self, host: dict[str, np.ndarray]) -> None:
        """Fill a fast trial's raw sums from its staged forward values (FORWARD_FIELDS), and what it derived
        instead of measuring: a ReLU's post min/max/non-zeros, an identity's post."""
        raw = host["raw"]
        for j, (slot, field) in enumerate(FORWARD_FIELDS[self.derive]):
            raw[:, slot, field] = host["forward"][:, j]
        if self.derive == "relu":
            raw[:, POST, MIN] = np.maximum(raw[:, PRE, MIN], 0.0)
            raw[:, POST, MAX] = np.maximum(raw[:, PRE, MAX], 0.0)
            raw[:, POST, NNZ] = (raw[:, PRE, NNZ] + raw[:, POST, NNZ]) / 2  # (nonzero + sum sign(h))/2 = #(h > 0)
        elif self.derive == "identity":
            raw[:, POST] = raw[:, PRE]

    def derive_hist(self, host: dict[str, np.ndarray]) -> None:
        """A ReLU's post histogram is its pre's with everything below 0 moved to the bin of 0 (ZERO_BIN; what
        binning relu(x) gives, bin for bin); an identity's is its pre's."""
        hist = host["hist"]
        if self.derive == "relu":
            hist[:, 1, ZERO_BIN] = hist[:, 0, :ZERO_BIN + 1].sum(axis=1)
            hist[:, 1, ZERO_BIN + 1:] = hist[:, 0, ZERO_BIN + 1:]
            hist[:, 1, :ZERO_BIN] = 0.0
        elif self.derive == "identity":
            hist[:, 1] = hist[:, 0]

    def needs_exact(self, host: dict[str, np.ndarray]) -> bool:
        raw = host["raw"]
        k = 5 if self.spec.grad else 3
        vals = raw[:, PRE:k, :NFIN]
        if not (np.isfinite(vals).all() and np.isfinite(raw[:, WEIGHT, :2]).all()):
            return True
        n = np.array([self.batch * w for w in self.spec.arch[1:]], dtype=np.float64)[:, None]
        mean = raw[:, PRE:k, SUM] / n
        second = raw[:, PRE:k, SUMSQ] / n
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
        return host, trial.lsuv_iters


def _finish(raw: np.ndarray, exact: bool, n: np.ndarray) -> np.ndarray:
    """[L, K] raw sums -> [L, 7] statistics in STAT_NAMES order."""
    out = np.full((raw.shape[0], len(STAT_NAMES)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if exact:
            nfin = raw[:, NFIN]
            shift = raw[:, SHIFT]
        else:
            nfin = n.astype(np.float64)
            shift = np.zeros_like(nfin)
        m1 = raw[:, SUM] / nfin
        var = np.maximum(raw[:, SUMSQ] / nfin - m1 * m1, 0.0)
        mean = shift + m1
        ok = nfin > 0
        out[:, 0] = np.where(ok, mean, np.nan)
        out[:, 1] = np.where(ok, np.sqrt(var), np.nan)
        out[:, 2] = np.where(ok, np.sqrt(var + mean * mean), np.nan)
        out[:, 3] = np.where(ok, raw[:, MIN], np.nan)
        out[:, 4] = np.where(ok, raw[:, MAX], np.nan)
        out[:, 5] = (nfin - raw[:, NNZ]) / n
        out[:, 6] = (n - nfin) / n
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
    tensors = TENSORS if spec.grad else TENSORS[:2]
    stats = {name: np.stack([_finish(h["raw"][:, k + 1], "exact" in h, n) for h in hosts])
             for k, name in enumerate(tensors)}
    hist = {name: np.stack([h["hist"][:, k] for h in hosts]) for k, name in enumerate(tensors)}
    wn = np.array([a * b for a, b in zip(spec.arch[:-1], spec.arch[1:], strict=True)], dtype=np.float64)
    weight = np.stack([_weight(h["raw"][:, WEIGHT], wn) for h in hosts])
    n0 = r.batch * spec.arch[0]
    data_mean = float(np.mean([h["data"][0] / n0 for h in hosts]))
    data_m2 = float(np.mean([h["data"][1] / n0 for h in hosts]))
    edges = np.linspace(-r.hist_r, r.hist_r, HIST_BINS + 1)
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
        hist_edges=edges,
        hist=hist,
        lsuv_iterations=tuple(int(max(col)) for col in zip(*lsuv, strict=True)) if spec.init.name == "lsuv" else None,
        data_mean=data_mean,
        data_second_moment=data_m2,
        notes=tuple(notes),
        hist_counted=tuple(r.hist_counted),
        data_kernel=None if r.source.rows is None else kernel_of_rows(r.source.rows),
    )


def _weight(raw: np.ndarray, n: np.ndarray) -> np.ndarray:
    mean = raw[:, 0] / n
    var = np.maximum(raw[:, 1] / n - mean * mean, 0.0)
    return np.stack([mean, np.sqrt(var)], axis=1)


__all__ = ["run", "HIST_BINS", "HIST_RANGE", "HIST_ELEMENTS"]
