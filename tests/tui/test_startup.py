"""Start-up (tui/preload.py): torch loads off the first frame's path, in a child process or a thread.

Each test runs in a fresh interpreter, so torch is not already loaded by other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.tui.fake_engine import FakeEngine

# torch's import is held at a gate until the app's first frame is up: if anything on the way to the
# first frame needed torch, the app would hang here (and the test time out) instead of drawing it
GATED_APP = textwrap.dedent("""
    import importlib.abc, importlib.machinery, json, sys, threading, time
    gate = threading.Event()
    seen = {"torch_on_main_thread": False}

    class HeldLoader(importlib.abc.Loader):  # waits in exec_module, under torch's own import lock only
        def __init__(self, real):
            self.real = real
        def create_module(self, spec):
            return self.real.create_module(spec)
        def exec_module(self, module):
            gate.wait(60)
            self.real.exec_module(module)

    class HoldTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "torch":
                return None
            if threading.current_thread() is threading.main_thread():
                seen["torch_on_main_thread"] = True
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            spec.loader = HeldLoader(spec.loader)
            return spec

    sys.meta_path.insert(0, HoldTorch())
    from textual.app import App
    from initscope.tui import app as app_module, cli, preload

    def run_headless(self, **_):
        async def pilot(pilot):
            seen["preload_running_at_first_frame"] = preload._thread is not None and not preload.done.is_set()
            seen["torch_loaded_at_first_frame"] = hasattr(sys.modules.get("torch"), "Tensor")
            gate.set()
            deadline = time.monotonic() + 240
            while self.current is None and time.monotonic() < deadline:
                await pilot.pause(0.05)
            seen["first_run_depth"] = self.current.spec.depth if self.current is not None else 0
            self.exit()
        return App.run(self, headless=True, size=(120, 40), auto_pilot=pilot)

    app_module.InitScopeApp.run = run_headless
    status = cli.main(["--arch", "64-64x3", "--batch", "32"])
    print(json.dumps({**seen, "status": status}))
""")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_thread_mode_first_frame_comes_before_torch_and_the_first_run_uses_the_preloaded_torch():
    res = _run(GATED_APP, INITSCOPE_PRELOAD="thread")
    assert res.returncode == 0, res.stderr[-2000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert seen == {"torch_on_main_thread": False, "preload_running_at_first_frame": True,
                    "torch_loaded_at_first_frame": False, "first_run_depth": 3, "status": 0}, seen


def test_preload_off_and_the_switch_interval_restored():
    code = textwrap.dedent("""
        import sys
        from initscope.tui import preload
        before = sys.getswitchinterval()
        from initscope.engine.spec import default_spec
        assert preload.start(default_spec()) is None and preload.done.is_set(), "INITSCOPE_PRELOAD=0 still started it"
        assert "torch" not in sys.modules
        thread = preload.start_import()
        assert preload.start_import() is thread, "a second start started a second thread"
        assert preload.done.wait(240)
        assert hasattr(sys.modules["torch"], "Tensor") and "initscope.engine.runner" in sys.modules
        assert sys.getswitchinterval() == before, sys.getswitchinterval()
    """)
    res = _run(code, INITSCOPE_PRELOAD="0")
    assert res.returncode == 0, res.stderr[-2000:]


def test_commands_that_need_no_engine_never_load_torch():
    code = ("import sys; from initscope.tui import cli; cli.main(['list']); cli.main(['explain']); "
            "assert 'torch' not in sys.modules, 'torch loaded'")
    res = _run(code)
    assert res.returncode == 0, res.stderr[-2000:]


# process mode: the first run comes from a child interpreter; this process has not even started
# importing torch when the first frame is up, and the child's result is the engine's own
CHILD_APP = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    from textual.app import App
    from initscope.tui import app as app_module, cli, preload

    def run_headless(self, **_):
        async def pilot(pilot):
            seen["torch_at_first_frame"] = "torch" in sys.modules
            deadline = time.monotonic() + 240
            while self.current is None and time.monotonic() < deadline:
                await pilot.pause(0.05)
            seen["served_by_child"] = self.engine.served_by_child
            seen["forked"] = self.engine.forked
            seen["result"] = self.current
            self.exit()
        return App.run(self, headless=True, size=(120, 40), auto_pilot=pilot)

    seen = {}
    app_module.InitScopeApp.run = run_headless
    real_start = preload.start

    def start(spec):  # what the child inherits: the environment at the fork
        seen["omp_wait_policy_at_start"] = os.environ.get("OMP_WAIT_POLICY")
        return real_start(spec)

    preload.start = start
    status = cli.main(["--arch", "64-64x3", "--batch", "32", "--seed", "5"])
    from initscope import engine
    mine = seen.pop("result")
    ref = engine.run(mine.spec)
    seen["same_stats"] = all(np.allclose(mine.stats[t], ref.stats[t], rtol=1e-6, atol=0, equal_nan=True)
                             for t in ref.stats) and sorted(mine.stats) == sorted(ref.stats)
    seen["same_theory"] = bool(np.allclose(mine.theory.post_std, ref.theory.post_std, rtol=1e-12))
    print(json.dumps({**seen, "status": status}))
""")


def test_process_mode_first_run_comes_from_a_forked_child_and_matches_the_engine(tmp_path):
    """The child is a fork of the app's process (no second interpreter start, no second import of what
    the app has already imported), it starts with torch's threads told to sleep rather than spin
    (OMP_WAIT_POLICY=PASSIVE, unless the user set it), and its numbers are the engine's. Both processes
    write their time stamps to the one INITSCOPE_TRACE_STARTUP file."""
    from initscope.tui.startup_trace import read

    trace = tmp_path / "trace.txt"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    res = subprocess.run([sys.executable, "-c", CHILD_APP], capture_output=True, text=True, timeout=300,
                         env={**env, "INITSCOPE_PRELOAD": "process", "INITSCOPE_TRACE_STARTUP": str(trace)})
    assert res.returncode == 0, res.stderr[-2000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert seen == {"torch_at_first_frame": False, "served_by_child": True, "forked": True, "same_stats": True,
                    "same_theory": True, "omp_wait_policy_at_start": "PASSIVE", "status": 0}, seen
    stamps = read(str(trace))
    pids = {event: pid for _t, pid, _cpu, event in stamps}
    parent = {"main", "preload started", "app imported", "first frame", "parent has child result", "result drawn"}
    child = {"child started", "child torch imported", "child run done"}
    assert parent | child <= set(pids), sorted(pids)
    assert len({pids[e] for e in parent}) == 1 and len({pids[e] for e in child}) == 1, pids
    assert pids["main"] != pids["child started"], pids
    assert all(cpu >= 0 for _t, _pid, cpu, _e in stamps)


def test_calm_openmp_keeps_the_users_choice(monkeypatch):
    from initscope.tui import preload

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    preload.calm_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    preload.calm_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


# a forked child that fails (here: its run raises) never returns into the app's code: it exits, and the
# first run happens in the app's process; a cancel kills a forked child that is still importing torch
FORK_FAILS = textwrap.dedent("""
    import json, os, sys, time
    from initscope.engine.errors import Cancelled
    from initscope.engine.spec import default_spec
    from initscope.tui import preload

    class Recording:
        runs = 0
        def run(self, spec, *, progress=None, cancelled=None):
            Recording.runs += 1
            return "ran here"

    def broken(spec, out):
        raise RuntimeError("the child's run failed")

    real_serve, preload._serve_first_run = preload._serve_first_run, broken
    spec = default_spec()
    first = preload.FirstRunInChild(spec, Recording(), after_first=lambda: None)
    with open(sys.argv[1], "a") as f:  # a child that came back here would write a second line
        f.write(f"{os.getpid()} forked={first.forked}\\n")
    seen = {"result": first.run(spec), "served_by_child": first.served_by_child, "here": Recording.runs}
    preload._serve_first_run = real_serve
    second = preload.FirstRunInChild(spec, Recording(), after_first=lambda: None)
    child = second._proc
    t = time.monotonic()
    try:
        second.run(spec, cancelled=lambda: time.monotonic() - t > 0.2)
    except Cancelled:
        seen["cancelled"] = True
    seen["child_gone"] = child.poll() is not None and child.returncode != 0
    seen["cancel_s_under_10"] = time.monotonic() - t < 10
    print(json.dumps(seen))
""")


def test_forked_child_failure_falls_back_and_a_cancel_kills_it(tmp_path):
    log = tmp_path / "pids.txt"
    res = subprocess.run([sys.executable, "-c", FORK_FAILS, str(log)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert seen == {"result": "ran here", "served_by_child": False, "here": 1, "cancelled": True,
                    "child_gone": True, "cancel_s_under_10": True}, seen
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and lines[0].endswith("forked=True"), lines


class RecordingEngine:
    """Stands in for initscope.engine: records the runs it is asked for."""

    def __init__(self):
        self.runs = []

    def run(self, spec, *, progress=None, cancelled=None):
        self.runs.append(spec)
        return ("ran here", spec)


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_first_run_in_child_passes_on_progress_and_the_result():
    from initscope.engine.spec import default_spec
    from initscope.tui.preload import FirstRunInChild

    code = ("import pickle, struct, sys; out = sys.stdout.buffer; sys.stdin.buffer.read(); "
            "[out.write(b'P' + struct.pack('<QQ', i, 3)) for i in (1, 2, 3)]; "
            "body = pickle.dumps({'result': 42}); out.write(b'R' + struct.pack('<Q', len(body)) + body)")
    engine, settled, steps = RecordingEngine(), [], []
    spec = default_spec()
    first = FirstRunInChild(spec, engine, command=_child(code), after_first=lambda: settled.append(1))
    assert first.run(spec, progress=lambda d, t: steps.append((d, t))) == {"result": 42}
    assert steps == [(1, 3), (2, 3), (3, 3)] and first.served_by_child
    assert settled == [], "torch's import here began before the app had drawn the result"
    first.warm()
    assert settled == [1]
    assert first.run(spec) == ("ran here", spec), "a second run of the same spec must run, not reuse"
    assert engine.runs == [spec]


def test_first_run_in_child_falls_back_when_the_child_fails_or_the_spec_differs():
    from initscope.engine.spec import default_spec, parse_spec
    from initscope.tui.preload import FirstRunInChild

    spec = default_spec()
    engine = RecordingEngine()
    failed = FirstRunInChild(spec, engine, command=_child("import sys; sys.exit(3)"), after_first=lambda: None)
    assert failed.run(spec) == ("ran here", spec) and not failed.served_by_child
    other = parse_spec(arch="64-64x2")
    unused = FirstRunInChild(spec, engine, command=_child("import time; time.sleep(60)"), after_first=lambda: None)
    proc = unused._proc
    assert unused.run(other) == ("ran here", other)
    assert proc.poll() is not None, "the child kept running after the first run went elsewhere"
    assert engine.runs == [spec, other]


def test_first_run_in_child_cancel_stops_the_child():
    from initscope.engine.errors import Cancelled
    from initscope.engine.spec import default_spec
    from initscope.tui.preload import FirstRunInChild

    spec = default_spec()
    first = FirstRunInChild(spec, RecordingEngine(), command=_child("import time; time.sleep(60)"),
                            after_first=lambda: None)
    proc = first._proc
    t = time.monotonic()
    with pytest.raises(Cancelled):
        first.run(spec, cancelled=lambda: time.monotonic() - t > 0.2)
    assert proc.poll() is not None and time.monotonic() - t < 10


def test_default_mode_uses_a_child_only_when_a_cpu_is_free(monkeypatch):
    from initscope.tui import preload

    monkeypatch.delenv("INITSCOPE_PRELOAD", raising=False)
    monkeypatch.setattr(preload, "_cpus", lambda: 2)
    monkeypatch.setattr(preload.os, "getloadavg", lambda: (1.2, 0.5, 0.5))  # one busy process: a CPU is free
    assert preload.mode() == ("process" if os.name == "posix" else "off")
    monkeypatch.setattr(preload.os, "getloadavg", lambda: (2.3, 0.5, 0.5))  # both CPUs busy
    assert preload.mode() == "off"
    monkeypatch.setattr(preload, "_cpus", lambda: 1)
    monkeypatch.setattr(preload.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert preload.mode() == "off"
    for value, expected in (("thread", "thread"), ("process", "process"), ("0", "off"), ("off", "off")):
        monkeypatch.setenv("INITSCOPE_PRELOAD", value)
        assert preload.mode() == expected


def test_process_mode_with_a_preset_starts_nothing(monkeypatch):
    from initscope.tui import preload

    monkeypatch.setenv("INITSCOPE_PRELOAD", "process")
    monkeypatch.setattr(preload, "_thread", None)
    assert preload.start(None) is None and preload._thread is None


class WarmRecordingEngine(FakeEngine):
    """The fake engine with FirstRunInChild's warm(): records what the app shows when it is called."""

    def __init__(self):
        super().__init__()
        self.warmed = []

    def warm(self):
        app = self.app
        self.warmed.append((app.current is not None and app.current.spec == app.start_spec, app.preview is None))


async def test_the_app_warms_the_engine_once_after_the_first_result_is_drawn():
    from initscope.engine.spec import parse_spec
    from initscope.tui.app import InitScopeApp

    from tests.tui.conftest import settle

    engine = WarmRecordingEngine()
    app = InitScopeApp(parse_spec(arch="32-32x3", batch="16"), engine=engine)
    engine.app = app
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause(0.1)
        assert engine.warmed == [(True, True)]
        app.start_run(parse_spec(arch="32-32x4", batch="16"))
        await settle(pilot)
        await pilot.pause(0.1)
        assert engine.warmed == [(True, True)], "warmed again"


def test_can_fork_only_on_linux_with_one_thread_and_no_torch(monkeypatch):
    import threading

    from initscope.tui import preload

    monkeypatch.setattr(preload.sys, "platform", "linux")
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "torch")
    assert preload.can_fork()
    monkeypatch.setattr(threading, "active_count", lambda: 2)  # another thread's locks would stay held
    assert not preload.can_fork()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setitem(sys.modules, "torch", object())  # a forked torch hangs in its thread pool
    assert not preload.can_fork()
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.setattr(preload.sys, "platform", "darwin")  # forked Accelerate is unsafe
    assert not preload.can_fork()


def test_no_child_when_fork_fails_the_first_run_happens_here(monkeypatch):
    from initscope.engine.spec import default_spec
    from initscope.tui import preload

    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(preload, "can_fork", lambda: True)
    monkeypatch.setattr(preload.os, "fork", no_fork)
    spec, engine = default_spec(), RecordingEngine()
    first = preload.FirstRunInChild(spec, engine, after_first=lambda: None)
    assert first.forked and first._proc is None
    assert first.run(spec) == ("ran here", spec) and not first.served_by_child
