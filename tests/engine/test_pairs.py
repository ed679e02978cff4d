"""--pair-corr: the input pairs' c^0, c^l against the ReLU c-map, exact invariance where the network preserves angles,
bit-identity of everything else with the pairs on or off, bad input, and the JSON round trip (docs/pairs.md)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from initscope.engine import SpecError, parse_spec, report, run
from initscope.engine.pairs import PAIRS
from initscope.engine.theory.correlation import input_pair_corr
from initscope.tui.cli import main as cli_main


def relu_cmap(c: float) -> float:
    """ReLU with sigma_w^2 = 2, sigma_b = 0 (docs/pairs.md): c' = (sqrt(1 - c^2) + (pi - arccos c) c) / pi."""
    return (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi


# ---- c^0 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [0.5, -0.7, 0.9, 0.0])
def test_gaussian_pairs_have_correlation_c(c):
    # The P pairs are independent; the cosine of n0 i.i.d. bivariate Gaussian entries of correlation c has
    # sd (1 - c^2)/sqrt(n0) and bias -c (1 - c^2)/(2 n0) (delta method), so the mean over P pairs and T
    # trials has sd (1 - c^2)/sqrt(P n0 T). Tolerance: 4 sd + the bias.
    n0, trials = 64, 10
    r = run(parse_spec(arch=f"{n0}-8", batch="4", trials=str(trials), grad="false", device="cpu", pair_corr=str(c)))
    sd = (1 - c * c) / math.sqrt(PAIRS * n0 * trials)
    bias = abs(c) * (1 - c * c) / (2 * n0)
    assert r.corr_input.shape == (trials,)
    assert abs(r.corr_input.mean() - c) < 4 * sd + bias + 1e-12
    # and each trial's own mean lies within 4 sd of one trial (sd * sqrt(T))
    assert np.all(np.abs(r.corr_input - c) < 4 * sd * math.sqrt(trials) + bias)
    assert input_pair_corr(r.spec, c) == c


def test_nonzero_mean_data_pairs_follow_input_corr():
    # gaussian(mean=1): the pairs are mixed about the mean, so the uncentred c^0 is (c v + m^2)/(v + m^2) = 0.75
    # for c = 0.5, v = m = 1. A cosine of n0 = 4096 entries fluctuates by O(1/sqrt(n0)) = 0.016 per pair; the
    # mean of 2 x 32 pairs by ~0.002: 0.01 is 5 of those.
    spec = parse_spec(arch="4096-4", batch="2", trials="2", grad="false", device="cpu", data="gaussian(mean=1)",
                      pair_corr="0.5")
    assert input_pair_corr(spec, 0.5) == pytest.approx(0.75)
    assert run(spec).corr_input.mean() == pytest.approx(0.75, abs=0.01)


@pytest.mark.parametrize("c", [0.5, -0.3])
def test_fixed_rows_pairs_have_exactly_c(c):
    # digits: x_b is built from x_a and another row with cos(x_a, x_b) = c exactly (float32 rounding only)
    r = run(parse_spec(arch="64-16", data="digits", batch="100", grad="false", device="cpu", pair_corr=str(c)))
    assert r.corr_input[0] == pytest.approx(c, abs=1e-6)


# ---- through the blocks ----------------------------------------------------------------------------
def test_angle_preserving_network_keeps_c_exactly():
    # identity activation, orthogonal square W, no bias: W preserves inner products, and rmsnorm rescales each
    # row, so every block's pre and post cosine equals the input's (float32 rounding, depth 6: 1e-5).
    r = run(parse_spec(arch="128-128x6", init="orthogonal", act="identity", norm="rmsnorm", batch="8", trials="2",
                       grad="false", device="cpu", pair_corr="0.6"))
    for key in ("pre", "post"):
        assert np.abs(r.corr[key] - r.corr_input[:, None]).max() < 1e-5, key


def test_relu_critical_point_follows_the_c_map():
    # He init (sigma_w^2 = 2), sigma_b = 0: c^(l+1)_pre = cmap(c^l_pre), c^l_post = cmap(c^l_pre), exactly at
    # infinite width. Measured over T independent trials, the mean's standard error is s/sqrt(T) (s: the spread
    # of the trials, driven by width n); tolerance 4 standard errors plus the O(1/n) finite-width bias of a
    # cosine, at most c (1 - c^2)/(2n) <= 1/(2n) per block: depth/(2n) in all.
    n, depth, trials, c0 = 512, 4, 16, 0.5
    r = run(parse_spec(arch=f"{n}-{n}x{depth}", batch="8", trials=str(trials), grad="false", device="cpu",
                       bias="zeros", pair_corr=str(c0)))
    pre = [c0]
    for _ in range(depth - 1):
        pre.append(relu_cmap(pre[-1]))
    expect = {"pre": np.array(pre), "post": np.array([relu_cmap(c) for c in pre])}
    bias = depth / (2 * n)
    for key, want in expect.items():
        got = r.corr[key]
        se = got.std(axis=0, ddof=1) / math.sqrt(trials)
        assert np.all(np.abs(got.mean(axis=0) - want) < 4 * se + bias), (key, got.mean(axis=0), want, se)
        # the spread is a finite-width effect: one pair's cosine of n samples moves by ~(1 - c^2)/sqrt(n) per block
        # (<= 0.033 here, c >= c0), independently from block to block, and the c-map's slope is below 1: at most
        # sqrt(depth) times that over the stack (0.066; the mean over the pairs averages part of it away: ~0.02)
        assert np.all(got.std(axis=0) < math.sqrt(depth) * (1 - c0 * c0) / math.sqrt(n)), key
    assert "out" not in r.corr


# ---- nothing else changes ----------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [
    {},
    {"grad": "false"},
    {"norm": "batchnorm"},
    {"norm": "layernorm", "residual": "plain(alpha=0.5)", "grad": "false"},
    {"residual": "fixup"},
    {"data": "digits", "arch": "64-32x3"},
])
def test_every_other_statistic_is_bit_identical(extra):
    base = {"arch": "32-32x3", "batch": "16", "trials": "2", "device": "cpu", **extra}
    off, on = run(parse_spec(**base)), run(parse_spec(**base, pair_corr="0.5"))
    assert off.corr is None and off.corr_input is None
    assert set(on.corr) == ({"pre", "post", "out"} if "residual" in extra else {"pre", "post"})
    assert all(v.shape == (2, off.depth) for v in on.corr.values())
    assert set(on.stats) == set(off.stats) and set(on.hist) == set(off.hist)
    for k in off.stats:
        assert np.array_equal(off.stats[k], on.stats[k], equal_nan=True), k
    for k in off.hist:
        assert np.array_equal(off.hist[k], on.hist[k]), k
    assert np.array_equal(off.weight, on.weight)
    assert (off.data_mean, off.data_second_moment) == (on.data_mean, on.data_second_moment)


def test_overflow_is_nan_not_a_crash():
    r = run(parse_spec(arch="64-64x30", init="normal(std=10)", batch="4", grad="false", device="cpu",
                       pair_corr="0.5"))
    assert np.isnan(r.corr["pre"][0, -1])
    assert np.isfinite(r.corr["pre"][0, 0])


# ---- text forms --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["1", "-1", "1.5", "nan", "inf", "abc", "0.5.1"])
def test_bad_pair_corr_is_one_sentence(bad, capsys):
    with pytest.raises(SpecError, match="pair_corr.*strictly between -1 and 1"):
        parse_spec(pair_corr=bad)
    assert cli_main(["run", "--pair-corr", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pair_corr" in err


def test_train_refuses_pairs(capsys):
    assert cli_main(["train", "--pair-corr", "0.5"]) == 2
    assert "leave out --pair-corr" in capsys.readouterr().err


def test_text_and_json_round_trip():
    on, off = parse_spec(pair_corr="-0.25"), parse_spec()
    assert off.pair_corr is None and off.to_text()["pair_corr"] == "none" and off.to_json()["pair_corr"] is None
    assert "--pair-corr" not in off.to_args()
    for spec in (on, off):
        assert parse_spec(**spec.to_text()) == spec and parse_spec(**spec.to_json()) == spec
    assert on.to_args()[-2:] == ["--pair-corr", "-0.25"]
    assert parse_spec(pair_corr="off") == parse_spec(pair_corr="") == off


def test_results_json_carries_the_correlations():
    r = run(parse_spec(arch="16-16x2", batch="4", trials="2", device="cpu", pair_corr="0.5", residual="rezero"))
    doc = json.loads(report.to_json(r))
    assert doc["spec"]["pair_corr"] == "0.5" and doc["corr_input_expected"] == 0.5
    assert doc["corr_input"] == pytest.approx(r.corr_input.mean())
    fields = {k: v for k, v in doc["spec"].items() if k != "args"}
    assert parse_spec(**fields) == r.spec
    for i, layer in enumerate(doc["layers"]):
        for key in ("pre", "post", "out"):
            assert layer["corr"][key] == pytest.approx(r.corr[key][:, i].mean())
            assert layer["per_trial"]["corr"][key] == pytest.approx(list(r.corr[key][:, i]))
        assert "pair_corr_pre" in layer["theory"]
    plain = json.loads(report.to_json(run(parse_spec(arch="16-16", batch="4", device="cpu"))))
    assert plain["corr_input"] is None and plain["layers"][0]["corr"] is None and plain["spec"]["pair_corr"] is None
    csv_head = report.to_csv([("run", r)]).splitlines()[0].split(",")
    assert csv_head[-3:] == ["corr_pre", "corr_post", "corr_out"]
    assert "c pre" in report.to_table(r) and "input pairs: c^0" in report.to_table(r)


def test_batchnorm_normalises_the_pairs_with_the_batch_statistics():
    # pair rows equal to batch rows must come out of a batchnorm block exactly as those batch rows do: the same
    # per-unit mean and biased variance of the batch (not of the pairs), the same eps
    import torch
    import torch.nn.functional as F
    from initscope.engine.pairs import PairTrack
    from initscope.engine.runner import _Run

    spec = parse_spec(arch="16-24", act="identity", norm="batchnorm(eps=0.01)", batch="100", device="cpu",
                      dtype="float64", pair_corr="0.5")
    track = PairTrack(_Run(spec, None, None), 0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(100, 16, generator=gen, dtype=torch.float64) * 3 + 1
    w = torch.randn(24, 16, generator=gen, dtype=torch.float64)
    b = torch.randn(24, generator=gen, dtype=torch.float64)
    track.x = x[: 2 * PAIRS].clone()
    h = F.linear(x, w, b)
    track.block(w, b, None, h)
    want = F.batch_norm(h, None, None, training=True, eps=0.01)[: 2 * PAIRS]
    assert torch.allclose(track.x, want, rtol=1e-12, atol=1e-12)


def test_a_session_keeps_the_pairs(tmp_path):
    from initscope.tui.export import read_session, save_session

    on, off = parse_spec(arch="16-16x2", pair_corr="0.3"), parse_spec(arch="16-16x2")
    path = save_session(tmp_path / "s.json", [("pairs", on), ("plain", off)], current=on)
    session = read_session(path)
    assert session.current == on and [p.spec for p in session.pins] == [on, off]
