"""Training the stack for its first steps, with every layer measured (`initscope train`).

The model: the spec's stack (block l: h = W x + b, n = norm(h), a = phi(n), x^l = a or x^(l-1) + alpha V a;
engine/runner.py), then a linear readout z = W_o x^L + b_o to the C classes with b_o = 0 and W_o ~ N(0, 1/n_L)
whatever the body's scheme (so a comparison isolates the body), and the cross-entropy loss
Loss = mean_i (logsumexp(z_i) - z_i[y_i]). All of W, b, V, W_o, b_o train; a residual's alpha is fixed
(rezero's alpha = 0 keeps the branch off).

One engine: the body's parameters are drawn by the runner's own block step (the same generator stream as
`initscope run`: seed + t, W, b, V per block, LSUV calibrated on the first minibatch), and the statistics of a
recorded step come from that step's own training forward and backward through the runner's block step, with
the runner's FastStats and histogram buffers, plus three counts per forward tensor (below). So step 0's
forward statistics are what `initscope run` reports for the same spec, seed and input batch; the gradient
statistics are of the training loss (not the run's sum(x^L u)), the gradients of every tensor the block step
watches coming from one torch.autograd.grad call with the parameters' (no hooks). Steps that are not recorded run a bare
forward (the same torch functions, no statistics). The readout's draw uses its own generator
(seed + t + READOUT_SEED), so the body's stream is untouched.

Recorded (R recorded steps: 0, every, 2 every, ..., the last), per trial:
- the minibatch loss of each recorded step (the loss of the forward before that step's update);
- per block and tensor (pre, normed, post, out, grad, grad_pre, grad_out as the block kind has them) the
  runner's statistics (mean, std, rms, min, max, zero_frac, nonfinite_frac) and histogram on the run's fixed
  bins (set at step 0 of trial 0), and for forward tensors: near_zero = #(|x| <= 0.05)/n, fastai_low =
  #(x <= 0.05)/n (one-sided, as in the course's "fraction near zero"), saturated = #(|x - c| > 0.97 r)/n for a
  bounded activation's post (tanh: c = 0, r = 1; sigmoid: c = r = 1/2; NaN otherwise);
- per weight matrix (W^l, V^l, the readout) the update-to-data ratio log10(std(W_after - W_before) / std(W_before))
  of the recorded step's update;
- at EVAL points (after 0, N/4, N/2, 3N/4 and N updates): loss and accuracy on the whole training split and on
  the held-out split (a batchnorm body normalises with the statistics of the evaluated split).
What a recorded step adds to the runner's statistics (the counts, the update sums) is computed for all blocks
at once in engine/stepstats.py; an unrecorded step is the bare loop plus one copy of its loss.
Everything recorded stays on the device until the trial ends (one copy to the host per trial); the only
host sync per step is the cancellation/progress callback's, and a non-finite check at recorded steps (over
every loss since the previous one).

A loss that becomes inf or nan ends the trial: the step and the first block whose forward tensor went
non-finite at that step (0 = none, the readout) are the trial's `diverged` entry.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import runner as rn
from .device import describe
from .errors import Cancelled, InitscopeError, RunError
from .labelled import LabelledData, load_labelled
from .result import STAT_NAMES
from .stepstats import EXTRA_NAMES, FORWARD_SLOTS, NEAR_ZERO, SATURATION, ForwardCounts, log_ratio, update_sums
from .trainspec import TrainSpec

READOUT_SEED = 7919


@dataclass
class TrainResult:
    """What a training run measured. T trials, R recorded steps, L blocks, E eval points.

    loss [T, R]; stats[tensor] [T, R, L, 7] (STAT_NAMES); extra[tensor] [T, R, L, 3] (EXTRA_NAMES; forward
    tensors); hist[tensor] [T, R, L, B] on edges(tensor); update_ratio[name] [T, R, L] ("W", "V") or [T, R]
    ("readout"); evals[name] [T, E] for train_loss, train_acc, test_loss, test_acc; diverged: per trial None
    or (step, block) (block 0: every block finite, the readout overflowed). NaN after a trial diverged."""

    spec: TrainSpec
    device: str
    elapsed_s: float
    steps: np.ndarray
    eval_steps: np.ndarray
    loss: np.ndarray
    stats: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]
    hist: dict[str, np.ndarray]
    edges: dict[str, np.ndarray]
    update_ratio: dict[str, np.ndarray]
    evals: dict[str, np.ndarray]
    diverged: list[tuple[int, int] | None]
    classes: int
    data_notes: tuple[str, ...] = ()
    split: tuple[int, int] = (0, 0)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tensors(self) -> tuple[str, ...]:
        return tuple(self.stats)

    def final(self, name: str) -> np.ndarray:
        """[T] an eval metric after the last step (NaN for a diverged trial)."""
        return self.evals[name][:, -1]

    def headline(self, name: str) -> tuple[float, float]:
        """(mean, std over trials) of an eval metric after the last step; NaN trials left out (none: NaN)."""
        v = self.final(name)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return math.nan, math.nan
        return float(v.mean()), float(v.std())


def compare(a: TrainResult, b: TrainResult, name: str = "test_acc") -> tuple[float, float, bool]:
    """(mean_a - mean_b, spread, exceeds): the difference of the final means of `name`, the seed spread
    sd_a + sd_b (population std over trials), and whether |difference| > spread, i.e. the two mean +- sd
    intervals do not overlap."""
    ma, sa = a.headline(name)
    mb, sb = b.headline(name)
    d, s = ma - mb, sa + sb
    return d, s, bool(abs(d) > s)


def _bare_forward(plan: rn._Plan, params: list, x: Tensor) -> Tensor:
    """The block step without statistics: the same torch functions as the runner's _Autograd."""
    alpha = plan.residual.alpha if plan.residual is not None else 0.0
    for w, b, v in params:
        h = F.linear(x, w, b)
        n = plan.norm.fn(h) if plan.norm is not None else h
        a = plan.act.fn(n)
        x = a if plan.residual is None else torch.add(x, F.linear(a, v), alpha=alpha)
    return x


def _optimizer(spec: TrainSpec, params: list[Tensor]) -> torch.optim.Optimizer:
    o = spec.optimizer.kwargs
    if spec.optimizer.name == "sgd":
        return torch.optim.SGD(params, lr=float(o["lr"]), momentum=float(o["momentum"]),
                               weight_decay=float(o["weight_decay"]))
    return torch.optim.Adam(params, lr=float(o["lr"]), betas=(float(o["beta1"]), float(o["beta2"])),
                            eps=float(o["eps"]), weight_decay=float(o["weight_decay"]))


class _Trainer:
    def __init__(self, spec: TrainSpec, data: LabelledData, progress, cancelled) -> None:
        self.spec = spec
        self.data = data
        self.progress = progress
        self.cancelled = cancelled
        self.r = rn._Run(spec.body, None, cancelled)
        self.plan = self.r.plan
        dev, dt = self.r.device, self.r.dtype
        self.dev, self.dt = dev, dt
        self.xtr = torch.as_tensor(data.x_train, device=dev).to(dt)
        self.ytr = torch.as_tensor(data.y_train, device=dev)
        self.xte = torch.as_tensor(data.x_test, device=dev).to(dt)
        self.yte = torch.as_tensor(data.y_test, device=dev)
        self.rec = spec.record_steps()
        self.rec_set = set(self.rec)
        self.evals = spec.eval_points()
        self.total = spec.trials * spec.steps
        self.done = 0

    def batches(self, t: int) -> Tensor:
        """[steps, batch] row indices: a fresh permutation of the training split each epoch (generator seed + t,
        on the CPU, independent of the parameters' stream); an epoch's last partial batch is dropped."""
        n, b = self.xtr.shape[0], self.spec.batch
        g = torch.Generator().manual_seed(self.spec.body.seed + t)
        per = max(1, n // b)
        epochs = math.ceil(self.spec.steps / per)
        idx = torch.cat([torch.randperm(n, generator=g)[: per * b].view(per, b) for _ in range(epochs)])
        return idx[: self.spec.steps].to(self.dev)

    def evaluate(self, params: list, readout: tuple[Tensor, Tensor]) -> Tensor:
        """[4] train loss, train accuracy, test loss, test accuracy (on the device)."""
        out = []
        with torch.no_grad():
            for x, y in ((self.xtr, self.ytr), (self.xte, self.yte)):
                z = F.linear(_bare_forward(self.plan, params, x), *readout).float()
                out += [F.cross_entropy(z, y), (z.argmax(dim=1) == y).float().mean()]
        return torch.stack(out)

    def tick(self) -> None:
        self.done += 1
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("The training run was cancelled.")
        if self.progress is not None:
            self.progress(self.done, self.total)

    def trial(self, t: int, stop_at: int | None = None) -> dict:
        """Train trial t; records stay on the device until the end. With stop_at (a replay after divergence),
        measure step stop_at and stop there."""
        spec, r, plan = self.spec, self.r, self.plan
        idx = self.batches(t)
        gen = torch.Generator(device=self.dev).manual_seed(spec.body.seed + t)
        extra = ForwardCounts(r.depth, spec.body.act.name, plan.derive, plan.act_in, self.dev)
        params: list = []
        trial = rn._Trial(r, t, exact=False, keep=params, watch_last=True, extra=extra)
        classes, n_last = self.data.classes, spec.body.arch[-1]
        rg = torch.Generator(device=self.dev).manual_seed(spec.body.seed + t + READOUT_SEED)
        draw = torch.float32 if self.dt in (torch.bfloat16, torch.float16) else self.dt
        w_o = torch.empty(classes, n_last, device=self.dev, dtype=draw).normal_(0.0, 1.0 / math.sqrt(n_last),
                                                                              generator=rg).to(self.dt)
        b_o = torch.zeros(classes, device=self.dev, dtype=self.dt)
        w_o.requires_grad_(True)
        b_o.requires_grad_(True)
        readout = (w_o, b_o)
        matrices = None
        opt = None
        rec_flat, rec_loss, rec_extra, rec_delta, rec_before, evals = [], [], [], [], [], []
        o = spec.optimizer.kwargs
        sgd = spec.optimizer.name == "sgd"
        sgd_plain = sgd and float(o["momentum"]) == 0.0
        lr = float(o["lr"])
        wd = float(o.get("weight_decay", 0.0))
        lr_scale = torch.tensor([lr, lr * lr], device=self.dev)
        losses = torch.empty(spec.steps, dtype=torch.float32, device=self.dev)  # every step's minibatch loss
        checked = 0  # losses[:checked] are known to be finite
        for step in range(spec.steps):
            x, y = self.xtr[idx[step]], self.ytr[idx[step]]
            record = step in self.rec_set or step == stop_at
            if step in self.evals and step > 0 and stop_at is None:
                evals.append(self.evaluate(params, readout))
            if record:
                trial.reset()
                trial.watched = []  # the gradients of the watched tensors: one autograd call (below), no hooks
                if not r.edges_set:
                    f = x.reshape(-1).to(trial.acc)
                    trial.probes["input"] = (torch.dot(f, f), f.numel())
                xl = trial.forward(x, gen)
            else:
                xl = _bare_forward(plan, params, x)
            if opt is None:  # step 0 drew the body: now the optimizer and the start's evaluation
                trial.given = params
                flat = [p for triple in params for p in triple if p is not None] + [w_o, b_o]
                opt = _optimizer(spec, flat)
                matrices = [p[0] for p in params] + [p[2] for p in params if p[2] is not None] + [w_o]
                if stop_at is None:
                    evals.append(self.evaluate(params, readout))
            z = F.linear(xl, w_o, b_o)
            loss = F.cross_entropy(z.float(), y)
            opt.zero_grad(set_to_none=True)
            if record:
                watched, trial.watched = trial.watched, None
                grads = torch.autograd.grad(loss, flat + [tensor for tensor, _, _ in watched])
                for p, g in zip(flat, grads, strict=False):
                    p.grad = g
                for (_, layer, slot), g in zip(reversed(watched), reversed(grads[len(flat):]), strict=True):
                    trial.grad(layer, slot, g)  # last block first, as hooks would see them
                del watched, grads
            else:
                loss.backward()
            losses[step] = loss.detach()  # the only addition to an unrecorded step (one small copy)
            if record:
                trial.close()
                rec_flat.append(trial.buf.flat.clone())
                rec_extra.append(extra.take())
                rec_loss.append(loss.detach().float())
                with torch.no_grad():
                    detached = [m.detach() for m in matrices]
                    # std(W^l) before the update is the runner's weight statistic of this step (in rec_flat)
                    rec_before.append(update_sums(detached[r.depth:]))
                    if sgd_plain:  # the update is -lr (g + wd W): no copy of W needed
                        grads = [m.grad for m in matrices]
                        direction = torch._foreach_add(grads, detached, alpha=wd) if wd else grads
                    elif not sgd:
                        before = torch._foreach_add(detached, 0.0)  # copies (adam)
            opt.step()
            if record:
                with torch.no_grad():
                    if sgd_plain:
                        rec_delta.append(update_sums(direction) * lr_scale)
                    elif sgd:  # momentum: the update is -lr times the momentum buffer, as it is after the step
                        buffers = [opt.state[m]["momentum_buffer"] for m in matrices]
                        rec_delta.append(update_sums(buffers) * lr_scale)
                    else:
                        rec_delta.append(update_sums(torch._foreach_sub(detached, before)))
                        del before
                if step == stop_at:
                    break
                # one sync per recorded step: a non-finite loss since the last check ends the trial
                if not bool(torch.isfinite(losses[checked:step + 1]).all()):
                    break
                checked = step + 1
            self.tick()
        nonfinite = torch.nonzero(~torch.isfinite(losses[:step + 1])).view(-1).tolist()
        first_bad = nonfinite[0] if nonfinite else -1
        if stop_at is None and first_bad < 0:
            evals.append(self.evaluate(params, readout))
        return {"flat": rec_flat, "loss": rec_loss, "extra": rec_extra, "delta": rec_delta, "before": rec_before,
                "evals": evals, "first_bad": first_bad, "sizes": [m.numel() for m in matrices]}


def _host(r: rn._Run, flat: np.ndarray) -> dict[str, np.ndarray]:
    """The runner's buffers of k recorded steps ([k, size] copies of its float64 buffer) as [k, ...] arrays,
    completed (derived post statistics and histograms) for all k at once."""
    out, start = {}, 0
    shapes = {"raw": (r.depth, rn.NSLOTS, rn.K), "forward": (r.depth, len(r.plan.forward_fields)),
              "hist": (r.depth, len(rn.TENSORS), rn.HIST_BINS), "data": (2,)}
    for name, shape in shapes.items():
        n = math.prod(shape)
        out[name] = flat[..., start:start + n].reshape(flat.shape[:-1] + shape).copy()
        start += n
    r.complete(out)
    r.derive_hist(out)
    return out


def _weight_sums(r: rn._Run, flats: np.ndarray) -> np.ndarray:
    """[k, L, 2] (sum, sum of squares) of every W^l as the runner staged them in k records (the forward values
    of _Plan.forward_fields, which follow the raw sums in the buffer)."""
    fields = r.plan.forward_fields
    start = r.depth * rn.NSLOTS * rn.K
    staged = flats[:, start:start + r.depth * len(fields)].reshape(-1, r.depth, len(fields))
    return staged[:, :, [fields.index((rn.WEIGHT, rn.SUM)), fields.index((rn.WEIGHT, rn.SUMSQ))]]


def train(spec: TrainSpec, *, progress: Callable[[int, int], None] | None = None,
          cancelled: Callable[[], bool] | None = None) -> TrainResult:
    """Train every trial of `spec` and return what was recorded (see the module docstring)."""
    start = time.perf_counter()
    data = load_labelled(spec)
    tr = _Trainer(spec, data, progress, cancelled)
    r = tr.r
    T, R, L, E = spec.trials, len(tr.rec), r.depth, len(tr.evals)
    tensors = r.plan.tensors
    n = np.array([r.batch * w for w in spec.body.arch[1:]], dtype=np.float64)
    stats = {k: np.full((T, R, L, len(STAT_NAMES)), np.nan) for k in tensors}
    hist = {k: np.full((T, R, L, rn.HIST_BINS), np.nan) for k in tensors}
    extra = {k: np.full((T, R, L, 3), np.nan) for k in tensors if rn.SLOT[k] in FORWARD_SLOTS}
    loss = np.full((T, R), np.nan)
    has_v = r.plan.residual is not None
    ratio = {"W": np.full((T, R, L), np.nan), "readout": np.full((T, R), np.nan)}
    if has_v:
        ratio["V"] = np.full((T, R, L), np.nan)
    evals = {k: np.full((T, E), np.nan) for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    diverged: list[tuple[int, int] | None] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for t in range(T):
            out = tr.trial(t)
            k = len(out["flat"])
            if k:
                flats = torch.stack(out["flat"]).cpu().numpy()
                counts = torch.stack(out["extra"]).cpu().numpy()  # [k, L, len(FORWARD_SLOTS), 3]
                loss[t, :k] = torch.stack(out["loss"]).cpu().numpy()
                delta = torch.stack(out["delta"]).double().cpu().numpy()  # [k, matrices, 2]: sum, sum of squares
                others = torch.stack(out["before"]).double().cpu().numpy()  # V^l (residual), readout
                before = np.concatenate([_weight_sums(r, flats), others], axis=1)
                rat = log_ratio(delta, before, np.array(out["sizes"], dtype=np.float64))
                host = _host(r, flats)  # [k, ...]
                for name in tensors:
                    slot = rn.SLOT[name]
                    stats[name][t, :k] = rn._finish(host["raw"][:, :, slot], False, n)
                    hist[name][t, :k] = host["hist"][:, :, slot - 1]
                    if name in extra:
                        extra[name][t, :k] = counts[:, :, FORWARD_SLOTS.index(slot)] / n[:, None]
                ratio["W"][t, :k] = rat[:, :L]
                if has_v:
                    ratio["V"][t, :k] = rat[:, L:2 * L]
                ratio["readout"][t, :k] = rat[:, -1]
            if out["first_bad"] >= 0:
                step = out["first_bad"]
                replay = tr.trial(t, stop_at=step)
                host = _host(r, torch.stack(replay["flat"])[-1].cpu().numpy())
                block = 0
                for layer in range(L):
                    if any(not np.isfinite(host["raw"][layer, rn.SLOT[nm], rn.SUMSQ])
                           for nm in tensors if rn.SLOT[nm] in FORWARD_SLOTS):
                        block = layer + 1
                        break
                diverged.append((step, block))
            else:
                diverged.append(None)
                ev = torch.stack(out["evals"]).double().cpu().numpy()
                for i, name in enumerate(("train_loss", "train_acc", "test_loss", "test_acc")):
                    evals[name][t] = ev[:, i]
    except InitscopeError:
        raise
    except (torch.OutOfMemoryError, MemoryError):
        raise RunError(f"Training ran out of memory on {describe(r.device)}; reduce the batch, the widths or "
                       "the depth.") from None
    except RuntimeError as e:
        text = " ".join(str(e).split())
        raise RunError(f"Training failed on {describe(r.device)}: {text[:200]}.") from None
    finally:
        if gc_was_enabled:
            gc.enable()
    edges = {name: r.edges(r.plan.group[rn.SLOT[name]]) for name in tensors}
    notes = []
    for t, d in enumerate(diverged):
        if d is not None:
            where = f"block {d[1]}" if d[1] else "the readout (every block was finite)"
            notes.append(f"Trial {t} (seed {spec.body.seed + t}): the loss became non-finite at step {d[0]}; "
                         f"first non-finite: {where}.")
    return TrainResult(spec=spec, device=describe(r.device), elapsed_s=time.perf_counter() - start,
                       steps=np.array(tr.rec), eval_steps=np.array(tr.evals), loss=loss, stats=stats, extra=extra,
                       hist=hist, edges=edges, update_ratio=ratio, evals=evals, diverged=diverged,
                       classes=data.classes, data_notes=data.notes, split=(len(data.y_train), len(data.y_test)),
                       notes=tuple(notes))


__all__ = ["train", "compare", "TrainResult", "EXTRA_NAMES", "NEAR_ZERO", "SATURATION"]
