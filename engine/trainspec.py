"""TrainSpec: what `initscope train` trains, validated. Torch-free (the CLI parses before torch loads).

A training run is the spec's stack (RunSpec: arch, init, act, bias, norm, residual, dtype, device, seed,
trials) plus:

- data: labelled data (LABELLED_DATA): digits (scikit-learn's 8x8 digits, a seeded split, standardized with
  the training split's global mean and std), teacher(...) (Gaussian inputs, labels from a random teacher
  network) or file(...) (inputs and integer labels from the user's files);
- steps: optimizer steps (default 100); batch: the minibatch size (default 64);
- optimizer: sgd(lr, momentum, weight_decay) or adam(lr, beta1, beta2, eps, weight_decay), in the catalog's
  text form (OPTIMIZERS);
- every: record the statistics every K steps (0 = auto: K = ceil(steps / MAX_POINTS), at most ~200 points).

The body's RunSpec carries data=gaussian as a placeholder (the runner draws nothing from it: the minibatch
is given), batch = the minibatch size and grad = true. Every bad value is one SpecError sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalog import resolve_in
from .entries import AUTO, Entry, Param, fparam
from .errors import SpecError
from .spec import DEFAULTS as RUN_DEFAULTS
from .spec import RunSpec, _int_field, parse_spec
from .textforms import Call, format_call

MAX_STEPS = 10_000_000
MAX_POINTS = 200

OPTIMIZERS: dict[str, Entry] = {e.name: e for e in [
    Entry("sgd", "stochastic gradient descent (torch.optim.SGD)",
          (fparam("lr", 0.05, "learning rate", positive=True),
           fparam("momentum", 0.0, "momentum", low=0.0, high=0.999999),
           fparam("weight_decay", 0.0, "L2 penalty added to the gradient", low=0.0)),
          "v = momentum v + g + wd W; W -= lr v"),
    Entry("adam", "Adam (torch.optim.Adam)",
          (fparam("lr", 0.001, "learning rate", positive=True),
           fparam("beta1", 0.9, "first-moment decay", low=0.0, high=0.999999),
           fparam("beta2", 0.999, "second-moment decay", low=0.0, high=0.999999),
           fparam("eps", 1e-8, "added to the root of the second moment", positive=True),
           fparam("weight_decay", 0.0, "L2 penalty added to the gradient", low=0.0)),
          "W -= lr m_hat / (sqrt(v_hat) + eps)"),
]}

_TEST = fparam("test_frac", 0.2, "fraction held out", low=0.01, high=0.9)
_SPLIT = Param("split_seed", "int", 0, "seed of the split (and of the teacher); the same for every trial", low=0)

LABELLED_DATA: dict[str, Entry] = {e.name: e for e in [
    Entry("digits", "scikit-learn's 8x8 digits (1797 x 64, 10 classes), standardized with the training split",
          (_TEST, _SPLIT), "x = (pixels - mean_train) / std_train, y = the digit"),
    Entry("teacher", "Gaussian inputs (width = the arch's first width), labels from a random tanh teacher",
          (Param("samples", "int", 4096, "examples (train + held out)", low=20, high=10_000_000),
           Param("classes", "int", 10, "number of classes", low=2, high=100_000),
           Param("hidden", "int", 64, "the teacher's hidden width", low=1, high=100_000), _TEST, _SPLIT),
          "x ~ N(0, I), y = argmax(A tanh(B x)), B ~ N(0, 1/n_0), A ~ N(0, 1/hidden)"),
    Entry("file", "your inputs and integer labels 0..C-1: a .npz with both, or inputs and labels in two files",
          (Param("path", "path", "", "the inputs (.npy, .npz, .csv, .pt)"),
           Param("labels", "str", "y", "the labels: a member of the .npz at path, or a file (.npy, .csv, .pt)"),
           Param("key", "str", AUTO, "the inputs' member of a .npz (auto = the first that is not the labels)",
                 optional=True),
           Param("normalize", "bool", True, "standardize with the training split's global mean and std"),
           _TEST, _SPLIT),
          "x = rows of path, y = labels (one per row)"),
]}

TRAIN_DEFAULTS: dict[str, str] = {
    "arch": "64-100x10", "data": "digits", "batch": "64", "steps": "100", "optimizer": "sgd", "every": "0",
}
TRAIN_FIELDS = ("arch", "init", "act", "bias", "data", "batch", "device", "dtype", "seed", "trials", "norm",
                "residual", "steps", "optimizer", "every")


def show(table: dict[str, Entry], call: Call) -> str:
    return format_call(call, table[call.name].defaults)


@dataclass(frozen=True)
class TrainSpec:
    body: RunSpec  # the stack (batch = the minibatch; data: a placeholder)
    data: Call  # a LABELLED_DATA call
    steps: int
    optimizer: Call  # an OPTIMIZERS call
    every: int  # recorded every `every` steps (resolved: >= 1)

    @property
    def batch(self) -> int:
        return self.body.batch

    @property
    def trials(self) -> int:
        return self.body.trials

    def to_text(self) -> dict[str, str]:
        t = {k: v for k, v in self.body.to_text().items() if k in TRAIN_FIELDS}
        t.update(data=show(LABELLED_DATA, self.data), steps=str(self.steps),
                 optimizer=show(OPTIMIZERS, self.optimizer), every=str(self.every))
        return t

    def record_steps(self) -> list[int]:
        """The steps whose forward/backward is measured: 0, every, 2 every, ..., and the last step."""
        steps = list(range(0, self.steps, self.every))
        if steps[-1] != self.steps - 1:
            steps.append(self.steps - 1)
        return steps

    def eval_points(self) -> list[int]:
        """After how many updates the whole train and held-out splits are evaluated: 0, N/4, N/2, 3N/4, N."""
        n = self.steps
        return sorted({0, n // 4, n // 2, (3 * n) // 4, n})

    def label(self) -> str:
        t = self.to_text()
        return f"{t['init']} {t['act']} {t['arch']}"


def auto_every(steps: int) -> int:
    return max(1, math.ceil(steps / MAX_POINTS))


def parse_train(**texts: object) -> TrainSpec:
    """Build a TrainSpec from text forms; missing fields take TRAIN_DEFAULTS, then the run's DEFAULTS."""
    unknown = set(texts) - set(TRAIN_FIELDS)
    if unknown:
        raise SpecError("spec", sorted(unknown)[0], "known fields are " + ", ".join(TRAIN_FIELDS))
    t = {**TRAIN_DEFAULTS, **{k: v for k, v in texts.items() if v is not None}}
    data = resolve_in("data", LABELLED_DATA, str(t["data"]))
    optimizer = resolve_in("optimizer", OPTIMIZERS, str(t["optimizer"]))
    steps = _int_field("steps", t["steps"], 1, MAX_STEPS)
    every = _int_field("every", t["every"], 0, MAX_STEPS)
    if every == 0:
        every = auto_every(steps)
    body_fields = {k: t[k] for k in ("arch", "init", "act", "bias", "batch", "device", "dtype", "seed", "trials",
                                     "norm", "residual") if k in t}
    body = parse_spec(**body_fields, data=RUN_DEFAULTS["data"], grad="true")
    if data.name == "digits" and body.arch[0] != 64:
        from .textforms import format_arch

        raise SpecError("arch", format_arch(body.arch), "digits has 64 features, so the arch must start with 64",
                        fix=("arch", format_arch((64, *body.arch[1:]))))
    return TrainSpec(body=body, data=data, steps=steps, optimizer=optimizer, every=every)


def listing() -> str:
    lines = ["Optimizers (initscope train --optimizer)"]
    for e in OPTIMIZERS.values():
        lines.append(f"  {e.usage():<44} {e.doc}")
    lines.append("Labelled data (initscope train --data)")
    for e in LABELLED_DATA.values():
        lines.append(f"  {e.usage():<44} {e.doc}")
    return "\n".join(lines) + "\n"


__all__ = ["TrainSpec", "parse_train", "OPTIMIZERS", "LABELLED_DATA", "TRAIN_DEFAULTS", "TRAIN_FIELDS",
           "MAX_POINTS"]
