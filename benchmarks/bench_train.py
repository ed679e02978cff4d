"""Speed and memory of `initscope train` next to a bare PyTorch loop training the same model on the same data.

    python benchmarks/bench_train.py                   # width 256, depth 20, 200 steps, 5 repeats
    python benchmarks/bench_train.py --device cuda --repeats 7
    python benchmarks/bench_train.py --quick           # depth 5, 40 steps, 2 repeats: a smoke test

The model (both sides): digits (64 features, 10 classes), arch 64-256x20, kaiming_normal, zero biases, ReLU,
a linear readout N(0, 1/n_L) with zero bias, cross-entropy, SGD lr 0.05, minibatch 64. The bare loop takes the
engine's own data split, minibatch indices and initial parameters (so both train the same network on the same
batches) and runs F.linear / relu / F.linear + F.cross_entropy, backward, optimizer.step: no statistics.
In ONE process, interleaved (every repeat runs every method once, in turn), after one warm-up round:
  bare          the loop alone;
  bare + evals  the loop plus the same five evaluations of the whole training and held-out splits that the
                engine records (after 0, N/4, N/2, 3N/4, N updates);
  floor 1       the loop with evaluations plus only the statistics the issue requires at every step, in
                straight-line batched code with no engine around it (floor_loop's docstring): what those
                statistics cost by themselves on this machine;
  floor 10      the same at every 10th step (and the last);
  every 1       engine.train with statistics at every step;
  every 10      engine.train with --every 10.
The engine's time includes its setup (data, parameters): what a user waits for. Printed: medians over repeats,
the ratios of the medians to `bare + evals` (the statistics' cost: targets <= 1.20 at every step, <= 1.05 at
every 10) and to `bare` (everything), and the median over rounds of the ratio to `bare + evals` within a
round (steadier on a shared machine). Memory: the process's resident set (CPU) or torch.cuda.max_memory_allocated (CUDA)
after training N and 4N steps at --every 10, next to the size of the recorded statistics themselves.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from initscope.engine.labelled import load_labelled  # noqa: E402
from initscope.engine.train import _Trainer, train  # noqa: E402
from initscope.engine.trainspec import parse_train  # noqa: E402


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _model(spec):
    """What both loops start from (trial 0): the engine's data split and minibatch indices, W^l ~ N(0, 2/n_in)
    (kaiming_normal, ReLU), b^l = 0, the readout W_o ~ N(0, 1/n_L), b_o = 0, all requiring gradients."""
    data = load_labelled(spec)
    tr = _Trainer(spec, data, None, None)
    gen = torch.Generator(device=tr.dev).manual_seed(spec.body.seed)
    ws, bs = [], []
    for n_in, n_out in zip(spec.body.arch[:-1], spec.body.arch[1:], strict=True):
        ws.append(torch.empty(n_out, n_in, device=tr.dev).normal_(0.0, math.sqrt(2.0 / n_in), generator=gen)
                  .requires_grad_(True))
        bs.append(torch.zeros(n_out, device=tr.dev, requires_grad=True))
    w_o = torch.empty(data.classes, spec.body.arch[-1], device=tr.dev).normal_(
        0.0, 1.0 / math.sqrt(spec.body.arch[-1]), generator=gen).requires_grad_(True)
    b_o = torch.zeros(data.classes, device=tr.dev, requires_grad=True)
    return tr, tr.batches(0), ws, bs, w_o, b_o


def bare_loop(spec, evals: bool) -> float:
    """Train spec's model (trial 0) without statistics; returns seconds."""
    device = spec.body.device if spec.body.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    _sync(device)
    t0 = time.perf_counter()
    tr, idx, ws, bs, w_o, b_o = _model(spec)
    params = [p for pair in zip(ws, bs, strict=True) for p in pair]
    opt = torch.optim.SGD([*params, w_o, b_o], lr=float(spec.optimizer.get("lr")))

    def fwd(x):
        for w, b in zip(ws, bs, strict=True):
            x = torch.relu(F.linear(x, w, b))
        return F.linear(x, w_o, b_o)

    def evaluate():
        with torch.no_grad():
            out = []
            for x, y in ((tr.xtr, tr.ytr), (tr.xte, tr.yte)):
                z = fwd(x)
                out += [F.cross_entropy(z, y), (z.argmax(1) == y).float().mean()]
            return torch.stack(out)

    points = set(spec.eval_points())
    kept = []
    for step in range(spec.steps):
        if evals and step in points:
            kept.append(evaluate())
        loss = F.cross_entropy(fwd(tr.xtr[idx[step]]), tr.ytr[idx[step]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if evals:
        kept.append(evaluate())
        torch.stack(kept).cpu()
    _sync(device)
    return time.perf_counter() - t0


def floor_loop(spec) -> float:
    """The bare loop with evaluations plus only what the issue requires of a recorded step, in the fewest ops
    (ReLU, no norm): the step's h^l and a^l stacked into [L, n] matrices (one copy each) with their row sums,
    sums of squares, and for h min, max and the sign counts (what `run` reports: zero fraction, and the
    post's from them) and the near-zero/fastai counts (a's fastai count: a >= 0); dLoss/dh and dLoss/da
    from one torch.autograd.grad call (no hooks) with their sums and sums of squares (the gradient std);
    the sum and sum of squares of every W^l and of its update (the update ratio); one bincount over the
    forward histogram samples (the first 8192 entries of h per block; a's follow from h's). At the spec's
    recorded steps (--every); the records stay on the device until the end. No engine around it, and none
    of what the engine measures beyond that (gradient min/max/zeros/histograms): what the required
    statistics cost by themselves. Seconds."""
    device = spec.body.device if spec.body.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    _sync(device)
    t0 = time.perf_counter()
    tr, idx, ws, bs, w_o, b_o = _model(spec)
    params = [*ws, *bs, w_o, b_o]
    matrices = [*ws, w_o]
    opt = torch.optim.SGD(params, lr=float(spec.optimizer.get("lr")))
    depth, n = len(ws), spec.batch * spec.body.arch[1]
    stacks = {k: torch.empty(depth, n, device=tr.dev) for k in ("h", "a", "g", "gp")}
    scratch = torch.empty(depth, n, device=tr.dev)
    samples = torch.empty(depth, 8192, device=tr.dev)

    def rows(x, full=True):
        vals = [x.sum(1), torch.mul(x, x, out=scratch).sum(1)]
        if full:
            vals += [x.amin(1), x.amax(1), torch.sign(x, out=scratch).sum(1), scratch.abs_().sum(1)]
        return vals

    def evaluate():
        with torch.no_grad():
            out = []
            for x, y in ((tr.xtr, tr.ytr), (tr.xte, tr.yte)):
                for w, b in zip(ws, bs, strict=True):
                    x = torch.relu(F.linear(x, w, b))
                z = F.linear(x, w_o, b_o)
                out += [F.cross_entropy(z, y), (z.argmax(1) == y).float().mean()]
            return torch.stack(out)

    points = set(spec.eval_points())
    recorded = set(spec.record_steps())
    kept, records = [], []
    for step in range(spec.steps):
        if step in points:
            kept.append(evaluate())
        x = tr.xtr[idx[step]]
        hs, as_ = [], []
        for w, b in zip(ws, bs, strict=True):
            h = F.linear(x, w, b)
            x = torch.relu(h)
            hs.append(h)
            as_.append(x)
        loss = F.cross_entropy(F.linear(x, w_o, b_o), tr.ytr[idx[step]])
        if step not in recorded:  # the bare step
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            continue
        grads = torch.autograd.grad(loss, params + hs + as_)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=False):
                p.grad = g
            before = torch.stack([torch.stack(torch._foreach_norm(matrices)),
                                  torch.stack([m.sum() for m in matrices])])
            for key, ts in (("h", hs), ("a", as_), ("g", grads[-depth:]), ("gp", grads[-2 * depth:-depth])):
                torch.stack([t.reshape(-1) for t in ts], out=stacks[key])
            h, a, g, gp = stacks["h"], stacks["a"], stacks["g"], stacks["gp"]
            vals = rows(h) + rows(a, full=False) + rows(g, full=False) + rows(gp, full=False)
            vals += [torch.le(h, 0.05, out=scratch).sum(1), torch.le(torch.abs(h, out=scratch), 0.05, out=scratch).sum(1),
                     torch.le(a, 0.05, out=scratch).sum(1)]
            samples.copy_(h[:, :8192])
            bins = samples.mul(2.0).add_(20.0).clamp_(0, 39).to(torch.int32)
            bins += torch.arange(depth, dtype=torch.int32).view(depth, 1) * 40
            hist = torch.bincount(bins.view(-1), minlength=depth * 40)
            direction = [grads[i] for i in range(depth)] + [grads[2 * depth]]
            delta = torch.stack([torch.stack(torch._foreach_norm(direction)), torch.stack([d.sum() for d in direction])])
            records.append((torch.stack(vals), hist, before, delta, loss.detach()))
        opt.step()
        opt.zero_grad(set_to_none=True)
    kept.append(evaluate())
    torch.stack(kept).cpu()
    [torch.stack([r[i] for r in records]).cpu() for i in range(5)]
    _sync(device)
    return time.perf_counter() - t0


def engine_run(spec) -> float:
    device = spec.body.device if spec.body.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    _sync(device)
    t0 = time.perf_counter()
    train(spec)
    _sync(device)
    return time.perf_counter() - t0


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.depth, a.steps, a.repeats = 5, 40, 2
    base = dict(arch=f"64-{a.width}x{a.depth}", act="relu", init="kaiming_normal", data="digits", batch="64",
                steps=str(a.steps), optimizer="sgd(lr=0.05)", device=a.device)
    specs = {"every 1": parse_train(**base, every="1"), "every 10": parse_train(**base, every="10")}
    methods = {"bare": lambda: bare_loop(specs["every 1"], False),
               "bare + evals": lambda: bare_loop(specs["every 1"], True),
               "floor 1": lambda: floor_loop(specs["every 1"]),
               "floor 10": lambda: floor_loop(specs["every 10"]),
               "every 1": lambda: engine_run(specs["every 1"]),
               "every 10": lambda: engine_run(specs["every 10"])}
    print(f"device {a.device}, torch threads {torch.get_num_threads()}, arch {base['arch']}, {a.steps} steps, "
          f"batch 64, {a.repeats} repeats (interleaved, after a warm-up round)")
    for f in methods.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(a.repeats):
        for k, f in methods.items():
            times[k].append(f())
    ref = statistics.median(times["bare + evals"])
    bare = statistics.median(times["bare"])
    for k, ts in times.items():
        med = statistics.median(ts)
        paired = statistics.median(t / r for t, r in zip(ts, times["bare + evals"], strict=True))
        print(f"  {k:<13} median {med:8.3f} s  min {min(ts):8.3f} s  x{med / ref:5.2f} of bare + evals  "
              f"x{med / bare:5.2f} of bare  (paired x{paired:5.2f})")
    # memory: N and 4N steps at every 10
    long = parse_train(**{**base, "steps": str(4 * a.steps)}, every="10")
    for spec in (specs["every 10"], long):
        if a.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        before = rss_mib()
        r = train(spec)
        rec = sum(v.nbytes for d in (r.stats, r.hist, r.extra) for v in d.values()) / 2**20
        peak = torch.cuda.max_memory_allocated() / 2**20 if a.device.startswith("cuda") else rss_mib() - before
        what = "cuda peak allocated" if a.device.startswith("cuda") else "resident set growth"
        print(f"  memory, {spec.steps} steps every 10: {what} {peak:8.1f} MiB; recorded statistics "
              f"(host arrays) {rec:6.1f} MiB")
    print(f"targets: every 1 <= 1.20x, every 10 <= 1.05x of bare + evals; numpy {np.__version__}")


if __name__ == "__main__":
    main()
