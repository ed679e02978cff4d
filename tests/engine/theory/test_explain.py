"""explain(): the numbers in the text, plain ASCII, at most 100 characters a line."""

import pytest
from initscope.engine.spec import parse_spec
from initscope.engine.theory import explain, predict

SPECS = [{}, {"init": "xavier_normal"}, {"init": "torch_default"}, {"act": "general_relu(sub=0.5)"},
         {"act": "tanh", "init": "xavier_normal(gain=1.6666666666666667)"}, {"act": "selu"},
         {"act": "selu", "init": "lecun_normal"}, {"data": "digits"}, {"init": "lsuv", "act": "tanh"},
         {"act": "sigmoid", "init": "xavier_normal"}, {"bias": "const(value=0.2)", "act": "gelu"},
         {"init": "zeros", "bias": "normal(std=0.1)"}, {"init": "orthogonal", "act": "identity"},
         {"init": "kaiming_uniform(mode=fan_out)", "arch": "784-256-128-10"}, {"init": "normal(std=1)"}]


@pytest.mark.parametrize("kw", SPECS)
def test_text_is_ascii_and_narrow(kw):
    kw = {"arch": "512x11", **kw}
    e = explain(parse_spec(**kw))
    text = e.to_text()
    assert text.isascii()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert e.title and e.paragraphs
    assert e.to_json()["paragraphs"] == list(e.paragraphs)


def test_he_relu_answers_the_fastai_question():
    text = " ".join(explain(parse_spec(arch="512x11")).paragraphs)
    for needle in ("SECOND MOMENT", "1.4142", "0.5642", "0.8256", "not mean 0 and std 1", "1/sqrt(pi)"):
        assert needle in text


def test_variants_are_explained_with_numbers():
    t = " ".join(explain(parse_spec(arch="512x11", init="xavier_normal")).paragraphs)
    assert "0.5^L" in t and "0.7071" in t and "block ~21" in t
    t = " ".join(explain(parse_spec(arch="1024x11", init="torch_default")).paragraphs)
    assert "sqrt(6) = 2.449" in t and "0.01976" in t
    t = " ".join(explain(parse_spec(arch="512x11", act="general_relu(sub=0.5)")).paragraphs)
    assert "recentred" in t and "0.06419" in t and "no longer holds" in t
    t = " ".join(explain(parse_spec(arch="512x11", act="tanh", init="xavier_normal(gain=1.6666666666666667)"))
                 .paragraphs)
    assert "chaotic" in t and "1.2098" in t and "0.6513" in t
    t = " ".join(explain(parse_spec(arch="512x11", act="selu")).paragraphs)
    assert "lecun_normal" in t and "0.1518" in t
    t = " ".join(explain(parse_spec(arch="64x4", data="digits")).paragraphs)
    assert "No prediction" in t and "second moment" in t


def test_explain_reuses_a_given_prediction():
    spec = parse_spec(arch="256x4")
    p = predict(spec)
    assert explain(spec, p) == explain(spec)


def test_explain_stays_callable_after_its_submodule_is_imported():
    import importlib

    import initscope.engine.theory as theory
    from initscope.engine.spec import parse_spec

    importlib.import_module("initscope.engine.theory.explain")
    assert callable(theory.explain)
    assert "0.5642" in theory.explain(parse_spec()).to_text()


# the gradient verdict must follow the printed ratio std(g^1)/std(g^L) (diagnostics.GRAD_TOL)
@pytest.mark.parametrize("kw", [{"arch": "784-50-10"}, {"arch": "512-512x30", "act": "tanh", "init": "xavier_normal"},
                                {"arch": "512x11"}, {"arch": "512x11", "init": "normal(std=1)"},
                                {"arch": "512x11", "init": "torch_default"}])
def test_gradient_verdict_follows_the_ratio(kw):
    from initscope.engine.theory.diagnostics import GRAD_TOL

    p = predict(parse_spec(**kw))
    text = " ".join(explain(parse_spec(**kw), p).paragraphs)
    r = p.diagnostics.grad_ratio
    if 1 / (1 + GRAD_TOL) <= r <= 1 + GRAD_TOL:
        assert "gradients keep their size" in text
    else:
        assert "keep their size" not in text
        assert ("shrink toward the input" if r < 1 else "grow toward the input") in text


def test_lesson8_widths_explain_why_critical_gradients_shrink():
    # 784-50-10 with He init: chi_1 = 1 at every block, but the gradient variance is multiplied by
    # chi_1 x n_2/n_1 = 10/50 from block 2 to block 1, so std(g^1)/std(g^2) = sqrt(1/5) = 0.4472
    p = predict(parse_spec(arch="784-50-10"))
    assert p.diagnostics.grad_ratio == pytest.approx(5 ** -0.5, rel=1e-9)
    text = explain(parse_spec(arch="784-50-10"), p).to_text().replace("\n", " ")
    assert "Critical" in text and "shrink toward the input (x0.4472" in text and "the widths change" in text


def test_exploding_sentence_uses_the_shared_rule_and_spelling():
    text = explain(parse_spec(arch="512-512x60", init="normal(std=1)")).to_text().replace("\n", " ")
    assert "explodees" not in text
    assert "The signal explodes at block 3 (std above 1e3)." in text


def test_tiny_predicted_values_keep_their_digits():
    # normal(std=0.01) with relu: sigma_w^2 = 512e-4, so E[x^2] shrinks by 0.0256 per block; block 20's
    # pre std is about 1e-16, which must print with its digits, not as 0
    from initscope.engine.numbers import fmt_num

    spec = parse_spec(arch="512x21", init="normal(std=0.01)")
    p = predict(spec)
    assert 0 < p.pre_std[-1] < 1e-12
    text = explain(spec, p).to_text().replace("\n", " ")
    assert f"pre std {fmt_num(p.pre_std[-1], 4)}" in text and "e-" in fmt_num(p.pre_std[-1], 4)


def test_diagnostics_lines_are_words_and_numbers():
    for kw in ({"arch": "512x11"}, {"arch": "512x11", "init": "torch_default"}, {"arch": "512x11", "act": "tanh"},
               {"arch": "512x11", "init": "lsuv"}):
        lines = predict(parse_spec(**kw)).diagnostics.lines()
        text = "\n".join(lines)
        for raw in ("FixedPoint(", "np.float64", "array(", "nan", "None"):
            assert raw not in text, (kw, text)
        assert text.startswith("phase: ") and "fixed point: " in text and "std outside [1e-3, 1e3]" in text
