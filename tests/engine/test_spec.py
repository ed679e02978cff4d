"""RunSpec: validation through the catalog, round trips, and one-sentence errors."""

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from initscope.engine.catalog import ACTIVATIONS, BIASES, DATA, INITS, resolve, show
from initscope.engine.errors import SpecError
from initscope.engine.spec import DEFAULTS, DTYPES, RunSpec, parse_spec
from initscope.engine.textforms import Call, format_call


def test_defaults():
    spec = parse_spec()
    assert isinstance(spec, RunSpec)
    assert spec.arch == (512,) * 21 and spec.depth == 20
    assert spec.init == Call("kaiming_normal", (("mode", "fan_in"), ("gain", None)))
    assert spec.bias.name == "zeros" and spec.grad is True and spec.trials == 1


def test_torch_default_init_brings_its_own_bias_unless_bias_is_given():
    assert parse_spec(init="torch_default").bias.name == "torch_default"
    assert parse_spec(init="torch_default", bias="zeros").bias.name == "zeros"
    assert parse_spec(init="xavier_normal").bias.name == "zeros"


def test_parameters_are_typed_and_defaults_filled():
    spec = parse_spec(act="general_relu(sub=0.5)", init="kaiming_uniform(mode=fan_out, gain=2)")
    assert spec.act.kwargs == {"leak": 0.0, "sub": 0.5, "maxv": None}
    assert spec.init.kwargs == {"mode": "fan_out", "gain": 2.0}
    assert spec.to_text()["act"] == "general_relu(sub=0.5)"
    assert spec.to_text()["init"] == "kaiming_uniform(mode=fan_out, gain=2)"


@pytest.mark.parametrize(
    "texts, start, fragment",
    [
        ({"init": "kaiming"}, "init: 'kaiming'", "kaiming_normal"),
        ({"init": "kaiming_normal(mode=fan_middle)"}, "init kaiming_normal: parameter mode", "fan_in, fan_out"),
        ({"init": "kaiming_normal(nonlinearity=relu)"}, "init kaiming_normal: 'nonlinearity'", "valid keys: mode, gain"),
        ({"init": "normal(std=0)"}, "init normal: parameter std", "greater than 0"),
        ({"init": "normal(std=abc)"}, "init normal: parameter std", "expected a number"),
        ({"init": "lsuv(max_iter=2.5)"}, "init lsuv: parameter max_iter", "integer"),
        ({"init": "trunc_normal(a=2, b=-2)"}, "init trunc_normal", "a must be less than b"),
        ({"act": "relu(a=0.1)"}, "act relu: 'a'", "takes no parameters"),
        ({"act": "leaky_relu(a=true)"}, "act leaky_relu: parameter a", "expected a number"),
        ({"bias": "const"}, None, None),
        ({"data": "file"}, "data file", "path="),
        ({"data": "uniform(low=1, high=0)"}, "data uniform", "low must be less than high"),
        ({"arch": "784-0-10"}, "arch: '784-0-10'", "between 1 and"),
        ({"batch": "0"}, "batch: '0'", "whole number"),
        ({"batch": "12.5"}, "batch: '12.5'", "whole number"),
        ({"trials": "1001"}, "trials: '1001'", "1 to 1000"),
        ({"seed": "-1"}, "seed: '-1'", "whole number"),
        ({"device": "gpu"}, "device: 'gpu'", "cuda:N"),
        ({"dtype": "float8"}, "dtype: 'float8'", "bfloat16"),
        ({"grad": "maybe"}, "grad: 'maybe'", "true or false"),
        ({"colour": "red"}, "spec: 'colour'", "known fields"),
    ],
)
def test_bad_input_is_one_sentence_naming_field_value_and_allowed(texts, start, fragment):
    if start is None:
        parse_spec(**texts)  # valid: const has a default value
        return
    with pytest.raises(SpecError) as err:
        parse_spec(**texts)
    msg = str(err.value)
    assert msg.startswith(start), msg
    assert fragment in msg, msg
    assert "\n" not in msg and msg.endswith(".")


def _call_strategy(table):
    """Random valid calls: any entry, any subset of its parameters with values in range."""
    def params_for(entry):
        strategies, required = {}, {}
        for p in entry.params:
            if p.kind == "float":
                lo = p.low if p.low is not None else (1e-3 if p.positive else -10.0)
                if p.positive and lo <= 0:
                    lo = 1e-3
                hi = p.high if p.high is not None else 10.0
                strategies[p.name] = st.floats(lo, hi, allow_nan=False)
            elif p.kind == "int":
                strategies[p.name] = st.integers(int(p.low or 0), int(min(p.high or 100, 100)))
            elif p.kind == "bool":
                strategies[p.name] = st.booleans()
            elif p.kind == "choice":
                strategies[p.name] = st.sampled_from(p.choices)
            elif p.kind == "path":
                required[p.name] = st.sampled_from(["data/x.npy", "a b/c.csv", "weird,name(1).pt"])
            else:
                strategies[p.name] = st.sampled_from(["arr_0", "x y", "k=v"])
        return st.fixed_dictionaries(required, optional=strategies)

    return st.sampled_from(list(table.values())).flatmap(
        lambda e: params_for(e).map(lambda kw: Call(e.name, tuple(kw.items()))))


@given(init=_call_strategy(INITS), act=_call_strategy(ACTIVATIONS), bias=_call_strategy(BIASES),
       data=_call_strategy(DATA), widths=st.lists(st.integers(1, 4096), min_size=2, max_size=8),
       batch=st.integers(1, 10**6), dtype=st.sampled_from(["float32", "float64", "bfloat16", "float16"]),
       device=st.sampled_from(["auto", "cpu", "cuda", "cuda:1", "mps"]), seed=st.integers(0, 2**40),
       trials=st.integers(1, 1000), grad=st.booleans())
def test_spec_round_trip(init, act, bias, data, widths, batch, dtype, device, seed, trials, grad):
    if init.name == "trunc_normal" and not init.get("a", -2.0) < init.get("b", 2.0):
        return
    if data.name == "uniform" and not data.get("low", -1.0) < data.get("high", 1.0):
        return
    spec = parse_spec(arch="-".join(map(str, widths)), init=format_call(init), act=format_call(act),
                      bias=format_call(bias), data=format_call(data), batch=str(batch), dtype=dtype,
                      device=device, seed=str(seed), trials=str(trials), grad=str(grad).lower())
    again = parse_spec(**spec.to_text())
    assert again == spec
    assert again.to_text() == spec.to_text()
    for field, call in (("init", spec.init), ("act", spec.act), ("bias", spec.bias), ("data", spec.data)):
        assert resolve(field, show(field, call)) == call


@given(st.dictionaries(st.sampled_from(list(DEFAULTS)), st.text(max_size=30), max_size=5))
def test_garbage_in_any_field_is_a_spec_error_or_a_valid_spec(texts):
    try:
        spec = parse_spec(**texts)
    except SpecError as e:
        assert "\n" not in str(e)
    else:
        assert parse_spec(**spec.to_text()) == spec


def test_importing_engine_and_parsing_does_not_import_torch():
    code = ("import sys; from initscope import engine; import initscope.engine.spec, initscope.engine.catalog, initscope.engine.report, initscope.engine.presets; "
            "engine.parse_spec(init='lsuv'); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("field, text", [
    ("init", "normal(std=1{zeros})"),
    ("bias", "const(value=-1{zeros})"),
    ("act", "leaky_relu(a=1{zeros})"),
    ("data", "gaussian(mean=1{zeros})"),
    ("init", "lsuv(max_iter=1{zeros})"),
])
@pytest.mark.parametrize("digits", [400, 5000])
def test_numbers_beyond_float_range_are_one_spec_error_naming_the_parameter(field, text, digits):
    with pytest.raises(SpecError) as err:
        parse_spec(**{field: text.format(zeros="0" * digits)})
    message = str(err.value)
    assert message.startswith(f"{field} ") and "parameter" in message and "finite number" in message


@pytest.mark.parametrize("texts, field", [
    ({"act": "elu(alpha=1e300)"}, "act elu: parameter alpha"),
    ({"act": "general_relu(maxv=1e5)", "dtype": "float16"}, "act general_relu: parameter maxv"),
    ({"bias": "const(value=-1e39)"}, "bias const: parameter value"),
    ({"init": "uniform(bound=1e39)", "dtype": "bfloat16"}, "init uniform: parameter bound"),
    ({"data": "uniform(low=-1e300, high=1e300)"}, "data uniform: parameter low"),
])
def test_a_parameter_beyond_the_dtype_is_bad_input_naming_it(texts, field):
    # torch converts these to the run's dtype and failed mid-run ("value cannot be converted to type float
    # without overflow"); the largest float32 is 3.4028e38, float16 65504
    with pytest.raises(SpecError) as err:
        parse_spec(**texts)
    dtype = texts.get("dtype", "float32")
    assert str(err.value).startswith(field + ":") and f"the largest {dtype}" in str(err.value)


def test_the_same_parameter_fits_a_wider_dtype():
    assert parse_spec(act="elu(alpha=1e300)", dtype="float64").act.get("alpha") == 1e300
    assert parse_spec(act="general_relu(maxv=65504)", dtype="float16").act.get("maxv") == 65504.0


def test_dtype_max_is_torch_finfo():
    import torch
    from initscope.engine.spec import DTYPE_MAX

    assert DTYPE_MAX == {name: torch.finfo(getattr(torch, name)).max for name in DTYPES}
