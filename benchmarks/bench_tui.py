"""TUI speed: first frame, first plot, keypress-to-redrawn-plot (config change, pin toggle).

    python benchmarks/bench_tui.py            # the real engine (torch), default configuration
    python benchmarks/bench_tui.py --fake     # the fake engine (no torch): the UI's own cost

Each number is measured in a fresh process (so torch's import is counted) and printed as one line;
--repeat N runs it N times and reports the median. Times:
  first_frame   process start -> the app's first screen is up (before torch has loaded)
  first_plot    process start -> the default configuration's curves are drawn
Headless, these two leave out what a terminal adds (writing the frames, and torch's import starting in
the background, which only the `initscope` command does): benchmarks/bench_startup.py measures them
as a user sees them, in a real pseudo-terminal.
  change        a config edit (seed) -> curves redrawn, minus the 0.3 s debounce (engine time included)
  change_total  the same including the debounce
  toggle        key '1' (show/hide pin 1) -> curves redrawn
  tensor        key 't' (next tensor) -> curves redrawn
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]


def child(fake: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    import asyncio

    from initscope.tui.app import DEBOUNCE_S, InitScopeApp
    from initscope.tui.widgets.layer_plot import LayerPlot
    from textual.widgets import Input

    engine = None
    if fake:
        from tests.tui.fake_engine import FakeEngine

        engine = FakeEngine()
    out: dict[str, float] = {}
    app = InitScopeApp(engine=engine)

    async def wait_for(cond, timeout=60.0):
        deadline = time.perf_counter() + timeout
        while not cond():
            if time.perf_counter() > deadline:
                raise TimeoutError
            await asyncio.sleep(0.002)

    def plots():
        return [app.query_one("#plot-std", LayerPlot), app.query_one("#plot-mean", LayerPlot)]

    async def redrawn_after(t: float) -> float:
        await wait_for(lambda: all(p.last_render > t for p in plots()))
        return max(p.last_render for p in plots()) - t

    async def auto_pilot(pilot):
        out["first_frame"] = time.perf_counter() - T0
        out["torch_loaded_at_first_frame"] = float("torch" in sys.modules)
        await wait_for(lambda: app.current is not None and not app.running)
        await wait_for(lambda: all(p.last_render > 0 and p.drawn_points for p in plots()))
        out["first_plot"] = max(p.last_render for p in plots()) - T0
        out["engine_s"] = app.current.elapsed_s
        # config change: type a new seed
        box = app.query_one("#f-seed", Input)
        box.focus()
        await pilot.pause()
        t = time.perf_counter()
        box.value = "7"
        await wait_for(lambda: app.current.spec.seed == 7 and not app.running)
        total = await redrawn_after(t)
        out["change_total"] = total
        out["change"] = total - DEBOUNCE_S
        await pilot.press("escape")
        await pilot.press("ctrl+n")
        await pilot.pause()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            await pilot.press("1")
            times.append(await redrawn_after(t))
        out["toggle"] = statistics.median(times)
        times = []
        for _ in range(4):
            t = time.perf_counter()
            await pilot.press("t")
            times.append(await redrawn_after(t))
        out["tensor"] = statistics.median(times)
        app.exit()

    app.run(headless=True, size=(100, 30), auto_pilot=auto_pilot)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fake", action="store_true", help="the fake engine (no torch)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.child:
        print(json.dumps(child(ns.fake)))
        return
    runs = []
    for _ in range(ns.repeat):
        cmd = [sys.executable, __file__, "--child"] + (["--fake"] if ns.fake else [])
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
        line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
        if res.returncode or not line.startswith("{"):
            sys.exit(f"benchmark child failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        runs.append(json.loads(line))
    keys = runs[0].keys()
    print(f"engine: {'fake' if ns.fake else 'real'}; median of {ns.repeat} fresh processes; 100x30 headless")
    for k in keys:
        v = statistics.median(r[k] for r in runs)
        unit = "" if k == "torch_loaded_at_first_frame" else " s"
        print(f"  {k:<28} {v:.3f}{unit}")


if __name__ == "__main__":
    main()
