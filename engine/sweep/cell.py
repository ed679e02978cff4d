"""One grid cell of a sweep: its task (what a backend ships to a worker) and its result (the cell's tidy rows).

A CellTask is plain picklable data (the spec as its text forms, never a RunSpec or a tensor), so any backend
(in-process, local processes, Ray) can send it; run_cell is a module-level function for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CellTask:
    """Cell `index` of the grid (row-major, the first axis slowest), its coordinates by axis name (e.g.
    {"init.gain": 1.5, "bias.std": 0.1}), the cell's spec as text forms (RunSpec.to_text(), re-parsed by the
    worker) and, with --train-steps, the number of training steps (None: init-time metrics only)."""

    index: int
    coords: dict[str, object]
    spec_json: dict
    train_steps: int | None = None


@dataclass
class CellResult:
    """What a cell produced: its tidy rows (one per trial with source "measured", then one with source
    "predicted"), the wall time of the cell in the worker, and the error sentence when the cell failed (then
    rows is empty and the sweep goes on)."""

    index: int
    rows: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0
    error: str | None = None


def run_cell(task: CellTask) -> CellResult:
    """Run one cell (all its trials) and return its tidy rows. Implemented in the next commit."""
    raise NotImplementedError("run_cell is not implemented yet")
