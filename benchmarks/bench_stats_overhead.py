"""Where the engine's forward overhead goes: the bare chain, the floor, the engine without and with statistics.

    python benchmarks/bench_stats_overhead.py [--width 256] [--depth 50] [--batch 1024] [--repeats 15]

Interleaved in one process (every round runs every method once, in turn, after one warm-up round):
  bare chain        draw x ~ N(0, 1); per layer draw W (kaiming_normal_), x = relu_(x @ W^T). As in
                    bench_engine.py (method a).
  floor             the bare chain plus only the reductions the engine's fast path must do per block, in
                    straight-line code with no engine around it: sum and dot of W; sum, dot, aminmax of h,
                    sign(h) with dot and sum (the exact zero and positive counts); sum and dot of relu(h).
                    No histograms, no buffers, no setup: what the required statistics cost by themselves.
  engine, no stats  engine.runner.run with FastStats.weight/tensor/relu_post stubbed out (weight draws, buffers, histogram
                    sampling and binning, progress hooks and result assembly kept).
  engine            engine.runner.run: everything.
Printed: medians, and for each method the median over rounds of its time divided by the bare chain's in the
same round. floor - bare is the statistics' inherent cost; engine - floor is the engine's own structure.
A diagnostic for engine/runner.py, not a product number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch.nn import init

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import initscope.engine.runner as runner  # noqa: E402
from initscope.engine import parse_spec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    width, depth, batch = args.width, args.depth, args.batch
    spec = parse_spec(arch=f"{width}-{width}x{depth}", bias="none", batch=str(batch), grad="false", act="relu")
    gen = torch.Generator().manual_seed(0)

    def bare() -> None:
        with torch.inference_mode():
            x = torch.empty(batch, width).normal_(generator=gen)
            for _ in range(depth):
                w = torch.empty(width, width)
                init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
                x = (x @ w.t()).relu_()

    wbuf = torch.empty(width, width)
    acts = [torch.empty(batch, width) for _ in range(2)]
    signs = torch.empty(batch * width)

    def floor() -> None:
        with torch.inference_mode():
            x = torch.empty(batch, width).normal_(generator=gen)
            vals = []
            for layer in range(depth):
                init.kaiming_normal_(wbuf, nonlinearity="relu", generator=gen)
                h = torch.mm(x, wbuf.t(), out=acts[layer % 2])
                f, wf = h.view(-1), wbuf.view(-1)
                vals += [wf.sum(), torch.dot(wf, wf), f.sum(), torch.dot(f, f), *torch.aminmax(f)]
                sg = torch.sign(f, out=signs)
                vals += [torch.dot(sg, sg), sg.sum()]
                x = h.relu_()
                vals += [f.sum(), torch.dot(f, f)]
            torch.stack(vals).tolist()

    fast = runner.FastStats
    kept = {name: getattr(fast, name) for name in ("weight", "tensor", "relu_post")}

    def sample_only(self, layer, slot, t, *, sample=True, sign_sum=False):
        if sample:  # the histogram sample stays: only the reductions are stubbed out
            self.buf.sample(layer, slot, t.reshape(-1), self.counted[layer])

    def no_stats() -> None:
        fast.weight = lambda self, layer, w: None
        fast.tensor = sample_only
        fast.relu_post = lambda self, layer, t: None
        try:
            runner.run(spec)
        finally:
            for name, f in kept.items():
                setattr(fast, name, f)

    methods = {"bare chain": bare, "floor": floor, "engine, no stats": no_stats, "engine": lambda: runner.run(spec)}
    times: dict[str, list[float]] = {k: [] for k in methods}
    for rnd in range(args.repeats + 1):
        for k, f in methods.items():
            t0 = time.perf_counter()
            f()
            if rnd:  # round 0 is the warm-up
                times[k].append(time.perf_counter() - t0)
    print(f"width {width}, depth {depth}, batch {batch}, threads {torch.get_num_threads()}, "
          f"{args.repeats} rounds after a warm-up")
    for k, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, times["bare chain"], strict=True))
        print(f"  {k:<18} {statistics.median(ts) * 1e3:8.1f} ms (min {min(ts) * 1e3:7.1f})   "
              f"x{ratio:.3f} of the bare chain (median of paired rounds)")


if __name__ == "__main__":
    main()
