"""The Ray backend on a real local Ray cluster of 2 CPUs (ray is in the dev extra: CI runs these, nothing is skipped).

One cluster for the whole session (starting one takes 5-15 s here): started by the backend's own
start_local_cluster, so the tests go through the same start-up as a user's sweep (usage statistics off, token
authentication on, 100 MiB object store, no dashboard), with 0 GPUs so the checks are the same on a GPU machine.
The backends see it as the caller's connection and leave it open; the fixture shuts it down at the end.
"""

from __future__ import annotations

import os
import sys
import time

import pytest
from initscope.engine.errors import RunError, SpecError
from initscope.engine.sweep import parse_vary, ray_backend, run_sweep
from initscope.engine.sweep.backends import InProcess
from initscope.engine.sweep.cell import CellResult, CellTask
from initscope.engine.sweep.ray_backend import RayBackend


@pytest.fixture(scope="session")
def ray_cluster():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network in CI; also set by import_ray
    ray = ray_backend.import_ray()
    ray_backend.start_local_cluster(ray, num_cpus=2, num_gpus=0)
    yield ray
    ray.shutdown()


BASE = {"arch": "12-12x3", "act": "tanh", "init": "lecun_normal", "bias": "normal(std=0.1)", "batch": "16",
        "device": "cpu", "trials": "2"}


def _tasks(n: int, device: str = "cpu") -> list[CellTask]:
    return [CellTask(i, {"seed": i}, {"device": device}) for i in range(n)]


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


def test_ray_gives_the_in_process_table(ray_cluster):
    """Every cell is seeded by its spec, so where it runs cannot change a measured number, and run_sweep makes
    the predicted rows in the driver (numpy's BLAS sums in an order that follows its thread count, and Ray runs
    tasks with OMP_NUM_THREADS = 1: xi_c moved by 3.6e-11 relative when tasks predicted): the whole table is
    equal bit for bit, whatever order the cells finished in (the bias axis puts c^L and the gradients to work)."""
    axes = [parse_vary("init.gain=0.8,1.2,1.6,3"), parse_vary("bias.std=0,0.5")]
    here = run_sweep(BASE, axes, InProcess())
    there = run_sweep(BASE, axes, RayBackend())
    assert len(there.rows) == 8 * 3 and [r["cell"] for r in there.rows] == [r["cell"] for r in here.rows]
    assert _strip(here.rows) == _strip(there.rows)
    assert any(r["source"] == "predicted" and r["xi_c"] is not None for r in there.rows)


def test_a_cell_that_fails_in_the_engine_is_a_failed_row_on_ray_too(ray_cluster):
    table = run_sweep(BASE, [parse_vary("data=gaussian,file(path=/no/such.npy)")], RayBackend())
    failed = [r for r in table.rows if r["source"] == "failed"]
    assert [r["cell"] for r in failed] == [1] and "no file" in failed[0]["error"]
    assert {r["cell"] for r in table.rows if r["source"] == "measured"} == {0}


def test_without_ray_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as when it is not installed
    with pytest.raises(SpecError) as e:
        RayBackend()
    message = str(e.value)
    assert e.value.field == "backend" and "\n" not in message
    assert "pip install 'initscope[ray]'" in message and message.endswith("use --backend local.")


@pytest.mark.parametrize("gpus", [-1, 1.5, "x", float("nan"), float("inf")])
def test_a_bad_gpu_share_is_refused(gpus):
    with pytest.raises(SpecError, match="gpus-per-cell"):
        RayBackend(gpus_per_cell=gpus)


@pytest.mark.parametrize("cpus", [0, -2, 1.5, "two", True])
def test_a_bad_cpu_count_is_refused(cpus):
    with pytest.raises(SpecError, match="cpus-per-cell"):
        RayBackend(cpus_per_cell=cpus)


def test_resources_the_cluster_lacks_are_refused_before_any_task_waits_forever(ray_cluster):
    with pytest.raises(SpecError, match="the Ray cluster has 0 GPUs"):
        RayBackend(gpus_per_cell=0.25)
    with pytest.raises(SpecError, match="the Ray cluster has 2 CPUs"):
        RayBackend(cpus_per_cell=3)
    with pytest.raises(SpecError, match="cells on device cuda:1 need a share of a GPU"):
        RayBackend().run(_tasks(2, device="cuda:1"))
    assert ray_cluster.is_initialized()  # refusing did not take the caller's cluster down


def test_a_dead_address_fails_in_seconds_with_one_sentence(ray_cluster):
    backend = RayBackend()  # the caller's cluster; then try to connect elsewhere as --address would
    start = time.perf_counter()
    with pytest.raises(RunError) as e:
        backend._connect("127.0.0.1:1")  # nothing listens on port 1
    assert time.perf_counter() - start < ray_backend.CONNECT_TIMEOUT_S + 1
    assert "no Ray cluster answers at 127.0.0.1:1" in str(e.value) and "\n" not in str(e.value)


def test_tasks_see_no_gpu_and_use_as_many_threads_as_cpus(ray_cluster):
    def probe(task, threads):
        import torch

        ray_backend.limit_threads(threads)
        return CellResult(task.index, [{"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                                        "threads": torch.get_num_threads()}])

    backend = RayBackend(cpus_per_cell=2)
    backend._cell = probe
    (result,) = backend.run(_tasks(1))
    assert result.rows == [{"cuda": "", "threads": 2}]


def test_a_failing_cell_is_one_line_and_the_others_finish(ray_cluster):
    def cell(task, threads):
        if task.index == 1:
            raise ValueError("bad value\nsecond line of the message")
        return CellResult(task.index, [{"cell": task.index}], 0.5)

    backend = RayBackend()
    backend._cell = cell
    results = {r.index: r for r in backend.run(_tasks(3))}
    assert sorted(results) == [0, 1, 2]
    assert results[1].error == "ValueError: bad value" and results[1].rows == []
    assert results[0].error is None and results[0].rows == [{"cell": 0}] and results[2].rows == [{"cell": 2}]


def test_a_cell_that_kills_its_worker_is_one_line_and_the_others_finish(ray_cluster, tmp_path):
    def cell(task, threads):
        if task.index == 0:
            with open(tmp_path / "attempts", "a") as f:  # one line per attempt (workers share this machine's disk)
                f.write("x\n")
            os._exit(3)  # the worker process dies, as under the kernel's out-of-memory killer
        return CellResult(task.index, [{"cell": task.index}])

    backend = RayBackend()
    backend._cell = cell
    results = {r.index: r for r in backend.run(_tasks(2))}
    assert results[1].rows == [{"cell": 1}]
    assert results[0].rows == [] and "\n" not in results[0].error and "Worker" in results[0].error, results[0].error
    assert (tmp_path / "attempts").read_text().count("x") == 1 + ray_backend.MAX_RETRIES


def test_ctrl_c_keeps_the_finished_cells_and_cancels_the_rest(ray_cluster):
    def cell(task, threads):
        if task.index >= 2:
            time.sleep(60)  # far longer than the test: only a cancel frees the two CPUs in time
        return CellResult(task.index, [{"cell": task.index}])

    class InterruptedOnSecondWait:
        """ray, except that the second ray.wait is interrupted (Ctrl-C) once another cell has finished."""

        def __init__(self):
            self.waits = 0

        def wait(self, refs, **kwargs):
            self.waits += 1
            if self.waits == 2:
                assert ray_cluster.wait(refs, num_returns=1, timeout=30)[0], "the second quick cell never finished"
                raise KeyboardInterrupt
            return ray_cluster.wait(refs, **kwargs)

        def __getattr__(self, name):
            return getattr(ray_cluster, name)

    backend = RayBackend()
    backend._cell = cell
    backend._ray = InterruptedOnSecondWait()
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for result in backend.run(_tasks(5)):
            seen.append(result.index)
    assert sorted(seen) == [0, 1]  # the first yielded before the interrupt, the second finished during it
    assert backend._pending == []

    backend = RayBackend()  # the sleeping cells were cancelled: two new cells get the two CPUs at once
    backend._cell = cell
    start = time.perf_counter()
    assert sorted(r.index for r in backend.run(_tasks(2))) == [0, 1]
    assert time.perf_counter() - start < 30


def test_close_leaves_the_callers_cluster_running(ray_cluster):
    backend = RayBackend()
    backend.close()
    backend.close()
    assert ray_cluster.is_initialized()
