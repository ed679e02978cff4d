"""tui.export: atomic writes, results JSON/CSV, session files, default paths."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from initscope.engine.spec import parse_spec
from initscope.tui import export
from initscope.tui.export import (
    EXPORT_SCHEMA,
    SESSION_SCHEMA,
    ExportError,
    SessionEntry,
    atomic_write_text,
    default_path,
    load_session,
    read_session,
    save_results_csv,
    save_results_json,
    save_session,
)

from tests.tui.helpers_results import make_result


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------------------ atomic write


def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "out.json"
    assert atomic_write_text(target, "one\n") == target
    assert target.read_text() == "one\n"
    atomic_write_text(target, "two\n")
    assert target.read_text() == "two\n"
    assert leftovers(tmp_path) == []


def test_atomic_write_keeps_permissions_of_the_old_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert target.stat().st_mode & 0o777 == 0o640


def test_failure_in_replace_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("precious")

    def broken_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(export.os, "replace", broken_replace)
    with pytest.raises(ExportError) as info:
        atomic_write_text(target, "new contents")
    assert target.read_text() == "precious"
    assert leftovers(tmp_path) == []
    msg = str(info.value)
    assert msg == f"Could not save {target}: permission denied."
    assert "\n" not in msg and "Traceback" not in msg
    assert isinstance(info.value, OSError)


def test_failure_mid_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("precious")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "fsync", broken_fsync)
    with pytest.raises(ExportError, match="no space left on device"):
        atomic_write_text(target, "x" * 100_000)
    assert target.read_text() == "precious"
    assert leftovers(tmp_path) == []


def test_unencodable_text_is_an_export_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("precious")
    with pytest.raises(ExportError):
        atomic_write_text(target, "bad \udcff surrogate")
    assert target.read_text() == "precious"
    assert leftovers(tmp_path) == []


def test_missing_folder_and_directory_target(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "out.json", "x")
    with pytest.raises(ExportError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ results


def test_save_results_json_with_the_real_report(tmp_path):
    a = make_result("8-8x3")
    b = make_result("8-16-4", grad=False)
    b.stats["pre"][0, 1, 1] = np.nan  # NaN must become null, never a NaN token
    path = save_results_json(tmp_path / "r.json", [("current", a), ("pin 1", b, (230, 159, 0), False)])
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    assert doc["schema"] == EXPORT_SCHEMA
    assert [r["name"] for r in doc["runs"]] == ["current", "pin 1"]
    assert doc["runs"][0]["color"] is None and doc["runs"][0]["visible"] is True
    assert doc["runs"][1]["color"] == "#e69f00" and doc["runs"][1]["visible"] is False
    res = doc["runs"][1]["result"]
    assert res["schema"] == "initscope.run/2"
    assert len(res["layers"]) == 2 and res["layers"][0]["grad"] is None


def test_save_results_accepts_pin_like_objects(tmp_path):
    class Pin:
        def __init__(self, name, result, colour, visible):
            self.name, self.result, self.colour, self.visible = name, result, colour, visible

    r = make_result("8-8x2")
    doc = json.loads(save_results_json(tmp_path / "p.json", [Pin("deep relu", r, (1, 2, 3), True)]).read_text())
    assert doc["runs"][0]["name"] == "deep relu" and doc["runs"][0]["color"] == "#010203"


def test_save_results_json_uses_the_report_contract(tmp_path, monkeypatch):
    """Through a stub of engine.report: our code only relies on to_json_dict/dumps/to_csv."""
    from initscope.engine import report

    calls = []
    monkeypatch.setattr(report, "to_json_dict", lambda result: calls.append(result) or {"schema": "stub"})
    monkeypatch.setattr(report, "to_csv", lambda named: "run\n" + "".join(f"{n}\n" for n, _ in named))
    r = make_result("8-8x2")
    doc = json.loads(save_results_json(tmp_path / "s.json", [("a", r)]).read_text())
    assert doc == {"schema": EXPORT_SCHEMA, "runs": [{"name": "a", "color": None, "visible": True,
                                                        "result": {"schema": "stub"}}]}
    assert calls == [r]
    assert save_results_csv(tmp_path / "s.csv", [("a", r), ("b", r)]).read_text() == "run\na\nb\n"


def test_save_results_csv_with_the_real_report(tmp_path):
    a, b = make_result("8-8x3"), make_result("8-8x2")
    rows = list(csv.DictReader(io.StringIO(save_results_csv(tmp_path / "r.csv", [("a", a), ("b", b)]).read_text())))
    assert [(r["run"], r["layer"]) for r in rows] == [("a", "1"), ("a", "2"), ("a", "3"), ("b", "1"), ("b", "2")]


def test_nothing_to_save(tmp_path):
    with pytest.raises(ExportError, match="no results yet"):
        save_results_json(tmp_path / "r.json", [])
    with pytest.raises(ExportError, match="no results yet"):
        save_results_csv(tmp_path / "r.csv", [])
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ sessions


def test_session_round_trip(tmp_path):
    s1 = parse_spec(arch="784-50x10-10", init="kaiming_normal(mode=fan_out)", act="leaky_relu(a=0.1)", seed="3")
    s2 = parse_spec(act="general_relu(leak=0.1, sub=0.4, maxv=6)", bias="const(value=0.1)", grad="false")
    current = parse_spec(init="xavier_uniform", act="tanh", trials="4")
    pins = [SessionEntry("fan out", s1, (230, 159, 0), True), SessionEntry("general", s2, None, False)]
    path = save_session(tmp_path / "session.json", pins, current=current)
    doc = json.loads(path.read_text())
    assert doc["schema"] == SESSION_SCHEMA and doc["current"] == current.to_text()
    session = read_session(path)
    assert session.current == current
    assert session.pins == pins
    assert load_session(path) == pins
    assert [p.spec for p in load_session(path)] == [s1, s2]


def test_session_from_pin_like_objects_and_no_current(tmp_path):
    class Pin:
        def __init__(self, name, result, colour, visible):
            self.name, self.result, self.colour, self.visible = name, result, colour, visible

        @property
        def spec(self):
            return self.result.spec

    r = make_result("8-8x2")
    path = save_session(tmp_path / "s.json", [Pin("p", r, (86, 180, 233), False), ("t", r.spec)])
    session = read_session(path)
    assert session.current is None
    assert session.pins == [SessionEntry("p", r.spec, (86, 180, 233), False), SessionEntry("t", r.spec)]


def write(tmp_path, obj) -> Path:
    p = tmp_path / "session.json"
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def one_sentence(err: ExportError) -> str:
    msg = str(err)
    assert "\n" not in msg and "Traceback" not in msg and msg.endswith(".")
    return msg


GOOD = {"arch": "16-16x3", "init": "kaiming_normal", "act": "relu"}


@pytest.mark.parametrize("content, expected", [
    ("{not json", "is not valid JSON (line 1, column 2"),
    ("[1, 2]", "must hold a JSON object"),
    ({"pins": []}, "has no schema; expected 'initscope.session/1'"),
    ({"schema": "initscope.session/9", "pins": []}, "has schema 'initscope.session/9'"),
    ({"schema": "initscope.export/1", "runs": []}, "holds saved results"),
    ({"schema": SESSION_SCHEMA, "pins": {"a": 1}}, "'pins' must be a list"),
    ({"schema": SESSION_SCHEMA, "pins": [3]}, "pin 1 must be an object"),
    ({"schema": SESSION_SCHEMA, "pins": [{"name": "x"}]}, "pin 1 ('x') has no spec"),
    ({"schema": SESSION_SCHEMA, "pins": [{"name": "ok", "spec": GOOD},
                                         {"name": "typo", "spec": {**GOOD, "init": "kaiminq"}},
                                         {"name": "bad too", "spec": {**GOOD, "act": "nope"}}]},
     "pin 2 ('typo'): init: 'kaiminq' is not valid; choose one of normal"),
    ({"schema": SESSION_SCHEMA, "pins": [{"spec": {**GOOD, "colour_depth": "8"}}]},
     "pin 1: spec: 'colour_depth' is not valid; known fields are arch"),
    ({"schema": SESSION_SCHEMA, "pins": [{"spec": "512-512"}]}, "pin 1: the spec must be an object"),
    ({"schema": SESSION_SCHEMA, "pins": [{"spec": GOOD, "visible": "yes"}]}, "visible must be true or false"),
    ({"schema": SESSION_SCHEMA, "pins": [{"spec": GOOD, "color": "red"}]}, "is not a #rrggbb colour"),
    ({"schema": SESSION_SCHEMA, "current": {"batch": "0"}, "pins": []},
     "current configuration: batch: '0' is not valid; expected a whole number"),
])
def test_bad_session_files_give_one_sentence(tmp_path, content, expected):
    path = write(tmp_path, content)
    with pytest.raises(ExportError) as info:
        load_session(path)
    msg = one_sentence(info.value)
    assert msg.startswith(f"Session file {path}")
    assert expected in msg


def test_missing_and_directory_session(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        load_session(tmp_path / "nope.json")
    with pytest.raises(ExportError, match="is a directory"):
        load_session(tmp_path)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(ExportError, match="not UTF-8"):
        load_session(tmp_path / "bin.json")


def test_unnamed_pin_gets_the_spec_label(tmp_path):
    path = write(tmp_path, {"schema": SESSION_SCHEMA, "pins": [{"spec": GOOD}]})
    (entry,) = load_session(path)
    assert entry.name == entry.spec.label() and entry.visible and entry.colour is None


# ------------------------------------------------------------------------------------------ default paths


def test_default_paths(tmp_path, monkeypatch):
    clock = lambda: datetime(2026, 3, 7, 9, 5, 2)  # noqa: E731
    assert default_path("json", clock=clock, directory=tmp_path) == tmp_path / "initscope-20260307-090502.json"
    assert default_path("csv", clock=clock, directory=tmp_path).name == "initscope-20260307-090502.csv"
    assert default_path("svg", clock=clock, directory=tmp_path).name == "initscope-20260307-090502.svg"
    assert default_path("session", directory=tmp_path) == tmp_path / "initscope-session.json"
    monkeypatch.chdir(tmp_path)
    assert default_path("csv", clock=clock) == tmp_path / "initscope-20260307-090502.csv"
    with pytest.raises(ValueError):
        default_path("png")


@pytest.mark.parametrize("content, expected", [
    ('{"schema": "initscope.session/1", "pins": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "nests its brackets too deeply"),
    ('{"schema": "initscope.session/1", "current": {"batch": ' + "9" * 5000 + "}}",
     "holds an integer of more than 4,300 digits"),
    ({"schema": SESSION_SCHEMA, "current": {**GOOD, "init": "normal(std=1" + "0" * 400 + ")"}},
     "current configuration: init normal: parameter std: 'inf' is not valid; expected a finite number"),
    ({"schema": SESSION_SCHEMA, "pins": [{"spec": {**GOOD, "arch": "9" * 5000 + "-10"}}]},
     "pin 1: arch: '99999"),
], ids=["deep-nesting", "5000-digit-int", "std-beyond-float", "5000-digit-width"])
def test_tampered_session_files_give_one_sentence(tmp_path, content, expected):
    # each of these crashed the app's loader (RecursionError, ValueError, OverflowError)
    path = write(tmp_path, content)
    with pytest.raises(ExportError) as info:
        read_session(path)
    msg = one_sentence(info.value)
    assert msg.startswith(f"Session file {path}") and expected in msg and len(msg) < 400


def test_export_error_is_an_initscope_error():
    from initscope.engine.errors import InitscopeError

    assert issubclass(ExportError, InitscopeError) and issubclass(ExportError, OSError)
