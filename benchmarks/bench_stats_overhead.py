"""Where the engine's forward overhead goes: bare chain vs engine vs engine with statistics stubbed out.

    python benchmarks/bench_stats_overhead.py [--width 256] [--depth 50] [--batch 1024] [--repeats 9]

Interleaved in one process, medians (and minima) over repeats. "engine, no stats" replaces the
runner's per-block statistics (_Trial._pre/_post) by no-ops, keeping everything else (weight draws,
buffers, histogram range, progress hooks), so engine - no stats is the statistics' own cost and
no stats - bare is the rest. A diagnostic for engine/runner.py, not a product number.
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

import engine.runner as runner  # noqa: E402
from engine import parse_spec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    w_, d_, b_ = args.width, args.depth, args.batch
    spec = parse_spec(arch=f"{w_}-{w_}x{d_}", bias="none", batch=str(b_), grad="false", act="relu")
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(b_, w_, generator=gen)

    def bare() -> None:
        with torch.inference_mode():
            x = x0
            for _ in range(d_):
                w = torch.empty(w_, w_)
                init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
                x = (x @ w.t()).relu_()

    pre, post = runner._Trial._pre, runner._Trial._post

    def no_stats() -> None:
        runner._Trial._pre = lambda self, layer, w, h, x0: self._first_pre(layer, h, x0)
        runner._Trial._post = lambda self, *a: None
        try:
            runner.run(spec)
        finally:
            runner._Trial._pre, runner._Trial._post = pre, post

    methods = {"bare chain": bare, "engine": lambda: runner.run(spec), "engine, no stats": no_stats}
    for f in methods.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(args.repeats):
        for k, f in methods.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    base_med, base_min = statistics.median(times["bare chain"]), min(times["bare chain"])
    print(f"width {w_}, depth {d_}, batch {b_}, threads {torch.get_num_threads()}, medians of {args.repeats}")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"  {k:<18} {med * 1e3:8.1f} ms (min {min(ts) * 1e3:7.1f})   x{med / base_med:.3f} "
              f"(minima x{min(ts) / base_min:.3f})")


if __name__ == "__main__":
    main()
