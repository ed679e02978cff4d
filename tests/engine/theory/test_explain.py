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
