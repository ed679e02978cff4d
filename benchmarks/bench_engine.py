"""Speed and memory of the engine next to the bare chain of matmuls (docs/design.md: the physical limit).

    python benchmarks/bench_engine.py                       # width 256 and 1024, depth 50, batch 1024
    python benchmarks/bench_engine.py --width 1024 --depth 50 --batch 1024 --repeats 7
    python benchmarks/bench_engine.py --quick               # small and fast, a smoke test

In ONE process, interleaved (every repeat runs every method once, in turn), after one warm-up round:
  a   bare chain: draw the input batch x ~ N(0, 1), then per layer draw W with
      torch.nn.init.kaiming_normal_ (the same generator-driven draws the engine does), x = relu_(x @ W^T).
      Nothing else. float32, no bias, inference mode.
  a0  the same chain with the input and every W drawn before the clock starts (pure matmul + relu; shown
      so the cost of drawing is visible, it is not the baseline).
  b   engine.run(grad=False): the same chain plus all statistics of pre and post, weights and
      histograms, copied back once.
  c   bare forward+backward with autograd: as a (input drawn too), h^1.requires_grad_(), x^L.backward(u), u ~ N(0,1)
      (only the activation gradients, which is what the engine measures).
  c+W the same with weights that require grad (a training step's backward; for reference).
  d   engine.run(grad=True).
  e   the usual notebook approach: nn.Sequential of nn.Linear(bias=False) + nn.ReLU, kaiming_normal_
      on each weight, forward hooks calling .mean().item() and .std().item() on every module's output.
Medians over the repeats are printed, with the ratios b/a, d/c and e/a: the median over rounds of the
ratio within each round (headline; robust to the slow drifts of a shared machine), the ratio of the
medians and the ratio of the minima. Peak memory: CPU resident set
(VmHWM) of a fresh subprocess per configuration, or torch.cuda.max_memory_allocated on CUDA.
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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def draw_input(x0, gen):
    """A fresh N(0, 1) batch shaped like x0: what the engine's default data source draws per trial."""
    return torch.empty_like(x0).normal_(generator=gen)


def bare_forward(x0, width, depth, device, gen, weights=None):
    with torch.inference_mode():
        x = x0 if weights is not None else draw_input(x0, gen)
        for layer in range(depth):
            if weights is None:
                w = torch.empty(width, width, device=device)
                init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
            else:
                w = weights[layer]
            x = (x @ w.t()).relu_()
        return x


def bare_forward_backward(x0, width, depth, device, gen, weight_grad=False):
    x = draw_input(x0, gen)
    ws = []
    for layer in range(depth):
        w = torch.empty(width, width, device=device)
        with torch.no_grad():
            init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
        if weight_grad:
            w.requires_grad_(True)
            ws.append(w)
        h = x @ w.t()
        if layer == 0 and not weight_grad:
            h.requires_grad_(True)
        x = torch.relu(h)
    u = torch.empty_like(x).normal_(generator=gen)
    x.backward(u)
    return x


def notebook(x0, width, depth, device):
    model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width, bias=False), nn.ReLU())])
    model.to(device)
    means, stds = [], []

    def hook(module, inp, out):
        means.append(out.mean().item())
        stds.append(out.std().item())

    for m in model:
        if isinstance(m, nn.Linear):
            init.kaiming_normal_(m.weight, nonlinearity="relu")
        m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.randn(x0.shape, device=device))
    return means, stds


def time_methods(args, width: int) -> dict[str, float]:
    device = torch.device(args.device)
    depth, batch = args.depth, args.batch
    gen = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randn(batch, width, device=device, generator=gen)
    weights = []
    for _ in range(depth):
        w = torch.empty(width, width, device=device)
        init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
        weights.append(w)
    common = dict(arch=f"{width}-{width}x{depth}", init="kaiming_normal", act="relu", bias="none",
                  data="gaussian", batch=str(batch), device=args.device, dtype="float32", trials="1")
    spec_fwd = parse_spec(**common, grad="false")
    spec_bwd = parse_spec(**common, grad="true")
    methods = {
        "a": lambda: bare_forward(x0, width, depth, device, gen),
        "a0": lambda: bare_forward(x0, width, depth, device, gen, weights),
        "b": lambda: engine_run(spec_fwd),
        "c": lambda: bare_forward_backward(x0, width, depth, device, gen),
        "c+W": lambda: bare_forward_backward(x0, width, depth, device, gen, weight_grad=True),
        "d": lambda: engine_run(spec_bwd),
        "e": lambda: notebook(x0, width, depth, device),
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
    """Median over repeats of num/den measured in the same round (robust to the machine's slow drifts)."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


def peak_rss_kib() -> float:
    """This process's peak resident set: VmHWM from /proc/self/status (Linux). ru_maxrss is not used
    where VmHWM exists because Linux carries it over from the parent across fork+exec."""
    import resource

    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def memory_child(kind: str, width: int, depth: int, batch: int, device: str) -> None:
    """Run one configuration in this (fresh) process and print its peak memory as JSON."""
    dev = torch.device(device)
    if kind == "engine":
        spec = parse_spec(arch=f"{width}-{width}x{depth}", bias="none", batch=str(batch), device=device,
                          grad="false")
        engine_run(spec)
    elif kind == "engine_grad":
        spec = parse_spec(arch=f"{width}-{width}x{depth}", bias="none", batch=str(batch), device=device,
                          grad="true")
        engine_run(spec)
    elif kind == "bare":
        gen = torch.Generator(device=dev).manual_seed(0)
        x0 = torch.randn(batch, width, device=dev, generator=gen)
        bare_forward(x0, width, depth, dev, gen)
    # "none": only import torch and the engine (the floor)
    peak = {"maxrss_mib": peak_rss_kib() / 1024}
    if dev.type == "cuda":
        peak["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    print(json.dumps(peak))


def measure_memory(kind: str, width: int, depth: int, batch: int, device: str) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--mem-child", kind, "--width", str(width),
                          "--depth", str(depth), "--batch", str(batch), "--device", device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, nargs="*", default=None, help="default: 256 1024")
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="width 256, depth 10, 3 repeats, small memory run")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mem_child:
        memory_child(args.mem_child, args.width[0], args.depth, args.batch, args.device)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.width = args.width or [256]
        args.depth = 10
        args.repeats = 3
    widths = args.width or [256, 1024]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, load {load:.2f}, "
          f"cpus {os.cpu_count()}, float32, batch {args.batch}, depth {args.depth}, "
          f"medians of {args.repeats} interleaved repeats after 1 warm-up")
    for width in widths:
        times = time_methods(args, width)
        t = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        print(f"\nwidth {width}:  median (min)")
        for name, label in [("a0", "bare chain, input and weights drawn before"), ("a", "bare chain (draws x and W)"),
                            ("b", "engine, forward, all stats"), ("c", "bare fwd+bwd (autograd)"),
                            ("c+W", "bare fwd+bwd, weights need grad"), ("d", "engine, with gradients"),
                            ("e", "notebook hooks (.item())")]:
            per_layer = t[name] / args.depth * 1e3
            print(f"  {name:>4}  {label:<42} {t[name] * 1e3:9.1f} ms ({best[name] * 1e3:9.1f})  "
                  f"{per_layer:6.2f} ms/layer")
        print(f"  ratios, median of paired rounds: b/a = {paired(times, 'b', 'a'):.3f}   d/c = {paired(times, 'd', 'c'):.3f}"
              f"   e/a = {paired(times, 'e', 'a'):.3f}   (b/a0 = {paired(times, 'b', 'a0'):.3f}, "
              f"d/c+W = {paired(times, 'd', 'c+W'):.3f})")
        print(f"  ratios of the medians:           b/a = {t['b'] / t['a']:.3f}   d/c = {t['d'] / t['c']:.3f}   "
              f"e/a = {t['e'] / t['a']:.3f}")
        print(f"  ratios of the minima:            b/a = {best['b'] / best['a']:.3f}   d/c = {best['d'] / best['c']:.3f}   "
              f"e/a = {best['e'] / best['a']:.3f}")
    if args.no_memory:
        return
    width = widths[0]
    depths = [10, 50] if args.quick else [10, 50, 200]
    print(f"\npeak memory (width {width}, batch {args.batch}; a fresh process each; "
          f"{'peak RSS, VmHWM' if args.device == 'cpu' else 'cuda max allocated'}):")
    floor = measure_memory("none", width, 1, args.batch, args.device)
    print(f"  import torch + engine only: {floor['maxrss_mib']:.0f} MiB")
    key = "maxrss_mib" if args.device == "cpu" else "cuda_max_allocated_mib"
    for kind in ("bare", "engine", "engine_grad"):
        row = []
        for depth in depths:
            if kind == "engine_grad" and depth > 50 and width * args.batch * depth * 4 > 2**31:
                row.append(f"depth {depth}: skipped")
                continue
            m = measure_memory(kind, width, depth, args.batch, args.device)
            row.append(f"depth {depth}: {m[key]:.0f} MiB")
        print(f"  {kind:<12} " + "   ".join(row))


if __name__ == "__main__":
    main()
