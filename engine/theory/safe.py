"""The theory as a run attaches it: a prediction that fails is absent with its reason, never a crash.

    predict_or_reason(spec, *, data_mean=None, data_second_moment=None, data_kernel=None) -> Prediction
    explain_or_reason(spec, prediction) -> Explanation
    no_prediction(spec, reason) -> Prediction          (every value NaN, `reason` says why)

The measurement is a result even where the prediction fails (a numeric blow-up in the recursion, a bug in
one formula): predict_or_reason catches the failure and returns no_prediction with a reason naming it,
so `RunResult.theory` always holds a Prediction and the JSON's `theory_reason` says what happened.
numpy's floating-point warnings are silenced here: overflow to inf/nan is reported through `reason`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..spec import RunSpec
from . import Diagnostics, Explanation, Prediction, explain, predict
from .diagnostics import FixedPoint
from .meanfield import MeanField


def _nan_fields(cls, depth: int, given: dict) -> dict:
    """Every field of the dataclass `cls` not in `given`: NaN arrays of length depth, NaN floats, () tuples."""
    out = dict(given)
    for f in dataclasses.fields(cls):
        if f.name in out:
            continue
        kind = str(f.type)
        if "ndarray" in kind:
            out[f.name] = np.full(depth, math.nan)
        elif kind.startswith("float"):
            out[f.name] = math.nan
        elif kind.startswith("tuple"):
            out[f.name] = ()
        else:
            out[f.name] = None
    return out


def no_prediction(spec: RunSpec, reason: str) -> Prediction:
    """A Prediction with no values (all NaN) and `reason`; what explain() and the reports show as absent."""
    L = spec.depth
    diag = Diagnostics(**_nan_fields(Diagnostics, L, {
        "phase": "unknown", "fixed_point": FixedPoint("none", None, None), "leaves_at": None,
        "leaves_how": None, "leaves_extrapolated": False, "depth_scale": None}))
    mf = MeanField(**_nan_fields(MeanField, L, {"reason": reason}))
    return Prediction(**_nan_fields(Prediction, L, {"reason": reason, "diagnostics": diag, "meanfield": mf}))


def _failure(what: str, err: BaseException) -> str:
    detail = f": {err}" if str(err) else ""
    return f"the {what} failed ({type(err).__name__}{detail}); the measurement stands without it"


def predict_or_reason(spec: RunSpec, *, data_mean: float | None = None,
                      data_second_moment: float | None = None, data_kernel=None) -> Prediction:
    """predict(), or no_prediction() with the reason when any part of the theory fails."""
    try:
        with np.errstate(all="ignore"):
            return predict(spec, data_mean=data_mean, data_second_moment=data_second_moment,
                           data_kernel=data_kernel)
    except Exception as err:  # noqa: BLE001 - any theory failure leaves the measurement standing
        return no_prediction(spec, _failure("prediction", err))


def explain_or_reason(spec: RunSpec, prediction: Prediction) -> Explanation:
    """explain(), or the explanation of no_prediction() when the wording fails on these numbers."""
    try:
        with np.errstate(all="ignore"):
            return explain(spec, prediction)
    except Exception as err:  # noqa: BLE001
        return explain(spec, no_prediction(spec, _failure("explanation", err)))


__all__ = ["predict_or_reason", "explain_or_reason", "no_prediction"]
