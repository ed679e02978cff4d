"""Speed of the theory-only phase diagram: engine.theory.phase.predict_cells over a 50 x 50 grid.

    python benchmarks/bench_phase_theory.py                 # 50 x 50 cells, 100 layers of width 256, 3 repeats
    python benchmarks/bench_phase_theory.py --n 20 --depth 50

Grid: init xavier_normal(gain = g), g in [0.5, 2.5] (sigma_w^2 = g^2), bias normal(std = b), b in [0, 0.5]
(sigma_b^2 = b^2), the act given (tanh and relu by default), band=False (the theory-only diagram: the bands
need the per-spec band of every cell). Printed per activation: the one-time cost of the first call (the
tables of Gaussian moments and of the pair map of a smooth phi, built once per process), the time to build
the RunSpecs, and the median over the repeats of predict_cells on all cells (target: under 1 s).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from initscope.engine.spec import parse_spec
from initscope.engine.theory.phase import predict_cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="cells per axis")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--acts", default="tanh,relu")
    a = ap.parse_args()
    gains, stds = np.linspace(0.5, 2.5, a.n), np.linspace(0.0, 0.5, a.n)
    for act in a.acts.split(","):
        t = time.perf_counter()
        predict_cells([parse_spec(arch=f"{a.width}-{a.width}x{a.depth}", act=act)], band=False)
        first = time.perf_counter() - t
        t = time.perf_counter()
        specs = [parse_spec(arch=f"{a.width}-{a.width}x{a.depth}", act=act, init=f"xavier_normal(gain={g:.5g})",
                            bias=f"normal(std={b:.5g})") for g in gains for b in stds]
        build = time.perf_counter() - t
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            predict_cells(specs, band=False)
            times.append(time.perf_counter() - t)
        print(f"{act:6s} {a.n}x{a.n} cells x {a.depth} layers: predict_cells {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}); first call {first:.2f} s; specs {build:.2f} s")


if __name__ == "__main__":
    main()
