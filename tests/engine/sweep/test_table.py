"""The tidy table: written incrementally, read back, resumed after a cut, refused for another sweep; failures,
cancel and Ctrl-C keep what finished."""

import json
import math

import numpy as np
import pytest
from initscope.engine.errors import SpecError
from initscope.engine.sweep import SweepInterrupted, parse_vary, run_sweep
from initscope.engine.sweep.backends import InProcess
from initscope.engine.sweep.cell import run_cell
from initscope.engine.sweep.table import load_table

BASE = {"arch": "12-12x3", "act": "tanh", "init": "lecun_normal", "bias": "normal(std=0.1)", "batch": "16",
        "device": "cpu", "trials": "2"}
AXES = [parse_vary("init.gain=0.8,1.6"), parse_vary("bias.std=0,0.4,0.8")]


class Recording(InProcess):
    """InProcess that remembers which cells it ran, and can stop (KeyboardInterrupt) after `stop_after` cells."""

    def __init__(self, stop_after=None):
        self.ran, self.stop_after = [], stop_after

    def run(self, tasks):
        for task in tasks:
            if self.stop_after is not None and len(self.ran) == self.stop_after:
                raise KeyboardInterrupt
            self.ran.append(task.index)
            yield run_cell(task)


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "full.csv"
    return run_sweep(BASE, AXES, InProcess(), out=path), path


def test_rows_are_tidy_and_the_grid_is_the_mean_over_trials(full):
    table, _ = full
    assert table.shape == (2, 3)
    measured = [r for r in table.rows if r["source"] == "measured"]
    assert len(measured) == 6 * 2 and len([r for r in table.rows if r["source"] == "predicted"]) == 6
    grid = table.grid("log_q_ratio")
    for r in table.rows:
        if r["source"] == "predicted":
            i, j = r["cell"] // 3, r["cell"] % 3
            pair = [m["log_q_ratio"] for m in measured if m["cell"] == r["cell"]]
            assert grid[i, j] == pytest.approx(np.mean(pair), rel=1e-15)
            assert (r["init.gain"], r["bias.std"]) == (AXES[0].values[i], AXES[1].values[j])
    assert table.coords_of(4) == {"init.gain": 1.6, "bias.std": 0.4}


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_the_file_reads_back_to_the_same_rows(full, tmp_path, ext):
    table, path = full
    if ext == "jsonl":
        path = tmp_path / "t.jsonl"
        run_sweep(BASE, AXES, InProcess(), out=path)
        assert json.loads(path.read_text().splitlines()[0])["schema"] == "initscope.sweep-table/1"
    back = load_table(path)
    assert _strip(back.rows) == _strip(table.rows)
    assert back.axes == tuple(AXES)


def test_resume_after_a_cut_runs_only_the_missing_cells_and_gives_the_same_table(full, tmp_path):
    table, path = full
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    # keep the header (2 lines) and cells 0-1 whole (3 rows each), then half a line of cell 2: a killed write
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(lines[:2 + 6]) + lines[8] + lines[9][:10])
    assert load_table(cut).done_cells() == {0, 1}
    backend = Recording()
    resumed = run_sweep(BASE, AXES, backend, out=cut, resume=True)
    assert backend.ran == [2, 3, 4, 5]
    assert _strip(resumed.rows) == _strip(table.rows)  # bit-identical: every cell is seeded by its spec
    assert _strip(load_table(cut).rows) == _strip(table.rows)


def test_resume_refuses_another_sweep(full, tmp_path):
    _, path = full
    copy = tmp_path / "copy.csv"
    copy.write_text(path.read_text())
    with pytest.raises(SpecError, match="another sweep .its axes have other values"):
        run_sweep(BASE, [parse_vary("init.gain=0.8,1.7"), AXES[1]], InProcess(), out=copy, resume=True)
    with pytest.raises(SpecError, match="its spec differs in act"):
        run_sweep({**BASE, "act": "relu"}, AXES, InProcess(), out=copy, resume=True)


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from initscope.engine import runner

    real = runner.run

    def flaky(spec, **kw):
        if spec.init.get("gain") == 1.6 and spec.bias.get("std") == 0.4:
            raise RuntimeError("boom")
        return real(spec, **kw)

    monkeypatch.setattr(runner, "run", flaky)
    table = run_sweep(BASE, AXES, InProcess(), out=tmp_path / "f.csv")
    assert list(table.failed()) == [4] and "RuntimeError: boom" in table.failed()[4]
    assert table.done_cells() == set(range(6))
    assert math.isnan(table.grid("log_q_ratio")[1, 1]) and np.isfinite(table.grid("log_q_ratio")[1, 0])
    monkeypatch.setattr(runner, "run", real)  # a resume runs the failed cell again
    backend = Recording()
    again = run_sweep(BASE, AXES, backend, out=tmp_path / "f.csv", resume=True)
    assert backend.ran == [4] and not again.failed()


def test_cancel_and_ctrl_c_keep_the_finished_cells(tmp_path):
    calls = []
    table = run_sweep(BASE, AXES, InProcess(), out=tmp_path / "c.csv", cancel=lambda: len(calls) >= 3,  # the first call: 0 done
                      progress=lambda done, total, eta: calls.append((done, total, eta)))
    assert table.interrupted and table.done_cells() == {0, 1}
    assert calls[0] == (0, 6, None) and calls[-1][:2] == (2, 6) and calls[-1][2] > 0  # ETA of 4 cells left
    with pytest.raises(SweepInterrupted) as e:
        run_sweep(BASE, AXES, Recording(stop_after=3), out=tmp_path / "k.jsonl")
    assert e.value.table.done_cells() == {0, 1, 2}
    assert load_table(tmp_path / "k.jsonl").done_cells() == {0, 1, 2}


def test_resume_needs_an_output_and_the_table_needs_a_known_extension(tmp_path):
    with pytest.raises(SpecError, match="give --output"):
        run_sweep(BASE, AXES, InProcess(), resume=True)
    with pytest.raises(SpecError, match=".csv or .jsonl"):
        run_sweep(BASE, AXES, InProcess(), out=tmp_path / "t.json")
