"""`initscope sweep`: the spec flags plus --vary axes, every cell a run, measured beside the mean-field prediction.

    initscope sweep [spec flags] --vary FIELD=VALUES [--vary FIELD.PARAM=VALUES ...]
                    [--backend local|inprocess|ray] [--address ADDR] [--workers N] [--gpus-per-cell G]
                    [--train-steps N] [--optimizer CALL] [--output TABLE.csv|TABLE.jsonl] [--resume]
                    [--format table|json|csv] [--show METRIC]

stdout: --format table (default) prints the heatmap of --show (measured beside predicted, 2 or more axes: the
first two, x = the first --vary) or a table (one axis); json the "initscope.sweep/1" document; csv the tidy
table. --output PATH writes the tidy table incrementally (CSV or JSON Lines by extension), which --resume
continues. Exit status as `initscope run`: 0 ok, 2 bad input, 1 when a cell failed (the others are reported),
130 on Ctrl-C (the finished cells are kept in --output).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time

from initscope.engine.errors import SpecError

SCHEMA = "initscope.sweep/1"
SHOWABLE = ("log_q_ratio", "c_last", "log_grad_ratio", "chi1", "nonfinite_frac", "train_loss", "train_acc",
            "test_acc", "xi_c", "xi_q")
MAX_HEATMAPS = 6  # with more than two axes, one heatmap per value of the others, up to this many
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as a shell reports it
EXIT_TERMINATED = 143  # SIGTERM (kill, a batch scheduler's time limit): the same clean stop as Ctrl-C


def add_sweep_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweep")
    g.add_argument("--vary", action="append", default=[], metavar="FIELD[.PARAM]=VALUES",
                   help="an axis of the grid (repeatable; the first is the slowest): VALUES a,b,c or start:stop:count "
                   "or start:stop:count:log, e.g. init.gain=1:2.5:16, bias.std=0:0.5:11, arch=300-300x10,300-300x50")
    g.add_argument("--backend", choices=("local", "inprocess", "ray"), default="local",
                   help="local worker processes (default), this process, or Ray (pip install 'initscope[ray]')")
    g.add_argument("--address", help="with --backend ray: an existing cluster (e.g. auto, or HOST:6379)")
    g.add_argument("--workers", help="local worker processes (default: one per core, one torch thread each)")
    g.add_argument("--gpus-per-cell", dest="gpus_per_cell", help="with --backend ray: GPUs per cell (0.25 packs four "
                   "cells on a GPU; default 0)")
    g.add_argument("--train-steps", dest="train_steps", help="also train each cell N steps (teacher data, batch 64) "
                   "and report train_loss, train_acc, test_acc")
    g.add_argument("--optimizer", help="with --train-steps: sgd(lr=0.05) (default) or adam(lr=0.001)")
    g.add_argument("--output", "-o", help="write the tidy table here as the cells finish (.csv or .jsonl)")
    g.add_argument("--resume", action="store_true", help="continue the sweep in --output: run only missing cells")
    g.add_argument("--format", choices=("table", "json", "csv"), default="table", help="what stdout gets at the end")
    g.add_argument("--show", default="log_q_ratio", help="the metric of the heatmap: " + ", ".join(SHOWABLE))


def _positive_int(field: str, text: str | None) -> int | None:
    if text is None:
        return None
    s = str(text).strip()
    if not s.isdigit() or int(s) < 1 or len(s) > 9:
        raise SpecError(field, text, "expected a whole number, at least 1")
    return int(s)


def _gpus(text: str | None) -> float:
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 1024):
        raise SpecError("gpus-per-cell", text, "expected a number of GPUs >= 0, e.g. 0.25 to share one GPU by four")
    return value


def cmd_sweep(ns: argparse.Namespace) -> int:
    from initscope.engine.sweep import SweepInterrupted, parse_vary, run_sweep
    from initscope.engine.sweep.backends import make_backend
    from initscope.engine.sweep.grid import build_grid, check_axes
    from initscope.tui.cli import EXIT_FAILED, EXIT_OK, flag_texts

    if getattr(ns, "preset", None):
        raise SpecError("preset", ns.preset, "a sweep starts from the spec flags, not a preset; give the flags")
    if not ns.vary:
        raise SpecError("vary", "(none)", "a sweep needs at least one --vary FIELD=VALUES, e.g. --vary init.gain=1:2:5")
    if ns.show not in SHOWABLE:
        raise SpecError("show", ns.show, "choose one of " + ", ".join(SHOWABLE))
    axes = [parse_vary(v) for v in ns.vary]
    check_axes(axes)
    train_steps = _positive_int("train-steps", ns.train_steps)
    workers = _positive_int("workers", ns.workers)
    gpus = _gpus(ns.gpus_per_cell)
    train_options = {}
    if ns.optimizer is not None:
        if train_steps is None:
            raise SpecError("optimizer", ns.optimizer, "it trains the cells, so it needs --train-steps N")
        from initscope.engine.catalog import resolve_in
        from initscope.engine.trainspec import OPTIMIZERS

        resolve_in("optimizer", OPTIMIZERS, ns.optimizer)
        train_options["optimizer"] = ns.optimizer
    if ns.output is not None:
        from initscope.engine.sweep.table import table_format
        from initscope.tui.export import unwritable_reason

        table_format(ns.output)
        reason = unwritable_reason(ns.output)
        if reason is not None:
            raise SpecError("output", ns.output, reason)
    elif ns.resume:
        raise SpecError("resume", "--resume", "resuming reads the table of the first run: give --output PATH")
    base = flag_texts(ns)
    from initscope.engine.sweep import sweep_base

    cells = build_grid(sweep_base(base), axes)  # every cell validated before any worker starts: bad input is exit 2
    backend = make_backend(ns.backend, address=ns.address, workers=workers, gpus_per_cell=gpus)
    bar = ProgressBar() if sys.stderr.isatty() else None
    start = time.perf_counter()
    stopped_by = _stop_on_sigterm()
    try:
        table = run_sweep(base, axes, backend, out=ns.output, resume=ns.resume, train_steps=train_steps,
                          progress=bar, train_options=train_options or None, cells=cells)
    except SweepInterrupted as e:
        if bar is not None:
            bar.clear()
        done = len(e.table.done_cells())
        where = (f"{done} of {e.table.total} cells are saved in {ns.output}; run the same command with --resume to "
                 "finish" if ns.output else f"{done} of {e.table.total} cells were done, and nothing was saved; "
                 "give --output sweep.csv to keep the cells and --resume later")
        print(f"initscope: interrupted: {where}", file=sys.stderr)
        return EXIT_TERMINATED if stopped_by["got"] else EXIT_INTERRUPTED
    finally:
        backend.close()
        _restore_sigterm(stopped_by)
    if bar is not None:
        bar.clear()
    elapsed = time.perf_counter() - start
    sys.stdout.write(render(table, ns, elapsed))
    failed = table.failed()
    if failed:
        first = sorted(failed)[0]
        coords = ", ".join(f"{k}={v}" for k, v in table.coords_of(first).items())
        print(f"initscope: {len(failed)} of {table.total} cells failed; the first, cell {first} ({coords}): "
              f"{failed[first]}", file=sys.stderr)
        return EXIT_FAILED
    if ns.output:
        print(f"wrote {ns.output}", file=sys.stderr)
    return EXIT_OK


def _stop_on_sigterm() -> dict:
    """While the sweep runs, SIGTERM stops it like Ctrl-C (finished cells kept, workers ended): returns the state
    {"previous": the old handler, "got": True once SIGTERM arrived}. Only the main thread can set handlers."""
    import signal
    import threading

    state: dict = {"got": False}
    if threading.current_thread() is not threading.main_thread():
        return state

    def handler(signum, frame):
        state["got"] = True
        raise KeyboardInterrupt

    state["previous"] = signal.signal(signal.SIGTERM, handler)
    return state


def _restore_sigterm(state: dict) -> None:
    import signal

    if "previous" in state:
        signal.signal(signal.SIGTERM, state["previous"])


class ProgressBar:
    """`sweep [#######.......] 37/100 cells, 1m23s left` on stderr, rewritten in place."""

    WIDTH = 30

    def __init__(self) -> None:
        self.shown = 0

    def __call__(self, done: int, total: int, eta_s: float | None) -> None:
        filled = int(self.WIDTH * done / total) if total else self.WIDTH
        left = "" if eta_s is None else f", {format_seconds(eta_s)} left"
        line = f"\rsweep [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} cells{left}"
        sys.stderr.write(line + " " * max(0, self.shown - len(line)))
        sys.stderr.flush()
        self.shown = len(line)

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * self.shown + "\r")
            sys.stderr.flush()
            self.shown = 0


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def render(table, ns: argparse.Namespace, elapsed: float) -> str:
    if ns.format == "json":
        return to_json(table, elapsed, ns.backend) + "\n"
    if ns.format == "csv":
        return to_csv(table)
    from initscope.tui.cli import _color_ok, _term_width

    return to_text(table, ns.show, elapsed, color=_color_ok(None), width=min(120, _term_width()))


def to_json(table, elapsed: float, backend: str) -> str:
    """The "initscope.sweep/1" document: spec, axes, rows (measured), predictions (one per cell), failed."""
    from initscope.engine.report import dumps

    measured = [r for r in table.rows if r["source"] == "measured"]
    predicted = [r for r in table.rows if r["source"] == "predicted"]
    strip = ("source", "error")
    doc = {
        "schema": SCHEMA,
        "spec": table.spec,
        "axes": [{"name": a.name, "field": a.field, "param": a.param, "values": list(a.values)} for a in table.axes],
        "train_steps": table.train_steps,
        "backend": backend,
        "elapsed_s": elapsed,
        "cells": table.total,
        "rows": [{k: v for k, v in r.items() if k not in strip} for r in measured],
        "predictions": [{k: v for k, v in r.items() if k not in ("source", "trial") and (k != "error" or v)}
                        for r in predicted],
        "failed": [{"cell": c, "coords": table.coords_of(c), "error": e} for c, e in sorted(table.failed().items())],
    }
    return dumps(doc)


def to_csv(table) -> str:
    """The tidy table (the columns of --output), without its header comment line."""
    from initscope.engine.sweep.table import columns, csv_rows

    return csv_rows(columns(table.axes, table.train_steps), table.rows, with_names=True)


def to_text(table, metric: str, elapsed: float, *, color: bool, width: int = 100) -> str:
    """A heading, then the heatmaps of `metric` (2+ axes) or a table (one axis), then the failures."""
    n_trials = sum(1 for r in table.rows if r["source"] == "measured" and r["cell"] == 0) or "?"
    shape = " x ".join(f"{len(a)} {a.name}" for a in table.axes)
    head = (f"initscope sweep  {table.spec.get('init', '')} {table.spec.get('act', '')} {table.spec.get('arch', '')}"
            f"  grid {shape} = {table.total} cells x {n_trials} trials  {elapsed:.1f} s")
    parts = [head, ""]
    if len(table.axes) == 1:
        parts.append(axis_table(table, metric))
    else:
        parts.append(heatmaps(table, metric, color=color, width=width))
    return "\n".join(parts).rstrip() + "\n"


def axis_table(table, metric: str) -> str:
    """One axis: value, measured mean +- sd over trials, predicted (and its band)."""
    import numpy as np


    axis = table.axes[0]
    lines = [f"{axis.name:>16}  {metric + ' measured':>24}  {'predicted':>10}  {'band':>21}"]
    for i, value in enumerate(axis.values):
        vals = [r.get(metric) for r in table.rows if r["cell"] == i and r["source"] == "measured"]
        finite = np.array([v for v in vals if v is not None], dtype=np.float64)
        pred = next((r for r in table.rows if r["cell"] == i and r["source"] == "predicted"), None)
        if finite.size:
            measured = f"{finite.mean():.4g} +- {finite.std():.2g}"
        else:
            measured = "failed" if i in table.failed() else "-"
        p = _fmt(None if pred is None else pred.get(metric))
        lo, hi = (pred.get(f"{metric}_lo"), pred.get(f"{metric}_hi")) if pred else (None, None)
        band = f"[{_fmt(lo)}, {_fmt(hi)}]" if lo is not None or hi is not None else "-"
        lines.append(f"{str(value):>16}  {measured:>24}  {p:>10}  {band:>21}")
    return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def heatmaps(table, metric: str, *, color: bool, width: int) -> str:
    """Measured and predicted heatmaps of `metric` over the first two axes (x = the first), on one colour scale,
    with the cells where the predicted chi_1 crosses 1 marked; more axes: one pair per value of the others."""
    import numpy as np
    from initscope.tui.heatmap import contour_mask

    measured, predicted = table.grid(metric, "measured"), table.grid(metric, "predicted")
    chi1 = table.grid("chi1", "predicted")
    x_axis, y_axis = table.axes[0], table.axes[1]
    rest = table.shape[2:]
    out = []
    for k, idx in enumerate(np.ndindex(*rest) if rest else [()]):
        if k >= MAX_HEATMAPS:
            out.append(f"({math.prod(rest) - MAX_HEATMAPS} more slices not drawn; use --format csv or json)")
            break
        where = ", ".join(f"{a.name}={a.values[i]}" for a, i in zip(table.axes[2:], idx, strict=True))
        m = measured[(slice(None), slice(None), *idx)].T  # [ny, nx]: y = the second axis
        p = predicted[(slice(None), slice(None), *idx)].T
        lines = []
        crossing = contour_mask(chi1[(slice(None), slice(None), *idx)].T, 1.0)
        if crossing.any():
            lines.append((crossing, "chi1 = 1"))
        both = np.concatenate([m[np.isfinite(m)], p[np.isfinite(p)]])  # one colour scale for the two maps
        center = 0.0 if metric.startswith("log_") else None  # log ratios: 0 (scale kept) is the centre
        vmin, vmax = (float(both.min()), float(both.max())) if both.size else (None, None)
        if center is not None and both.size:
            span = float(np.abs(both - center).max()) or 1.0
            vmin, vmax = center - span, center + span
        for title, values in (("measured", m), ("predicted (mean field)", p)):
            if title.startswith("predicted") and not np.isfinite(values).any():
                out.append(f"{metric}: no mean-field prediction for these cells")
                continue
            out.append(_heatmap(values, x_axis, y_axis, f"{metric} {title}" + (f"  ({where})" if where else ""),
                                vmin, vmax, lines, color, width, center))
    return "\n".join(out)


def _heatmap(values, x_axis, y_axis, title, vmin, vmax, lines, color: bool, width: int, center: float | None) -> str:
    from initscope.tui.heatmap import heatmap_text
    from rich.console import Console

    text = heatmap_text(values, x_label=x_axis.name, x_values=list(x_axis.values), y_label=y_axis.name,
                        y_values=list(y_axis.values), title=title, vmin=vmin, vmax=vmax, lines=lines, color=color,
                        center=center)
    buf = io.StringIO()
    Console(file=buf, force_terminal=color, color_system="256" if color else None, width=max(width, 40),
            no_color=not color).print(text)
    return buf.getvalue()

