"""predict_cells and critical_curve (docs/formulas.md 17.5): the vectorised grid against the per-spec prediction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from initscope.engine.catalog import resolve
from initscope.engine.spec import parse_spec
from initscope.engine.theory import predict
from initscope.engine.theory.correlation import critical_sigma_w2, input_pair_corr, pair_correlations
from initscope.engine.theory.meanfield import run_meanfield
from initscope.engine.theory.phase import (
    CELL_METRICS,
    EXTRA_KEYS,
    PHASE_C0,
    _scalar_cell,
    critical_curve,
    predict_cells,
)


def _grid(act: str, L: int = 12, arch: str | None = None, pair_corr: str = "0.5") -> list:
    return [parse_spec(arch=arch or f"32-32x{L}", act=act, init=f"xavier_normal(gain={g})", bias=f"normal(std={b})",
                       pair_corr=pair_corr) for g in (0.6, 1.0, 1.33, 1.7, 2.4) for b in (0.0, 0.22, 0.5)]


def test_metric_names():
    assert CELL_METRICS == ("log_q_ratio", "c_last", "log_grad_ratio", "chi1", "nonfinite_frac")
    out = predict_cells(_grid("relu")[:2], band=False)
    assert set(out) == set(CELL_METRICS) | set(EXTRA_KEYS)
    assert all(v.shape == (2,) for v in out.values())
    assert np.isnan(out["nonfinite_frac"]).all()  # measured only


@pytest.mark.parametrize("act", ["tanh", "relu", "gelu"])
def test_predict_cells_equals_predict(act):
    """Every metric equals the one the per-spec prediction gives (relative 1e-9; xi_c 1e-7: it is
    -1/ln(slope) and the slope comes from a centred difference of the interpolated pair map)."""
    specs = _grid(act) if act != "gelu" else _grid(act)[::3]  # gelu: a sparser grid (time)
    got = predict_cells(specs, band=False)
    for i, spec in enumerate(specs):
        p = predict(spec)
        mf, d = p.meanfield, p.diagnostics
        want = {"log_q_ratio": math.log10(mf.m2[-1] / mf.s0), "c_last": p.pair_corr_pre[-1],
                "log_grad_ratio": math.log10(d.grad_ratio), "chi1": d.phase_chi1}
        for k, v in want.items():
            assert got[k][i] == pytest.approx(v, rel=1e-9, abs=1e-12), (spec.label, k)
        js = p.diagnostics_json()
        for k in ("xi_c", "xi_q"):
            v = js[k]
            if v is None:  # NaN or inf in JSON
                assert not math.isfinite(got[k][i])
            else:
                assert got[k][i] == pytest.approx(v, rel=1e-7), (spec.label, k)


def test_vectorised_grid_equals_per_cell_loop():
    """The vectorised path against the per-spec recursion (_scalar_cell), widths that vary included; the cells
    the vectorised path cannot take (norm, residual, elu, biases with a mean on relu) go through the loop."""
    specs = _grid("tanh", arch="24-40-16-40-24-32") + _grid("relu", arch="24-40-16x3")
    specs += [parse_spec(arch="16-16x5", act="relu", norm="layernorm"),
              parse_spec(arch="16-16x5", act="tanh", residual="plain(alpha=0.5)"),
              parse_spec(arch="16-16x5", act="elu"),
              parse_spec(arch="16-16x5", act="relu", bias="const(value=0.1)")]
    got = predict_cells(specs, band=False)
    loop = {k: np.full(len(specs), math.nan) for k in got}
    for i, s in enumerate(specs):
        _scalar_cell(s, i, loop)
    for k in ("log_q_ratio", "c_last", "log_grad_ratio", "chi1", "xi_c", "xi_q"):
        a, b = got[k], loop[k]
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), k
        fin = np.isfinite(b)
        assert np.allclose(a[fin], b[fin], rtol=1e-7 if k == "xi_c" else 1e-9, atol=1e-12), k
    assert np.isfinite(got["log_q_ratio"][-4:]).all() and np.isfinite(got["c_last"][-4:]).all()


def test_default_initial_correlation():
    spec = parse_spec(arch="32-32x8", act="tanh", bias="normal(std=0.2)")
    assert spec.pair_corr is None
    c = predict_cells([spec], band=False)["c_last"][0]
    pc = pair_correlations(spec, run_meanfield(spec), input_pair_corr(spec, PHASE_C0))
    assert c == pytest.approx(pc.pre[-1], rel=1e-9)


def test_critical_curve():
    tanh, relu = resolve("act", "tanh"), resolve("act", "relu")
    sb2 = np.array([[0.0, 0.05], [0.5, 1.0]])
    got = critical_curve(tanh, sb2)
    assert got.shape == (2, 2)
    assert got == pytest.approx(np.array([[1.0, 1.760955], [2.843167, 3.443211]]), abs=2e-6)
    assert np.all(critical_curve(relu, np.linspace(0, 1, 4)) == 2.0)
    assert critical_sigma_w2(tanh, -1.0) != critical_sigma_w2(tanh, -1.0)  # NaN for a negative variance


def test_chi1_crosses_one_on_the_critical_line():
    """tanh, sigma_b^2 = 0.05: chi_1 < 1 just below sigma_w^2 = 1.760955, > 1 just above, and xi_c peaks there."""
    specs = [parse_spec(arch="32-32x30", act="tanh", init=f"xavier_normal(gain={math.sqrt(sw2)})",
                        bias=f"normal(std={math.sqrt(0.05)})") for sw2 in (1.70, 1.74, 1.78, 1.82)]
    out = predict_cells(specs, band=False)
    assert list(out["chi1"] < 1) == [True, True, False, False]
    assert np.argmax(out["xi_c"]) in (1, 2) and out["xi_c"].max() > 100


def test_band_columns():
    spec = parse_spec(arch="64-64x10", act="tanh", init="xavier_normal(gain=1.2)", bias="normal(std=0.2)",
                      pair_corr="0.4")
    out = predict_cells([spec])
    for k in ("log_q_ratio", "c_last"):
        assert out[f"{k}_lo"][0] < out[k][0] < out[f"{k}_hi"][0]
    p = predict(spec)
    assert out["c_last_lo"][0] == pytest.approx(p.pair_corr_pre_lo[-1], rel=1e-9)
    res = predict_cells([parse_spec(arch="16-16x4", act="relu", residual="plain")])
    assert np.isfinite(res["log_q_ratio"][0]) and np.isnan(res["c_last_lo"][0])


def test_moment_shift_is_zero_for_relu_and_negative_for_tanh():
    """relu's M2(q) = q/2 is linear: no concavity shift and the last layer keeps all of the input's second
    moment (a = prod eta f = 1 with no bias). tanh's M2 is concave: E[m2^L] below the mean field, and a
    band midpoint below the mean-field column (docs/formulas.md 17.6)."""
    from initscope.engine.theory import _iid_kernel
    from initscope.engine.theory.band import moment_shift
    from initscope.engine.theory.gaussian import activation

    relu = parse_spec(arch="32-32x12", act="relu", init="kaiming_normal", bias="zeros", batch=16)
    s = moment_shift(run_meanfield(relu), activation(relu.act), relu.fan_out, _iid_kernel(relu))
    assert s.rel_shift == pytest.approx(0.0, abs=1e-8)  # central-difference rounding of a linear M2 (5e-10)
    assert s.input_gain == pytest.approx(1.0, rel=1e-9)
    tanh = parse_spec(arch="32-32x12", act="tanh", init="lecun_normal", bias="zeros", batch=16)
    s = moment_shift(run_meanfield(tanh), activation(tanh.act), tanh.fan_out, _iid_kernel(tanh))
    assert -0.15 < s.rel_shift < -0.05 and 0.0 < s.input_gain < 0.2  # -0.088 and 0.060 at this spec
    out = predict_cells([tanh])
    assert 0.5 * (out["log_q_ratio_lo"][0] + out["log_q_ratio_hi"][0]) < out["log_q_ratio"][0]
