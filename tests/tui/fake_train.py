"""A fake training engine for the Training tab's tests: no torch, seeded, TrainResult's shapes.

FakeTrainSpec / fake_parse_train stand in for engine/trainspec.py (TrainSpec: body, data, steps, optimizer,
every; trials; to_text; label), fake_train for engine/train.py's train(spec, progress=, cancelled=): the
numbers are made up but seeded, with the layout of TrainResult (T trials, R recorded steps, L blocks, E eval
points): loss [T, R], stats[tensor] [T, R, L, 7], extra[tensor] [T, R, L, 3], hist[tensor] [T, R, L, B],
edges[tensor] [B + 1], update_ratio W [T, R, L] / readout [T, R], evals[name] [T, E], diverged.

The made-up curves: loss_t(s) = 2.3 exp(-s / (steps tau)) + noise, with tau = 0.5 for act relu-like and
the final test accuracy acc = ACC[act] + 0.01 * N(0,1) per trial (the seed), so a test can say which run
is ahead and by how much.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from initscope.engine.errors import Cancelled, SpecError
from initscope.engine.result import STAT_NAMES
from initscope.engine.spec import RunSpec, parse_spec

from .fake_engine import FakeEngine, present_tensors

BINS = 40
ACC = {"relu": 0.60, "tanh": 0.80}
BODY = ("arch", "init", "act", "bias", "batch", "device", "dtype", "seed", "trials", "norm", "residual")


@dataclass(frozen=True)
class FakeTrainSpec:
    body: RunSpec
    data: str
    steps: int
    optimizer: str
    every: int

    @property
    def trials(self) -> int:
        return self.body.trials

    @property
    def batch(self) -> int:
        return self.body.batch

    def to_text(self) -> dict[str, str]:
        t = {k: v for k, v in self.body.to_text().items() if k in BODY}
        t.update(data=self.data, steps=str(self.steps), optimizer=self.optimizer, every=str(self.every))
        return t

    def record_steps(self) -> list[int]:
        steps = list(range(0, self.steps, self.every))
        if steps[-1] != self.steps - 1:
            steps.append(self.steps - 1)
        return steps

    def eval_points(self) -> list[int]:
        n = self.steps
        return sorted({0, n // 4, n // 2, (3 * n) // 4, n})

    def label(self) -> str:
        t = self.to_text()
        return f"{t['init']} {t['act']} {t['arch']}"


def fake_parse_train(**texts: str) -> FakeTrainSpec:
    """The parser's rules the app relies on: a bad value is one SpecError naming the field."""
    steps_text = str(texts.pop("steps", "100"))
    if not steps_text.isdigit() or int(steps_text) < 1:
        raise SpecError("steps", steps_text, "expected a whole number from 1 to 10000000")
    optimizer = str(texts.pop("optimizer", "sgd"))
    if optimizer.split("(")[0] not in ("sgd", "adam"):
        raise SpecError("optimizer", optimizer, "choose one of sgd, adam")
    every = int(str(texts.pop("every", "0")) or 0)
    data = str(texts.pop("data", "digits"))
    steps = int(steps_text)
    body = parse_spec(**texts, grad="true")
    return FakeTrainSpec(body, data, steps, optimizer, every or max(1, math.ceil(steps / 200)))


def fake_train(spec: FakeTrainSpec, *, progress=None, cancelled=None, delay: float = 0.0):
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
    spec: FakeTrainSpec
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
        self.trained: list[FakeTrainSpec] = []

    def parse_train(self, **texts: str) -> FakeTrainSpec:
        return fake_parse_train(**texts)

    def train_run(self, spec: FakeTrainSpec, *, progress=None, cancelled=None):
        self.trained.append(spec)
        return fake_train(spec, progress=progress, cancelled=cancelled, delay=self.train_delay)
