"""Bias records: one `BiasKind` per name of `--bias`.

Each record carries the catalog entry; `draw(b, params, fan_in, generator)`, the torch fill of a bias
vector (torch imported inside; `present=False` for `none`: no bias add at all); and what the theory needs
of one entry: `moments(params, fan_in) -> (mean, variance)` and `kurtosis` = Var(b^2)/Var(b)^2 of the
zero-mean entry (Gaussian 2, uniform 4/5), used by the finite-width band. For a bias without spread
(none, zeros, const) the band multiplies the kurtosis term by the bias's zero share of the variance, so
its value there changes nothing; it is 2 there, the value the band assumed before these records.
Bias draws come after the weight draw of the same layer, from the same generator, as in
nn.Linear.reset_parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..entries import Entry, fparam
from ..numbers import fmt_text as _g


def torch_default_bound(fan_in: int) -> float:
    """nn.Linear's bias bound: 1/sqrt(fan_in) (0 when fan_in is 0)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def _no_variant(spec, pred) -> list[str]:
    return []


@dataclass(frozen=True, kw_only=True)
class BiasKind(Entry):
    """One bias kind: catalog entry + torch draw + mean, variance and kurtosis of an entry."""

    present: bool  # False: no bias term (h = W x)
    draw: Callable  # (b, params, fan_in, generator) -> None, fills b in place (under no_grad)
    moments: Callable[[dict, int], tuple[float, float]]  # (mean, variance) of one entry
    kurtosis: float  # Var(b^2)/Var(b)^2 of a zero-mean entry
    variant: Callable = _no_variant  # paragraphs for `initscope explain`


BIASES: dict[str, BiasKind] = {}


def register(kind: BiasKind) -> BiasKind:
    """Add (or replace) a record: the catalog, the torch side and the theory see it at once."""
    BIASES[kind.name] = kind
    return kind


def _draw_nothing(b, p, fan_in, generator=None) -> None:
    raise ValueError("bias none has no vector to draw")


def _draw_zeros(b, p, fan_in, generator=None) -> None:
    from torch.nn import init as tinit

    tinit.zeros_(b)


def _draw_const(b, p, fan_in, generator=None) -> None:
    from torch.nn import init as tinit

    tinit.constant_(b, float(p["value"]))


def _draw_normal(b, p, fan_in, generator=None) -> None:
    from torch.nn import init as tinit

    tinit.normal_(b, 0.0, float(p["std"]), generator=generator)


def _draw_uniform(b, p, fan_in, generator=None) -> None:
    from torch.nn import init as tinit

    bound = float(p["bound"])
    tinit.uniform_(b, -bound, bound, generator=generator)


def _draw_torch_default(b, p, fan_in, generator=None) -> None:
    from torch.nn import init as tinit

    bound = torch_default_bound(fan_in)
    tinit.uniform_(b, -bound, bound, generator=generator)


def _const_variant(spec, pred) -> list[str]:
    value = float(spec.bias.get("value"))
    if not value:
        return []
    return [f"const bias {_g(value)} gives every pre-activation that mean: h ~ N(b, q), which the prediction "
            "includes exactly."]


def _torch_default_variant(spec, pred) -> list[str]:
    """Where the signal would shrink, the bias variance 1/(3n) stops it: at the fixed point q* = sigma_b^2/(1 - k)
    when E[x^2] shrinks by k per block (torch_default weights and relu: k = 1/6, q* = 2/(5n))."""
    fp = pred.diagnostics.fixed_point
    if fp.q is None or fp.kind != "stable":
        return []
    return [f"The bias variance 1/(3n) sets a floor: the pre std settles at {_g(math.sqrt(fp.q))}."]


for _kind in [
    BiasKind(name="none", doc="no bias term at all", formula="h = W x", present=False, draw=_draw_nothing,
             moments=lambda p, n_in: (0.0, 0.0), kurtosis=2.0),
    BiasKind(name="zeros", doc="bias present and zero", formula="b = 0", present=True, draw=_draw_zeros,
             moments=lambda p, n_in: (0.0, 0.0), kurtosis=2.0),
    BiasKind(name="const", doc="every bias the same value", params=(fparam("value", 0.0, "the bias value"),),
             formula="b = value", present=True, draw=_draw_const,
             moments=lambda p, n_in: (float(p["value"]), 0.0), kurtosis=2.0, variant=_const_variant),
    BiasKind(name="normal", doc="Gaussian biases", params=(fparam("std", 0.1, "standard deviation", low=0.0),),
             formula="b ~ N(0, std^2)", present=True, draw=_draw_normal,
             moments=lambda p, n_in: (0.0, float(p["std"]) * float(p["std"])), kurtosis=2.0),
    BiasKind(name="uniform", doc="uniform biases", params=(fparam("bound", 0.1, "half-width", low=0.0),),
             formula="b ~ U(-bound, bound)", present=True, draw=_draw_uniform,
             moments=lambda p, n_in: (0.0, float(p["bound"]) * float(p["bound"]) / 3), kurtosis=0.8),
    BiasKind(name="torch_default", doc="nn.Linear's default bias", formula="b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
             present=True, draw=_draw_torch_default, moments=lambda p, n_in: (0.0, 1.0 / (3 * n_in)), kurtosis=0.8,
             variant=_torch_default_variant),
]:
    register(_kind)


__all__ = ["BIASES", "BiasKind", "register", "torch_default_bound"]
