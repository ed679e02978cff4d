"""The app's views (the tabs on the right) and the state the app pushes down to them.

A view is one widget file in `widgets/` plus one `View` line in VIEWS below: the tab, its F-key, its
place in the F4 cycle, its palette entry and its help line all come from that line. The app builds one
`Scene` (the current run, the pins, the tensor shown, log y, the prediction shown while the first run
measures) and hands it to every mounted view that follows the kind of change it was built for
(`View.follows`); a view draws from the Scene only and talks back with messages.

What a view widget has: `show_scene(scene)`. Widgets that import numpy at module level mount after
the first frame (`mount="late"`), behind a "loading..." placeholder, so the first frame never waits.
No numpy and no torch here: the first frame imports this.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from initscope.engine.result import RunResult
    from initscope.engine.spec import RunSpec
    from textual.widget import Widget

    from .pins import Pin

RGB = tuple[int, int, int]

# What a view follows (View.follows): the app redraws a view when one of these changed.
# "curves": what is plotted (a run finished, a pin shown or hidden, log y, the theme, the preview);
# "table": the pins and the tensor; "current": the current run and the tensor (skipped with no run yet).
# "training": a training run finished, started or was pinned (tui/training.py).
TOPICS = ("curves", "table", "current", "training")


@dataclass(frozen=True)
class View:
    """One tab: pane `id` titled `title`, its jump `key`, the widget `widget` ("module:Class", relative
    to this package) mounted with id `widget_id`; `mount`: "now" (in the first frame), "lazy" (Textual's
    Lazy: right after it) or "late" (after the first frame, behind a placeholder: widgets that load numpy);
    `guard`: a failing draw is a toast, not a crash; `focus`: showing the tab focuses the widget (its
    own keys then work, as in the runs table)."""

    id: str
    title: str
    key: str
    widget: str
    widget_id: str
    follows: tuple[str, ...]
    mount: str = "now"
    guard: bool = False
    focus: bool = False

    def widget_class(self) -> type[Widget]:
        module, _, name = self.widget.partition(":")
        return getattr(importlib.import_module(module, __package__), name)

    def make(self) -> Widget:
        return self.widget_class()(id=self.widget_id)

    @property
    def placeholder_id(self) -> str:
        return f"{self.widget_id}-placeholder"


# The registry: one line per tab, in tab order. The F4 cycle, F-keys, palette and help follow it.
VIEWS: list[View] = [
    View("curves", "Curves", "f5", ".widgets.curves:CurvesView", "curves-view", ("curves",)),
    View("distribution", "Distribution", "f6", ".widgets.distribution:DistributionView", "dist", ("current",),
         mount="late", guard=True),
    View("explain", "Explain", "f7", ".widgets.explain_panel:ExplainPanel", "explain-view", ("current",),
         mount="late", guard=True),
    View("runs", "Runs", "f8", ".widgets.runs_table:RunsTable", "runs-table", ("table",), mount="lazy", focus=True),
    View("training", "Training", "f9", ".widgets.training:TrainingView", "training-view", ("training", "curves"),
         mount="late", guard=True, focus=True),
    View("corr", "Corr", "f10", ".widgets.corr:CorrView", "corr-view", ("curves",), mount="late", guard=True),
    View("phase", "Phase", "f11", ".widgets.phase:PhaseView", "phase-view", ("current",), mount="late", guard=True,
         focus=True),
]


def register(view: View) -> View:
    """Add a tab after the others (the one registration a new view needs, or a line in VIEWS above)."""
    if any(v.id == view.id or v.key == view.key for v in VIEWS):
        raise ValueError(f"a view with id {view.id!r} or key {view.key!r} is already registered")
    VIEWS.append(view)
    return view


def get(view_id: str) -> View | None:
    return next((v for v in VIEWS if v.id == view_id), None)


def tab_ids() -> tuple[str, ...]:
    return tuple(v.id for v in VIEWS)


def key_range() -> str:
    """'F5..F8': the keys that jump to the tabs, as the help and the palette show them."""
    keys = [v.key.upper() for v in VIEWS]
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"


@dataclass
class Scene:
    """What the views draw, pushed down by the app at each redraw (never kept by a view past its draw).

    `preview`: the prediction for the first run while it measures (None otherwise); `guide`: a preset's
    (heading, text) while that preset's run is current; colours are the theme's foreground (the current
    run) and surface (what faint lines blend into)."""

    current: RunResult | None
    pins: list[Pin]  # every pin, runs and training runs (Pin.is_training); index + 1 is its key
    tensor: str
    log_y: bool
    running: bool
    preview: object | None = None
    guide: tuple[str, str] | None = None
    foreground: RGB = (255, 255, 255)
    background: RGB = (0, 0, 0)
    training: object | None = None  # tui/training.py TrainingState: the Training tab's runs

    def drawn_runs(self) -> list[tuple[str, str, RunResult, RGB, bool]]:
        """(key, name, result, colour, is_current) for every visible run, current first."""
        runs = []
        if self.current is not None:
            runs.append(("*", "current", self.current, self.foreground, True))
        for i, pin in enumerate(self.pins):
            if pin.visible and not pin.is_training:  # a training run's pin is the Training tab's (its key stays i + 1)
                runs.append((str(i + 1), pin.name, pin.result, pin.colour, False))
        return runs

    @property
    def spec(self) -> RunSpec | None:
        return self.current.spec if self.current is not None else None
