"""Where a sweep's cells run: one interface, several backends.

    Backend.run(tasks) -> iterator of CellResult, yielded as cells finish (any order)
    Backend.close()    -> release workers (idempotent)

InProcess runs the cells one after the other in this process (tests, debugging).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from .cell import CellResult, CellTask


class Backend(Protocol):
    """Runs cell tasks and yields their results as they finish, in any order."""

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]: ...

    def close(self) -> None: ...


class InProcess:
    """Every cell in this process, in order: no workers, no pickling (tests, debugging)."""

    name = "inprocess"

    def run(self, tasks: Sequence[CellTask]) -> Iterator[CellResult]:
        from .cell import run_cell

        for task in tasks:
            yield run_cell(task)

    def close(self) -> None:
        pass
