"""Theory-only phase diagrams: the sweep metrics of docs/sweeps.md predicted for many specs at once.

Stub: the values follow (interface of issue 11, fixed by the lead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..spec import RunSpec
from ..textforms import Call

CELL_METRICS = ("log_q_ratio", "c_last", "log_grad_ratio", "chi1", "nonfinite_frac")
PHASE_C0 = 0.5  # initial pair correlation c^0 used for c_last when a spec has pair_corr None
EXTRA_KEYS = ("xi_c", "xi_q", "log_q_ratio_lo", "log_q_ratio_hi", "c_last_lo", "c_last_hi")


def predict_cells(specs: Sequence[RunSpec]) -> dict[str, np.ndarray]:
    """For every name in CELL_METRICS + EXTRA_KEYS an array [len(specs)] of predictions (NaN: none)."""
    n = len(specs)
    return {k: np.full(n, math.nan) for k in CELL_METRICS + EXTRA_KEYS}


def critical_curve(act: Call, sigma_b2: np.ndarray) -> np.ndarray:
    """sigma_w^2 on chi_1 = 1 for each sigma_b^2 (same shape)."""
    return np.full(np.shape(sigma_b2), math.nan)
