"""initscope's engine: parse a spec, run a linear+activation stack, predict it from theory.

Importing this package does not import torch; `run` loads it on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import Cancelled, InitscopeError, RunError, SpecError
from .spec import RunSpec, default_spec, parse_spec

if TYPE_CHECKING:
    from .result import RunResult

Progress = Callable[[int, int], None]  # (steps done, steps total)
CancelCheck = Callable[[], bool]


def run(spec: RunSpec, *, progress: Progress | None = None, cancelled: CancelCheck | None = None) -> RunResult:
    """Run the spec (all trials), measure every block, and attach the theory's prediction (result.theory).

    The measurement stands even where the theory fails: result.theory is then a prediction with no values
    and its reason (engine/theory/safe.py). Imports torch on first call.
    """
    from .runner import run as _run
    from .theory.safe import predict_or_reason

    result = _run(spec, progress=progress, cancelled=cancelled)
    result.theory = predict_or_reason(spec, data_mean=result.data_mean, data_second_moment=result.data_second_moment,
                                      data_kernel=result.data_kernel)
    return result


def train(spec, *, progress: Progress | None = None, cancelled: CancelCheck | None = None):
    """Train a TrainSpec (engine/trainspec.py) and return its TrainResult (engine/train.py). Imports torch."""
    from .train import train as _train

    return _train(spec, progress=progress, cancelled=cancelled)


def preview(spec: RunSpec):
    """The prediction alone, before any run: numpy only, milliseconds (the app draws it while torch loads).

    For data the spec describes (gaussian, uniform) it equals what run() attaches; for file and digits data
    it has no values (the prediction needs the rows' measured moments) and its reason says so."""
    from .theory.safe import predict_or_reason

    return predict_or_reason(spec)


__all__ = ["run", "train", "preview", "RunSpec", "parse_spec", "default_spec", "SpecError", "RunError", "Cancelled",
           "InitscopeError"]
