"""Residual kinds: catalog names (engine/catalog.py RESIDUALS) -> what the runner's block step needs.

With a residual, block l computes x^l = x^(l-1) + alpha * V a, a = phi(norm(W x^(l-1) + b)) (docs/design.md,
Notation). `get(residual, depth)` returns a `Residual` record, or None for `none`:

- alpha: the branch multiplier (plain: its alpha; rezero: 0; fixup: 1);
- w_scale: W is drawn by the run's scheme (LSUV rescaling included) and then multiplied by w_scale
  (fixup: L^(-1/2), L = the number of blocks; 1 otherwise);
- v_zero: V = 0 instead of drawn (fixup). Otherwise V [n, n] is drawn after W and b of the block, from the
  same generator, by the run's scheme at gain 1 (branch_init: a `gain` parameter set to 1; schemes without
  one as they are; lsuv contributes its orthogonal start at gain 1 and no rescaling). V has no bias.

rezero draws V all the same (the random stream does not depend on alpha) and gives x^l = x^(l-1) exactly
while the branch is finite (x + 0 * branch). A new kind is one entry in _KINDS (and its catalog entry).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .textforms import Call


@dataclass(frozen=True)
class Residual:
    name: str
    alpha: float  # x^l = x^(l-1) + alpha * V a
    w_scale: float  # multiplier on W after the scheme's draw
    v_zero: bool  # V = 0 (not drawn)


_KINDS: dict[str, Callable[[Call, int], Residual]] = {
    "plain": lambda call, depth: Residual("plain", float(call.get("alpha")), 1.0, False),
    "rezero": lambda call, depth: Residual("rezero", 0.0, 1.0, False),
    "fixup": lambda call, depth: Residual("fixup", 1.0, 1.0 / math.sqrt(depth), True),
}


def get(residual: Call, depth: int) -> Residual | None:
    """The record of a resolved residual call for a stack of `depth` blocks; None for `none`."""
    if residual.name == "none":
        return None
    try:
        make = _KINDS[residual.name]
    except KeyError:
        raise KeyError(f"residual {residual.name!r} has no implementation") from None
    return make(residual, depth)


def branch_init(init: Call) -> Call:
    """The scheme that draws V: `init` with its gain parameter (if it has one) set to 1."""
    return Call(init.name, tuple((k, 1.0 if k == "gain" else v) for k, v in init.params))


__all__ = ["Residual", "get", "branch_init"]
