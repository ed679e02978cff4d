"""Growth per block: how much a tensor's second moment changes from one block to the next, on average.

    forward (out):             G = (std_L / std_1)^(2/(L-1))
    toward the input (grads):  G = (std_1 / std_L)^(2/(L-1))

the geometric mean of E[x^2]^(l+1)/E[x^2]^l over the stack (std stands in for the root second moment: the
tensors it is used on have mean about 0). BatchNorm's theory predicts G = E[phi'^2]/Var[phi] for the
gradients (pi/(pi-1) = 1.467 for ReLU), a residual stack's forward G follows p^l = p^(l-1) + alpha^2 ...
(docs/formulas.md 16). The CLI's table and the app's Explain tab print the same rows.
"""

from __future__ import annotations

import math

import numpy as np

# (tensor, toward the input, what the factor multiplies)
GROWTH_ROWS = (
    ("out", False, "E[x^2] of out, forward"),
    ("grad", True, "E[g^2] of grad, toward the input"),
    ("grad_out", True, "E[g^2] of grad_out, toward the input"),
)


def growth_per_block(std, toward_input: bool) -> float:
    """G above; NaN when undefined (one block, a zero or non-finite end)."""
    std = np.asarray(std, dtype=float)
    if std.size < 2 or not (np.isfinite(std[0]) and np.isfinite(std[-1]) and std[0] > 0 and std[-1] > 0):
        return math.nan
    ratio = std[0] / std[-1] if toward_input else std[-1] / std[0]
    return float(ratio ** (2.0 / (std.size - 1)))


def growth_rows(result, prediction=None) -> list[tuple[str, float, float]]:
    """(what, measured G, predicted G) for each GROWTH_ROWS tensor the run has; the measured one from the
    mean over trials, the predicted one from the Prediction's `<tensor>_std` (NaN without one)."""
    rows = []
    for tensor, toward, what in GROWTH_ROWS:
        if tensor not in result.stats:
            continue
        measured = growth_per_block(result.headline(tensor, "std"), toward)
        arr = getattr(prediction, f"{tensor}_std", None) if prediction is not None else None
        arr = None if arr is None else np.asarray(arr, dtype=float)
        predicted = growth_per_block(arr, toward) if arr is not None and arr.size == result.depth else math.nan
        rows.append((what, measured, predicted))
    return rows
