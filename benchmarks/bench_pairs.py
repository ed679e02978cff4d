"""What `--pair-corr` costs: engine.run with the pairs off and on, interleaved in one process.

    python benchmarks/bench_pairs.py [--width 256] [--depth 50] [--batch 1024] [--repeats 9] [--grad]

Every round runs both, in turn, after one warm-up round; printed: the medians and the median over rounds of
the ratio on/off within a round (robust to a shared machine's drifts). The pairs add 2 x PAIRS rows
(engine/pairs.py) to every block's matmul and a few small reductions, so the ratio should stay near
1 + 2 PAIRS / batch or below.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from initscope.engine import parse_spec  # noqa: E402
from initscope.engine.pairs import PAIRS  # noqa: E402
from initscope.engine.runner import run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--grad", action="store_true", help="runs with gradients (default: forward only)")
    args = ap.parse_args()
    base = dict(arch=f"{args.width}-{args.width}x{args.depth}", batch=str(args.batch), device="cpu",
                grad="true" if args.grad else "false")
    specs = {"off": parse_spec(**base), "on": parse_spec(**base, pair_corr="0.5")}
    times: dict[str, list[float]] = {k: [] for k in specs}
    for rnd in range(args.repeats + 1):
        for name, spec in specs.items():
            t0 = time.perf_counter()
            run(spec)
            if rnd:
                times[name].append(time.perf_counter() - t0)
    ratios = [on / off for on, off in zip(times["on"], times["off"], strict=True)]
    print(f"width {args.width} depth {args.depth} batch {args.batch} grad {args.grad} pairs {PAIRS}: "
          f"off {statistics.median(times['off']) * 1e3:.1f} ms, on {statistics.median(times['on']) * 1e3:.1f} ms, "
          f"on/off {statistics.median(ratios):.3f} (median of {args.repeats} rounds; 1 + 2 PAIRS / batch = "
          f"{1 + 2 * PAIRS / args.batch:.3f})")


if __name__ == "__main__":
    main()
