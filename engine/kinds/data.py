"""Data source records: one `DataKind` per name of `--data`.

Each record carries the catalog entry and, for the theory, `iid_moments(params)`: (mean, E[x^2], E[x^4])
of one input entry when every entry is drawn i.i.d. and fresh every trial, or None when the rows are
fixed (a file, the digits): their moments and kernel are then measured on the batch by a run. Loading
the rows is engine/data.py's work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..entries import AUTO, Entry, Param, fparam


@dataclass(frozen=True, kw_only=True)
class DataKind(Entry):
    """One data source: catalog entry + the moments of an entry, where the spec fixes them."""

    iid_moments: Callable[[dict], tuple[float, float, float] | None]


DATA: dict[str, DataKind] = {}


def register(kind: DataKind) -> DataKind:
    DATA[kind.name] = kind
    return kind


def _gaussian_moments(p) -> tuple[float, float, float]:
    """x ~ N(m, s^2): E[x^2] = m^2 + s^2, E[x^4] = m^4 + 6 m^2 s^2 + 3 s^4."""
    m, sd = float(p["mean"]), float(p["std"])
    return m, m * m + sd * sd, m**4 + 6 * m * m * sd * sd + 3 * sd**4


def _uniform_moments(p) -> tuple[float, float, float]:
    """x ~ U(lo, hi): E[x] = (lo + hi)/2, E[x^2] = (lo^2 + lo hi + hi^2)/3, E[x^4] = (hi^5 - lo^5)/(5 (hi - lo))."""
    lo, hi = float(p["low"]), float(p["high"])
    m4 = (hi**5 - lo**5) / (5 * (hi - lo)) if hi != lo else lo**4
    return 0.5 * (lo + hi), (lo * lo + lo * hi + hi * hi) / 3, m4


for _kind in [
    DataKind(name="gaussian", doc="i.i.d. Gaussian inputs, batch rows",
             params=(fparam("mean", 0.0, "mean"), fparam("std", 1.0, "standard deviation", low=0.0)),
             formula="x ~ N(mean, std^2)", iid_moments=_gaussian_moments),
    DataKind(name="uniform", doc="i.i.d. uniform inputs, batch rows",
             params=(fparam("low", -1.0, "lower end"), fparam("high", 1.0, "upper end")),
             formula="x ~ U(low, high)", iid_moments=_uniform_moments,
             relation=lambda v: None if v["low"] < v["high"] else (f"low={v['low']:g}, high={v['high']:g}",
                                                                     "low must be less than high")),
    DataKind(name="file", doc="rows from a .npy, .npz, .csv or saved-tensor (.pt) file, never unpickled",
             params=(Param("path", "path", "", "the file"), Param("normalize", "bool", False, "scale to mean 0, std 1"),
                     Param("key", "str", AUTO, "array name inside a .npz (auto = the first)", optional=True)),
             formula="x = the first `batch` rows of the file, flattened to [rows, features]",
             iid_moments=lambda p: None),
    DataKind(name="digits", doc="scikit-learn's bundled 8x8 digits (1797 x 64; needs scikit-learn)",
             params=(Param("normalize", "bool", True, "scale to mean 0, std 1"),),
             formula="x = the first `batch` digit images", iid_moments=lambda p: None),
]:
    register(_kind)


__all__ = ["DATA", "DataKind", "register"]
