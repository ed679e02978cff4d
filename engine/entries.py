"""The building blocks of every catalog record: a parameter (`Param`) and a nameable entry (`Entry`).

Torch-free and numpy-free. engine/catalog.py collects the entries into its tables; the record modules
in engine/kinds/ extend `Entry` with what the torch side and the theory need of each name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .errors import SpecError
from .textforms import Call, Value, format_value

AUTO = None  # a parameter default meaning "derived from the rest of the spec" (e.g. kaiming's gain)


def _no_relation(values: dict[str, Value]) -> tuple[str, str] | None:
    return None


@dataclass(frozen=True)
class Param:
    """One parameter of a catalog entry. kind: float, int, bool, choice, str or path."""

    name: str
    kind: str
    default: Value
    doc: str
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    positive: bool = False  # strictly > 0
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is allowed (meaning AUTO / absent)

    def describe(self) -> str:
        if self.kind == "choice":
            what = "|".join(self.choices)
        elif self.kind == "float" and self.positive:
            what = "number > 0"
        elif self.kind in ("float", "int"):
            lo = "" if self.low is None else f"{self.low:g} <= "
            hi = "" if self.high is None else f" <= {self.high:g}"
            what = f"{lo}{'integer' if self.kind == 'int' else 'number'}{hi}"
        elif self.kind == "bool":
            what = "true|false"
        else:
            what = self.kind
        default = "auto" if self.default is None and self.optional else format_value(self.default)
        return f"{self.name}={default} ({what}): {self.doc}"

    def coerce(self, value: Value, field: str, entry: str) -> Value:
        where = f"{field} {entry}: parameter {self.name}"
        if value is None or (isinstance(value, str) and value.lower() == "auto" and self.optional):
            if self.optional:
                return None
            raise SpecError(where, "none", f"it needs a value ({self.describe()})")
        if self.kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(where, value, f"expected a number ({self.describe()})")
            try:
                number = float(value)
            except OverflowError:  # an int beyond the float range
                number = math.copysign(math.inf, value)
            if not math.isfinite(number):
                raise SpecError(where, number, "expected a finite number, at most 1.8e308 in size")
            if self.kind == "int":
                if not number.is_integer():
                    raise SpecError(where, value, f"expected an integer ({self.describe()})")
                value = int(value)
            else:
                value = number
            if self.positive and value <= 0:
                raise SpecError(where, value, "it must be greater than 0")
            if self.low is not None and value < self.low:
                raise SpecError(where, value, f"it must be at least {self.low:g}")
            if self.high is not None and value > self.high:
                raise SpecError(where, value, f"it must be at most {self.high:g}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise SpecError(where, value, "expected true or false")
            return value
        if self.kind == "choice":
            if str(value) not in self.choices:
                raise SpecError(where, value, "expected one of " + ", ".join(self.choices))
            return str(value)
        text = str(value) if not isinstance(value, float) else format_value(value)
        if not text:
            raise SpecError(where, value, f"expected a {self.kind}")
        return text


@dataclass(frozen=True)
class Entry:
    """A nameable thing: its parameters, a one-line description and its formula (if any)."""

    name: str
    doc: str
    params: tuple[Param, ...] = ()
    formula: str = ""
    # a rule between the parameters: relation(values) -> None, or (the values as shown, why not allowed)
    relation: Callable[[dict[str, Value]], tuple[str, str] | None] = _no_relation

    @property
    def defaults(self) -> dict[str, Value]:
        return {p.name: p.default for p in self.params}

    def values(self, call: Call) -> dict[str, Value]:
        """The call's parameters, defaults filled in for any it leaves out (a resolved call has them all)."""
        return {**self.defaults, **call.kwargs}

    def usage(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{p.name}=" + ("auto" if p.default is None and p.optional
                                                          else format_value(p.default))
                                           for p in self.params) + ")"


def fparam(name, default, doc, **kw) -> Param:
    """A float parameter."""
    return Param(name, "float", default, doc, **kw)


__all__ = ["AUTO", "Entry", "Param", "fparam"]
