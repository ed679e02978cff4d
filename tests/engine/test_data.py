"""Input data: random batches, files (.npy/.npz/.csv/.pt) without unpickling, digits, and one clear
sentence for every user mistake."""

from __future__ import annotations

import builtins
import pickle

import numpy as np
import pytest
import torch
from initscope.engine import parse_spec, run
from initscope.engine.data import load_data
from initscope.engine.errors import SpecError


def spec_for(data: str, arch: str = "5-4", batch: int = 8, **kw):
    return parse_spec(arch=arch, data=data, batch=str(batch), **kw)


def test_gaussian_batch_shape_moments_and_seed():
    spec = parse_spec(arch="64-8", data="gaussian(mean=0.5, std=2)", batch="4096", seed="3")
    x, notes = load_data(spec)
    assert x.shape == (4096, 64) and notes == ()
    n = x.numel()  # within 5 standard errors
    assert abs(x.mean().item() - 0.5) < 5 * 2 / n ** 0.5
    assert abs(x.std().item() - 2.0) < 5 * 2 / (2 * n) ** 0.5
    assert torch.equal(x, load_data(spec)[0])
    assert not torch.equal(x, load_data(spec.with_changes(seed="4"))[0])


def test_uniform_batch_bounds():
    x, _ = load_data(parse_spec(arch="32-8", data="uniform(low=-0.5, high=2)", batch="1000"))
    assert x.min().item() >= -0.5 and x.max().item() <= 2.0
    assert x.min().item() < -0.49 and x.max().item() > 1.99


def test_npy_first_batch_rows(tmp_path):
    arr = np.arange(60, dtype=np.float32).reshape(12, 5)
    np.save(tmp_path / "a.npy", arr)
    x, notes = load_data(spec_for(f"file(path={tmp_path / 'a.npy'})"))
    assert np.array_equal(x.numpy(), arr[:8]) and notes == ()


def test_npy_flattens_extra_dimensions(tmp_path):
    np.save(tmp_path / "img.npy", np.ones((10, 2, 3)))
    x, _ = load_data(spec_for(f"file(path={tmp_path / 'img.npy'})", arch="6-4"))
    assert x.shape == (8, 6)


def test_fewer_rows_than_batch_uses_all_and_notes(tmp_path):
    np.save(tmp_path / "few.npy", np.random.default_rng(0).normal(size=(5, 5)))
    spec = spec_for(f"file(path={tmp_path / 'few.npy'})", batch=32)
    x, notes = load_data(spec)
    assert x.shape == (5, 5) and "5 rows" in notes[0]
    result = run(spec)
    assert result.notes[0] == notes[0]


def test_npz_key_and_first(tmp_path):
    np.savez(tmp_path / "d.npz", first=np.zeros((9, 5)), second=np.ones((9, 5)))
    x, _ = load_data(spec_for(f"file(path={tmp_path / 'd.npz'})"))
    assert float(x.sum()) == 0.0
    x, _ = load_data(spec_for(f"file(path={tmp_path / 'd.npz'}, key=second)"))
    assert float(x.sum()) == 40.0
    with pytest.raises(SpecError, match="no array 'third'; it has first, second"):
        load_data(spec_for(f"file(path={tmp_path / 'd.npz'}, key=third)"))


@pytest.mark.parametrize("header", [True, False])
def test_csv_with_and_without_header(tmp_path, header):
    rows = np.arange(50, dtype=float).reshape(10, 5)
    text = ("a,b,c,d,e\n" if header else "") + "\n".join(",".join(str(v) for v in r) for r in rows) + "\n"
    (tmp_path / "d.csv").write_text(text)
    x, _ = load_data(spec_for(f"file(path={tmp_path / 'd.csv'})"))
    assert np.array_equal(x.numpy(), rows[:8].astype(np.float32))


def test_pt_tensor_and_dict(tmp_path):
    t = torch.arange(45.0).reshape(9, 5)
    torch.save(t, tmp_path / "t.pt")
    torch.save({"labels": torch.zeros(9), "x": t}, tmp_path / "d.pth")
    assert torch.equal(load_data(spec_for(f"file(path={tmp_path / 't.pt'})"))[0], t[:8])
    assert torch.equal(load_data(spec_for(f"file(path={tmp_path / 'd.pth'}, key=x)"))[0], t[:8])


def test_normalize_gives_mean_0_std_1(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(1).uniform(3, 9, size=(100, 5)))
    x, _ = load_data(spec_for(f"file(path={tmp_path / 'a.npy'}, normalize=true)", batch=64), dtype=torch.float64)
    assert abs(x.mean().item()) < 1e-12 and abs(x.std(correction=0).item() - 1) < 1e-12


def test_run_reports_the_data_moments(tmp_path):
    np.save(tmp_path / "a.npy", np.full((8, 5), 3.0))
    result = run(spec_for(f"file(path={tmp_path / 'a.npy'})", grad="false"))
    assert result.data_mean == pytest.approx(3.0) and result.data_second_moment == pytest.approx(9.0)


# ---- one sentence per mistake ---------------------------------------------------------------------
def one_sentence(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text and text.endswith(".") and "Traceback" not in text
    return text


def test_missing_file(tmp_path):
    with pytest.raises(SpecError) as e:
        load_data(spec_for(f"file(path={tmp_path / 'nope.npy'})"))
    assert "there is no file" in one_sentence(e.value)


def test_wrong_suffix(tmp_path):
    (tmp_path / "x.txt").write_text("1,2")
    with pytest.raises(SpecError, match="must end in .npy"):
        load_data(spec_for(f"file(path={tmp_path / 'x.txt'})"))


def test_width_mismatch_names_the_fix(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((10, 7)))
    with pytest.raises(SpecError) as e:
        load_data(spec_for(f"file(path={tmp_path / 'a.npy'})", arch="5-4-3"))
    assert "the architecture starts with 5 but the data has 7 features; use --arch 7-4-3" in one_sentence(e.value)


def test_object_array_is_never_unpickled(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(SpecError) as e:
        load_data(spec_for(f"file(path={tmp_path / 'o.npy'})"))
    assert "never unpickles" in one_sentence(e.value)


class Evil:
    def __reduce__(self):
        return (builtins.print, ("pwned",))


def test_pickled_object_in_pt_is_refused(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(SpecError) as e:
        load_data(spec_for(f"file(path={tmp_path / 'evil.pt'})"))
    one_sentence(e.value)
    assert "pwned" not in capsys.readouterr().out


def test_pt_list_is_refused(tmp_path):
    torch.save([1, 2, 3], tmp_path / "l.pt")
    with pytest.raises(SpecError, match="holds a list"):
        load_data(spec_for(f"file(path={tmp_path / 'l.pt'})"))


@pytest.mark.parametrize("content, words", [("", "empty"), ("1,2,3,4,5\n1,x,3,4,5\n", "could not be read as numbers"),
                                            ("1,2,3,4,5\n1,2,3\n", "could not be read as numbers"),
                                            ("1,2,nan,4,5\n", "NaN or infinite")])
def test_malformed_csv(tmp_path, content, words):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(SpecError) as e:
        load_data(spec_for(f"file(path={tmp_path / 'm.csv'})"))
    assert words in one_sentence(e.value)


def test_garbage_npy_and_string_array(tmp_path):
    (tmp_path / "g.npy").write_bytes(b"not numpy at all")
    with pytest.raises(SpecError) as e:
        load_data(spec_for(f"file(path={tmp_path / 'g.npy'})"))
    one_sentence(e.value)
    np.save(tmp_path / "s.npy", np.array([["a"] * 5] * 3))
    with pytest.raises(SpecError, match="not numbers"):
        load_data(spec_for(f"file(path={tmp_path / 's.npy'})"))


def test_empty_npy(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 5)))
    with pytest.raises(SpecError, match="empty"):
        load_data(spec_for(f"file(path={tmp_path / 'e.npy'})"))


def test_digits():
    pytest.importorskip("sklearn")
    x, notes = load_data(parse_spec(arch="64-10", data="digits", batch="2000"), dtype=torch.float64)
    assert x.shape == (1797, 64) and "1797 rows" in notes[0]
    assert abs(x.mean().item()) < 1e-9 and abs(x.std(correction=0).item() - 1) < 1e-9


def test_digits_without_scikit_learn(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(SpecError) as e:
        load_data(parse_spec(arch="64-10", data="digits"))
    assert "data digits needs scikit-learn (a dependency of initscope): pip install scikit-learn" in one_sentence(e.value)


def _one_line_spec_error(spec, *fragments):
    with pytest.raises(SpecError) as err:
        load_data(spec)
    message = str(err.value)
    assert message.startswith("data: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_npz_members_that_are_not_arrays(tmp_path):
    import io
    import zipfile

    with zipfile.ZipFile(tmp_path / "notes.npz", "w") as z:
        z.writestr("notes.txt", "not an array")
    _one_line_spec_error(spec_for(f"file(path={tmp_path / 'notes.npz'})"), "holds no arrays", "notes.txt")
    buf = io.BytesIO()
    np.save(buf, np.full((9, 5), 2.0))
    with zipfile.ZipFile(tmp_path / "mixed.npz", "w") as z:
        z.writestr("readme.txt", "not an array")
        z.writestr("x.npy", buf.getvalue())
    x, _ = load_data(spec_for(f"file(path={tmp_path / 'mixed.npz'})"))  # the first member that is an array
    assert float(x.sum()) == 2.0 * 8 * 5
    _one_line_spec_error(spec_for(f"file(path={tmp_path / 'mixed.npz'}, key=readme.txt)"),
                         "member 'readme.txt' is not an array", "it has x")


def _npy_claiming(shape) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    buf.write(b"\0" * 64)
    return buf.getvalue()


def test_npy_header_larger_than_the_file_is_refused_before_allocating(tmp_path):
    # 2^40 x 8 float64 = 64 TiB promised by a file of under 200 bytes: refused by comparing sizes, not by
    # numpy's allocation (MemoryError, or worse, an allocation that succeeds on an overcommitting system)
    import zipfile

    data = _npy_claiming((2**40, 8))
    assert len(data) < 200
    (tmp_path / "huge.npy").write_bytes(data)
    _one_line_spec_error(spec_for(f"file(path={tmp_path / 'huge.npy'})", arch="8-4"), "truncated",
                         "(1099511627776, 8)", "70,368,744,177,664 bytes", "only 64 bytes follow")
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("x.npy", data)
    _one_line_spec_error(spec_for(f"file(path={tmp_path / 'huge.npz'})", arch="8-4"), "member 'x.npy' is truncated")
    (tmp_path / "ok.npy").write_bytes(_npy_claiming((8,)))  # 8 float64 = exactly the 64 bytes that follow
    x, _ = load_data(spec_for(f"file(path={tmp_path / 'ok.npy'})", arch="8-4"))
    assert x.shape == (1, 8) and float(x.abs().sum()) == 0.0


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_tensor_is_refused_with_the_fix(tmp_path, layout):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "sparse CSR support is in beta"
        t = torch.eye(5).to_sparse() if layout == "coo" else torch.eye(5).to_sparse_csr()
    torch.save(t, tmp_path / "s.pt")
    _one_line_spec_error(spec_for(f"file(path={tmp_path / 's.pt'})"), f"sparse (sparse_{layout})", "to_dense()")


def test_csv_with_only_a_header_is_one_sentence(tmp_path):
    import warnings

    (tmp_path / "h.csv").write_text("a,b,c,d,e\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _one_line_spec_error(spec_for(f"file(path={tmp_path / 'h.csv'})"), "a header row but no rows of numbers")
    assert [str(w.message) for w in caught] == []  # numpy's "input contained no data" would print 2 lines
