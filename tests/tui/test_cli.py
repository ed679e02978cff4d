"""The `initscope` command: exit codes, one-line errors, and the numbers He et al. predict."""

import json
import math
import subprocess
import sys

import pytest
from initscope.tui.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_kind_and_the_presets(capsys):
    code, out, err = run_cli(capsys, "list")
    assert code == 0 and err == ""
    for name in ("kaiming_normal", "general_relu", "torch_default", "lsuv", "digits", "lesson8", "why_sqrt5"):
        assert name in out


@pytest.mark.parametrize(
    "args, start",
    [
        (["run", "--arch", "784-0-10"], "initscope: arch: '784-0-10' is not valid"),
        (["run", "--init", "kaiming"], "initscope: init: 'kaiming' is not valid; choose one of"),
        (["run", "--act", "leaky_relu(a=abc)"], "initscope: act leaky_relu: parameter a"),
        (["run", "--format", "xml"], "initscope: argument --format: invalid choice"),
        (["run", "--bogus"], "initscope: unrecognized arguments: --bogus"),
        (["run", "--preset", "nope"], "initscope: preset: 'nope' is not valid; choose one of"),
        (["run", "--data", "file(path=/no/such/file.npy)", "--arch", "4-4"], "initscope: data"),
        (["--arch", "abc"], "initscope: arch: 'abc' is not valid"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, start):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith(start), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_run_json_reads_he_numbers_at_layer_1(capsys):
    code, out, err = run_cli(capsys, "run", "--arch", "1024-1024x3", "--init", "kaiming_normal", "--act", "relu",
                             "--batch", "2048", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    first = doc["layers"][0]
    # Layer 1: h = W x with x ~ N(0,1), Var[W] = 2/1024: pre std sqrt(2); post-ReLU mean 1/sqrt(pi),
    # std sqrt(1 - 1/pi). Sampling error of a std over N = 2M entries pooled is ~1/sqrt(2N) relative,
    # but the 1024 weight rows add a per-unit spread of ~1/sqrt(1024): 2% covers both at 3 sigma.
    assert first["pre"]["std"] == pytest.approx(math.sqrt(2), rel=0.02)
    assert first["post"]["mean"] == pytest.approx(1 / math.sqrt(math.pi), rel=0.02)
    assert first["post"]["std"] == pytest.approx(math.sqrt(1 - 1 / math.pi), rel=0.02)
    assert first["theory"]["pre_std"] == pytest.approx(math.sqrt(2), rel=1e-6)
    assert first["theory"]["post_mean"] == pytest.approx(0.5641896, rel=1e-6)


def test_exploding_configuration_gives_valid_json_and_names_the_layer(capsys):
    code, out, err = run_cli(capsys, "run", "--arch", "256-256x60", "--init", "normal(std=1)", "--act", "relu",
                             "--batch", "64", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)  # strict JSON: NaN/Infinity would still parse in Python, so check the text too
    assert "NaN" not in out and "Infinity" not in out
    bad = doc["first_nonfinite_layer"]
    # std grows by sqrt(256/2) = 11.3 per layer from sqrt(256): float32 overflows (3.4e38) near layer 36
    assert bad is not None and 30 <= bad <= 42
    assert doc["layers"][bad - 1]["pre"]["nonfinite_frac"] > 0


def test_run_table_and_csv(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "--arch", "64-64x4", "--batch", "128", "--no-grad")
    assert code == 0, err
    assert "pre std" in out and "theory" in out and "pre std per layer" in out
    target = tmp_path / "out.csv"
    code, out, err = run_cli(capsys, "run", "--arch", "64-64x4", "--batch", "128", "--format", "csv",
                             "--output", str(target))
    assert code == 0, err
    lines = target.read_text().splitlines()
    assert lines[0].startswith("run,layer,fan_in,fan_out") and len(lines) == 5


def test_preset_runs_every_variant(capsys):
    code, out, err = run_cli(capsys, "run", "--preset", "lesson8", "--batch", "1024", "--format", "json")
    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert [r["name"] for r in runs] == ["he relu", "he relu-0.5"]
    means = [r["result"]["layers"][0]["post"]["mean"] for r in runs]
    assert means[0] - means[1] == pytest.approx(0.5, abs=1e-6)  # relu - 0.5, same seed, same weights


def test_explain_answers_why_the_post_relu_mean_is_056(capsys):
    code, out, err = run_cli(capsys, "explain", "--init", "kaiming_normal", "--act", "relu")
    assert code == 0, err
    assert "0.5642" in out and "second moment" in out.lower()


def test_console_script_module_exit_code():
    proc = subprocess.run([sys.executable, "-m", "initscope.tui", "run", "--trials", "0"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "initscope: trials: '0' is not valid; expected a whole number from 1 to 1000."


@pytest.mark.parametrize("flags, reason", [
    (["--init", "normal(std=1e308)", "--dtype", "float64"],
     "No prediction: layer 1: the predicted pre-activation variance overflows"),
    (["--init", "trunc_normal(std=1, a=50, b=60)"], "No prediction: trunc_normal(a=50, b=60) is not symmetric"),
    (["--init", "normal(std=1)", "--act", "elu(alpha=1e300)", "--dtype", "float64"],
     "the post-activation second moment is not finite"),
    (["--act", "elu(alpha=1e300)", "--dtype", "float64"], "Block 1: pre std 0,"),
])
def test_explain_prints_why_a_valid_spec_has_no_prediction(capsys, flags, reason):
    code, out, err = run_cli(capsys, "explain", "--arch", "8-8x2", *flags)
    assert code == 0 and err == ""
    assert reason in " ".join(out.split())


TINY = ["run", "--arch", "4-4", "--batch", "8", "--format", "json"]


@pytest.mark.parametrize("where, fragment", [("missing/out.json", "the folder"), ("", "it is a directory")])
def test_output_that_cannot_be_a_file_is_bad_input(capsys, tmp_path, where, fragment):
    target = tmp_path / where if where else tmp_path
    code, out, err = run_cli(capsys, *TINY, "--output", str(target))
    assert code == 2 and out == ""
    assert err.startswith("initscope: output: ") and fragment in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("errno, words", [(28, "no space left on device"), (30, "read-only file system")])
def test_a_save_that_fails_on_the_disk_is_one_line_and_keeps_the_old_file(capsys, tmp_path, monkeypatch,
                                                                            errno, words):
    from initscope.tui import export

    target = tmp_path / "out.json"
    target.write_text("precious")

    def broken_fsync(fd):
        raise OSError(errno, words.capitalize())

    monkeypatch.setattr(export.os, "fsync", broken_fsync)
    code, out, err = run_cli(capsys, *TINY, "--output", str(target))
    assert code == 1 and out == ""
    assert err == f"initscope: Could not save {target}: {words}.\n"
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


@pytest.mark.parametrize("text", ["4-4\u20284", "4-4\n4", "4-4\x00", "relu\x85"])
def test_a_complaint_quoting_odd_characters_stays_one_line(capsys, text):
    # argparse echoes what it did not understand as is; a line separator in it made two lines
    code, out, err = run_cli(capsys, "run", "--arch", "4-4", "stray" + text)
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("initscope: unrecognized arguments")
    assert repr(text[-2:])[1:-1] in err or repr(text[-1])[1:-1] in err


def test_explain_refuses_a_std_no_float32_can_hold(capsys):
    # the run's dtype is float32 by default: a std of 1e308 is no float32 value (the largest is 3.4e38)
    code, out, err = run_cli(capsys, "explain", "--init", "normal(std=1e308)")
    assert code == 2 and out == ""
    assert err == ("initscope: init normal: parameter std: '1e+308' is not valid; it must be at most 3.403e+38 "
                   "in size, the largest float32 (the run's dtype).\n")
