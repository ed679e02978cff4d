"""Messages the app's worker and widgets post. Dataclasses; progress messages coalesce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # numpy stays unloaded until the first result (first frame before it)
    from initscope.engine.result import RunResult
    from initscope.engine.spec import RunSpec


@dataclass
class RunProgress(Message):
    """The engine finished `done` of `total` steps of run `run_id`."""

    run_id: int
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunProgress) and message.run_id == self.run_id


@dataclass
class PreviewReady(Message):
    """The prediction for run `run_id`'s spec, ready before the run (engine.preview): drawn until it ends."""

    run_id: int
    prediction: object


@dataclass
class RunFinished(Message):
    """A run completed. `pin_as` names the pin it should become (preset variants, loaded sessions)."""

    run_id: int
    result: RunResult
    pin_as: str | None = None


@dataclass
class RunFailed(Message):
    """A run raised: the error is shown as a notification, the app stays as it was."""

    run_id: int
    spec: RunSpec
    error: BaseException


@dataclass
class RunCancelled(Message):
    run_id: int


@dataclass
class SpecEdited(Message):
    """The form holds a new valid spec (posted by SpecForm; the app debounces and re-runs)."""

    spec: RunSpec


@dataclass
class SpecInvalid(Message):
    """The form holds an invalid value: `field` and the one-sentence reason."""

    field: str
    reason: str


@dataclass
class PinCommand(Message):
    """The runs table asks for an action on pinned run `index` (0-based): toggle, rename, remove, recall."""

    kind: str
    index: int


@dataclass
class TrainFinished(Message):
    """A training run completed (engine/train.py TrainResult). `pin_as` as RunFinished's (preset variants)."""

    run_id: int
    result: object
    pin_as: str | None = None


@dataclass
class RecallSpec(Message):
    """A view asks for `spec` in the form, run now (the Phase tab's enter on a cell); `label` names it."""

    spec: RunSpec
    label: str
