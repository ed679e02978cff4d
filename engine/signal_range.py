"""The one rule for "the signal vanished / exploded / went non-finite at layer l".

Inputs have std about 1 and the loss gradient g^L ~ N(0, 1), so a healthy signal keeps a std of
order 1. A block's std has left the usable range when it is below LOW = 1e-3 (vanished) or above
HIGH = 1e3 (exploded); a block whose values include inf or NaN went non-finite. The first such
block, scanning from block 1, is the event. The prediction (engine/theory/diagnostics.py), the
Explain text, the app's Runs table and the CLI table all call first_out_of_range, so they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOW, HIGH = 1e-3, 1e3
RULE = "std outside [1e-3, 1e3]"  # the rule in words, for the screen


@dataclass(frozen=True)
class RangeEvent:
    """Block `layer` (1-based) is the first where the std left [LOW, HIGH] or the values went non-finite."""

    layer: int
    how: str  # vanish | explode | nonfinite

    @property
    def label(self) -> str:
        """Short form for a table cell: std<1e-3@L7, std>1e3@L3, nan/inf@L32."""
        return {"vanish": "std<1e-3", "explode": "std>1e3", "nonfinite": "nan/inf"}[self.how] + f"@L{self.layer}"

    @property
    def words(self) -> str:
        """'vanishes (std below 1e-3)', 'explodes (std above 1e3)' or 'goes non-finite (inf/nan)'."""
        return {"vanish": "vanishes (std below 1e-3)", "explode": "explodes (std above 1e3)",
                "nonfinite": "goes non-finite (inf/nan)"}[self.how]


def first_out_of_range(std, nonfinite=None) -> RangeEvent | None:
    """The first block whose std is finite and outside [LOW, HIGH], or whose `nonfinite` flag is set.

    std: per-block stds (a NaN std is skipped: it means "no value", e.g. no prediction there);
    nonfinite: optional per-block flags (True where some entries were inf or NaN)."""
    flags = list(nonfinite) if nonfinite is not None else []
    for i, s in enumerate(std):
        if i < len(flags) and bool(flags[i]):
            return RangeEvent(i + 1, "nonfinite")
        s = float(s)
        if math.isfinite(s) and s < LOW:
            return RangeEvent(i + 1, "vanish")
        if math.isfinite(s) and s > HIGH:
            return RangeEvent(i + 1, "explode")
    return None


def nonfinite_layers(result, tensor: str):
    """[L] bools: True at a block where some entries of `tensor` (in any trial) were inf or NaN, or where
    its headline std is not finite. `result` is a RunResult (or anything with per_trial/headline)."""
    import numpy as np

    frac = np.asarray(result.per_trial(tensor, "nonfinite_frac"), dtype=float)
    return (frac > 0).any(axis=0) | ~np.isfinite(np.asarray(result.headline(tensor, "std"), dtype=float))


def first_nonfinite(result, tensor: str) -> int | None:
    """The first block (1-based) of nonfinite_layers, or None (also when the tensor was not measured)."""
    if tensor not in result.stats:
        return None
    hits = [i for i, bad in enumerate(nonfinite_layers(result, tensor)) if bad]
    return hits[0] + 1 if hits else None


def range_event(result, tensor: str) -> RangeEvent | None:
    """first_out_of_range for a measured tensor's std, its inf/NaN layers included (None if not measured)."""
    if tensor not in result.stats:
        return None
    return first_out_of_range(result.headline(tensor, "std"), nonfinite_layers(result, tensor))
