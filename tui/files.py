"""The app's file actions: the save / open menu (ctrl+s), JSON and CSV exports of the current and pinned
runs, an SVG screenshot, and sessions (save the pinned configurations; open one: re-run and pin each).

A mixin of InitScopeApp (tui/app.py): the actions must be the App's for its bindings and the palette;
they read the app's state (current run, pins, form) and start runs through it. The file formats and the
atomic writes are tui/export.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .screens.choice import Choice, ChoiceScreen

if TYPE_CHECKING:
    from initscope.engine.result import RunResult

SVG_SETTLE_S = 0.15  # frames for the screen to redraw without its toasts before an SVG screenshot


class FileActions:
    """ctrl+s and ctrl+o: export('json' | 'csv' | 'svg' | 'session'), save_menu, open_session."""

    def action_save_menu(self) -> None:
        from initscope.engine.report import SCHEMA

        choices = [
            Choice("j", "Export results as JSON", f"current and pinned runs, schema {SCHEMA}", "json"),
            Choice("c", "Export results as CSV", "one row per run and layer", "csv"),
            Choice("s", "Save an SVG screenshot", "what is on screen now", "svg"),
            Choice("w", "Save session", "the pinned configurations", "session"),
            Choice("t", "Export training runs as JSON", "current and pinned training runs, schema initscope.train/1",
                   "train_json"),
            Choice("v", "Export training runs as CSV", "one row per run, trial, recorded step and layer",
                   "train_csv"),
            Choice("o", "Open session", "re-run and pin a saved session", "open"),
        ]

        def chosen(value: str | None) -> None:
            if value == "open":
                self.action_open_session()
            elif value:
                self.action_export(value)

        self.push_screen(ChoiceScreen("Save / open", choices), chosen)

    def _runs_for_export(self) -> list[tuple[str, RunResult]]:
        runs = []
        if self.current is not None and not self.pins.holds(self.current):
            runs.append(("current", self.current))
        return runs + self.pins.runs()  # type: ignore[list-item]

    def _training_for_export(self) -> list[tuple[str, object]]:
        """(name, TrainResult) of the current training run (unless pinned) and the pinned ones."""
        state = self.training
        runs = []
        if state.current is not None and not self.pins.holds(state.current):
            runs.append(("current", state.current))
        return runs + [(p.name, p.result) for p in self.pins.trainings()]

    def action_export(self, kind: str) -> None:
        from .export import ExportError, default_path, save_results_csv, save_results_json
        from .screens.path_prompt import PathPrompt

        if kind in ("train_json", "train_csv"):
            self._export_training(kind.split("_")[1])
            return
        if kind in ("json", "csv") and self.current is None and not self.pins.runs():
            self.notify("Nothing to export yet.", severity="warning", markup=False)
            return
        if kind == "session" and not len(self.pins):
            self.notify("Saving a session with no pins: only the current configuration is kept.",
                        markup=False)
        titles = {"json": "Export results as JSON", "csv": "Export results as CSV", "svg": "Save SVG screenshot",
                  "session": "Save session"}

        def done(path: Path | None) -> None:
            if path is None:
                return
            try:
                if kind == "json":
                    out = save_results_json(path, self._runs_for_export())
                elif kind == "csv":
                    out = save_results_csv(path, self._runs_for_export())
                elif kind == "svg":
                    self._save_svg(path)  # after the toasts are gone; it says itself when saved
                    return
                else:
                    out = self.save_session_file(path)
            except (ExportError, OSError) as e:
                self.notify(str(e), title="Save failed", severity="error", markup=False)
                return
            self.notify(f"Saved {out}", markup=False)

        self.push_screen(PathPrompt(titles[kind], default_path(kind)), done)

    def save_session_file(self, path: Path) -> Path:
        """The form's configuration and every pin: the runs under "pins", the training runs under "training"
        (the file format tui/export.py documents, unchanged since training runs had a board of their own)."""
        from .export import save_session

        return save_session(path, self.pins.runs(), self.form_spec(), self.pins.trainings())

    def _export_training(self, fmt: str) -> None:
        """The training runs through the engine's writers (engine/train_report.py: to_json, schema
        initscope.train/1, the same file as `initscope train --format json`; to_csv)."""
        from .export import ExportError, atomic_write_text, default_path
        from .screens.path_prompt import PathPrompt

        named = self._training_for_export()
        if not named:
            self.notify("No training run to export yet: g trains the form's configuration.", severity="warning",
                        markup=False)
            return
        try:
            from initscope.engine import train_report
        except ImportError:
            self.notify("This build has no training engine (initscope.engine.train_report).", severity="error",
                        markup=False)
            return
        writer = train_report.to_json if fmt == "json" else train_report.to_csv
        path0 = default_path(fmt)

        def done(path: Path | None) -> None:
            if path is None:
                return
            try:
                out = atomic_write_text(path, writer(named))
            except (ExportError, OSError) as e:
                self.notify(str(e), title="Save failed", severity="error", markup=False)
                return
            self.notify(f"Saved {out}", markup=False)

        self.push_screen(PathPrompt(f"Export training runs as {fmt.upper()}",
                                    path0.with_name(path0.name.replace("initscope-", "initscope-training-"))), done)

    def _save_svg(self, path: Path) -> None:
        """Save what is on screen as SVG without the toasts over it: clear them, give the screen a few
        frames to redraw without them (the toast rack updates on a later message), then capture."""
        from .export import ExportError, atomic_write_text

        self.clear_notifications()

        def capture() -> None:
            try:
                out = atomic_write_text(path, self.export_screenshot(title="initscope"))
            except (ExportError, OSError) as e:
                self.notify(str(e), title="Save failed", severity="error", markup=False)
                return
            self.notify(f"Saved {out}", markup=False)

        self.set_timer(SVG_SETTLE_S, capture)

    def action_open_session(self) -> None:
        from .export import default_path
        from .screens.path_prompt import PathPrompt

        def done(path: Path | None) -> None:
            if path is not None:
                self.open_session_file(path)

        self.push_screen(PathPrompt("Open session", default_path("session"), must_exist=True), done)

    def open_session_file(self, path: Path) -> None:
        """Load a session: its configuration into the form (run), then run and pin its runs, then train and
        pin its training runs, in the file's order (one board: they are numbered 1, 2, ... in that order)."""
        from .export import ExportError, read_session

        try:
            session = read_session(path)
        except (ExportError, OSError) as e:
            self.notify(str(e), title="Open failed", severity="error", markup=False)
            return
        if session.current is not None:
            self.load_form(session.current)
        entries = [(e.spec, e.name, False) for e in session.pins]
        trained = self.session_training_entries(session.training)
        if trained is None:
            return
        if session.current is not None:
            self.start_run(session.current)
            self.queue.batch = []
        entries += trained  # the training runs after the runs
        if entries:
            self._pending_session = entries
            self.call_after_refresh(self._queue_session)
        more = f" and {len(trained)} training runs" if trained else ""
        self.notify(f"Opened {Path(path).name}: {len(session.pins)} pinned runs{more}", markup=False)

    def _queue_session(self) -> None:
        entries = getattr(self, "_pending_session", [])
        self._pending_session = []
        if self.queue.runs.running:  # run the pins after the current configuration
            self.queue.attach_batch(entries)
        else:
            self.run_batch(entries)
