"""Activations, torch side: catalog names -> torch functions, from each activation's record.

`get(act)` returns an `Activation` with
- `fn(h)`: out-of-place, differentiable (used when gradients are asked for);
- `fn_(h)`: may overwrite h and return it (forward-only runs: no extra buffer per layer);
- `monotone`/`piecewise_linear`/`post_from_pre`: what the runner may derive from the pre-activation
  statistics.
The functions and flags are the record's (engine/kinds/activations.py); nothing here is per name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from .kinds.activations import ACTIVATIONS
from .textforms import Call


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[Tensor], Tensor]
    fn_: Callable[[Tensor], Tensor]
    monotone: bool  # non-decreasing: min/max of act(h) are act(min h), act(max h)
    piecewise_linear: bool  # act evaluated on a scalar equals act evaluated inside a big tensor, bit for bit
    # "relu": the post statistics follow from the tensor before the activation; "identity": the post IS
    # that tensor; "": neither
    post_from_pre: str = ""


def get(act: Call) -> Activation:
    """The torch implementation of a resolved activation call."""
    kind = ACTIVATIONS.get(act.name)
    if kind is None:  # the parser only lets catalog names through
        raise KeyError(f"activation {act.name!r} has no record")
    fn, fn_ = kind.torch(kind.values(act))
    return Activation(act.name, fn, fn_, kind.monotone, kind.piecewise_linear, kind.post_from_pre)


__all__ = ["Activation", "get"]
