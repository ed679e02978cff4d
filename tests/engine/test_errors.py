"""A SpecError's suggested fix is worded for where it is shown: a flag on the command line, a field in the app."""

from __future__ import annotations

import numpy as np
from initscope.engine import parse_spec
from initscope.engine.data import prepare
from initscope.engine.errors import SpecError
from initscope.engine.textforms import parse_arch


def test_the_fix_is_a_flag_for_the_cli_and_a_field_for_the_app():
    e = SpecError("data", "file(path=x.npy)", "the data has 7 features", fix=("arch", "7-4-3"))
    assert str(e) == "data: 'file(path=x.npy)' is not valid; the data has 7 features; use --arch 7-4-3."
    assert e.message("cli") == str(e)
    assert e.message("app") == ("data: 'file(path=x.npy)' is not valid; the data has 7 features; "
                                "set the arch field to 7-4-3.")


def test_without_a_fix_both_wordings_are_the_sentence_as_before():
    e = SpecError("batch", "0", "expected a whole number from 1 to 16777216")
    assert str(e) == e.message("app") == "batch: '0' is not valid; expected a whole number from 1 to 16777216."


def test_a_width_mismatch_suggests_the_architecture_in_both_wordings(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((10, 7)))
    spec = parse_spec(arch="5-4-3", data=f"file(path={tmp_path / 'a.npy'})", batch="8")
    try:
        prepare(spec)
    except SpecError as e:
        assert "use --arch 7-4-3" in str(e)
        assert "set the arch field to 7-4-3" in e.message("app") and "--" not in e.message("app")
    else:
        raise AssertionError("a width mismatch must be refused")


def test_the_suggested_architecture_is_whole_and_valid(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((10, 64)))
    spec = parse_spec(arch="512-512x20", data=f"file(path={tmp_path / 'a.npy'})", batch="8")
    try:
        prepare(spec)
    except SpecError as e:
        assert e.fix == ("arch", "64-512x20")
        assert parse_arch(e.fix[1]) == (64,) + spec.arch[1:]
    else:
        raise AssertionError("a width mismatch must be refused")
