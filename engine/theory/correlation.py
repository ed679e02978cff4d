"""The mean-field correlation map for pairs of inputs, and the depth scales of docs/formulas.md.

Stub: the values follow (interface of issue 11, fixed by the lead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..textforms import Call


@dataclass(frozen=True)
class DepthScales:
    """The fixed point of the length map and the depth scales there (NaN where undefined)."""

    q_star: float
    c_star: float
    chi1: float
    xi_q: float
    xi_c: float


def depth_scales(act: Call, sigma_w2: float, sigma_b2: float) -> DepthScales:
    """q*, c*, chi_1 at q*, xi_q and xi_c (math.inf at criticality, NaN where undefined)."""
    nan = math.nan
    return DepthScales(nan, nan, nan, nan, nan)


def critical_sigma_w2(act: Call, sigma_b2: float) -> float:
    """sigma_w^2 with chi_1 = 1 at q* (tanh, sigma_b^2 = 0.05: 1.760955)."""
    return math.nan
