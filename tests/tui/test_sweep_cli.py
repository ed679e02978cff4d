"""`initscope sweep`: exit codes (0, 1 a failed cell, 2 bad input, 130 Ctrl-C), the JSON schema, CSV, the text view."""

import json

import pytest
from initscope.engine.sweep.table import load_table
from initscope.tui.cli import main

SPEC = ["--arch", "12-12x3", "--act", "tanh", "--init", "lecun_normal", "--bias", "normal(std=0.1)", "--batch", "16",
        "--device", "cpu", "--trials", "2", "--backend", "inprocess"]
GRID = ["--vary", "init.gain=0.8,1.6", "--vary", "bias.std=0,0.4,0.8"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def sweep(capsys, *args):
    code = main(["sweep", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, fragment", [
    (["--vary", "init.gain=1:2"], "a range is start:stop:count"),
    (["--vary", "colour=1"], "colour is not a spec field"),
    ([], "at least one --vary"),
    (["--vary", "init.gain=1,-1"], "init.gain=-1"),
    (["--vary", "bias.std=1", "--bias", "zeros"], "bias zeros has no parameter std"),
    (["--vary", "init.gain=1", "--vary", "init.gain=2"], "given twice"),
    (["--vary", "init.gain=1", "--show", "loss"], "show"),
    (["--vary", "init.gain=1", "--output", "t.txt"], ".csv or .jsonl"),
    (["--vary", "init.gain=1", "--resume"], "give --output"),
    (["--vary", "init.gain=1", "--address", "auto"], "only the ray backend"),
    (["--vary", "init.gain=1", "--workers", "0"], "at least 1"),
    (["--vary", "init.gain=1", "--optimizer", "adam"], "needs --train-steps"),
    (["--vary", "init.gain=1", "--preset", "lesson8"], "not a preset"),
])
def test_bad_input_exits_2_with_one_line(capsys, args, fragment):
    code, out, err = sweep(capsys, *SPEC, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and fragment in err, err


def test_json_document(capsys):
    code, out, _ = sweep(capsys, *SPEC, *GRID, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"schema", "spec", "axes", "train_steps", "backend", "elapsed_s", "cells", "rows",
                        "predictions", "failed"}
    assert doc["schema"] == "initscope.sweep/1" and doc["cells"] == 6 and doc["failed"] == []
    assert [a["name"] for a in doc["axes"]] == ["init.gain", "bias.std"]
    assert doc["axes"][1]["values"] == [0, 0.4, 0.8]
    assert len(doc["rows"]) == 12 and len(doc["predictions"]) == 6
    row = doc["rows"][0]
    for key in ("cell", "init.gain", "bias.std", "trial", "log_q_ratio", "c_last", "log_grad_ratio", "chi1",
                "nonfinite_frac"):
        assert key in row
    assert row["chi1"] is None and doc["predictions"][0]["chi1"] > 0
    assert doc["spec"]["pair_corr"] == "0.5"  # a sweep measures c^L from c^0 = PHASE_C0 when none is given


def test_csv_is_the_tidy_table_and_output_is_incremental(capsys, tmp_path):
    path = tmp_path / "t.csv"
    code, out, err = sweep(capsys, *SPEC, *GRID, "--format", "csv", "--output", str(path))
    assert code == 0 and f"wrote {path}" in err
    lines = out.splitlines()
    assert lines[0].startswith("cell,init.gain,bias.std,source,trial,log_q_ratio,c_last")
    assert len(lines) == 1 + 18
    assert load_table(path).done_cells() == set(range(6))


def test_text_view_draws_measured_and_predicted_heatmaps_or_a_table(capsys):
    code, out, _ = sweep(capsys, *SPEC, *GRID, "--show", "c_last")
    assert code == 0
    assert "c_last measured" in out and "c_last predicted (mean field)" in out
    assert "init.gain" in out and "bias.std" in out
    code, out, _ = sweep(capsys, *SPEC, "--vary", "init.gain=0.8,1.6")
    assert code == 0 and "log_q_ratio measured" in out and "predicted" in out and "0.8" in out


def test_a_failed_cell_exits_1_and_says_how_many(capsys, monkeypatch):
    from initscope.engine import runner

    real = runner.run
    monkeypatch.setattr(runner, "run", lambda spec, **kw: (_ for _ in ()).throw(RuntimeError("boom"))
                        if spec.init.get("gain") == 1.6 else real(spec, **kw))
    code, out, err = sweep(capsys, *SPEC, "--vary", "init.gain=0.8,1.6")
    assert code == 1
    assert "1 of 2 cells failed" in err and "boom" in err and err.count("\n") == 1
    assert "failed" in out  # the table marks the cell


def test_ctrl_c_exits_130_keeps_the_finished_cells_and_resume_finishes(capsys, monkeypatch, tmp_path):
    from initscope.engine.sweep import backends
    from initscope.engine.sweep.cell import run_cell

    class Interrupted(backends.InProcess):
        def run(self, tasks):
            for i, task in enumerate(tasks):
                if i == 2:
                    raise KeyboardInterrupt
                yield run_cell(task)

    real = backends.make_backend
    monkeypatch.setattr(backends, "make_backend", lambda *a, **k: Interrupted())
    path = tmp_path / "t.jsonl"
    code, _, err = sweep(capsys, *SPEC, *GRID, "--output", str(path))
    assert code == 130
    assert f"2 of 6 cells are saved in {path}" in err and "--resume" in err
    assert load_table(path).done_cells() == {0, 1}
    monkeypatch.setattr(backends, "make_backend", real)
    code, out, _ = sweep(capsys, *SPEC, *GRID, "--output", str(path), "--resume", "--format", "json")
    assert code == 0 and len(json.loads(out)["predictions"]) == 6
