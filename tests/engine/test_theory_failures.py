"""A valid spec whose prediction fails still gives its measurement; the prediction is absent with a reason."""

import math

import numpy as np
import pytest
from initscope import engine
from initscope.engine import report
from initscope.engine.catalog import activation_gain
from initscope.engine.spec import parse_spec
from initscope.engine.theory import safe


@pytest.mark.filterwarnings("ignore:mean is more than 2 std")  # torch's, true here: the weights sit at 50
def test_trunc_normal_far_in_the_tail_is_measured_and_its_mean_named():
    # N(0, 1) kept on [50, 60]: every weight lies in [50, 60] (mean 50.02 = 50 + 1/50 - 2/50^3); the weights'
    # mean breaks the zero-mean theory, so the prediction is absent and says why (it divided 0 by 0 before)
    result = engine.run(parse_spec(arch="8-8", batch=16, init="trunc_normal(std=1, a=50, b=60)", act="identity"))
    assert 50.0 <= result.weight[0, 0, 0] <= 60.0
    assert np.isfinite(result.headline("pre", "std")).all()
    doc = report.to_json_dict(result)
    assert "not symmetric" in doc["theory_reason"] and "mean 50" in doc["theory_reason"]
    assert doc["layers"][0]["theory"]["pre_std"] is None


@pytest.mark.parametrize("texts, why", [
    ({"init": "normal(std=1e308)"}, "layer 1: the predicted pre-activation variance overflows float64"),
    ({"init": "normal(std=1)", "act": "elu(alpha=1e300)"}, "layer 1: the post-activation second moment is not"),
    ({"bias": "normal(std=1e300)"}, "layer 1: the predicted pre-activation variance overflows float64"),
])
def test_predictions_that_overflow_are_absent_with_a_reason(texts, why):
    p = safe.predict_or_reason(parse_spec(arch="4-4x2", dtype="float64", **texts))
    assert p.reason and p.reason.startswith(why)
    assert all(p.layer_json(2)[key] is None for key in ("pre_std", "post_mean", "post_std"))


def test_a_huge_slope_gives_a_tiny_kaiming_gain_not_an_overflow():
    # gain sqrt(2/(1 + a^2)) = sqrt(2)/hypot(1, a): 1.414e-300 for a = 1e300 (a^2 overflowed before)
    for act in ("elu(alpha=1e300)", "leaky_relu(a=1e300)", "general_relu(leak=1e300)"):
        assert activation_gain(parse_spec(act=act, dtype="float64").act) == pytest.approx(math.sqrt(2) * 1e-300,
                                                                                          rel=1e-12)
    # kaiming weights then have variance 2e-600/fan_in, below the smallest double: the prediction is 0
    spec = parse_spec(arch="4-4", act="elu(alpha=1e300)", dtype="float64")
    assert safe.predict_or_reason(spec).pre_std[0] == 0.0


def test_any_failure_of_the_theory_leaves_the_measurement(monkeypatch):
    def broken(spec, **kw):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(safe, "predict", broken)
    result = engine.run(parse_spec(arch="16-16x2", batch=64))
    # the measurement is He's: pre std sqrt(2) at layer 1 (64 x 16 entries, 16 weight rows: ~25% at 3 sigma)
    assert result.headline("pre", "std")[0] == pytest.approx(math.sqrt(2), rel=0.25)
    doc = report.to_json_dict(result)
    assert doc["theory_reason"] == ("the prediction failed (ZeroDivisionError: float division by zero); "
                                    "the measurement stands without it")
    assert all(layer["theory"]["pre_std"] is None for layer in doc["layers"])
    assert "No prediction: the prediction failed" in safe.explain_or_reason(result.spec, result.theory).to_text()
