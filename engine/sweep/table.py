"""The tidy table of a sweep: one row per cell and trial (source "measured"), one per cell with the mean-field
prediction (source "predicted"), one per failed cell (source "failed", with the error), written incrementally.

File formats, chosen by the extension of the path:
- `.csv`: a first line `# initscope.sweep-table/1 {header as JSON}`, then the column names, then the rows; an
  empty field is None (absent), inf/-inf are written as such; read it with pandas.read_csv(path, comment="#").
- `.jsonl` (or `.ndjson`): the header object on the first line, then one JSON object per row; non-finite numbers
  are null (JSON has no inf), so a -inf log_q_ratio reads back as None in this format.

The header names the sweep: the base spec's text forms, the axes with their values, train_steps, and a digest of
every cell's spec, so that --resume can refuse a file of another sweep. The rows of one cell are written with one
write and a flush, after the cell finished: a file cut short (a kill, a full disk) holds whole cells plus at most
one partial cell, which load_table drops (a cell counts as done once its "predicted" or "failed" row is there).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpecError
from .cell import MEASURED_METRICS, METRICS, TRAIN_METRICS
from .grid import Axis, Cell, value_text

SCHEMA = "initscope.sweep-table/1"
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SOURCES = ("measured", "predicted", "failed")


def table_format(path: str | Path) -> str:
    """"csv" or "jsonl" from the path's extension; SpecError for any other."""
    kind = SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise SpecError("output", str(path), "the sweep table is written as CSV or JSON Lines: end the path in .csv "
                        "or .jsonl")
    return kind


def columns(axes: Sequence[Axis], train_steps: int | None) -> list[str]:
    """cell, the axes' names, source, trial, the metrics (train ones only with train_steps), elapsed_s, error."""
    metrics = [m for m in METRICS if train_steps or m not in TRAIN_METRICS]
    return ["cell", *(a.name for a in axes), "source", "trial", *metrics, "elapsed_s", "error"]


def digest(cells: Sequence[Cell]) -> str:
    """sha256 of every cell's index, coordinates and spec text forms: equal iff the sweeps are the same."""
    h = hashlib.sha256()
    for c in cells:
        h.update(json.dumps([c.index, {k: value_text(v) for k, v in c.coords.items()}, c.spec.to_text()],
                            sort_keys=True).encode())
    return h.hexdigest()[:32]


def make_header(spec: dict, axes: Sequence[Axis], train_steps: int | None, cells: Sequence[Cell]) -> dict:
    return {"schema": SCHEMA, "spec": dict(spec),
            "axes": [{"name": a.name, "field": a.field, "param": a.param, "values": list(a.values)} for a in axes],
            "train_steps": train_steps, "cells": len(cells), "digest": digest(cells)}


def axes_of(header: dict) -> tuple[Axis, ...]:
    return tuple(Axis(a["field"], a["param"], tuple(a["values"])) for a in header["axes"])


@dataclass
class SweepTable:
    """A sweep's rows (dicts, see columns()) and its axes. grid() reshapes a metric onto the axes."""

    axes: tuple[Axis, ...]
    rows: list[dict] = field(default_factory=list)
    spec: dict = field(default_factory=dict)
    train_steps: int | None = None
    header: dict = field(default_factory=dict)
    interrupted: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    @property
    def total(self) -> int:
        return math.prod(self.shape)

    def done_cells(self) -> set[int]:
        """Cells with a result (measured and predicted, or failed)."""
        return {r["cell"] for r in self.rows if r["source"] in ("predicted", "failed")}

    def failed(self) -> dict[int, str]:
        """Failed cells: index -> the error sentence."""
        return {r["cell"]: r.get("error") or "" for r in self.rows if r["source"] == "failed"}

    def grid(self, metric: str, source: str = "measured") -> np.ndarray:
        """The metric on the grid, shaped by the axes' lengths (first axis first): the mean over a cell's trials
        for source "measured", the prediction for "predicted". NaN where a cell has no value (not run, failed,
        or the metric is absent); +-inf where every trial's value is that infinity."""
        if metric not in METRICS:
            raise SpecError("show", metric, "choose one of " + ", ".join(METRICS))
        if source not in ("measured", "predicted"):
            raise SpecError("source", source, "choose measured or predicted")
        sums: dict[int, list[float]] = {}
        for r in self.rows:
            if r["source"] == source:
                v = r.get(metric)
                sums.setdefault(r["cell"], []).append(math.nan if v is None else float(v))
        flat = np.full(self.total, np.nan)
        for cell, values in sums.items():
            if 0 <= cell < self.total:
                arr = np.asarray(values, dtype=np.float64)
                arr = arr[~np.isnan(arr)]
                if arr.size:
                    with np.errstate(invalid="ignore"):
                        flat[cell] = arr.mean()
        return flat.reshape(self.shape)

    def coords_of(self, cell: int) -> dict[str, object]:
        """The coordinates of cell `cell` (row-major, the first axis slowest)."""
        out, rest = {}, cell
        for a in reversed(self.axes):
            out[a.name] = a.values[rest % len(a)]
            rest //= len(a)
        return dict(reversed(list(out.items())))


class TableWriter:
    """Writes the header once, then each cell's rows with one write and a flush."""

    def __init__(self, path: str | Path, header: dict, axes: Sequence[Axis], train_steps: int | None,
                 keep_rows: Sequence[dict] = ()) -> None:
        self.path = Path(path)
        self.kind = table_format(path)
        self.columns = columns(axes, train_steps)
        # (re)write the file: the header, then the rows kept from an earlier run (--resume); a partial last cell
        # of that run is gone from keep_rows, so nothing follows a cut line
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(self._header_text(header))
            f.write(self._rows_text(keep_rows))
        tmp.replace(self.path)
        self.file = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - held open for the sweep

    def _header_text(self, header: dict) -> str:
        if self.kind == "jsonl":
            return json.dumps(header, allow_nan=False) + "\n"
        return "# " + json.dumps(header, allow_nan=False) + "\n" + csv_rows(self.columns, [], with_names=True)

    def _rows_text(self, rows: Sequence[dict]) -> str:
        if self.kind == "jsonl":
            return "".join(json.dumps({c: _json_value(r.get(c)) for c in self.columns}, allow_nan=False) + "\n"
                           for r in rows)
        return csv_rows(self.columns, rows)

    def write(self, rows: Sequence[dict]) -> None:
        self.file.write(self._rows_text(rows))
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def csv_rows(names: Sequence[str], rows: Sequence[dict], with_names: bool = False) -> str:
    """CSV lines of `rows` in the columns `names` (None empty, floats in their shortest exact form, inf as inf)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if with_names:
        w.writerow(names)
    for r in rows:
        w.writerow([_csv_value(r.get(c)) for c in names])
    return buf.getvalue()


def _json_value(v: object) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _csv_value(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)  # shortest round-trip form; inf, -inf
    return str(v)


def load_table(path: str | Path) -> SweepTable:
    """Read a sweep table back: whole cells only (a partial last cell of an interrupted write is dropped)."""
    kind = table_format(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError("resume", str(path), f"the table could not be read ({e.strerror or e})") from None
    lines = text.split("\n")
    complete = text.endswith("\n")
    if not complete:  # the last line was cut mid-write
        lines = lines[:-1]
    else:
        lines = lines[:-1]
    header_line = lines[0] if lines else ""
    try:
        header = json.loads(header_line[2:] if kind == "csv" else header_line)
        if header.get("schema") != SCHEMA:
            raise ValueError
    except (ValueError, AttributeError):
        raise SpecError("resume", str(path), f"it is not an initscope sweep table (its first line is not the "
                        f"{SCHEMA} header)") from None
    axes = axes_of(header)
    rows = _parse_rows(kind, lines[1:], axes)
    return _whole_cells(SweepTable(axes=axes, rows=rows, spec=header.get("spec", {}),
                                   train_steps=header.get("train_steps"), header=header))


def _parse_rows(kind: str, lines: list[str], axes: Sequence[Axis]) -> list[dict]:
    rows: list[dict] = []
    if kind == "jsonl":
        for line in lines:
            try:
                rows.append(json.loads(line))
            except ValueError:
                break  # a cut line: everything before it stands
        return rows
    if not lines:
        return rows
    reader = csv.reader(lines)
    names = next(reader)
    by_name = {a.name: a for a in axes}
    for fields in reader:
        if len(fields) != len(names):
            break
        row: dict = {}
        for name, raw in zip(names, fields, strict=True):
            row[name] = _read_csv(name, raw, by_name)
        rows.append(row)
    return rows


def _read_csv(name: str, raw: str, axes: dict[str, Axis]) -> object:
    if raw == "":
        return None
    if name in ("cell", "trial"):
        return int(raw)
    if name in ("source", "error"):
        return raw
    if name in axes:  # back to the axis' own value (a number or a text form)
        for v in axes[name].values:
            if value_text(v) == raw or str(v) == raw:
                return v
        return raw
    return float(raw)


def _whole_cells(table: SweepTable) -> SweepTable:
    """Keep only the rows of cells whose last row ("predicted" or "failed") was written."""
    done = table.done_cells()
    table.rows = [r for r in table.rows if r.get("cell") in done]
    return table


def check_same_sweep(old: dict, new: dict, path: str | Path) -> None:
    """SpecError unless the file's header describes the sweep about to run (same cells, axes and training)."""
    if old.get("digest") == new["digest"] and old.get("train_steps") == new["train_steps"]:
        return
    if [a["name"] for a in old.get("axes", [])] != [a["name"] for a in new["axes"]]:
        what = "its axes are " + ", ".join(a["name"] for a in old.get("axes", []))
    elif old.get("axes") != new["axes"]:
        what = "its axes have other values"
    elif old.get("train_steps") != new["train_steps"]:
        what = f"it was run with train_steps {old.get('train_steps')}"
    else:
        diff = [k for k in new["spec"] if old.get("spec", {}).get(k) != new["spec"][k]]
        what = f"its spec differs in {', '.join(diff)}" if diff else "its cells' specs differ"
    raise SpecError("resume", str(path), f"the file holds another sweep ({what}); give the same flags as the first "
                    "run, or another --output without --resume")


__all__ = ["SweepTable", "TableWriter", "load_table", "make_header", "check_same_sweep", "columns", "table_format",
           "SCHEMA", "MEASURED_METRICS", "csv_rows"]
