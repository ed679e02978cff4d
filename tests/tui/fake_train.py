"""A fake training engine for the Training tab's tests: no torch, seeded, TrainResult's shapes.

The spec is the real TrainSpec (engine/trainspec.py's parse_train; it imports no torch); fake_train stands in
for engine/train.py's train(spec, progress=, cancelled=): the
numbers are made up but seeded, with the layout of TrainResult (T trials, R recorded steps, L blocks, E eval
points): loss [T, R], stats[tensor] [T, R, L, 7], extra[tensor] [T, R, L, 3], hist[tensor] [T, R, L, B],
edges[tensor] [B + 1], update_ratio W [T, R, L] / readout [T, R], evals[name] [T, E], diverged.

The made-up curves: loss_t(s) = 2.3 exp(-s / (steps tau)) + noise, with tau = 0.5 for act relu-like and
the final test accuracy acc = ACC[act] + 0.01 * N(0,1) per trial (the seed), so a test can say which run
is ahead and by how much.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from initscope.engine.errors import Cancelled
from initscope.engine.result import STAT_NAMES
from initscope.engine.trainspec import TrainSpec, parse_train

from .fake_engine import FakeEngine, present_tensors

BINS = 40
ACC = {"relu": 0.60, "tanh": 0.80}


def fake_parse_train(**texts: str) -> TrainSpec:
    """The real parser (engine/trainspec.py imports no torch): the app gets the TrainSpec it gets in use."""
    return parse_train(**texts)


def fake_train(spec: TrainSpec, *, progress=None, cancelled=None, delay: float = 0.0):
    body = spec.body
    T, L = body.trials, body.depth
    rec = spec.record_steps()
    R, evals_at = len(rec), spec.eval_points()
    E = len(evals_at)
    steps = np.array(rec)
    done = 0
    for _t in range(T):
        for _s in range(spec.steps):
            done += 1
            if cancelled is not None and cancelled():
                raise Cancelled("The training run was cancelled.")
            if progress is not None:
                progress(done, T * spec.steps)
            if delay:
                time.sleep(delay)
    tensors = present_tensors(body)
    rng = np.random.default_rng(body.seed)
    act = body.act.name
    tau = 0.5 if act == "tanh" else 2.0
    loss = 2.3 * np.exp(-steps[None, :] / (spec.steps * tau)) + 0.02 * rng.standard_normal((T, R))
    stats, extra, hist, edges = {}, {}, {}, {}
    for name in tensors:
        s = np.zeros((T, R, L, len(STAT_NAMES)))
        s[..., STAT_NAMES.index("std")] = 1.0 + 0.1 * np.arange(L)[None, None, :] + 0.001 * steps[None, :, None]
        s[..., STAT_NAMES.index("mean")] = 0.5
        s[..., STAT_NAMES.index("zero_frac")] = 0.5
        stats[name] = s
        hist[name] = rng.integers(0, 100, size=(T, R, L, BINS)).astype(float)
        edges[name] = np.linspace(-4.0, 4.0, BINS + 1)
        if not name.startswith("grad"):
            e = np.full((T, R, L, 3), 0.25)
            e[..., 2] = 0.1 if act == "tanh" and name == "post" else np.nan
            extra[name] = e
    ratio = {"W": -3.0 + 0.1 * rng.standard_normal((T, R, L)), "readout": np.full((T, R), -2.5)}
    acc = ACC.get(act, 0.7) + 0.01 * rng.standard_normal(T)
    ev = {"train_loss": np.tile(np.linspace(2.3, 0.5, E), (T, 1)),
          "test_loss": np.tile(np.linspace(2.3, 0.6, E), (T, 1)),
          "train_acc": np.tile(np.linspace(0.1, 0.9, E), (T, 1)),
          "test_acc": np.concatenate([np.tile(np.linspace(0.1, 0.5, E - 1), (T, 1)), acc[:, None]], axis=1)}
    return FakeTrainResult(spec, "cpu (fake)", 0.01, steps, np.array(evals_at), loss, stats, extra, hist, edges,
                           ratio, ev, [None] * T, 10)


@dataclass
class FakeTrainResult:
    spec: TrainSpec
    device: str
    elapsed_s: float
    steps: np.ndarray
    eval_steps: np.ndarray
    loss: np.ndarray
    stats: dict
    extra: dict
    hist: dict
    edges: dict
    update_ratio: dict
    evals: dict
    diverged: list
    classes: int
    notes: tuple = ()

    @property
    def tensors(self) -> tuple[str, ...]:
        return tuple(self.stats)


class FakeTrainEngine(FakeEngine):
    """The fake run engine plus parse_train/train_run (the app looks these up on its engine first)."""

    def __init__(self, *args, train_delay: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.train_delay = train_delay
        self.trained: list[TrainSpec] = []

    def parse_train(self, **texts: str) -> TrainSpec:
        return fake_parse_train(**texts)

    def train_run(self, spec: TrainSpec, *, progress=None, cancelled=None):
        self.trained.append(spec)
        return fake_train(spec, progress=progress, cancelled=cancelled, delay=self.train_delay)
