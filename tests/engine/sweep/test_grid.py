"""--vary parsing (every form and every error) and the grid's order."""

import pytest
from initscope.engine.errors import SpecError
from initscope.engine.spec import parse_spec
from initscope.engine.sweep.grid import MAX_CELLS, Axis, build_grid, parse_vary, split_top_level

BASE = {"arch": "8-8x3", "act": "tanh", "init": "lecun_normal", "bias": "normal(std=0.1)", "batch": "16",
        "device": "cpu"}


@pytest.mark.parametrize("text, name, values", [
    ("init.gain=1,1.5,2", "init.gain", (1, 1.5, 2)),
    ("init.gain=1:2.5:16", "init.gain", tuple(round(1 + 0.1 * i, 12) for i in range(16))),
    ("bias.std=0:0.5:11", "bias.std", (0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)),
    ("init.gain=0.01:100:5:log", "init.gain", (0.01, 0.1, 1, 10, 100)),
    ("init.gain=3:3:1", "init.gain", (3,)),
    ("seed=0:3:4", "seed", (0, 1, 2, 3)),
    ("arch=300-300x10,300-300x50", "arch", ("300-300x10", "300-300x50")),
    ("init=normal(std=1, mean=0),xavier_normal", "init", ("normal(std=1, mean=0)", "xavier_normal")),
    ("data=file(path=\"a,b.npy\"),gaussian", "data", ('file(path="a,b.npy")', "gaussian")),
    ("act.a=0.01,0.1", "act.a", (0.01, 0.1)),
    ("pair_corr=0.1,0.5,0.9", "pair_corr", (0.1, 0.5, 0.9)),
    (" batch = 16 , 32 ", "batch", (16, 32)),
])
def test_every_form_of_values(text, name, values):
    axis = parse_vary(text)
    assert axis.name == name
    assert axis.values == values


def test_range_values_are_exact_decimals_not_float_noise():
    # 1 + 0.1 * 3 is 1.3000000000000003 in floats; the axis (and the table's column) reads 1.3
    assert parse_vary("init.gain=1:2:11").values[3] == 1.3
    assert parse_vary("init.gain=1:2:11").values[-1] == 2  # the stop itself, as given


def test_top_level_split_keeps_commas_inside_brackets_and_quotes():
    assert split_top_level("a(b=1, c=2),d,e('x,y')") == ["a(b=1, c=2)", "d", "e('x,y')"]


@pytest.mark.parametrize("text, fragment", [
    ("init.gain", "FIELD=VALUES"),
    ("colour=1,2", "colour is not a spec field"),
    ("init.=1", "a parameter name must follow"),
    ("batch.size=1,2", "batch takes a plain value"),
    ("init.gain=", "give at least one value"),
    ("init.gain=1,,2", "an empty value"),
    ("init.gain=1:2:0", "count"),
    ("init.gain=1:2", "a range is start:stop:count"),
    ("init.gain=0:1:5:log", "log range needs start > 0"),
    ("init.gain=1:1:5", "start equals stop"),
    ("init.gain=1,2,1", "given twice"),
])
def test_bad_vary_is_one_sentence_naming_it(text, fragment):
    with pytest.raises(SpecError) as e:
        parse_vary(text)
    message = str(e.value)
    assert fragment in message
    assert message.startswith("--vary")
    assert "\n" not in message


def test_grid_is_row_major_first_axis_slowest_and_every_spec_is_the_parsers():
    a, b = parse_vary("init.gain=1,2"), parse_vary("bias.std=0,0.5,1")
    cells = build_grid(BASE, [a, b])
    assert [c.index for c in cells] == list(range(6))
    assert [(c.coords["init.gain"], c.coords["bias.std"]) for c in cells] == [
        (1, 0), (1, 0.5), (1, 1), (2, 0), (2, 0.5), (2, 1)]
    # the cell's spec is exactly what `initscope run` would parse from the same text forms
    assert cells[4].spec == parse_spec(**{**BASE, "init": "lecun_normal(gain=2)", "bias": "normal(std=0.5)"})


def test_a_whole_field_axis_then_its_parameter_sets_each_schemes_gain():
    cells = build_grid(BASE, [parse_vary("init=lecun_normal,xavier_normal"), parse_vary("init.gain=0.5,3")])
    assert [str(c.spec.init) for c in cells] == ["lecun_normal(gain=0.5)", "lecun_normal(gain=3)",
                                                 "xavier_normal(gain=0.5)", "xavier_normal(gain=3)"]


def test_a_param_the_call_lacks_names_the_calls_that_have_it():
    with pytest.raises(SpecError) as e:
        build_grid({**BASE, "bias": "zeros"}, [parse_vary("bias.std=0,1")])
    assert "bias zeros has no parameter std" in str(e.value)
    assert "normal" in str(e.value)


def test_a_bad_cell_names_the_cells_values():
    with pytest.raises(SpecError) as e:
        build_grid(BASE, [parse_vary("init.gain=1,-1")])
    assert "init.gain=-1" in str(e.value)
    with pytest.raises(SpecError) as e:
        build_grid({**BASE, "arch": "8-16-8"}, [parse_vary("residual=none,plain")])
    assert "residual=plain" in str(e.value)


def test_duplicate_axes_and_oversized_grids_are_refused():
    with pytest.raises(SpecError, match="given twice"):
        build_grid(BASE, [parse_vary("init.gain=1,2"), parse_vary("init.gain=3,4")])
    big = Axis("seed", None, tuple(range(1000)))
    with pytest.raises(SpecError, match=f"at most {MAX_CELLS:,} cells"):
        build_grid(BASE, [big, Axis("batch", None, tuple(range(1, 102)))])
