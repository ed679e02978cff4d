"""Sweeps: a grid of specs (engine/sweep/grid.py), each cell run on a backend (engine/sweep/backends.py) and
written as a tidy table (engine/sweep/table.py). Importing this package does not import torch.

    run_sweep(base, axes, backend, out=..., resume=..., train_steps=..., progress=..., cancel=...) -> SweepTable

Every cell is one RunSpec through the same runner as `initscope run`, with gradients (log_grad_ratio needs
them) and, where the spec has a pair_corr field and the user gave none, pair_corr = PHASE_C0 (the theory's
default initial correlation of sweeps: c_last needs the pairs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..errors import SpecError
from ..spec import FIELDS, parse_spec
from .cell import CellResult, CellTask, predicted_row
from .grid import Axis, Cell, build_grid, parse_vary
from .table import SweepTable, TableWriter, check_same_sweep, columns, load_table, make_header

SweepProgress = Callable[[int, int, float | None], None]  # (cells done, cells total, seconds left or None)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: .table holds the rows of every cell that finished (and were written to `out`)."""

    def __init__(self, table: SweepTable) -> None:
        super().__init__("sweep interrupted")
        self.table = table


def sweep_base(texts: dict[str, str]) -> dict[str, str]:
    """The base spec of a sweep: the user's text forms, plus pair_corr = PHASE_C0 when the spec has that field
    and the user left it out (so every cell measures c^L)."""
    base = {k: v for k, v in texts.items() if v is not None}
    if "pair_corr" in FIELDS and base.get("pair_corr") in (None, "", "none"):
        from ..theory.phase import PHASE_C0

        base["pair_corr"] = str(PHASE_C0)
    return base


def base_text(base: dict[str, str]) -> dict[str, str]:
    """The base spec's normalised text forms when it parses on its own, else the texts as given (a base can be
    valid only with the axes' values, e.g. a residual with --vary arch)."""
    try:
        return parse_spec(**base).to_text()
    except SpecError:
        return dict(base)


def run_sweep(base: dict[str, str], axes: Sequence[Axis], backend, *, out=None, resume: bool = False,
              train_steps: int | None = None, progress: SweepProgress | None = None,
              cancel: Callable[[], bool] | None = None, train_options: dict | None = None,
              cells: Sequence[Cell] | None = None) -> SweepTable:
    """Run every cell of the grid on `backend` and return the table (see the module docstring).

    out: a .csv or .jsonl path, written incrementally; resume: keep the cells already in `out` (same sweep,
    checked) and run only the others (failed cells run again). progress(done, total, eta_s) after each cell;
    cancel() -> True stops after the current cell (table.interrupted). Ctrl-C raises SweepInterrupted with
    the table of what finished. cells: build_grid(sweep_base(base), axes) when the caller has it already
    (a caller that validates the grid before starting a backend need not build it twice)."""
    if train_steps is not None and train_steps < 1:
        raise SpecError("train-steps", train_steps, "expected a whole number of steps, at least 1")
    base = sweep_base(base)
    if cells is None:
        cells = build_grid(base, axes)
    spec_text = base_text(base)
    header = make_header(spec_text, axes, train_steps, cells)
    table = SweepTable(axes=tuple(axes), spec=spec_text, train_steps=train_steps, header=header)
    if resume:
        if out is None:
            raise SpecError("resume", "--resume", "resuming needs the table of the first run: give --output PATH")
        try:
            old = load_table(out)
        except SpecError:
            from pathlib import Path

            if Path(out).exists():
                raise
            old = None  # nothing yet: start from the beginning
        if old is not None:
            check_same_sweep(old.header, header, out)
            table.rows = [r for r in old.rows if r["source"] != "failed" and _matches(r, cells)]
    done = table.done_cells()
    writer = TableWriter(out, header, axes, train_steps, keep_rows=table.rows) if out is not None else None
    todo = [cell_task(c, train_steps, train_options) for c in cells if c.index not in done]
    total, started, finished = len(cells), time.perf_counter(), 0
    names = columns(axes, train_steps)
    if progress is not None:
        progress(len(done), total, None)
    results = backend.run(todo)
    try:
        for result in results:
            cell = cells[result.index]
            if result.error is None:  # the prediction is made here, in the driver: the same bits on every backend
                result.rows.append(predicted_row(cell_task(cell, train_steps), cell.spec))
            rows = result_rows(result, cell, names)
            table.rows.extend(rows)
            if writer is not None:
                writer.write(rows)
            finished += 1
            if progress is not None:
                left = total - len(done) - finished
                rate = (time.perf_counter() - started) / finished
                progress(len(done) + finished, total, rate * left)
            if cancel is not None and cancel() and finished < len(todo):
                table.interrupted = True
                break
    except KeyboardInterrupt:
        table.interrupted = True
        _close(results)
        raise SweepInterrupted(table) from None
    finally:
        _close(results)
        if writer is not None:
            writer.close()
    table.rows.sort(key=_row_order)
    return table


def _close(results) -> None:
    close = getattr(results, "close", None)
    if close is not None:
        close()


def _matches(row: dict, cells: Sequence[Cell]) -> bool:
    """A kept row must sit on the same cell with the same coordinates."""
    i = row.get("cell")
    if not isinstance(i, int) or not 0 <= i < len(cells):
        return False
    return all(row.get(k) == v for k, v in cells[i].coords.items())


def _row_order(row: dict) -> tuple:
    source = {"measured": 0, "predicted": 1, "failed": 2}.get(row.get("source"), 3)
    trial = row.get("trial")
    return (row.get("cell", 0), source, -1 if trial is None else trial)


def cell_task(cell: Cell, train_steps: int | None, train_options: dict | None = None) -> CellTask:
    return CellTask(index=cell.index, coords=dict(cell.coords), spec_json=cell.spec.to_text(),
                    train_steps=train_steps, train_options=train_options, predict=False)


def result_rows(result: CellResult, cell: Cell, names: Sequence[str]) -> list[dict]:
    """The cell's rows in the table's columns `names`, with its wall time; a failed cell is one row with source
    "failed" and the error."""
    if result.error is not None:
        rows = [{"cell": cell.index, **cell.coords, "source": "failed", "trial": None, "error": result.error}]
    else:
        rows = [{**r, "error": r.get("error")} for r in result.rows]
    return [{name: (result.elapsed_s if name == "elapsed_s" else r.get(name)) for name in names} for r in rows]


__all__ = ["run_sweep", "SweepTable", "SweepInterrupted", "Axis", "Cell", "parse_vary", "build_grid", "load_table",
           "sweep_base", "CellTask", "CellResult"]
