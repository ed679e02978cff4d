"""The grid of a sweep: `--vary` axes and the cells they span.

    --vary FIELD=VALUES         FIELD a spec field (arch, init, act, bias, data, norm, residual, batch, seed,
                                trials, dtype, device, pair_corr, ...): each value is that field's text form
    --vary FIELD.PARAM=VALUES   PARAM a parameter of the field's current call (init.gain, bias.std, act.a,
                                residual.alpha, ...): the value replaces that parameter in the base call
    VALUES := v1,v2,...         split at top-level commas only (normal(std=1),xavier_normal is two values)
            | start:stop:count  count values evenly spaced from start to stop, both included
            | start:stop:count:log   count values evenly spaced in log10 from start to stop (both > 0)

Every cell's spec is rebuilt from text forms and validated by the normal parser (engine/spec.py), so a
sweep can express nothing a run cannot. Cells are numbered row-major: the first --vary is the slowest axis.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..catalog import KINDS, resolve, show
from ..errors import SpecError
from ..spec import DEFAULTS, FIELDS, RunSpec, parse_spec
from ..textforms import Call, format_value

MAX_CELLS = 100_000  # a 316 x 316 grid; beyond that, split the sweep (building the specs alone takes minutes)
MAX_AXIS_VALUES = 100_000
SIGNIFICANT = 12  # range values are rounded to 12 significant digits: 1:2:11 gives 1.1, not 1.1000000000000001

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_RANGE = re.compile(rf"\s*({_NUM})\s*:\s*({_NUM})\s*:\s*(\d+)\s*(?::\s*(log)\s*)?")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(_NUM)
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ALLOWED_VALUES = ("a comma-separated list (a,b,c), start:stop:count (linear) or start:stop:count:log")


@dataclass(frozen=True)
class Axis:
    """One --vary: the spec field, the parameter of that field's call (None: the whole field) and the values
    in the order given (numbers as int/float, text forms as str)."""

    field: str
    param: str | None
    values: tuple

    @property
    def name(self) -> str:
        """The coordinate's column name: `init.gain`, `arch`."""
        return self.field if self.param is None else f"{self.field}.{self.param}"

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Cell:
    """Cell `index` (row-major, the first axis slowest), its coordinates by axis name and its spec."""

    index: int
    coords: dict[str, object]
    spec: RunSpec


def sweepable_fields() -> tuple[str, ...]:
    """The spec fields a --vary may name: every RunSpec text field (the parser's FIELDS)."""
    return tuple(FIELDS)


def parse_vary(text: str) -> Axis:
    """`FIELD=VALUES` or `FIELD.PARAM=VALUES` -> Axis. SpecError (one sentence naming the --vary) on bad input."""
    where = "--vary"
    if not isinstance(text, str) or "=" not in text:
        raise SpecError(where, text, "expected FIELD=VALUES or FIELD.PARAM=VALUES, e.g. init.gain=1:2.5:16 or "
                        "arch=300-300x10,300-300x50")
    key, values_text = text.split("=", 1)
    key = key.strip()
    field, _, param = key.partition(".")
    fields = sweepable_fields()
    if field not in fields:
        raise SpecError(where, text, f"{field or '(nothing)'} is not a spec field; choose one of " + ", ".join(fields))
    if param == "" and "." in key:
        raise SpecError(where, text, f"a parameter name must follow '{field}.', e.g. init.gain")
    if param:
        if field not in KINDS:
            raise SpecError(where, text, f"{field} takes a plain value, not parameters; use --vary {field}=VALUES "
                            "(parameters exist for " + ", ".join(KINDS) + ")")
        if not _PARAM.fullmatch(param):
            raise SpecError(where, text, f"{param!r} is not a parameter name (letters, digits and _)")
    values = parse_values(values_text, f"{where} {key}")
    return Axis(field=field, param=param or None, values=values)


def parse_values(text: str, where: str) -> tuple:
    """The values of one --vary: a top-level comma list, start:stop:count or start:stop:count:log."""
    src = text.strip()
    if not src:
        raise SpecError(where, text, "give at least one value: " + ALLOWED_VALUES)
    m = _RANGE.fullmatch(src)
    if m:
        return _range(m, text, where)
    if ":" in src and re.fullmatch(r"[\d.eE+\-:\s]*(log)?\s*", src):
        raise SpecError(where, text, "a range is start:stop:count or start:stop:count:log with numbers start, "
                        "stop and a whole count >= 1")
    parts = split_top_level(src)
    if any(not p for p in parts):
        raise SpecError(where, text, "an empty value between commas; " + ALLOWED_VALUES)
    if len(parts) > MAX_AXIS_VALUES:
        raise SpecError(where, f"{len(parts)} values", f"an axis has at most {MAX_AXIS_VALUES} values")
    values = tuple(_typed(p) for p in parts)
    seen = set()
    for v in values:
        if v in seen:
            raise SpecError(where, v, "this value is given twice; each value of an axis must be different")
        seen.add(v)
    return values


def _range(m: re.Match, text: str, where: str) -> tuple:
    start, stop, count, log = float(m.group(1)), float(m.group(2)), int(m.group(3)), m.group(4) is not None
    if count < 1:
        raise SpecError(where, text, "the count (the third number of start:stop:count) must be at least 1")
    if count > MAX_AXIS_VALUES:
        raise SpecError(where, text, f"the count must be at most {MAX_AXIS_VALUES}")
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise SpecError(where, text, "start and stop must be finite numbers")
    if count > 1 and start == stop:
        raise SpecError(where, text, f"start equals stop, so the {count} values would all be the same; "
                        "give different ends or a count of 1")
    if log:
        if start <= 0 or stop <= 0:
            raise SpecError(where, text, "a log range needs start > 0 and stop > 0")
        a, b = math.log10(start), math.log10(stop)
        raw = [10 ** (a + (b - a) * i / (count - 1)) if count > 1 else start for i in range(count)]
        raw[0], raw[-1] = start, (stop if count > 1 else start)
    else:
        raw = [start + (stop - start) * i / (count - 1) if count > 1 else start for i in range(count)]
        raw[-1] = stop if count > 1 else start
    return tuple(_round(v) for v in raw)


def _round(v: float) -> int | float:
    """v to SIGNIFICANT digits; a whole number comes back as an int (so batch=64:256:4 gives 64, 128, ...)."""
    r = float(f"{v:.{SIGNIFICANT}g}")
    return int(r) if r == int(r) and abs(r) < 1e15 else r


def split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: `normal(std=1, mean=0),xavier_normal` -> two parts."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _typed(part: str) -> int | float | str:
    """A list value: an int or float when it is a plain number, otherwise the text form as given."""
    if _INT.fullmatch(part) and len(part) <= 18:
        return int(part)
    if _FLOAT.fullmatch(part):
        return float(part)
    return part


def value_text(value: object) -> str:
    """How a coordinate value is written into a text form (numbers in the grammar's own number format)."""
    if isinstance(value, str):
        return value
    return format_value(value)


def grid_size(axes: Sequence[Axis]) -> int:
    return math.prod(len(a) for a in axes)


def check_axes(axes: Sequence[Axis]) -> None:
    """No axis twice, and the grid within MAX_CELLS."""
    seen: set[str] = set()
    for axis in axes:
        if axis.name in seen:
            raise SpecError("--vary", axis.name, "this axis is given twice; give each field or parameter once, "
                            "with all its values")
        seen.add(axis.name)
    size = grid_size(axes)
    if size > MAX_CELLS:
        shape = " x ".join(str(len(a)) for a in axes)
        raise SpecError("--vary", f"{shape} = {size} cells", f"a sweep has at most {MAX_CELLS:,} cells; use fewer "
                        "values or split the sweep")


def build_grid(base: dict[str, str], axes: Sequence[Axis]) -> list[Cell]:
    """Every cell of the grid, row-major (the first axis slowest), each spec validated by parse_spec.

    A cell's text forms: the base, then the whole-field axes' values, then the parameter axes' values put into
    that field's call (so --vary init=a,b with --vary init.gain=... sets the gain of each scheme). A cell that
    does not parse is a SpecError naming the cell's values."""
    check_axes(axes)
    known = set(FIELDS)
    for k in base:
        if k not in known:
            raise SpecError("spec", k, "known fields are " + ", ".join(FIELDS))
    cells: list[Cell] = []
    shape = [len(a) for a in axes]
    for index in range(grid_size(axes)):
        picks, rest = [], index
        for n in reversed(shape):
            picks.append(rest % n)
            rest //= n
        picks.reverse()
        coords = {a.name: a.values[i] for a, i in zip(axes, picks, strict=True)}
        cells.append(Cell(index, coords, cell_spec(base, axes, coords)))
    return cells


def cell_spec(base: dict[str, str], axes: Sequence[Axis], coords: dict[str, object]) -> RunSpec:
    """The spec of one cell (see build_grid)."""
    texts = {k: v for k, v in base.items() if v is not None}
    for axis in axes:
        if axis.param is None:
            texts[axis.field] = value_text(coords[axis.name])
    try:
        for axis in axes:
            if axis.param is not None:
                texts[axis.field] = _with_param(axis, texts.get(axis.field, DEFAULTS.get(axis.field, "")),
                                                coords[axis.name], texts)
        return parse_spec(**texts)
    except SpecError as e:
        if e.field.startswith("--vary"):
            raise
        at = ", ".join(f"{k}={value_text(v)}" for k, v in coords.items())
        raise SpecError(e.field, e.value, f"{e.allowed} (in the sweep cell {at})", fix=e.fix) from None


def _with_param(axis: Axis, call_text: str, value: object, texts: dict[str, str]) -> str:
    """The field's call with one parameter replaced, as text (so parse_spec validates the new value)."""
    field = axis.field
    if field == "bias" and not str(call_text).strip():
        call_text = "torch_default" if str(texts.get("init", "")).strip() == "torch_default" else "zeros"
    call = resolve(field, str(call_text))
    keys = [k for k, _ in call.params]
    if axis.param not in keys:
        have = ", ".join(keys) if keys else "none"
        with_it = [name for name, entry in KINDS[field].items() if axis.param in entry.defaults]
        hint = (f"set --{field} to one that has it ({', '.join(with_it)})" if with_it
                else f"no {field} has a parameter {axis.param}")
        raise SpecError(f"--vary {axis.name}", show(field, call),
                        f"{field} {call.name} has no parameter {axis.param} (its parameters: {have}); {hint}")
    params = tuple((k, value if k == axis.param else v) for k, v in call.params)
    return str(Call(call.name, params))


__all__ = ["Axis", "Cell", "parse_vary", "parse_values", "build_grid", "cell_spec", "split_top_level", "check_axes",
           "grid_size", "MAX_CELLS", "value_text"]
