"""Backends: local processes give the same rows as in-process (bit-identical per seed), cores are not
oversubscribed, and make_backend refuses what a backend cannot do."""

import pytest
from initscope.engine.errors import SpecError
from initscope.engine.sweep import cell_task, parse_vary, run_sweep, sweep_base
from initscope.engine.sweep.backends import InProcess, LocalProcesses, make_backend, split_cores
from initscope.engine.sweep.grid import build_grid

BASE = {"arch": "12-12x3", "act": "tanh", "init": "lecun_normal", "bias": "normal(std=0.1)", "batch": "16",
        "device": "cpu", "trials": "2"}


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


def test_two_local_workers_give_the_in_process_rows_bit_for_bit():
    axes = [parse_vary("init.gain=0.8,1.2,1.6"), parse_vary("seed=0,1")]
    here = run_sweep(BASE, axes, InProcess())
    backend = LocalProcesses(workers=2)
    try:
        there = run_sweep(BASE, axes, backend)
        assert _strip(there.rows) == _strip(here.rows)  # rows sorted by cell, whatever order the workers finished
        # closing the iterator early (what Ctrl-C and cancel do) ends the workers at once
        processes = list(backend._start()._processes.values())
        results = backend.run([cell_task(c, None) for c in build_grid(sweep_base(BASE), axes)])
        assert next(results).error is None
        results.close()
        assert backend._pool is None
        for p in processes:
            p.join(timeout=10)
            assert not p.is_alive()
    finally:
        backend.close()


@pytest.mark.parametrize("workers, cores, expected", [(None, 8, (8, 1)), (2, 8, (2, 4)), (3, 8, (3, 2)),
                                                     (16, 8, (16, 1)), (None, 1, (1, 1))])
def test_threads_times_workers_fit_the_cores(workers, cores, expected):
    assert split_cores(workers, cores) == expected


def test_make_backend_names_and_refusals():
    assert isinstance(make_backend("inprocess"), InProcess)
    assert isinstance(make_backend("local", workers=1), LocalProcesses)
    for kwargs, fragment in [({"name": "dask"}, "choose one of local, inprocess, ray"),
                             ({"name": "local", "address": "auto"}, "only the ray backend"),
                             ({"name": "local", "gpus_per_cell": 0.5}, "only the ray backend"),
                             ({"name": "local", "workers": 0}, "at least 1"),
                             ({"name": "inprocess", "workers": 2}, "only the local backend")]:
        name = kwargs.pop("name")
        with pytest.raises(SpecError, match=fragment):
            make_backend(name, **kwargs)
