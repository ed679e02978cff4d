"""run_cell: the section-4 metrics per trial equal what a direct runner call on the same spec gives (exactly),
the predicted row is engine.theory.phase.predict_cells, blow-ups are results, failures are CellResult.error."""

import math

import numpy as np
import pytest
from initscope.engine.runner import run
from initscope.engine.spec import parse_spec
from initscope.engine.sweep.cell import METRICS, CellTask, run_cell
from initscope.engine.theory.phase import predict_cells

SPEC = dict(arch="16-24-24-16", act="tanh", init="lecun_normal(gain=1.3)", bias="normal(std=0.2)", batch="32",
            device="cpu", trials="3", seed="5", pair_corr="0.5")


def _task(spec, index=7, coords=None, **kw):
    return CellTask(index=index, coords=coords or {"init.gain": 1.3}, spec_json=spec.to_text(), **kw)


def test_measured_rows_equal_a_direct_runner_call():
    spec = parse_spec(**SPEC)
    cell = run_cell(_task(spec))
    assert cell.error is None
    direct = run(spec)
    measured = [r for r in cell.rows if r["source"] == "measured"]
    assert [r["trial"] for r in measured] == [0, 1, 2]
    for t, row in enumerate(measured):
        assert row["cell"] == 7 and row["init.gain"] == 1.3
        rms = direct.per_trial("post", "rms")[t, -1]
        assert row["log_q_ratio"] == math.log10(rms ** 2) - math.log10(direct.data_second_moment)
        g = direct.per_trial("grad", "std")[t]
        assert row["log_grad_ratio"] == math.log10(g[0]) - math.log10(g[-1])
        assert row["c_last"] == direct.corr["pre"][t, -1]
        assert row["nonfinite_frac"] == 0.0
        assert row["chi1"] is None  # a theory quantity: measured rows have none
        assert set(METRICS) <= set(row)


def test_residual_cells_use_the_block_output_and_its_gradient():
    spec = parse_spec(**{**SPEC, "arch": "16-16x3", "residual": "plain(alpha=0.5)"})
    row = run_cell(_task(spec)).rows[0]
    direct = run(spec)
    rms = direct.per_trial("out", "rms")[0, -1]
    g = direct.per_trial("grad_out", "std")[0]
    assert row["log_q_ratio"] == math.log10(rms ** 2) - math.log10(direct.data_second_moment)
    assert row["log_grad_ratio"] == math.log10(g[0]) - math.log10(g[-1])


def test_predicted_row_is_predict_cells():
    spec = parse_spec(**SPEC)
    predicted = [r for r in run_cell(_task(spec)).rows if r["source"] == "predicted"]
    assert len(predicted) == 1 and predicted[0]["trial"] is None
    expected = predict_cells([spec])
    for name, values in expected.items():
        v = float(values[0])
        assert predicted[0][name] == (None if math.isnan(v) else v), name


def test_an_overflow_is_a_result_not_an_error():
    # identity stack with std-10 weights: the second moment grows 100 x 16 per layer and passes float32's max
    spec = parse_spec(arch="16-16x40", act="identity", init="normal(std=10)", batch="8", device="cpu")
    cell = run_cell(_task(spec))
    assert cell.error is None
    row = cell.rows[0]
    assert row["nonfinite_frac"] == 1.0
    assert row["log_q_ratio"] == math.inf


def test_a_dead_signal_is_minus_infinity():
    spec = parse_spec(arch="16-16x3", act="relu", init="zeros", batch="8", device="cpu")
    row = run_cell(_task(spec)).rows[0]
    assert row["log_q_ratio"] == -math.inf  # x^L = 0 exactly
    assert row["log_grad_ratio"] == -math.inf  # g^1 = W^2^T (...) = 0, g^L ~ N(0, 1)


def test_a_failing_cell_becomes_its_error():
    task = CellTask(index=3, coords={}, spec_json={**parse_spec(**SPEC).to_text(), "data": "file(path=/no/such.npy)"})
    cell = run_cell(task)
    assert cell.rows == [] and cell.index == 3
    assert "no file" in cell.error


def test_train_steps_report_loss_and_accuracy_per_trial():
    spec = parse_spec(**{**SPEC, "trials": "2"})
    rows = run_cell(_task(spec, train_steps=5, train_options={"data": "teacher(samples=300, hidden=8)"})).rows
    measured = [r for r in rows if r["source"] == "measured"]
    for r in measured:
        assert 0 <= r["train_acc"] <= 1 and 0 <= r["test_acc"] <= 1
        assert np.isfinite(r["train_loss"]) and r["train_loss"] > 0
    assert rows[-1]["train_loss"] is None  # no prediction of training


@pytest.mark.parametrize("bad", [{"optimizer": "sgd(lr=-1)"}])
def test_bad_train_options_fail_the_cell_with_the_sentence(bad):
    cell = run_cell(_task(parse_spec(**SPEC), train_steps=2, train_options=bad))
    assert cell.error is not None and "lr" in cell.error


def test_a_theory_failure_keeps_the_measurement(monkeypatch):
    from initscope.engine.theory import phase

    def broken(specs):
        raise ZeroDivisionError("no luck")

    monkeypatch.setattr(phase, "predict_cells", broken)
    cell = run_cell(_task(parse_spec(**SPEC)))
    assert cell.error is None
    assert [r["source"] for r in cell.rows] == ["measured"] * 3 + ["predicted"]
    assert cell.rows[0]["log_q_ratio"] is not None
    predicted = cell.rows[-1]
    assert all(predicted[m] is None for m in METRICS)
    assert predicted["error"].startswith("no prediction: ZeroDivisionError: no luck")
