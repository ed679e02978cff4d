"""Speed and memory of norm and residual blocks: the engine next to the same stack in bare torch.

    python benchmarks/bench_blocks.py                  # width 1024, batch 1024, depth 50, 5 repeats
    python benchmarks/bench_blocks.py --repeats 3
    python benchmarks/bench_blocks.py --quick          # width 256, depth 10: a smoke test

Stacks (kaiming_normal weights, no bias, ReLU; float32):
  batchnorm  h = W x, n = BN(h), x' = relu(n)
  layernorm  h = W x, n = LN(h), x' = relu(n)
  residual   x' = x + V relu(W x) (plain, alpha = 1; V drawn at gain 1)
In ONE process, interleaved (every repeat runs every method once, in turn), after one warm-up round:
  bare fwd   the stack as torch modules: nn.Linear(bias=False), nn.BatchNorm1d(affine=False,
             track_running_stats=False) in training mode (what the engine's batchnorm is) or
             nn.LayerNorm(elementwise_affine=False), nn.ReLU; every weight redrawn per run with
             torch.nn.init.kaiming_normal_ from a generator (the engine draws them too), the input drawn;
             inference mode; no statistics.
  engine fwd engine.run(grad=False): the same, plus every statistic and histogram of every tensor.
  bare grad  the same modules with autograd: the graph starts at h^1 (weights do not require grad: only
             activation gradients, what the engine measures), loss sum(x^L * u), u ~ N(0, 1), backward.
  engine grad engine.run(grad=True).
Printed: medians (and minima) over the repeats, and the ratios engine/bare as the median over rounds of the
ratio within each round (robust to the slow drifts of a shared machine). Targets: forward <= 1.20, with
gradients <= 1.25. Then forward-only peak memory (CPU: VmHWM of a fresh process per configuration; CUDA:
torch.cuda.max_memory_allocated) at depth 10 and 50 for every block kind: flat in depth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn
from torch.nn import init

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from initscope.engine import parse_spec  # noqa: E402
from initscope.engine import run as engine_run  # noqa: E402

KINDS = {  # name: (norm, residual) of the spec
    "batchnorm": ("batchnorm", "none"),
    "layernorm": ("layernorm", "none"),
    "residual": ("none", "plain"),
}
MEMORY_KINDS = [("none", "none"), ("batchnorm", "none"), ("layernorm", "none"), ("rmsnorm", "none"),
                ("none", "plain"), ("none", "rezero"), ("none", "fixup"), ("batchnorm", "plain"),
                ("layernorm", "fixup")]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BareBlock(nn.Module):
    """One block in torch modules: Linear, the norm (or none), ReLU, and the residual branch's V."""

    def __init__(self, width: int, kind: str, device: torch.device) -> None:
        super().__init__()
        self.kind = kind
        self.w = nn.Linear(width, width, bias=False, device=device)
        self.norm = {"batchnorm": lambda: nn.BatchNorm1d(width, affine=False, track_running_stats=False,
                                                         device=device),
                     "layernorm": lambda: nn.LayerNorm(width, elementwise_affine=False, device=device)}.get(
            kind, nn.Identity)()
        self.act = nn.ReLU()
        self.v = nn.Linear(width, width, bias=False, device=device) if kind == "residual" else None
        self.requires_grad_(False)

    def redraw(self, gen: torch.Generator) -> None:
        init.kaiming_normal_(self.w.weight, nonlinearity="relu", generator=gen)
        if self.v is not None:
            init.kaiming_normal_(self.v.weight, nonlinearity="linear", generator=gen)  # gain 1

    def forward(self, x: torch.Tensor, first: bool = False) -> torch.Tensor:
        h = self.w(x)
        if first and torch.is_grad_enabled():
            h.requires_grad_(True)  # the graph starts at h^1
        a = self.act(self.norm(h))
        return x + self.v(a) if self.v is not None else a


def bare(blocks: list[BareBlock], x0: torch.Tensor, gen: torch.Generator, grad: bool) -> None:
    for b in blocks:
        b.redraw(gen)
    x = torch.empty_like(x0).normal_(generator=gen)
    if not grad:
        with torch.inference_mode():
            for i, b in enumerate(blocks):
                x = b(x, first=i == 0)
        return
    for i, b in enumerate(blocks):
        x = b(x, first=i == 0)
    u = torch.empty_like(x).normal_(generator=gen)
    (x * u).sum().backward()


def time_kind(args, kind: str) -> dict[str, list[float]]:
    device = torch.device(args.device)
    width, depth, batch = args.width, args.depth, args.batch
    gen = torch.Generator(device=device).manual_seed(0)
    x0 = torch.empty(batch, width, device=device)
    blocks = [BareBlock(width, kind, device).train() for _ in range(depth)]
    norm, residual = KINDS[kind]
    common = dict(arch=f"{width}x{depth + 1}", init="kaiming_normal", act="relu", bias="none", batch=str(batch),
                  device=args.device, dtype="float32", norm=norm, residual=residual)
    fwd, both = parse_spec(**common, grad="false"), parse_spec(**common, grad="true")
    methods = {
        "bare fwd": lambda: bare(blocks, x0, gen, grad=False),
        "engine fwd": lambda: engine_run(fwd),
        "bare grad": lambda: bare(blocks, x0, gen, grad=True),
        "engine grad": lambda: engine_run(both),
    }
    times: dict[str, list[float]] = {k: [] for k in methods}
    for rep in range(args.repeats + 1):
        for name, fn in methods.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            if rep:  # round 0 is the warm-up
                times[name].append(time.perf_counter() - t)
    return times


def paired(times: dict[str, list[float]], num: str, den: str) -> float:
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


def memory_child(norm: str, residual: str, width: int, depth: int, batch: int, device: str) -> None:
    spec = parse_spec(arch=f"{width}x{depth + 1}", bias="none", batch=str(batch), device=device, grad="false",
                      norm=norm, residual=residual)
    engine_run(spec)
    with open("/proc/self/status", encoding="ascii") as f:
        peak = {"maxrss_mib": next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024}
    if device.startswith("cuda"):
        peak["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    print(json.dumps(peak))


def measure_memory(norm: str, residual: str, width: int, depth: int, batch: int, device: str) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--mem-child", f"{norm},{residual}",
                          "--width", str(width), "--depth", str(depth), "--batch", str(batch), "--device", device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kinds", nargs="*", default=list(KINDS), choices=list(KINDS))
    ap.add_argument("--quick", action="store_true", help="width 256, depth 10, 2 repeats")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mem_child:
        norm, residual = args.mem_child.split(",")
        memory_child(norm, residual, args.width, args.depth, args.batch, args.device)
        return
    if args.quick:
        args.width, args.depth, args.repeats = 256, 10, 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, load {load:.2f}, "
          f"cpus {os.cpu_count()}, float32, width {args.width}, batch {args.batch}, depth {args.depth}, "
          f"medians of {args.repeats} interleaved repeats after 1 warm-up")
    for kind in args.kinds:
        times = time_kind(args, kind)
        t = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        print(f"\n{kind}:  median (min)")
        for name in times:
            print(f"  {name:<12} {t[name] * 1e3:9.1f} ms ({best[name] * 1e3:9.1f})")
        fwd, grad = paired(times, "engine fwd", "bare fwd"), paired(times, "engine grad", "bare grad")
        print(f"  engine/bare, median of paired rounds: forward {fwd:.3f} (target <= 1.20), "
              f"with gradients {grad:.3f} (target <= 1.25)")
    if args.no_memory:
        return
    key = "maxrss_mib" if args.device == "cpu" else "cuda_max_allocated_mib"
    print(f"\nforward-only peak memory (width {args.width}, batch {args.batch}; a fresh process each; "
          f"{'peak RSS, VmHWM' if args.device == 'cpu' else 'cuda max allocated'}):")
    for norm, residual in MEMORY_KINDS:
        row = [f"depth {d}: {measure_memory(norm, residual, args.width, d, args.batch, args.device)[key]:.0f} MiB"
               for d in (10, 50)]
        print(f"  norm={norm:<10} residual={residual:<7} " + "   ".join(row))


if __name__ == "__main__":
    main()
