"""Saving and loading from the TUI: results (JSON, CSV), sessions (pinned specs), safe file writes.

Pure functions, no Textual. Every failure raises ExportError (an OSError and an InitscopeError, so the
CLI reports it like any of its own errors) whose str() is one
sentence for `notify(str(err), severity="error", markup=False)`; no traceback reaches the user.

API
    unwritable_reason(path) -> str | None
        Why `path` cannot be saved to before anything is written (it is a directory, its folder does not
        exist or is not a folder, the name is not a valid path), or None. The CLI checks --output with it
        before a run starts.
    atomic_write_text(path, text) -> Path
        Write to a temp file in the same directory, fsync, os.replace over `path`. A failure at any step
        leaves the old file untouched and removes the temp file. A new file gets 0666 & ~umask; an
        existing file keeps its permission bits.
    save_results_json(path, runs) -> Path
        `runs`: the current run and the pins, each a (name, result) tuple, a (name, result, colour,
        visible) tuple, or an object with .name, .result, .colour (or .color) and .visible (tui.pins.Pin).
        File: {"schema": "initscope.export/1", "runs": [{"name", "color", "visible", "result"}]} where
        "result" is engine.report.to_json_dict(result) (schema engine/report.py SCHEMA), "color" is "#rrggbb" or
        null, and NaN/inf are written as null (engine.report.dumps).
    save_results_csv(path, runs) -> Path
        engine.report.to_csv([(name, result), ...]): one row per run and layer.
    save_session(path, pins, current=None) -> Path
        File: {"schema": "initscope.session/1", "current": spec.to_text() or null,
               "pins": [{"name", "color", "visible", "spec": spec.to_text()}],
               "training": [{"name", "color", "visible", "spec": trainspec.to_text()}]}  (pinned training
        runs, engine/trainspec.py text forms; the key is left out when there are none).
        `pins`: SessionEntry, Pin-like objects (.name, .spec or .result.spec, .colour, .visible) or
        (name, spec) tuples; `current`: a RunSpec or None.
    read_session(path) -> Session(current: RunSpec | None, pins: list[SessionEntry], training: list[TrainingEntry])
    load_session(path) -> list[SessionEntry]          (read_session(path).pins)
        Every spec goes through engine.spec.parse_spec; the first bad entry is reported in one sentence
        ("Session file x.json: pin 2 ("relu deep"): init: 'kaiminq' is not valid; choose one of ...").
        Unknown schema, bad JSON (also nesting too deep for the parser, or an integer of more than 4,300
        digits), wrong shapes: one sentence too.
    default_path(kind, *, clock=datetime.now, directory=None) -> Path
        kind "json" | "csv" | "svg" -> <cwd>/initscope-YYYYmmdd-HHMMSS.<kind>; "session" ->
        <cwd>/initscope-session.json. `clock` returns a datetime (inject a fixed one in tests).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from initscope.engine.errors import InitscopeError, SpecError
from initscope.engine.spec import RunSpec, parse_spec

EXPORT_SCHEMA = "initscope.export/1"
SESSION_SCHEMA = "initscope.session/1"
KINDS = ("json", "csv", "svg", "session")

RGB = tuple[int, int, int]


class ExportError(InitscopeError, OSError):
    """A save or load failed; str(err) is one sentence naming the file and the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SessionEntry:
    """One pinned configuration in a session file."""

    name: str
    spec: RunSpec
    colour: RGB | None = None
    visible: bool = True

    @property
    def color(self) -> RGB | None:
        return self.colour


@dataclass(frozen=True)
class TrainingEntry:
    """One pinned training run in a session file: its TrainSpec's text forms (parsed by the app's engine)."""

    name: str
    texts: dict[str, str]
    colour: RGB | None = None
    visible: bool = True


@dataclass(frozen=True)
class Session:
    current: RunSpec | None
    pins: list[SessionEntry]
    training: list[TrainingEntry] = ()  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------------- writing


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror[0].lower() + err.strerror[1:]
    return str(err) or type(err).__name__


def unwritable_reason(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be saved to, in words that follow "Could not save <path>: ", or None."""
    try:
        target = Path(path).expanduser()
        directory = target.parent
        if target.is_dir():
            return "it is a directory"
        if not directory.exists():
            return f"the folder {directory} does not exist"
        if not directory.is_dir():
            return f"{directory} is not a folder"
    except (OSError, ValueError, RuntimeError) as err:  # a NUL byte, a name too long, ~nobody
        return f"it is not a usable path ({_reason(err)})"
    return None


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Replace `path` with `text` (UTF-8) atomically; see the module docstring. Returns the path."""
    reason = unwritable_reason(path)
    if reason is not None:
        raise ExportError(f"Could not save {path}: {reason}.")
    target = Path(path).expanduser()
    directory = target.parent
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError:
        mode = None
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
        tmp_name = None
    except (OSError, ValueError) as err:
        raise ExportError(f"Could not save {target}: {_reason(err)}.") from err
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    _fsync_dir(directory)
    return target


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- results


def colour_hex(colour: object) -> str | None:
    """(r, g, b) or "#rrggbb" -> "#rrggbb"; None or anything else -> None."""
    if isinstance(colour, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", colour):
        return colour.lower()
    if isinstance(colour, (tuple, list)) and len(colour) == 3 and all(isinstance(c, int) for c in colour):
        return "#{:02x}{:02x}{:02x}".format(*(min(255, max(0, c)) for c in colour))
    return None


def parse_colour(text: object) -> RGB | None:
    hexed = colour_hex(text)
    if hexed is None:
        return None
    return int(hexed[1:3], 16), int(hexed[3:5], 16), int(hexed[5:7], 16)


def _unpack_run(item: object) -> tuple[str, object, object, bool]:
    if isinstance(item, tuple):
        if len(item) == 2:
            return str(item[0]), item[1], None, True
        if len(item) == 4:
            return str(item[0]), item[1], item[2], bool(item[3])
        raise TypeError("a run is (name, result) or (name, result, colour, visible)")
    colour = getattr(item, "colour", getattr(item, "color", None))
    return str(item.name), item.result, colour, bool(getattr(item, "visible", True))


def results_document(runs: Iterable[object]) -> dict:
    """The export JSON as a dict (see the module docstring)."""
    from initscope.engine import report

    out = []
    for item in runs:
        name, result, colour, visible = _unpack_run(item)
        out.append({"name": name, "color": colour_hex(colour), "visible": visible,
                    "result": report.to_json_dict(result)})
    return {"schema": EXPORT_SCHEMA, "runs": out}


def save_results_json(path: str | os.PathLike, runs: Iterable[object]) -> Path:
    from initscope.engine import report

    runs = list(runs)
    if not runs:
        raise ExportError(f"Nothing to save to {Path(path)}: there are no results yet.")
    return atomic_write_text(path, report.dumps(results_document(runs)) + "\n")


def save_results_csv(path: str | os.PathLike, runs: Iterable[object]) -> Path:
    from initscope.engine import report

    named = [(name, result) for name, result, _c, _v in map(_unpack_run, runs)]
    if not named:
        raise ExportError(f"Nothing to save to {Path(path)}: there are no results yet.")
    return atomic_write_text(path, report.to_csv(named))


# ---------------------------------------------------------------------------------------------- sessions


def _unpack_pin(item: object) -> SessionEntry:
    if isinstance(item, SessionEntry):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return SessionEntry(str(item[0]), item[1])
    spec = getattr(item, "spec", None)
    if spec is None and getattr(item, "result", None) is not None:
        spec = item.result.spec
    colour = getattr(item, "colour", getattr(item, "color", None))
    return SessionEntry(str(item.name), spec, parse_colour(colour), bool(getattr(item, "visible", True)))


def session_document(pins: Iterable[object], current: RunSpec | None = None,
                     training: Iterable[object] = ()) -> dict:
    """`training`: pinned training runs (tui.pins.Pin of a TrainResult: .name, .result.spec, .colour, .visible)."""
    entries = [_unpack_pin(p) for p in pins]
    doc = {
        "schema": SESSION_SCHEMA,
        "current": current.to_text() if current is not None else None,
        "pins": [{"name": e.name, "color": colour_hex(e.colour), "visible": e.visible, "spec": e.spec.to_text()}
                 for e in entries],
    }
    trained = [{"name": str(p.name), "color": colour_hex(getattr(p, "colour", None)),
                "visible": bool(getattr(p, "visible", True)), "spec": p.result.spec.to_text()} for p in training]
    if trained:
        doc["training"] = trained
    return doc


def save_session(path: str | os.PathLike, pins: Iterable[object], current: RunSpec | None = None,
                 training: Iterable[object] = ()) -> Path:
    return atomic_write_text(path, json.dumps(session_document(pins, current, training), indent=2) + "\n")


def _spec_from(where: str, texts: object) -> RunSpec:
    if not isinstance(texts, dict):
        raise ExportError(f"{where}: the spec must be an object of text forms, not {type(texts).__name__}.")
    try:
        return parse_spec(**{str(k): v for k, v in texts.items()})
    except SpecError as err:
        raise ExportError(f"{where}: {str(err).rstrip('.')}.") from err
    except (TypeError, ValueError, ArithmeticError, RecursionError) as err:  # defensive: the app gets a sentence
        raise ExportError(f"{where}: the spec could not be read ({_reason(err).rstrip('.')}).") from err


def read_session(path: str | os.PathLike) -> Session:
    """Load and validate a session file; raises ExportError with one sentence."""
    p = Path(path).expanduser()
    where = f"Session file {p}"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ExportError(f"{where} does not exist.") from err
    except IsADirectoryError as err:
        raise ExportError(f"{where} is a directory, not a file.") from err
    except UnicodeDecodeError as err:
        raise ExportError(f"{where} is not UTF-8 text.") from err
    except OSError as err:
        raise ExportError(f"Could not read {p}: {_reason(err)}.") from err
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ExportError(f"{where} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}).") from err
    except RecursionError:
        raise ExportError(f"{where} nests its brackets too deeply to be a session file.") from None
    except ValueError as err:  # Python reads no integer of more than 4,300 digits
        what = "an integer of more than 4,300 digits" if "digits" in str(err) else "a value JSON cannot hold"
        raise ExportError(f"{where} is not a session file: it holds {what}.") from None
    if not isinstance(doc, dict):
        raise ExportError(f"{where} must hold a JSON object with a schema, not a {type(doc).__name__}.")
    schema = doc.get("schema")
    if schema != SESSION_SCHEMA:
        if schema == EXPORT_SCHEMA or (isinstance(schema, str) and schema.startswith("initscope.run")):
            raise ExportError(f"{where} holds saved results ({schema}), not a session; "
                              f"load a file saved with 'save session'.")
        shown = "no schema" if schema is None else f"schema {schema!r}"
        raise ExportError(f"{where} has {shown}; expected {SESSION_SCHEMA!r}.")
    current_texts = doc.get("current")
    current = None if current_texts is None else _spec_from(f"{where}: current configuration", current_texts)
    raw_pins = doc.get("pins", [])
    if not isinstance(raw_pins, list):
        raise ExportError(f"{where}: 'pins' must be a list.")
    pins: list[SessionEntry] = []
    for i, raw in enumerate(raw_pins, start=1):
        if not isinstance(raw, dict):
            raise ExportError(f"{where}: pin {i} must be an object with name and spec.")
        name = raw.get("name")
        label = f"pin {i}" + (f" ({name!r})" if isinstance(name, str) and name else "")
        if "spec" not in raw:
            raise ExportError(f"{where}: {label} has no spec.")
        spec = _spec_from(f"{where}: {label}", raw["spec"])
        visible = raw.get("visible", True)
        if not isinstance(visible, bool):
            raise ExportError(f"{where}: {label}: visible must be true or false.")
        colour = raw.get("color", raw.get("colour"))
        if colour is not None and parse_colour(colour) is None:
            raise ExportError(f"{where}: {label}: color {colour!r} is not a #rrggbb colour.")
        pins.append(SessionEntry(str(name) if isinstance(name, str) and name else spec.label(), spec,
                                 parse_colour(colour), visible))
    raw_training = doc.get("training", [])
    if not isinstance(raw_training, list):
        raise ExportError(f"{where}: 'training' must be a list.")
    training: list[TrainingEntry] = []
    for i, raw in enumerate(raw_training, start=1):
        texts = raw.get("spec") if isinstance(raw, dict) else None
        if not isinstance(texts, dict) or not all(isinstance(v, (str, int, float)) for v in texts.values()):
            raise ExportError(f"{where}: training run {i} must be an object with name and spec (text forms).")
        name = raw.get("name")
        colour = raw.get("color", raw.get("colour"))
        training.append(TrainingEntry(str(name) if isinstance(name, str) and name else f"training {i}",
                                      {str(k): str(v) for k, v in texts.items()},
                                      parse_colour(colour) if colour is not None else None,
                                      raw.get("visible", True) is not False))
    return Session(current, pins, training)


def load_session(path: str | os.PathLike) -> list[SessionEntry]:
    """The pinned entries of a session file (read_session(path).pins)."""
    return read_session(path).pins


# ---------------------------------------------------------------------------------------------- paths


def default_path(kind: str, *, clock: Callable[[], datetime] = datetime.now,
                 directory: str | os.PathLike | None = None) -> Path:
    """Where to save by default: the current working directory (or `directory`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    base = Path(directory) if directory is not None else Path.cwd()
    if kind == "session":
        return base / "initscope-session.json"
    return base / f"initscope-{clock().strftime('%Y%m%d-%H%M%S')}.{kind}"
