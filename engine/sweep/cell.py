"""One grid cell of a sweep: its task (what a backend ships to a worker), run_cell, and its tidy rows.

A CellTask is plain picklable data (the spec as its text forms, never a RunSpec or a tensor), so any backend
(in-process, local processes, Ray) can send it; run_cell is a module-level function for the same reason.

run_cell runs the cell's spec (all its trials) through the normal runner (engine/runner.py) and computes, per
trial t, the metrics of docs/sweeps.md (x^L = the last block's output: post, or out with a residual; g^l =
dLoss/dx^l: grad, or grad_out with a residual):

    log_q_ratio    = log10( E[(x^L)^2] / E[(x^0)^2] ) = log10( rms(x^L)^2 / RunResult.data_second_moment )
    c_last         = c^L, the mean cosine similarity of the pairs' pre-activations h^L (RunResult.corr["pre"])
    log_grad_ratio = log10( std(g^1) / std(g^L) )             (> 0: the gradient grows toward the input)
    chi1           = None (theory only)
    nonfinite_frac = the fraction of non-finite entries of x^L

and, with train_steps, the cell's stack trained for that many steps (engine/train.py): train_loss, train_acc,
test_acc after the last step, per trial. Then one predicted row from engine.theory.phase.predict_cells.
A numeric blow-up is a result: log_q_ratio is +inf when any entry of x^L is not finite (the second moment
overflowed), a metric whose tensor had no finite entry is None, a zero signal gives -inf (log10 of 0), and
nonfinite_frac says how much overflowed. Any exception becomes CellResult.error.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CellTask:
    """Cell `index` of the grid (row-major, the first axis slowest), its coordinates by axis name (e.g.
    {"init.gain": 1.5, "bias.std": 0.1}), the cell's spec as text forms (RunSpec.to_text(), re-parsed by the
    worker) and, with --train-steps, the number of training steps (None: init-time metrics only)."""

    index: int
    coords: dict[str, object]
    spec_json: dict
    train_steps: int | None = None
    train_options: dict | None = None  # extra text forms for training (e.g. {"optimizer": "sgd(lr=0.01)"})
    predict: bool = True  # False: no predicted row (run_sweep predicts in the driver, the same on every backend)


@dataclass
class CellResult:
    """What a cell produced: its tidy rows (one per trial with source "measured", then one with source
    "predicted"), the wall time of the cell in the worker, and the error sentence when the cell failed (then
    rows is empty and the sweep goes on)."""

    index: int
    rows: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0
    error: str | None = None


MEASURED_METRICS = ("log_q_ratio", "c_last", "log_grad_ratio", "chi1", "nonfinite_frac")
TRAIN_METRICS = ("train_loss", "train_acc", "test_acc")
THEORY_EXTRAS = ("xi_c", "xi_q", "log_q_ratio_lo", "log_q_ratio_hi", "c_last_lo", "c_last_hi")
METRICS = MEASURED_METRICS + TRAIN_METRICS + THEORY_EXTRAS  # every metric column of a row, in this order

# Training data of --train-steps: Gaussian inputs with teacher labels fit any input width; a cell whose run data
# is digits trains on digits. The minibatch, optimizer and split are the `initscope train` defaults.
TRAIN_DATA = "teacher"


def run_cell(task: CellTask) -> CellResult:
    """Run one cell (all its trials) and return its tidy rows; an exception becomes CellResult.error."""
    start = time.perf_counter()
    try:
        rows = cell_rows(task)
    except Exception as e:  # noqa: BLE001 - any failure of one cell is recorded and the sweep goes on
        return CellResult(task.index, [], time.perf_counter() - start, error=_sentence(e))
    return CellResult(task.index, rows, time.perf_counter() - start, None)


def _sentence(e: BaseException) -> str:
    from ..errors import InitscopeError

    text = " ".join(str(e).split())
    if isinstance(e, InitscopeError):
        return text
    where = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    at = f" at {where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno}" if where else ""
    return f"{type(e).__name__}: {text}{at}"


def cell_rows(task: CellTask) -> list[dict]:
    """The cell's rows: one measured row per trial, then the predicted row (raises on failure)."""
    from ..runner import run
    from ..spec import parse_spec

    spec = parse_spec(**task.spec_json)
    result = run(spec)
    measured = measured_metrics(result)
    if task.train_steps:
        for t, values in enumerate(train_metrics(spec, task.train_steps, task.train_options or {})):
            measured[t].update(values)
    rows = [_row(task, "measured", t, m) for t, m in enumerate(measured)]
    if task.predict:
        rows.append(predicted_row(task, spec))
    return rows


def predicted_row(task: CellTask, spec) -> dict:
    """The cell's predicted row (source "predicted", trial None)."""
    return _row(task, "predicted", None, predicted_metrics(spec))


def _row(task: CellTask, source: str, trial: int | None, values: dict) -> dict:
    row: dict = {"cell": task.index, **task.coords, "source": source, "trial": trial}
    for name in METRICS:
        row[name] = values.get(name)
    if values.get("error"):
        row["error"] = values["error"]
    return row


def last_output(result) -> str:
    """The tensor of x^L, the last block's output: out with a residual, post otherwise."""
    return "out" if "out" in result.stats else "post"


def block_grad(result) -> str | None:
    """The tensor of g^l = dLoss/dx^l: grad_out with a residual, grad otherwise (None without gradients)."""
    if "grad_out" in result.stats:
        return "grad_out"
    return "grad" if "grad" in result.stats else None


def measured_metrics(result) -> list[dict]:
    """Per trial, the measured metrics of the module docstring (chi1 None: it is a theory quantity)."""
    out = last_output(result)
    rms = result.per_trial(out, "rms")[:, -1]
    nonfinite = result.per_trial(out, "nonfinite_frac")[:, -1]
    grad = block_grad(result)
    corr = getattr(result, "corr", None)
    rows = []
    for t in range(result.trials):
        m: dict = {"chi1": None, "nonfinite_frac": _num(nonfinite[t])}
        # an overflow (inf, then inf - inf = nan) leaves E[(x^L)^2] infinite: +inf, whatever the finite entries say
        overflowed = nonfinite[t] > 0
        m["log_q_ratio"] = math.inf if overflowed else _log10_ratio(rms[t] ** 2, result.data_second_moment)
        if grad is not None:
            std = result.per_trial(grad, "std")[t]
            m["log_grad_ratio"] = _log10_ratio(std[0], std[-1])
        else:
            m["log_grad_ratio"] = None
        m["c_last"] = _num(corr["pre"][t, -1]) if corr is not None and "pre" in corr else None
        rows.append(m)
    return rows


def _log10_ratio(a: float, b: float) -> float | None:
    """log10(a / b) for a, b >= 0: None when either is not finite or b = 0; -inf when a = 0 < b."""
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)) or b <= 0 or a < 0:
        return None
    if a == 0:
        return -math.inf
    return math.log10(a) - math.log10(b)


def _num(v) -> float | None:
    """A float, or None where it is NaN (no finite entries to measure); +-inf stays."""
    v = float(v)
    return None if math.isnan(v) else v


def train_metrics(spec, steps: int, options: dict) -> list[dict]:
    """Train the cell's stack for `steps` steps (engine/train.py; data TRAIN_DATA, or digits for a digits cell)
    and return, per trial, train_loss, train_acc and test_acc after the last step. A trial whose loss became
    non-finite has train_loss = inf and accuracies None."""
    from ..train import train
    from ..trainspec import parse_train

    texts = spec.to_text()
    body = {k: texts[k] for k in ("arch", "init", "act", "bias", "device", "dtype", "seed", "trials", "norm",
                                  "residual")}
    data = "digits" if spec.data.name == "digits" else TRAIN_DATA
    result = train(parse_train(**{**body, "data": data, "steps": str(steps), "every": str(steps), **options}))
    rows = []
    for t in range(spec.trials):
        if result.diverged[t] is not None:
            rows.append({"train_loss": math.inf, "train_acc": None, "test_acc": None})
        else:
            rows.append({name: _num(result.final(name)[t]) for name in TRAIN_METRICS})
    return rows


def predicted_metrics(spec) -> dict:
    """The mean-field prediction of the cell (engine.theory.phase.predict_cells), NaN as None. Where the theory
    raises, the measurement stands: every prediction is None and "error" says why."""
    from ..theory.phase import predict_cells

    try:
        pred = predict_cells([spec])
    except Exception as e:  # noqa: BLE001 - a theory failure must not lose the cell's measurement
        return {"error": "no prediction: " + _sentence(e)}
    return {name: _num(values[0]) for name, values in pred.items() if name in METRICS}
