"""Speed of sweeps: batched trials, the local backend against one process per cell, Ray against the local backend.

    python benchmarks/bench_sweep.py                  # all three parts, 3 repeats
    python benchmarks/bench_sweep.py --part a --repeats 5
    python benchmarks/bench_sweep.py --quick          # small and fast, a smoke test

Every part runs in ONE invocation with its methods interleaved (each repeat runs every method once, in turn);
medians over the repeats are printed, with the ratios measured in the same run, and the load average (1 min)
before and after each part: on a shared machine compare only the ratios.

(a) A cell's trials, one after the other, against one batched computation (torch.set_num_threads(--threads), as in
    a sweep worker; plain stacks: linear + tanh, weights N(0, 1/fan_in), biases N(0, 0.1^2)), at three sizes:
      cell      run_cell of the cell's task (what a sweep worker runs): runner + the metrics + the predicted row;
      runner    engine.run of the cell's spec with `trials` T (sequential trials, every statistic, the pairs);
      seq       the bare chain, trial by trial: draw x [B, n] and each W [n, n] and b, h = x W^T + b, x = tanh(h),
                then the loss sum(x^L u) backward (autograd), and what the cell's metrics need (E[(x^L)^2],
                std(g^1), std(g^L));
      batched   the same draws and arithmetic with the T trials stacked on a leading dimension: x [T, B, n],
                W [T, n, n], torch.baddbmm; one backward for all trials.
    The batched prototype is kept only if it is clearly faster than seq (the runner's own cost on top of seq is the
    statistics, which batching would not remove).
(b) Cells per second for a 10 x 10 grid (init.gain x bias.std of a tanh stack): the local backend (run_sweep with
    LocalProcesses, its pool start included) against one `initscope run ... --format json` process per cell (the
    same spec, pairs on, as a user would script it), run --procs at a time (default: the cores).
(c) Wall time of a grid of >= 50 cells: Ray on a local cluster of --cpus CPUs against the local backend with --cpus
    workers. Local: pool start included. Ray: "run" = run_sweep on a started cluster whose workers are cold (each
    worker process still imports torch: like the local pool's start), "total" = cluster start + run + shutdown;
    "warm" = a second run_sweep on the same cluster / pool (workers already up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from initscope.engine import parse_spec  # noqa: E402
from initscope.engine.sweep import parse_vary, run_sweep, sweep_base  # noqa: E402
from initscope.engine.sweep.backends import LocalProcesses  # noqa: E402
from initscope.engine.sweep.grid import build_grid  # noqa: E402

BIAS_STD = 0.1


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def median(xs):
    return statistics.median(xs)


# ---------------------------------------------------------------------------------------------------- part (a)
def bare_trials(width: int, depth: int, batch: int, trials: int, seed: int, batched: bool) -> list[tuple]:
    """The cell's trials on the bare chain (see the module docstring); returns per trial (E[(x^L)^2], std(g^1),
    std(g^L)), copied to the host as a cell's rows would be."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    std = width ** -0.5
    shape = (trials,) if batched else ()
    out = []
    for _ in range(1 if batched else trials):
        x = torch.randn(*shape, batch, width, generator=gen)
        keep = []
        for layer in range(depth):
            w = torch.randn(*shape, width, width, generator=gen).mul_(std)
            b = torch.randn(*shape, 1, width, generator=gen).mul_(BIAS_STD)
            h = torch.baddbmm(b, x, w.transpose(-1, -2)) if batched else torch.addmm(b, x, w.t())
            if layer == 0:
                h.requires_grad_(True)  # gradients of the activations only, as the engine measures them
            x = torch.tanh(h)
            x.retain_grad()
            keep.append(x)
        u = torch.randn(x.shape, generator=gen)
        (x * u).sum().backward()
        dims = (-2, -1)
        q = x.detach().square().mean(dims)
        g1 = keep[0].grad.std(dims)
        gl = keep[-1].grad.std(dims)
        out.extend(zip(q.reshape(-1).tolist(), g1.reshape(-1).tolist(), gl.reshape(-1).tolist(), strict=True))
    return out


def part_a(args) -> None:
    import torch
    from initscope.engine import run as engine_run
    from initscope.engine.sweep.cell import CellTask, run_cell

    torch.set_num_threads(args.threads)
    sizes = [(64, 20, 64), (300, 20, 256), (1000, 10, 256)] if not args.quick else [(64, 5, 32), (128, 5, 64)]
    trials = args.trials
    print(f"(a) {trials} trials per cell, torch threads {args.threads}, tanh, W ~ N(0, 1/n), b ~ N(0, {BIAS_STD}^2)")
    print(f"    load before {load()}")
    print(f"    {'width x depth, batch':>22}  {'cell':>8}  {'runner':>8}  {'seq':>8}  {'batched':>8}  "
          f"{'batched/seq':>11}  {'runner/seq':>10}  {'cell/runner':>11}")
    for width, depth, batch in sizes:
        spec = parse_spec(arch=f"{width}-{width}x{depth}", act="tanh", init="lecun_normal",
                          bias=f"normal(std={BIAS_STD})", batch=str(batch), trials=str(trials), device="cpu",
                          pair_corr="0.5")
        task = CellTask(0, {}, spec.to_text())
        methods = {
            "cell": lambda task=task: run_cell(task),
            "runner": lambda spec=spec: engine_run(spec),
            "seq": lambda w=width, d=depth, b=batch: bare_trials(w, d, b, trials, 0, batched=False),
            "batched": lambda w=width, d=depth, b=batch: bare_trials(w, d, b, trials, 0, batched=True),
        }
        times = {name: [] for name in methods}
        ratio_b, ratio_r, ratio_c = [], [], []
        for rep in range(args.repeats + 1):  # round 0 warms up
            got = {}
            for name, fn in methods.items():
                start = time.perf_counter()
                fn()
                got[name] = time.perf_counter() - start
            if rep:
                for name in methods:
                    times[name].append(got[name])
                ratio_b.append(got["batched"] / got["seq"])
                ratio_r.append(got["runner"] / got["seq"])
                ratio_c.append(got["cell"] / got["runner"])
        print(f"    {f'{width} x {depth}, {batch}':>22}  {median(times['cell']):8.3f}  {median(times['runner']):8.3f}  "
              f"{median(times['seq']):8.3f}  {median(times['batched']):8.3f}  {median(ratio_b):11.2f}  "
              f"{median(ratio_r):10.2f}  {median(ratio_c):11.2f}")
    print(f"    load after {load()}  (seconds per cell: medians over {args.repeats} repeats; ratios: median of the "
          "per-round ratios)")


# ---------------------------------------------------------------------------------------------------- part (b)
def cell_grid(arch: str, batch: int, trials: int, gains: int, biases: int):
    base = {"arch": arch, "act": "tanh", "init": "lecun_normal", "bias": "normal(std=0.1)", "batch": str(batch),
            "trials": str(trials), "device": "cpu"}
    axes = [parse_vary(f"init.gain=0.5:3:{gains}"), parse_vary(f"bias.std=0:0.5:{biases}")]
    return base, axes


def flags_of(spec) -> list[str]:
    """The `initscope run` flags of a RunSpec."""
    argv = []
    for key, value in spec.to_text().items():
        if key == "grad":
            argv.append("--grad" if value == "true" else "--no-grad")
        elif key == "pair_corr":
            if value != "none":
                argv += ["--pair-corr", value]
        else:
            argv += [f"--{key}", value]
    return argv


def initscope_command() -> list[str]:
    here = Path(sys.executable).parent / "initscope"
    found = str(here) if here.exists() else shutil.which("initscope")
    if found is None:
        sys.exit("bench_sweep: the initscope command is not installed (pip install -e .)")
    return [found]


def processes(cells, procs: int) -> float:
    command = initscope_command()

    def one(cell):
        subprocess.run(command + ["run", *flags_of(cell.spec), "--format", "json"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    start = time.perf_counter()
    with ThreadPoolExecutor(procs) as pool:
        list(pool.map(one, cells))
    return time.perf_counter() - start


def local(base, axes, workers: int, warm_too: bool = False) -> tuple[float, float | None, object]:
    backend = LocalProcesses(workers=workers)
    try:
        start = time.perf_counter()
        table = run_sweep(base, axes, backend)
        cold = time.perf_counter() - start
        warm = None
        if warm_too:
            start = time.perf_counter()
            run_sweep(base, axes, backend)
            warm = time.perf_counter() - start
    finally:
        backend.close()
    return cold, warm, table


def cell_seconds(table) -> float:
    return median([r["elapsed_s"] for r in table.rows if r["source"] == "predicted"])


def part_b(args) -> None:
    n = 3 if args.quick else 10
    base, axes = cell_grid(args.arch, args.batch, args.cell_trials, n, n)
    cells = build_grid(sweep_base(base), axes)
    print(f"(b) {len(cells)} cells ({n} init.gain x {n} bias.std), cell: tanh {args.arch}, batch {args.batch}, "
          f"{args.cell_trials} trial(s), pairs on, gradients on; {args.cpus} workers / {args.procs} processes at once")
    print(f"    load before {load()}")
    t_local, t_proc, cell_s = [], [], []
    for _ in range(args.repeats):
        cold, _, table = local(base, axes, args.cpus)
        t_local.append(cold)
        cell_s.append(cell_seconds(table))
        t_proc.append(processes(cells, args.procs))
    ratio = median([p / q for p, q in zip(t_proc, t_local, strict=True)])
    print(f"    one cell in a worker: {median(cell_s) * 1000:.0f} ms")
    print(f"    local backend        {median(t_local):7.2f} s   {len(cells) / median(t_local):7.2f} cells/s")
    print(f"    initscope run each   {median(t_proc):7.2f} s   {len(cells) / median(t_proc):7.2f} cells/s   "
          f"({ratio:.1f}x the local backend's time)")
    print(f"    load after {load()}  (medians over {args.repeats} repeats)")


# ---------------------------------------------------------------------------------------------------- part (c)
def measured(table) -> list[dict]:
    """The measured rows without their wall time (the sweep's driver adds the predicted rows, the same on every backend)."""
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in table.rows if r["source"] == "measured"]


def part_c(args) -> None:
    from initscope.engine.sweep import ray_backend

    gains, biases = (5, 2) if args.quick else (10, 6)
    base, axes = cell_grid(args.ray_arch, args.ray_batch, args.cell_trials, gains, biases)
    total_cells = gains * biases
    print(f"(c) {total_cells} cells ({gains} init.gain x {biases} bias.std), cell: tanh {args.ray_arch}, batch "
          f"{args.ray_batch}, {args.cell_trials} trial(s); Ray on a local cluster of {args.cpus} CPUs (1 CPU per "
          f"cell) vs the local backend with {args.cpus} workers")
    print(f"    load before {load()}")
    ray = ray_backend.import_ray()
    rows = {k: [] for k in ("local", "local warm", "ray start", "ray run", "ray warm", "ray shutdown", "ray total")}
    cell_s, same = [], True
    for _ in range(args.repeats):
        cold, warm, local_table = local(base, axes, args.cpus, warm_too=True)
        rows["local"].append(cold)
        rows["local warm"].append(warm)
        t0 = time.perf_counter()
        ray_backend.start_local_cluster(ray, num_cpus=args.cpus, num_gpus=0)
        t1 = time.perf_counter()
        backend = ray_backend.RayBackend()
        ray_table = run_sweep(base, axes, backend)
        t2 = time.perf_counter()
        run_sweep(base, axes, backend)
        t3 = time.perf_counter()
        ray.shutdown()
        t4 = time.perf_counter()
        rows["ray start"].append(t1 - t0)
        rows["ray run"].append(t2 - t1)
        rows["ray warm"].append(t3 - t2)
        rows["ray shutdown"].append(t4 - t3)
        rows["ray total"].append((t2 - t0) + (t4 - t3))
        cell_s.append(cell_seconds(local_table))
        same &= measured(ray_table) == measured(local_table)
    ratio = {k: median([a / b for a, b in zip(rows[k], rows[ref], strict=True)])
             for k, ref in (("ray run", "local"), ("ray total", "local"), ("ray warm", "local warm"))}
    print(f"    one cell in a worker: {median(cell_s) * 1000:.0f} ms; measured rows of Ray and local equal bit for bit: {same}")
    for k, v in rows.items():
        extra = f"   ray/local {ratio[k]:.2f}" if k in ratio else ""
        print(f"    {k:<14} {median(v):7.2f} s{extra}")
    print(f"    load after {load()}  (medians over {args.repeats} repeats; ratios: median of the per-round ratios)")


def main() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("a", "b", "c", "all"), default="all")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repeat: a smoke test")
    p.add_argument("--trials", type=int, default=10, help="(a) trials per cell")
    p.add_argument("--threads", type=int, default=1, help="(a) torch threads (a sweep worker has 1 by default)")
    p.add_argument("--arch", default="128-128x10", help="(b) the cell's stack")
    p.add_argument("--batch", type=int, default=128, help="(b) the cell's batch")
    p.add_argument("--cell-trials", type=int, default=1, help="(b, c) trials per cell")
    p.add_argument("--ray-arch", default="256-256x20", help="(c) the cell's stack")
    p.add_argument("--ray-batch", type=int, default=256, help="(c) the cell's batch")
    p.add_argument("--cpus", type=int, default=min(2, cores), help="(b, c) workers / Ray CPUs (default 2)")
    p.add_argument("--procs", type=int, default=cores, help="(b) `initscope run` processes at once (default: cores)")
    args = p.parse_args()
    if args.quick:
        args.repeats = 1
    print(f"bench_sweep: {cores} cores, python {sys.version.split()[0]}")
    for part, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
        if args.part in (part, "all"):
            fn(args)
            print()


if __name__ == "__main__":
    main()
