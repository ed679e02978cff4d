"""The `initscope` command.

    initscope [spec flags] [--preset NAME]        open the app, preset by the flags
    initscope run [spec flags] [--format table|json|csv] [--output FILE] [--preset NAME]
    initscope explain [spec flags]                the theory's explanation, in words and numbers
    initscope train [spec flags] [--steps N] [--optimizer sgd(lr=0.05)] [--every K] [--format table|json|csv]
                    [--output FILE] [--preset NAME]   train the stack for its first steps, every layer recorded
    initscope sweep [spec flags] --vary FIELD[.PARAM]=VALUES ... [--backend local|inprocess|ray] [--output T.csv]
                    [--resume] [--train-steps N] [--format table|json|csv] [--show METRIC]
                                                  a grid of runs beside the mean-field prediction (docs/sweeps.md)
    initscope list                                every scheme, activation, bias and data source

Exit status: 0 ok, 2 bad input (one line on stderr naming the field, the value and what is
allowed; --output into a missing folder or onto a directory too), 1 a failure while running (also a
save that fails on a read-only or full disk; the old file is kept; for the app: anything but a
clean quit, e.g. a crash; for sweep: a cell that failed), 130 interrupted by Ctrl-C (a sweep keeps its finished
cells in --output), 143 the app or a sweep stopped by SIGTERM. Never a traceback for a user mistake
(INITSCOPE_DEBUG=1 shows one for anything unexpected).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from initscope.engine.errors import InitscopeError, RunError, SpecError
from initscope.engine.spec import DEFAULTS, RunSpec, parse_spec

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SPEC_FLAGS = ("arch", "init", "act", "bias", "data", "batch", "device", "dtype", "seed", "trials", "norm", "residual",
              "pair_corr")


class UsageError(Exception):
    """argparse's complaint, turned into one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + traceback-like noise
        raise UsageError(message)


def _add_spec_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("spec (each a text form: name or name(key=value, ...); `initscope list` shows every name)")
    g.add_argument("--arch", help=f"widths joined by '-', WxN repeats (default {DEFAULTS['arch']})")
    g.add_argument("--init", help=f"init scheme, e.g. kaiming_normal(mode=fan_out) (default {DEFAULTS['init']})")
    g.add_argument("--act", help=f"activation, e.g. leaky_relu(a=0.1) (default {DEFAULTS['act']})")
    g.add_argument("--bias", help="bias, e.g. zeros, const(value=0.1) (default zeros; torch_default init brings its own)")
    g.add_argument("--data", help=f"input data, e.g. gaussian(std=1), file(path=x.npy), digits (default {DEFAULTS['data']})")
    g.add_argument("--norm", help="normalization after the linear: none, batchnorm, layernorm, rmsnorm "
                   f"(default {DEFAULTS['norm']})")
    g.add_argument("--residual", help="skip connection: none, plain(alpha=1), rezero, fixup "
                   f"(default {DEFAULTS['residual']})")
    g.add_argument("--pair-corr", dest="pair_corr", metavar="C",
                   help="also feed input pairs of correlation C (-1 < C < 1) and measure their correlation c^l "
                   "at every layer (default none: off)")
    g.add_argument("--batch", help=f"rows of input (default {DEFAULTS['batch']})")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    g.add_argument("--dtype", help="float32, float64, bfloat16 or float16 (default float32)")
    g.add_argument("--seed", help="random seed; trial t uses seed + t (default 0)")
    g.add_argument("--trials", help="independent networks to average (default 1)")
    g.add_argument("--no-grad", dest="grad", action="store_false", default=None, help="forward pass only")
    g.add_argument("--grad", dest="grad", action="store_true", help="also measure gradients (the default)")
    g.add_argument("--preset", help="start from a classic experiment (see `initscope list`)")


def build_parser() -> dict[str, argparse.ArgumentParser]:
    app = _Parser(prog="initscope", description="Open the initscope app (subcommands: run, explain, list).")
    _add_spec_flags(app)
    run = _Parser(prog="initscope run", description="Run a spec headless and print the per-layer statistics.")
    _add_spec_flags(run)
    run.add_argument("--format", choices=("table", "json", "csv"), default="table")
    run.add_argument("--output", "-o", help="write to this file instead of stdout")
    explain = _Parser(prog="initscope explain", description="Explain what the theory predicts for a spec.")
    _add_spec_flags(explain)
    train = _Parser(prog="initscope train", description="Train the spec's stack (then a linear readout, "
                    "cross-entropy) for its first steps and record every layer.")
    _add_spec_flags(train)
    for action in train._actions:  # training's own defaults and meanings for the shared flags
        if action.dest == "data":
            action.help = "labelled data: digits (default), teacher(samples, classes, hidden), file(path, labels)"
        elif action.dest == "batch":
            action.help = "minibatch size (default 64)"
        elif action.dest == "arch":
            action.help = "widths joined by '-', WxN repeats (default 64-100x10; digits needs 64 first)"
        elif action.dest == "trials":
            action.help = "seeds: trial t uses seed + t (default 1)"
        elif action.dest == "preset":
            action.help = "lesson8_training or trainability (see `initscope list`)"
    train.add_argument("--steps", help="optimizer steps (default 100)")
    train.add_argument("--optimizer", help="sgd(lr=0.05, momentum=0, weight_decay=0) (default) or "
                       "adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0)")
    train.add_argument("--every", help="record every K steps (default: at most about 200 recorded points)")
    train.add_argument("--format", choices=("table", "json", "csv"), default="table")
    train.add_argument("--output", "-o", help="write to this file instead of stdout")
    sweep = _Parser(prog="initscope sweep", description="Run a grid of specs (--vary axes), every cell measured beside "
                    "the mean-field prediction (docs/sweeps.md).")
    _add_spec_flags(sweep)
    from initscope.tui.sweep_cli import add_sweep_flags

    add_sweep_flags(sweep)
    lister = _Parser(prog="initscope list", description="List every init scheme, activation, bias, data source and preset.")
    return {"app": app, "run": run, "explain": explain, "list": lister, "train": train, "sweep": sweep}


def flag_texts(ns: argparse.Namespace) -> dict[str, str]:
    """The spec fields given on the command line, as text forms."""
    texts = {k: getattr(ns, k) for k in SPEC_FLAGS if getattr(ns, k, None) is not None}
    if getattr(ns, "grad", None) is not None:
        texts["grad"] = "true" if ns.grad else "false"
    return texts


def spec_from_args(ns: argparse.Namespace) -> list[tuple[str, RunSpec]]:
    """The specs the flags describe: one, or a preset's variants with the flags applied on top."""
    if getattr(ns, "preset", None):
        from initscope.engine.presets import get_preset

        return get_preset(ns.preset).specs(flag_texts(ns))
    return [("run", parse_spec(**flag_texts(ns)))]


def _progress_printer(what: str = "running", unit: str = "layers"):
    """A progress line on stderr ('running: 12/40 layers'), or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        line = f"\r{what}: {done}/{total} {unit}"
        sys.stderr.write(line)
        if done >= total:
            sys.stderr.write("\r" + " " * len(line) + "\r")
        sys.stderr.flush()

    return show


def cmd_run(ns: argparse.Namespace) -> int:
    from initscope import engine
    from initscope.engine import report

    specs = spec_from_args(ns)
    if ns.output is not None:  # a folder that is missing is bad input, known before the run starts
        from initscope.tui.export import unwritable_reason

        reason = unwritable_reason(ns.output)
        if reason is not None:
            raise SpecError("output", ns.output, reason)
    results = []
    for label, spec in specs:
        results.append((label, engine.run(spec, progress=_progress_printer())))
    if ns.format == "json":
        if len(results) == 1:
            text = report.to_json(results[0][1])
        else:
            text = report.dumps({"schema": "initscope.runs/1",
                                 "runs": [{"name": n, "result": report.to_json_dict(r)} for n, r in results]})
        text += "\n"
    elif ns.format == "csv":
        text = report.to_csv(results)
    else:
        parts = []
        for label, result in results:
            if len(results) > 1:
                parts.append(f"== {label} ==")
            parts.append(report.to_table(result))
            parts.append(report.std_chart(result, width=min(100, _term_width()), tensor=report.chart_tensor(result),
                                          color=_color_ok(ns.output)))
        text = "\n".join(parts) + "\n"
    if ns.output:
        from initscope.tui.export import atomic_write_text

        atomic_write_text(Path(ns.output), text)
        print(f"wrote {ns.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _color_ok(output: str | None) -> bool:
    """ANSI colours only on a terminal (and never with NO_COLOR set or into a file)."""
    return output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _term_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


TRAIN_FLAGS = ("steps", "optimizer", "every")


def train_specs(ns: argparse.Namespace) -> list[tuple[str, object]]:
    """The training specs the flags describe: one, or a training preset's variants with the flags on top."""
    from initscope.engine.trainspec import parse_train

    texts = {k: getattr(ns, k) for k in (*SPEC_FLAGS, *TRAIN_FLAGS) if getattr(ns, k, None) is not None}
    if getattr(ns, "grad", None) is False:
        raise SpecError("grad", "false", "training needs gradients; leave out --no-grad")
    if texts.pop("pair_corr", None) is not None:
        raise SpecError("pair_corr", ns.pair_corr, "training does not measure input pairs (initscope run and the app "
                        "do); leave out --pair-corr")
    texts.pop("preset", None)
    if getattr(ns, "preset", None):
        from initscope.engine.train_presets import get_train_preset

        return get_train_preset(ns.preset).specs(texts)
    return [("train", parse_train(**texts))]


def cmd_train(ns: argparse.Namespace) -> int:
    from initscope.engine import train_report
    from initscope.engine.train import train

    specs = train_specs(ns)
    if ns.output is not None:
        from initscope.tui.export import unwritable_reason

        reason = unwritable_reason(ns.output)
        if reason is not None:
            raise SpecError("output", ns.output, reason)
    results = [(label, train(spec, progress=_progress_printer(f"training {label}", "steps"))) for label, spec in specs]
    if ns.format == "json":
        text = train_report.to_json(results) + "\n"
    elif ns.format == "csv":
        text = train_report.to_csv(results)
    else:
        text = train_report.to_table(results)
    if ns.output:
        from initscope.tui.export import atomic_write_text

        atomic_write_text(Path(ns.output), text)
        print(f"wrote {ns.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_explain(ns: argparse.Namespace) -> int:
    from initscope.engine.theory.safe import explain_or_reason, predict_or_reason

    for label, spec in spec_from_args(ns):  # a prediction that fails is explained as absent, with its reason
        if label != "run":
            print(f"== {label} ==")
        print(explain_or_reason(spec, predict_or_reason(spec)).to_text())
    return EXIT_OK


def cmd_list(ns: argparse.Namespace) -> int:
    from initscope.engine.catalog import listing
    from initscope.engine.presets import PRESETS

    out = [listing(), "Presets (--preset; keys in the app)"]
    for p in PRESETS.values():
        out.append(f"  {p.name:<14} [{p.key}] {p.title}")
        out.append(f"  {'':<19}look for: {p.look_for}")
    from initscope.engine.train_presets import TRAIN_PRESETS
    from initscope.engine.trainspec import listing as train_listing

    out.append("")
    out.append(train_listing().rstrip())
    out.append("Training presets (initscope train --preset)")
    for p in TRAIN_PRESETS.values():
        out.append(f"  {p.name:<18} {p.title}")
        out.append(f"  {'':<19}look for: {p.look_for}")
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK


def cmd_sweep(ns: argparse.Namespace) -> int:
    from initscope.tui.sweep_cli import cmd_sweep as sweep

    return sweep(ns)


def cmd_app(ns: argparse.Namespace) -> int:
    specs = spec_from_args(ns)  # validate before the screen opens: a bad flag is one line, not a crash
    from initscope.tui import preload

    # torch loads (and, without a preset, the first run runs) while Textual draws the first frame
    engine = preload.start(None if ns.preset else specs[0][1])
    from initscope.tui.app import main as app_main

    return app_main(specs[0][1], preset=ns.preset, preset_overrides=flag_texts(ns), engine=engine)  # non-zero unless quit cleanly


COMMANDS = {"run": cmd_run, "explain": cmd_explain, "list": cmd_list, "train": cmd_train, "sweep": cmd_sweep,
            "app": cmd_app}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS and argv[0] != "app" else "app"
    args = argv[1:] if command != "app" else argv
    try:
        ns = build_parser()[command].parse_args(args)
        return COMMANDS[command](ns)
    except (UsageError, SpecError) as e:
        _complain(str(e))
        return EXIT_USAGE
    except RunError as e:
        _complain(f"run failed: {e}")
        return EXIT_FAILED
    except InitscopeError as e:
        _complain(str(e))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _complain("interrupted")
        return 130
    except Exception as e:  # a bug: say so in one line; INITSCOPE_DEBUG=1 shows the traceback
        if os.environ.get("INITSCOPE_DEBUG"):
            raise
        _complain(f"unexpected failure ({type(e).__name__}: {e}); rerun with INITSCOPE_DEBUG=1 for details")
        return EXIT_FAILED


def one_line(text: str) -> str:
    """text with every character that is not printable written as its escape (a newline as \\n, U+2028 as
    \\u2028, NUL as \\x00): a message that quotes what the user typed stays one line on any terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _complain(message: str) -> None:
    print(f"initscope: {one_line(message)}", file=sys.stderr)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
