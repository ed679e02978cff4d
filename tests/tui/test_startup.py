"""Start-up: `initscope` loads torch in the background (tui/preload.py) and the first frame never waits for it.

Each test runs in a fresh interpreter, so torch is not already loaded by other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

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


def test_first_frame_comes_before_torch_and_the_first_run_uses_the_preloaded_torch():
    res = _run(GATED_APP)
    assert res.returncode == 0, res.stderr[-2000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert seen == {"torch_on_main_thread": False, "preload_running_at_first_frame": True,
                    "torch_loaded_at_first_frame": False, "first_run_depth": 3, "status": 0}, seen


def test_preload_switch_off_and_interval_restored():
    code = textwrap.dedent("""
        import sys
        from initscope.tui import preload
        before = sys.getswitchinterval()
        assert preload.start() is None and preload.done.is_set(), "INITSCOPE_PRELOAD=0 still started it"
        assert "torch" not in sys.modules
        preload.enabled = lambda: True
        preload.done.clear()
        thread = preload.start()
        assert preload.start() is thread, "a second start() started a second thread"
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
