"""Issue 11's done-when check at a size that runs in seconds: one sweep over init.gain x bias.std of a tanh
stack reproduces the ordered/chaotic boundary.

tanh with lecun_normal(gain=g) and bias normal(std=s): sigma_w^2 = g^2, sigma_b^2 = s^2. The critical line
chi_1 = 1 passes through sigma_w^2 = 1 at sigma_b^2 = 0 and sigma_w^2 = 1.760955 (gain 1.3270) at
sigma_b^2 = 0.05 (docs/sweeps.md). The full-size command and its output are in docs/sweeps.md.

Tolerance: the predicted rows carry the one-sigma finite-width band [lo, hi] of a single trial's measurement
(docs/formulas.md); each measured trial must lie within K_SIGMA half-widths of the prediction. With a Gaussian
error a 4-sigma miss has probability 6e-5 per check, so 48 checks all pass unless the theory or the measurement
is wrong; the band's coverage was measured at 0.66-0.74 for one sigma (tanh, width 128, depth 20), i.e. the band
is about one standard error wide, not a loose bound.
"""

import math

import numpy as np
import pytest
from initscope.engine.sweep import parse_vary, run_sweep
from initscope.engine.sweep.backends import InProcess
from initscope.engine.textforms import Call
from initscope.engine.theory.correlation import critical_sigma_w2

K_SIGMA = 4.0
GAINS = (0.9, 1.1, 1.25, 1.4, 1.6, 2.0)
BIAS_STDS = (0.0, math.sqrt(0.05))


@pytest.fixture(scope="module")
def table():
    base = {"arch": "128-128x20", "act": "tanh", "init": "lecun_normal", "bias": "normal(std=0.1)", "batch": "32",
            "trials": "2", "device": "cpu"}
    axes = [parse_vary("init.gain=" + ",".join(map(str, GAINS))),
            parse_vary("bias.std=" + ",".join(repr(s) for s in BIAS_STDS))]
    return run_sweep(base, axes, InProcess())


@pytest.mark.parametrize("metric", ["c_last", "log_q_ratio"])
def test_measured_within_the_band_of_mean_field_at_every_cell(table, metric):
    predicted = {r["cell"]: r for r in table.rows if r["source"] == "predicted"}
    checked = 0
    for r in table.rows:
        if r["source"] != "measured":
            continue
        p = predicted[r["cell"]]
        half = (p[f"{metric}_hi"] - p[f"{metric}_lo"]) / 2
        assert half > 0, (r["cell"], metric)
        assert abs(r[metric] - p[metric]) <= K_SIGMA * half, (r["init.gain"], r["bias.std"], r[metric], p[metric], half)
        checked += 1
    assert checked == len(GAINS) * len(BIAS_STDS) * 2


def test_the_predicted_boundary_is_the_known_critical_line(table):
    chi1 = table.grid("chi1", "predicted")  # [gain, bias]
    assert np.isfinite(chi1).all()
    known = {0: 1.0, 1: 1.760955}  # sigma_w^2 on chi_1 = 1 at sigma_b^2 = 0 and 0.05
    for j, sb2 in ((0, 0.0), (1, 0.05)):
        assert critical_sigma_w2(Call("tanh"), sb2) == pytest.approx(known[j], abs=1e-5)
        ordered = np.array(GAINS) ** 2 < known[j]
        assert ((chi1[:, j] < 1) == ordered).all(), (sb2, chi1[:, j])


def test_measured_correlation_falls_across_the_boundary(table):
    c = table.grid("c_last")  # mean over trials [gain, bias]
    # deep in the ordered phase with a bias (chi_1 <= 0.85, xi_c <= 6.1 << L = 20) the pairs have converged to c* = 1
    ordered = table.grid("chi1", "predicted")[:, 1] <= 0.85
    assert ordered.sum() == 2 and (1 - c[ordered, 1] < 0.05).all()
    # ... and c^L falls monotonically with the gain in both rows, into the chaotic phase (c* < 1)
    assert (np.diff(c, axis=0) < 0).all()
    assert c[-1, 1] < 0.5
