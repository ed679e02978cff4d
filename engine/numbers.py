"""How initscope writes a number wherever it shows one: the CLI table, Explain, the app's tables.

fmt_num(x, digits=4) keeps `digits` significant digits and drops trailing zeros:
    |x| in [1e-3, 1e5)   plain:       0.5642, 22.63, 5748
    otherwise            scientific:  4.5e-48, 1.23e+35 (a 1e-48 stays 1e-48, never 0)
    0 -> "0";  +-inf -> "inf"/"-inf";  NaN and None -> `missing` ("n/a" unless told otherwise).
"""

from __future__ import annotations

import math


def fmt_num(x: float | None, digits: int = 4, missing: str = "n/a") -> str:
    """`x` with `digits` significant digits (see the module docstring for the forms)."""
    if x is None:
        return missing
    x = float(x)
    if math.isnan(x):
        return missing
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        text = f"{x:.{digits}g}"
        if "e" not in text:
            return text
    mantissa, exponent = f"{x:.{max(digits - 1, 0)}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0') or '0'}"


def nice_int_ticks(lo: int, hi: int, most: int = 8) -> list[int]:
    """Whole-number ticks from lo to hi (layers), at most about `most`, on a 1-2-5 step; lo is always one."""
    span = max(hi - lo, 1)
    step = 1
    for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        step = s
        if span / s <= most:
            break
    start = lo if lo % step == 0 else lo + (step - lo % step)
    ticks = list(range(start, hi + 1, step))
    if lo not in ticks and (not ticks or ticks[0] - lo >= step / 2):
        ticks.insert(0, lo)
    return ticks


def fmt_text(x: float | None, digits: int = 4) -> str:
    """A number inside a sentence (Explain): `digits` significant digits below 1, one more from 1 up
    (1.4142, 0.5642, 4.5e-48); "n/a" when missing."""
    big = x is not None and math.isfinite(x) and abs(x) >= 1
    return fmt_num(x, digits + 1 if big else digits)
