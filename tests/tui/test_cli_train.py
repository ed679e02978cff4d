"""`initscope train`: exit codes, one-line errors, the JSON schema and the CSV/table outputs."""

import csv
import io
import json
import math

import pytest
from initscope.tui.cli import main

SMALL = ["train", "--arch", "64-16x2", "--steps", "4", "--device", "cpu"]


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, start", [
    (["train", "--steps", "0"], "initscope: steps: '0' is not valid"),
    (["train", "--optimizer", "sgd(lr=x)"], "initscope: optimizer sgd: parameter lr"),
    (["train", "--optimizer", "lion"], "initscope: optimizer: 'lion' is not valid; choose one of sgd, adam"),
    (["train", "--every", "-1"], "initscope: every: '-1' is not valid"),
    (["train", "--arch", "10-10"], "initscope: arch: '10-10' is not valid; digits has 64 features"),
    (["train", "--data", "gaussian"], "initscope: data: 'gaussian' is not valid; choose one of digits, teacher, file"),
    (["train", "--preset", "nope"], "initscope: preset: 'nope' is not valid; choose one of lesson8_training"),
    (["train", "--no-grad"], "initscope: grad: 'false' is not valid"),
    (["train", "--batch", "5000"], "initscope: batch: '5000' is not valid; the training split has 1438 rows"),
    (["train", "--format", "xml"], "initscope: argument --format: invalid choice"),
    (["train", "--output", "/no/such/dir/x.json", "--steps", "1"], "initscope: output"),
])
def test_bad_input_exits_2_with_one_line(capsys, args, start):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith(start) and err.count("\n") == 1


def test_json_schema(capsys):
    code, out, err = run_cli(capsys, *SMALL, "--trials", "2", "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert d["schema"] == "initscope.train/1" and len(d["runs"]) == 1 and d["comparisons"] == []
    run = d["runs"][0]
    assert run["steps"] == [0, 1, 2, 3] and run["eval_steps"] == [0, 1, 2, 3, 4]
    assert run["spec"]["optimizer"] == "sgd" and run["classes"] == 10
    assert set(run["tensors"]) == {"pre", "post", "grad", "grad_pre"}
    pre = run["tensors"]["pre"]
    assert len(pre["stats"]["std"]) == 2 and len(pre["stats"]["std"][0]) == 4 and len(pre["stats"]["std"][0][0]) == 2
    assert set(pre["extra"]) == {"near_zero", "fastai_low", "saturated"} and "extra" not in run["tensors"]["grad"]
    assert len(pre["edges"]) == 41 and len(pre["hist"][0][0][0]) == 40
    assert len(run["update_ratio"]["W"][0][0]) == 2 and len(run["update_ratio"]["readout"][0]) == 4
    # the first minibatch loss is at least about log 10 (tests/engine/test_train.py has the bounds)
    assert run["loss"]["mean"][0] > math.log(10) - 0.3
    assert run["diverged"] == [None, None] and 0 <= run["final"]["test_acc"]["mean"] <= 1


def test_csv_and_table(capsys):
    code, out, _ = run_cli(capsys, *SMALL, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["run", "trial", "step", "block", "quantity", "value"]
    quantities = {r[4] for r in rows[1:]}
    assert {"loss", "test_acc", "pre.std", "post.fastai_low", "update_ratio.W", "grad.std"} <= quantities
    code, out, _ = run_cli(capsys, *SMALL, "--act", "tanh")
    assert code == 0 and "test acc" in out and "held-out accuracy after k updates" in out


def test_divergence_is_reported_not_raised(capsys):
    code, out, err = run_cli(capsys, *SMALL, "--optimizer", "sgd(lr=1e30)", "--steps", "10")
    assert code == 0 and "the loss became non-finite at step" in out


def test_list_names_training(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "lesson8_training" in out and "trainability" in out and "adam(" in out
