"""The text forms of docs/design.md: one small grammar for CLI flags, TUI inputs and saved sessions.

    call  := NAME | NAME "(" [ param ("," param)* ] ")"
    param := KEY "=" value
    value := quoted string | number | true | false | bare word or path
    arch  := width ("-" width)*  where width := INT | INT "x" INT   (WxN repeats W N times)

Parsed by hand, never by eval. Values come back typed (bool, int, float or str); the catalog
(engine/catalog.py) then checks names, keys and ranges.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import SpecError

Value = bool | int | float | str | None

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")
_BARE_SAFE = re.compile(r"[A-Za-z0-9_./~:+-]+")

MAX_TEXT = 10_000
MAX_INT_DIGITS = 300  # integers up to 10^300 stay exact ints (and still convert to a finite float)


@dataclass(frozen=True)
class Call:
    """A parsed `name(key=value, ...)`: the name and its parameters, in a stable order."""

    name: str
    params: tuple[tuple[str, Value], ...] = ()

    def get(self, key: str, default: Value = None) -> Value:
        for k, v in self.params:
            if k == key:
                return v
        return default

    @property
    def kwargs(self) -> dict[str, Value]:
        return dict(self.params)

    def __str__(self) -> str:
        return format_call(self)


def format_value(value: Value) -> str:
    """Print a value so that parse_call reads it back to the same value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if _BARE_SAFE.fullmatch(value) and _classify(value) == value:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_call(call: Call, hide: dict[str, Value] | None = None) -> str:
    """`name` or `name(k=v, ...)`; parameters equal to hide[k] (usually the defaults) are left out."""
    shown = [(k, v) for k, v in call.params if not (hide and k in hide and hide[k] == v)]
    if not shown:
        return call.name
    return f"{call.name}(" + ", ".join(f"{k}={format_value(v)}" for k, v in shown) + ")"


def _classify(raw: str) -> Value:
    low = raw.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("none", "null"):
        return None
    if _INT.fullmatch(raw):
        # beyond MAX_INT_DIGITS an integer is read as a float (inf past 1.8e308): int() of 4,300+ digits
        # raises, and a float of a bigger integer overflows; the catalog then names the field
        return int(raw) if len(raw.lstrip("+-").lstrip("0")) <= MAX_INT_DIGITS else float(raw)
    if _NUMBER.fullmatch(raw):
        return float(raw)
    if low in ("inf", "+inf", "-inf", "nan"):
        return float(low)
    return raw


def parse_call(text: str, field: str) -> Call:
    """Parse `name` or `name(key=value, ...)` into a Call; raise SpecError naming `field`."""
    if not isinstance(text, str):
        raise SpecError(field, text, "expected text such as name or name(key=value)")
    src = text.strip()
    if len(src) > MAX_TEXT:
        raise SpecError(field, src[:40] + "...", f"the text is longer than {MAX_TEXT} characters")
    m = _NAME.match(src)
    if not m:
        raise SpecError(field, text, "expected a name such as kaiming_normal or name(key=value)")
    name, pos = m.group(0), m.end()
    rest = src[pos:].strip()
    if not rest:
        return Call(name)
    if not (rest.startswith("(") and rest.endswith(")")):
        raise SpecError(field, text, "expected name or name(key=value, ...) with balanced parentheses")
    params = _parse_params(rest[1:-1], field, text)
    return Call(name, tuple(params))


def _parse_params(body: str, field: str, text: str) -> list[tuple[str, Value]]:
    params: list[tuple[str, Value]] = []
    i, n = 0, len(body)
    while True:
        while i < n and body[i].isspace():
            i += 1
        if i >= n:
            if params:
                raise SpecError(field, text, "a trailing comma needs another key=value after it")
            return params
        m = _NAME.match(body, i)
        if not m:
            raise SpecError(field, text, "each parameter must be key=value with a plain key")
        key, i = m.group(0), m.end()
        while i < n and body[i].isspace():
            i += 1
        if i >= n or body[i] != "=":
            raise SpecError(field, text, f"parameter {key} needs '=' and a value")
        i += 1
        while i < n and body[i].isspace():
            i += 1
        value, i = _parse_value(body, i, field, text)
        if any(k == key for k, _ in params):
            raise SpecError(field, text, f"parameter {key} is given twice")
        params.append((key, value))
        while i < n and body[i].isspace():
            i += 1
        if i >= n:
            return params
        if body[i] != ",":
            raise SpecError(field, text, "parameters must be separated by commas")
        i += 1


def _parse_value(body: str, i: int, field: str, text: str) -> tuple[Value, int]:
    n = len(body)
    if i < n and body[i] in "\"'":
        quote, j, out = body[i], i + 1, []
        while j < n and body[j] != quote:
            if body[j] == "\\" and j + 1 < n:
                j += 1
            out.append(body[j])
            j += 1
        if j >= n:
            raise SpecError(field, text, "a quoted value is missing its closing quote")
        return "".join(out), j + 1
    j = i
    while j < n and body[j] not in ",()=\"'":
        j += 1
    raw = body[i:j].strip()
    if j < n and body[j] in "()=\"'":
        raise SpecError(field, text, f"unexpected {body[j]!r} in a value; quote values that contain it")
    if not raw:
        raise SpecError(field, text, "every key= needs a value (a number, true/false, a word or a quoted string)")
    return _classify(raw), j


MAX_WIDTH = 1 << 20
MAX_DEPTH = 100_000


def parse_arch(text: str, field: str = "arch") -> tuple[int, ...]:
    """`784-50-10` -> (784, 50, 10); `512-512x50` -> (512,) + (512,) * 50. At least two widths."""
    if not isinstance(text, str):
        raise SpecError(field, text, "expected widths joined by '-', e.g. 784-50-10 or 512-512x50")
    src = text.strip().replace(" ", "")
    if not src or len(src) > MAX_TEXT:
        raise SpecError(field, text, "expected widths joined by '-', e.g. 784-50-10 or 512-512x50")
    widths: list[int] = []
    for part in src.split("-"):
        m = re.fullmatch(r"(\d+)(?:[xX*](\d+))?", part)
        if not m:
            raise SpecError(field, text, "expected widths joined by '-', each a positive integer or WxN, "
                            "e.g. 784-50-10 or 512-512x50")
        width, repeat = _bounded_int(m.group(1), MAX_WIDTH), _bounded_int(m.group(2) or "1", MAX_DEPTH)
        if not 1 <= width <= MAX_WIDTH:
            raise SpecError(field, text, f"every width must be between 1 and {MAX_WIDTH}")
        if not 1 <= repeat <= MAX_DEPTH or len(widths) + repeat > MAX_DEPTH + 1:
            raise SpecError(field, text, f"the depth must be between 1 and {MAX_DEPTH} blocks")
        widths.extend([width] * repeat)
    if len(widths) < 2:
        raise SpecError(field, text, "give at least two widths (input and one layer), e.g. 784-50")
    return tuple(widths)


def _bounded_int(digits: str, limit: int) -> int:
    """int(digits), or limit + 1 when it has more digits than limit: never converts a huge digit string
    (Python refuses int() of more than 4,300 digits)."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= len(str(limit)) else limit + 1


def format_arch(widths: tuple[int, ...]) -> str:
    """Inverse of parse_arch: the input width, then the blocks' widths with runs of three or more as WxN.

    (512,) * 51 prints as 512-512x50 (fifty 512->512 blocks), (784, 50, 10) as 784-50-10.
    """
    parts: list[str] = [str(widths[0])]
    i = 1
    while i < len(widths):
        j = i
        while j < len(widths) and widths[j] == widths[i]:
            j += 1
        run = j - i
        parts.append(f"{widths[i]}x{run}" if run >= 3 else "-".join([str(widths[i])] * run))
        i = j
    return "-".join(parts)
