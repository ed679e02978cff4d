"""ExplainPanel: formulas with numbers filled in, theory text, diagnostics, measured vs predicted."""

from __future__ import annotations

import importlib
import math
import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest
from initscope.engine.spec import parse_spec
from initscope.tui.widgets.explain_panel import ExplainPanel, activation_lines, explain_sections, init_formula_lines
from textual.app import App, ComposeResult
from textual.widgets import Static

from tests.tui.helpers_results import make_result


@dataclass
class FakePrediction:
    pre_std: np.ndarray
    post_mean: np.ndarray
    post_std: np.ndarray
    grad_std: np.ndarray | None
    grad_pre_std: np.ndarray | None
    band: object = None
    chi1: np.ndarray | None = None
    diagnostics: dict = field(default_factory=dict)
    reason: str = ""


@dataclass
class FakeExplanation:
    title: str
    paragraphs: list[str]

    def to_text(self) -> str:
        return "\n\n".join([self.title, *self.paragraphs])


def fake_prediction(depth: int, *, pre: float = 2**0.5, reason: str = "") -> FakePrediction:
    full = lambda v: np.full(depth, v, dtype=float)  # noqa: E731
    return FakePrediction(pre_std=full(pre), post_mean=full(1 / math.sqrt(math.pi)), post_std=full(0.8256),
                          grad_std=full(1.0), grad_pre_std=full(math.sqrt(0.5)), chi1=full(1.0),
                          diagnostics={"chi1": 1.0, "phase": "critical", "growth_per_layer": 1.0,
                                       "fixed_point": None}, reason=reason)


@pytest.fixture
def fake_theory(monkeypatch):
    """Install a stand-in engine.theory with the contract's predict/explain; records the calls."""
    mod = types.ModuleType("initscope.engine.theory")
    mod.calls = []

    def predict(spec, *args, **kwargs):
        mod.calls.append(("predict", spec))
        return fake_prediction(spec.depth)

    def explain(spec, prediction):
        mod.calls.append(("explain", spec))
        return FakeExplanation("He init keeps E[x^2]", ["Paragraph one [with brackets].", "Paragraph two."])

    mod.predict, mod.explain = predict, explain
    monkeypatch.setitem(sys.modules, "initscope.engine.theory", mod)
    return mod


def body(sections, key: str) -> str:
    return next(s.body for s in sections if s.key == key)


def test_kaiming_formula_has_the_numbers():
    lines = init_formula_lines(parse_spec(arch="512-512x20", init="kaiming_normal", act="relu"))
    assert "W ~ N(0, gain^2/fan)" in lines
    assert "gain = calculate_gain(relu) = 1.4142" in lines
    assert "std = gain/sqrt(fan_in) = 1.4142/sqrt(512) = 0.0625" in lines
    assert "sigma_w^2 = fan_in*Var[W] = 512*0.0625^2 = 2" in lines


def test_fan_out_given_gain_and_varying_widths():
    lines = init_formula_lines(parse_spec(arch="784-256-10", init="kaiming_uniform(mode=fan_out, gain=1)"))
    text = "\n".join(lines)
    assert "gain = 1 (given)" in text
    assert "layer 1 (784->256):" in text
    assert "std = gain/sqrt(fan_out) = 1/sqrt(256) = 0.0625" in text
    assert "a = gain*sqrt(3/fan_out) = 1*sqrt(3/256) = 0.10825" in text
    assert "layer 2 (256->10): std = 0.31623" in text


@pytest.mark.parametrize("init, expected", [
    ("xavier_normal", "std = gain*sqrt(2/(fan_in+fan_out)) = 1*sqrt(2/(100+100)) = 0.1"),
    ("lecun_normal", "std = gain/sqrt(fan_in) = 1/sqrt(100) = 0.1"),
    ("torch_default", "bound = 1/sqrt(fan_in) = 1/sqrt(100) = 0.1"),
    ("trunc_normal(std=1)", "after: 0.87963"),
    ("uniform(bound=0.5)", "std = bound/sqrt(3) = 0.5/sqrt(3) = 0.28868"),
    ("orthogonal", "= 1/sqrt(100) = 0.1"),
    ("zeros", "std = 0"),
    ("lsuv", "rescale each layer until std(pre) = 1"),
    ("normal(std=0.01)", "sigma_w^2 = fan_in*Var[W] = 100*0.01^2 = 0.01"),
])
def test_every_scheme_gets_numbers(init, expected):
    assert expected in "\n".join(init_formula_lines(parse_spec(arch="100-100x3", init=init)))


def test_activation_bias_and_data_lines():
    lines = activation_lines(parse_spec(act="leaky_relu(a=0.1)", bias="const(value=0.1)"))
    assert lines[0] == "leaky_relu(a=0.1): x for x > 0, a*x otherwise"
    assert "leaky_relu(x) = max(0, x) + a * min(0, x)" in lines
    assert "recommended gain = 1.4072" in lines
    assert "bias const(value=0.1): b = value" in lines
    assert "data gaussian: x ~ N(mean, std^2)" in lines


def test_without_theory_says_so_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "initscope.engine.theory", None)  # import fails
    sections = explain_sections(parse_spec(), make_result("16-16x3"))
    theory = body(sections, "theory")
    assert theory.startswith("Theory not available") and "\n" not in theory
    assert "std = gain/sqrt(fan_in)" in body(sections, "init")  # the rest still shows
    compare = body(sections, "compare")
    assert "pre std" in compare and "(no prediction to compare with)" in compare


def test_theory_paragraphs_diagnostics_and_comparison(fake_theory):
    result = make_result("512-512x20", spread=math.sqrt(2))
    result.theory = fake_prediction(20)
    sections = explain_sections(result.spec, result)
    theory = body(sections, "theory")
    assert theory.startswith("He init keeps E[x^2]") and "Paragraph one [with brackets]." in theory
    assert ("predict", result.spec) not in fake_theory.calls  # result.theory is used as is
    diag = body(sections, "diagnostics")
    assert "chi_1: 1" in diag and "phase: critical" in diag and "growth per layer: 1" in diag
    assert "fixed point" not in diag  # None values are left out
    compare = body(sections, "compare").splitlines()
    assert compare[0].split() == ["layer", "1", "measured", "predicted", "ratio"]
    pre = next(line for line in compare if line.startswith("pre std"))
    assert pre.split()[2:] == ["1.414", "1.414", "1.000"]
    assert any(line.startswith("layer 20") for line in compare)
    assert "grad_pre std" in "\n".join(compare)


def test_prediction_is_computed_when_the_result_has_none(fake_theory):
    spec = parse_spec(arch="32-32x4")
    sections = explain_sections(spec, None)
    assert ("predict", spec) in fake_theory.calls
    assert "Run the configuration" in body(sections, "compare")
    assert "He init keeps" in body(sections, "theory")


def test_predict_failure_is_one_sentence(fake_theory):
    def broken(spec, *a, **k):
        raise ValueError("no closed form for this activation")

    fake_theory.predict = broken
    theory = body(explain_sections(parse_spec(arch="8-8x2"), None), "theory")
    assert theory == "No prediction: no closed form for this activation."


def test_reason_and_missing_gradients(fake_theory):
    result = make_result("8-8x3", grad=False)
    pred = fake_prediction(3, reason="grad predictions need grad=true")
    pred.grad_std = pred.grad_pre_std = None
    result.theory = pred
    sections = explain_sections(result.spec, result)
    assert "note: grad predictions need grad=true" in body(sections, "diagnostics")
    assert "grad std" not in body(sections, "compare")


def test_with_the_real_theory_when_it_exists():
    theory = importlib.import_module("initscope.engine.theory")
    if not hasattr(theory, "predict") or not hasattr(theory, "explain"):
        pytest.skip("engine.theory has no predict/explain yet")
    spec = parse_spec(arch="512-512x20")
    sections = explain_sections(spec, make_result("512-512x20", spread=math.sqrt(2)))
    assert not body(sections, "theory").startswith("Theory not available")
    pre = next(line for line in body(sections, "compare").splitlines() if line.startswith("pre std"))
    assert abs(float(pre.split()[3]) - math.sqrt(2)) < 1e-3  # He: pre std sqrt(2) at layer 1


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield ExplainPanel(id="explain")


async def test_panel_shows_sections_and_scrolls(fake_theory):
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(ExplainPanel)
        assert "Choose a configuration" in str(panel.query_one("#explain-init-body", Static).content)
        result = make_result("512-512x20", spread=math.sqrt(2))
        panel.show(result.spec, result)
        await pilot.pause()
        init_body = str(panel.query_one("#explain-init-body", Static).content)
        assert "std = gain/sqrt(fan_in) = 1.4142/sqrt(512) = 0.0625" in init_body
        assert str(panel.query_one("#explain-theory-title").content) == "Theory"
        assert "Paragraph one [with brackets]." in str(panel.query_one("#explain-theory-body", Static).content)
        assert "Measured vs predicted" in panel.text and "layer 20" in panel.text
        # more text than fits: the panel scrolls from the keyboard
        assert panel.max_scroll_y > 0
        panel.focus()
        await pilot.press("pagedown")
        await pilot.pause()
        assert panel.scroll_y > 0
        # a new spec replaces everything; no result -> the hint to run
        panel.show(parse_spec(arch="64-64x3", init="xavier_normal", act="tanh"), None)
        await pilot.pause()
        assert "xavier_normal" in str(panel.query_one("#explain-init-body", Static).content)
        assert "Run the configuration" in str(panel.query_one("#explain-compare-body", Static).content)


async def test_show_before_mount_is_applied_on_mount(fake_theory):
    panel = ExplainPanel()
    panel.show(parse_spec(arch="16-16x2"), None)

    class Late(App[None]):
        def compose(self) -> ComposeResult:
            yield panel

    app = Late()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert "1.4142/sqrt(16)" in str(panel.query_one("#explain-init-body", Static).content)


def test_a_guide_comes_first_and_only_when_given():
    spec = parse_spec(arch="8-8x2")
    guided = explain_sections(spec, None, ("Preset he30", "Xavier vs He. Look for: the std under Xavier halves"))
    assert (guided[0].key, guided[0].title, guided[0].body) == ("preset", "Preset he30",
                                                               "Xavier vs He. Look for: the std under Xavier halves")
    assert [s.key for s in guided[1:]] == [s.key for s in explain_sections(spec, None)]
    assert "preset" not in [s.key for s in explain_sections(spec, None)]


def test_real_diagnostics_are_words_and_numbers_and_broken_statistics_are_marked():
    from initscope.engine.result import STAT
    from initscope.engine.theory import predict

    result = make_result("512-512x20", spread=math.sqrt(2), trials=1)
    result.stats["grad_pre"][:, 0, STAT["std"]] = 0.0  # the std of the finite half of the entries
    result.stats["grad_pre"][:, 0, STAT["nonfinite_frac"]] = 0.5
    result.theory = predict(result.spec)
    sections = explain_sections(result.spec, result)
    diag = body(sections, "diagnostics")
    for raw in ("FixedPoint(", "np.float64", "array(", "nan", "None"):
        assert raw not in diag
    assert "fixed point: every length is a fixed point" in diag and "std outside [1e-3, 1e3]" in diag
    grad_pre = next(line for line in body(sections, "compare").splitlines() if line.startswith("grad_pre std"))
    assert grad_pre.split()[2] == "nan/inf" and grad_pre.split()[-1] == "-"
