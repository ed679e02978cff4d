"""The results JSON contract, CSV and table, on hand-built results (no torch needed)."""

import csv
import io
import json
from types import SimpleNamespace

import numpy as np
from initscope.engine import report
from initscope.engine.result import STAT_NAMES, TENSORS, RunResult, tensors_of
from initscope.engine.spec import parse_spec


def _result(depth=3, trials=2, grad=True, blow_up_at=None, norm="none", residual="none"):
    spec = parse_spec(arch=f"8-8x{depth}", trials=str(trials), grad=str(grad).lower(), norm=norm, residual=residual)
    rng = np.random.default_rng(0)
    tensors = tensors_of(spec)
    stats = {t: rng.random((trials, depth, len(STAT_NAMES))) for t in tensors}
    for t in tensors:
        stats[t][:, :, STAT_NAMES.index("nonfinite_frac")] = 0.0
    if blow_up_at is not None:
        stats["pre"][:, blow_up_at - 1:, STAT_NAMES.index("std")] = np.inf
        stats["pre"][:, blow_up_at - 1:, STAT_NAMES.index("nonfinite_frac")] = 0.5
        stats["post"][:, blow_up_at - 1:, STAT_NAMES.index("mean")] = np.nan
    edges = np.linspace(-3, 3, 5)
    hist = {t: rng.integers(0, 10, (trials, depth, 4)).astype(float) for t in tensors}
    return RunResult(spec=spec, device="cpu", dtype="float32", elapsed_s=0.25, stats=stats,
                     weight=rng.random((trials, depth, 2)), hist_edges=edges, hist=hist)


def test_json_follows_the_contract():
    res = _result()
    res.theory = SimpleNamespace(pre_std=np.full(3, 1.5), post_mean=np.full(3, 0.5), post_std=np.full(3, np.nan),
                                 grad_std=np.ones(3), grad_pre_std=np.ones(3), reason="post std: none here")
    doc = json.loads(report.to_json(res))
    assert doc["schema"] == "initscope.run/2"
    assert doc["device"] == "cpu" and doc["dtype"] == "float32" and doc["trials"] == 2
    assert doc["elapsed_s"] == 0.25
    assert doc["spec"]["arch"] == "8-8x3" and "--arch" in doc["spec"]["args"]
    assert len(doc["layers"]) == 3
    layer = doc["layers"][1]
    assert (layer["layer"], layer["fan_in"], layer["fan_out"]) == (2, 8, 8)
    for t in ("pre", "post", "grad", "grad_pre"):
        assert set(layer[t]) == set(STAT_NAMES)
        assert layer[t]["std"] == np.mean(res.stats[t][:, 1, 1])  # headline = mean over trials
        assert len(layer["per_trial"][t]) == 2
    assert layer["weight"]["std"] == np.mean(res.weight[:, 1, 1])
    # a Prediction without the normed/out arrays (an older theory) gives null for their keys
    assert layer["theory"] == {"pre_std": 1.5, "post_mean": 0.5, "post_std": None, "grad_std": 1.0,
                               "grad_pre_std": 1.0, "normed_mean": None, "normed_std": None, "out_mean": None,
                               "out_std": None, "grad_out_std": None, "pair_corr_pre": None, "pair_corr_post": None,
                               "pair_corr_out": None, "pair_corr_pre_lo": None, "pair_corr_pre_hi": None}
    for t in ("normed", "out", "grad_out"):  # not in a plain stack
        assert layer[t] is None
    assert doc["tensor_hist_edges"] == {}
    assert doc["theory_reason"] == "post std: none here"
    # re-running from the JSON spec gives the same spec
    fields = {k: v for k, v in doc["spec"].items() if k != "args"}
    assert parse_spec(**fields) == res.spec


def test_json_without_gradients_has_null_grad_and_no_theory_means_null():
    doc = json.loads(report.to_json(_result(trials=1, grad=False)))
    layer = doc["layers"][0]
    assert layer["grad"] is None and layer["grad_pre"] is None
    assert layer["theory"] is None and "per_trial" not in layer


def test_exploding_result_is_valid_json_with_nulls():
    text = report.to_json(_result(depth=4, blow_up_at=3))
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    assert doc["first_nonfinite_layer"] == 3
    assert doc["layers"][2]["pre"]["std"] is None and doc["layers"][2]["post"]["mean"] is None
    assert doc["layers"][1]["pre"]["std"] is not None


def test_csv_one_row_per_run_and_layer():
    rows = list(csv.DictReader(io.StringIO(report.to_csv([("a", _result()), ("b", _result(depth=2))]))))
    assert [r["run"] for r in rows] == ["a"] * 3 + ["b"] * 2
    assert float(rows[0]["pre_std"]) == np.mean(_result().stats["pre"][:, 0, 1])
    assert rows[0]["theory_pre_std"] == ""


def test_table_marks_the_first_non_finite_layer():
    text = report.to_table(_result(depth=4, blow_up_at=3))
    assert "non-finite (inf/nan) first at layer 3" in text
    assert len([line for line in text.splitlines() if line.strip().startswith(("1 ", "2 ", "3 ", "4 "))]) == 4
    chart = report.std_chart(_result(depth=4, blow_up_at=3), width=60, height=12)
    assert "pre std per layer" in chart


def test_table_marks_statistics_with_inf_or_nan_entries():
    # half of layer 1's dL/dh entries are inf/NaN: the std of the finite half (0 here) must not show as a number
    res = _result(depth=3, trials=1)
    res.stats["grad_pre"][:, 0, STAT_NAMES.index("std")] = 0.0
    res.stats["grad_pre"][:, 0, STAT_NAMES.index("nonfinite_frac")] = 0.5
    rows = {line.split()[0]: line for line in report.to_table(res).splitlines() if line[:5].strip().isdigit()}
    assert "nan/inf" in rows["1"].split("|")[5] and "dL/dh 50%" in rows["1"]
    assert "nan/inf" not in rows["2"]


def test_table_names_the_layer_where_the_std_leaves_the_range():
    res = _result(depth=4, trials=1)
    res.stats["pre"][:, :, STAT_NAMES.index("std")] = [1.0, 30.0, 900.0, 2.7e4]  # x30 per layer: past 1e3 at 4
    text = report.to_table(res)
    assert "The pre std explodes (std above 1e3) first at layer 4" in text
    assert "2.7e+4" in text  # 4 significant digits, short exponent


def test_chart_has_whole_layer_ticks_and_tells_theory_from_measured_without_colour():
    res = _result(depth=4, trials=1)
    res.theory = SimpleNamespace(pre_std=np.array([0.5, 0.45, 0.4, 0.5]))
    chart = report.std_chart(res, width=60, height=12, color=False)
    lines = chart.splitlines()
    axis = next(i for i, line in enumerate(lines) if line.strip().startswith("└"))
    assert lines[axis + 1].split() == ["1", "2", "3", "4"]
    assert lines[-1].split() == ["──", "measured", "•", "theory"]  # a key under the chart, not over the data
    canvas = lines[1:axis]
    assert sum(line.count("•") for line in canvas) == 4  # one point per layer, its own marker
    assert "\x1b[" not in chart
    assert "\x1b[" in report.std_chart(res, width=60, height=12, color=True)


def test_json_of_a_norm_and_residual_run_has_every_tensor_and_its_theory():
    res = _result(norm="batchnorm", residual="plain(alpha=0.5)")
    assert res.tensors == TENSORS
    res.tensor_edges = {"normed": np.linspace(-4, 4, 5), "post": np.linspace(-4, 4, 5), "out": np.linspace(-2, 2, 5)}
    res.theory = SimpleNamespace(pre_std=np.ones(3), post_mean=np.ones(3), post_std=np.ones(3), grad_std=np.ones(3),
                                 grad_pre_std=np.ones(3), normed_mean=np.zeros(3), normed_std=np.ones(3),
                                 out_mean=np.zeros(3), out_std=np.array([1.1, 1.2, np.nan]),
                                 grad_out_std=np.full(3, 2.0))
    doc = json.loads(report.to_json(res))
    layer = doc["layers"][2]
    for t in TENSORS:
        assert layer[t]["std"] == np.mean(res.stats[t][:, 2, 1]), t
        assert len(layer["per_trial"][t]) == 2 and t in layer["hist"]
    assert layer["theory"]["normed_std"] == 1.0 and layer["theory"]["out_std"] is None
    assert doc["layers"][0]["theory"]["out_std"] == 1.1 and layer["theory"]["grad_out_std"] == 2.0
    assert doc["tensor_hist_edges"]["out"] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert set(doc["tensor_hist_edges"]) == {"normed", "post", "out"}
    assert doc["spec"]["norm"] == "batchnorm" and "--residual" in doc["spec"]["args"]


def test_csv_and_table_show_the_tensors_a_run_has():
    plain, blocks = _result(trials=1), _result(trials=1, norm="layernorm", residual="rezero")
    rows = list(csv.DictReader(io.StringIO(report.to_csv([("plain", plain), ("blocks", blocks)]))))
    assert rows[0]["normed_std"] == "" and rows[0]["out_std"] == "" and rows[0]["grad_out_std"] == ""
    assert float(rows[3]["normed_std"]) == blocks.stats["normed"][0, 0, 1]
    assert float(rows[3]["grad_out_std"]) == blocks.stats["grad_out"][0, 0, 1]
    head = report.to_table(blocks).splitlines()[3]
    assert [c.split()[0] for c in head.split("|")[1:]] == ["pre", "normed", "post", "post", "zero%", "out", "dL/dh",
                                                           "dL/dx"]
    assert "norm=layernorm" in report.to_table(blocks) and "norm=" not in report.to_table(plain)
    assert "normed" not in report.to_table(plain).splitlines()[3]


def test_first_nonfinite_layer_looks_at_normed_and_out():
    res = _result(depth=4, trials=1, norm="batchnorm", residual="plain")
    res.stats["out"][:, 2, STAT_NAMES.index("nonfinite_frac")] = 0.25
    assert res.first_nonfinite_layer() == 3
    res.stats["normed"][:, 1, STAT_NAMES.index("nonfinite_frac")] = 1.0
    assert res.first_nonfinite_layer() == 2


def test_a_batchnorm_table_prints_the_gradient_growth_beside_the_theory_and_charts_the_gradient():
    """A real BN + ReLU run: the table's growth row is growth_per_block of the measured and the predicted grad
    std, the predicted rate is pi/(pi-1) = 1.4669 times the finite-batch factor (within 1%: it is 1.0032 at
    batch 256, docs/formulas.md 16), and the measured one lies within 5% of it (30 blocks of width 512 at
    batch 256: each block's E[g^2] ratio scatters by about sqrt(2/(width))~6%, so the 28-step geometric
    mean by about 6%/sqrt(28) ~ 1%; 5% is five of those)."""
    import math

    from initscope.engine.growth import growth_per_block
    from initscope.engine.runner import run
    from initscope.engine.theory import predict

    spec = parse_spec(arch="512-512x30", norm="batchnorm", act="relu", batch="256", seed="3")
    result = run(spec)
    result.theory = predict(spec)
    measured = growth_per_block(result.headline("grad", "std"), True)
    predicted = growth_per_block(result.theory.grad_std, True)
    assert abs(predicted / (math.pi / (math.pi - 1)) - 1) < 0.01
    assert abs(measured / predicted - 1) < 0.05
    table = report.to_table(result)
    assert (f"E[g^2] of grad, toward the input: measured {report.fmt_num(measured, 4)}, "
            f"predicted {report.fmt_num(predicted, 4)}") in table
    assert "theory: chi_1" in table and "batchnorm" in table
    assert report.chart_tensor(result) == "grad"
    assert "grad std per layer (log scale)" in report.std_chart(result, color=False, tensor="grad")


def test_the_chart_shows_a_residual_runs_block_output_and_a_plain_runs_pre():
    assert report.chart_tensor(_result(residual="plain")) == "out"
    assert report.chart_tensor(_result()) == "pre"
