"""The text-form grammar: parsing, printing back, and clean errors for anything else."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from initscope.engine.errors import SpecError
from initscope.engine.textforms import Call, format_arch, format_call, format_value, parse_arch, parse_call


@pytest.mark.parametrize(
    "text, expected",
    [
        ("relu", Call("relu")),
        ("  relu  ", Call("relu")),
        ("relu()", Call("relu")),
        ("kaiming_normal(mode=fan_out)", Call("kaiming_normal", (("mode", "fan_out"),))),
        ("leaky_relu(a=0.1)", Call("leaky_relu", (("a", 0.1),))),
        ("general_relu(leak=0.1, sub=0.4, maxv=6)",
         Call("general_relu", (("leak", 0.1), ("sub", 0.4), ("maxv", 6)))),
        ("gaussian(mean=0, std=1)", Call("gaussian", (("mean", 0), ("std", 1)))),
        ("file(path=data/x.npy, normalize=true)", Call("file", (("path", "data/x.npy"), ("normalize", True)))),
        ('file(path="my data, v2.csv")', Call("file", (("path", "my data, v2.csv"),))),
        ("file(path='a\\'b.npy')", Call("file", (("path", "a'b.npy"),))),
        ("normal(std=1e-3)", Call("normal", (("std", 0.001),))),
        ("const(value=-.5)", Call("const", (("value", -0.5),))),
        ("x(flag=FALSE)", Call("x", (("flag", False),))),
    ],
)
def test_parse_call(text, expected):
    assert parse_call(text, "init") == expected


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "expected a name"),
        ("(relu)", "expected a name"),
        ("relu(", "balanced parentheses"),
        ("relu(a)", "needs '='"),
        ("relu(a=)", "needs a value"),
        ("relu(a=1,)", "trailing comma"),
        ("relu(a=1 b=2)", "unexpected"),
        ("relu(a=1, a=2)", "given twice"),
        ("relu(a='x)", "closing quote"),
        ("relu(a=(1))", "unexpected"),
        ("relu x", "balanced parentheses"),
    ],
)
def test_parse_call_errors_name_field_and_value(text, fragment):
    with pytest.raises(SpecError) as err:
        parse_call(text, "act")
    message = str(err.value)
    assert message.startswith("act: ")
    assert fragment in message
    assert message.count("\n") == 0 and message.endswith(".")


@pytest.mark.parametrize(
    "text, widths",
    [
        ("784-50-10", (784, 50, 10)),
        ("512-512x50", (512,) * 51),
        ("1024-256-2048-512", (1024, 256, 2048, 512)),
        ("8x3", (8, 8, 8)),
        (" 10 - 20 ", (10, 20)),
    ],
)
def test_parse_arch(text, widths):
    assert parse_arch(text) == widths


@pytest.mark.parametrize("text", ["", "784", "0-10", "10-0", "-10-10", "10--10", "10-abc", "10x0", "10-1.5",
                                  "10-" + "x" * 5, "1-2x999999"])
def test_parse_arch_errors(text):
    with pytest.raises(SpecError) as err:
        parse_arch(text)
    assert str(err.value).startswith("arch: ")


def test_format_arch_compresses_runs_and_round_trips():
    assert format_arch((512,) * 51) == "512-512x50"
    assert format_arch((784, 50, 10)) == "784-50-10"
    assert format_arch((4, 4, 8, 8, 8)) == "4-4-8x3"
    assert format_arch((4, 8, 8, 8, 8)) == "4-8x4"


@given(st.lists(st.integers(1, 5000), min_size=2, max_size=60))
def test_arch_round_trip(widths):
    assert parse_arch(format_arch(tuple(widths))) == tuple(widths)


_values = st.one_of(
    st.booleans(),
    st.integers(-10**9, 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)
_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@given(st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True),
       st.dictionaries(_keys, _values, max_size=4))
def test_call_round_trip(name, params):
    call = Call(name, tuple(params.items()))
    back = parse_call(format_call(call), "init")
    assert back.name == name
    for (k, v), (k2, v2) in zip(call.params, back.params, strict=True):
        assert k == k2
        if isinstance(v, float):
            assert v2 == v or (v == 0 and v2 == 0)
        elif isinstance(v, str) and v.strip().lower() in ("none", "null"):
            assert v2 is None or v2 == v
        else:
            assert v2 == v, (format_call(call), v, v2)


@given(st.text(max_size=80))
def test_garbage_never_escapes_as_anything_but_spec_error(text):
    try:
        parse_call(text, "init")
    except SpecError as e:
        assert str(e).startswith("init")
    try:
        parse_arch(text)
    except SpecError as e:
        assert str(e).startswith("arch")


def test_format_value_numbers():
    assert format_value(2.0) == "2"
    assert format_value(0.1) == "0.1"
    assert float(format_value(1e-300)) == 1e-300
    assert math.isinf(parse_call("x(v=inf)", "f").get("v"))


@pytest.mark.parametrize("digits", [20, 4301, 5000])
def test_parse_arch_refuses_huge_widths_and_repeats_in_one_short_sentence(digits):
    # Python's int() refuses strings of more than 4,300 digits; any width past 2^20 is out of range anyway
    big = "9" * digits
    for text in (f"{big}-10", f"10-10x{big}", f"10-{big}x2"):
        with pytest.raises(SpecError) as err:
            parse_arch(text)
        message = str(err.value)
        assert message.startswith("arch: ") and ("between 1 and" in message or "depth" in message)
        assert len(message) < 300  # the value is quoted by its start and its length, not all its digits


def test_parse_arch_reads_leading_zeros_as_the_number():
    assert parse_arch("0" * 5000 + "16-8") == (16, 8)


@pytest.mark.parametrize("digits, expected", [(300, 10.0**299), (301, 10.0**300), (309, 1e308), (310, math.inf),
                                               (5000, math.inf)])
def test_huge_integer_values_read_as_floats(digits, expected):
    # 10^(digits-1): exact int up to 300 digits, a float beyond (inf past the float range), never a crash
    value = parse_call(f"x(v=1{'0' * (digits - 1)})", "init").get("v")
    assert float(value) == pytest.approx(expected, rel=1e-15)
    assert (type(value) is int) == (digits <= 300)
