"""Start-up as a user sees it: `initscope` in a real pseudo-terminal, launch -> first frame -> first plot.

    python benchmarks/bench_startup.py                      # median of 5 fresh processes at 120x40
    python benchmarks/bench_startup.py --repeat 9 --size 80x24
    python benchmarks/bench_startup.py --env INITSCOPE_PRELOAD=0      # torch loads with the first run
    python benchmarks/bench_startup.py --env INITSCOPE_PRELOAD=process --compare INITSCOPE_PRELOAD=0
                                   # the first run in a child process against none, interleaved, one run
    python benchmarks/bench_startup.py --trace      # also the app's own time stamps (where the time goes)
    python benchmarks/bench_startup.py --floor      # the parts no start-up can avoid, as fresh processes
    python benchmarks/bench_startup.py --env PYTHONDONTWRITEBYTECODE=   # with bytecode caches written/used

Without INITSCOPE_PRELOAD, `initscope` picks its start-up by the machine's load (tui/preload.py: the
child process only when a CPU is free), so name the mode when comparing.

Each repeat spawns a fresh `initscope` (default configuration) on a new pty of the given size with
TERM=xterm-256color, reads everything it writes to the terminal, and stops it with ctrl+q once the
curves are on screen. Times are from just before the process is spawned (so the interpreter's start
and every import count) to the moment the bytes reach the terminal:
  first_frame  the first frame is written (the Footer's "Presets" key label appears)
  first_theory the prediction is drawn: its points (U+2022 '•'), which the app draws while the first run
               still measures (nothing else on the default screen uses that glyph before then)
  first_plot   the curves are written: braille dots (U+2801-U+28FF), which the plots use for measured
               curves and nothing else on the default screen draws
  cpu_at_plot  CPU seconds (user + system, all threads) the process had used by then: less sensitive
               to other load on the machine than the wall-clock times
  load         the 1-minute load average when the run started (other processes share the CPUs)
With --trace, each run also gets INITSCOPE_TRACE_STARTUP (tui/startup_trace.py) and the table adds the
app's own stamps, both processes' (the parent's and the first-run child's, "child ..."), on the same
clock as the terminal's times. One untimed launch comes first (--warmup): it fills the disk cache (and,
where Python may write them, the bytecode caches) as any launch after the first finds them.
With --floor, no app is launched: fresh interpreters time what any start-up pays before the first
measured plot, whatever the app does meanwhile: the interpreter's start, `import torch`, and `import
torch` plus the engine's run of the default spec (the first-run child's whole work).
With --compare, the runs alternate between the plain environment and the one given, so both see the
same machine load; the table shows each median, and the headline ratio is the median over rounds of
the ratio within a round (the ratio of the medians is printed too). No Textual or torch import happens
in this process; only the standard library is used.
"""

from __future__ import annotations

import argparse
import codecs
import fcntl
import os
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_FRAME_TEXT = "Presets"
KEYS = ("first_frame", "first_theory", "first_plot", "cpu_at_plot", "load")
THEORY_POINT = "\u2022"


def has_braille_dot(text: str) -> bool:
    """True when text holds a braille cell with at least one dot (U+2800 is the blank cell)."""
    return any("\u2801" <= ch <= "\u28ff" for ch in text)


def initscope_command() -> list[str]:
    """The `initscope` next to this interpreter (a virtualenv's bin/), else the one on PATH."""
    beside = Path(sys.executable).with_name("initscope")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("initscope")
    if found:
        return [found]
    return [sys.executable, "-m", "initscope.tui"]


def one_start(cmd: list[str], cols: int, rows: int, extra_env: dict[str, str], timeout: float,
              trace: bool = False) -> dict[str, float]:
    """Spawn cmd on a fresh pty of cols x rows; seconds from spawn to the first frame and to the first plot.

    trace: also the app's own time stamps (tui/startup_trace.py), as "trace: <event>" keys, seconds from spawn."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows), **extra_env}
    trace_file = None
    if trace:
        fd, trace_file = tempfile.mkstemp(prefix="initscope-trace-", suffix=".txt")
        os.close(fd)
        env["INITSCOPE_TRACE_STARTUP"] = trace_file
    load = os.getloadavg()[0]
    wall0 = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                            close_fds=True)
    os.close(slave)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    seen = ""
    out: dict[str, float] = {"load": load}
    try:
        while "first_plot" not in out:
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"no plot after {timeout:.0f} s; the screen so far ends with {seen[-300:]!r}")
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    raise RuntimeError(f"initscope exited ({proc.returncode}) before a plot: {seen[-600:]!r}")
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                raise RuntimeError(f"initscope closed the terminal before a plot: {seen[-600:]!r}")
            now = time.perf_counter() - t0
            text = decoder.decode(chunk)
            seen = (seen + text)[-20000:]
            if "first_frame" not in out and FIRST_FRAME_TEXT in seen:
                out["first_frame"] = now
            if "first_frame" in out and "first_theory" not in out and THEORY_POINT in text:
                out["first_theory"] = now
            if "first_frame" in out and has_braille_dot(text):
                out.setdefault("first_theory", now)  # drawn together with the measured curves
                out["first_plot"] = now
                out["cpu_at_plot"] = process_cpu_seconds(proc.pid)
    finally:
        _stop(proc, master)
    if trace_file is not None:
        out.update(read_trace(trace_file, wall0, proc.pid))
        os.unlink(trace_file)
    return out


def read_trace(path: str, wall0: float, pid: int) -> dict[str, float]:
    """The app's stamps (the first of each event) as "trace: <event>" -> seconds after wall0, and the CPU
    seconds its process had used by then as "cpu: <event>"; a child's events start with "child"."""
    out: dict[str, float] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            t, _pid, cpu, event = line.rstrip("\n").split(" ", 3)
            out.setdefault(f"trace: {event}", float(t) - wall0)
            out.setdefault(f"cpu: {event}", float(cpu))
    return out


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far, all its threads (Linux /proc), else nan."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _stop(proc: subprocess.Popen, master: int) -> None:
    """ctrl+q, then SIGTERM, then SIGKILL; drain the terminal meanwhile so the child never blocks on it."""
    try:
        os.write(master, b"\x11")
    except OSError:
        pass
    deadline = time.perf_counter() + 5
    while proc.poll() is None and time.perf_counter() < deadline:
        if select.select([master], [], [], 0.05)[0]:
            try:
                os.read(master, 65536)
            except OSError:
                break
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
    os.close(master)


FLOOR = {
    "interpreter start": "pass",
    "import torch": "import torch",
    "import torch + the default spec's run": ("from initscope.tui import preload; preload.calm_openmp(); "
                                              "import torch; from initscope import engine; "
                                              "engine.run(engine.default_spec())"),
}


def floor(repeat: int) -> None:
    """Median wall time of fresh interpreters doing only what every start-up must do before its first plot."""
    print(f"fresh `{sys.executable} -c ...` processes, median of {repeat}; load average {os.getloadavg()[0]:.2f}")
    times: dict[str, list[float]] = {name: [] for name in FLOOR}
    for _ in range(repeat + 1):  # the first round warms the disk cache, untimed
        for name, code in FLOOR.items():
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times[name].append(time.perf_counter() - t)
    for name, ts in times.items():
        ts = ts[1:]
        print(f"  {name:<40} {statistics.median(ts):6.3f} s   (min {min(ts):.3f}, max {max(ts):.3f})")
    print(f"  load average after: {os.getloadavg()[0]:.2f}")


def parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            sys.exit(f"--env/--compare expects NAME=VALUE, got {item!r}")
        env[key] = value
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per configuration (default 5)")
    ap.add_argument("--size", default="120x40", help="terminal COLSxROWS (default 120x40)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="set in every run's environment")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=VALUE",
                    help="also run with this set, interleaved with the plain runs")
    ap.add_argument("--trace", action="store_true",
                    help="also print the app's own time stamps (INITSCOPE_TRACE_STARTUP, tui/startup_trace.py)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed launches before the timed ones (default 1)")
    ap.add_argument("--floor", action="store_true", help="time only the unavoidable parts (no app), see above")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before a run counts as failed")
    ns = ap.parse_args()
    if ns.floor:
        floor(ns.repeat)
        return
    cols, _, rows = ns.size.partition("x")
    cols, rows = int(cols), int(rows)
    cmd = initscope_command()
    base = parse_env(ns.env)
    configs = {"plain" if not ns.env else " ".join(ns.env): base}
    if ns.compare:
        configs[" ".join(ns.compare)] = {**base, **parse_env(ns.compare)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    for _ in range(ns.warmup):
        for env in configs.values():
            one_start(cmd, cols, rows, env, ns.timeout)
    for _ in range(ns.repeat):
        for name, env in configs.items():
            runs[name].append(one_start(cmd, cols, rows, env, ns.timeout, ns.trace))
    from initscope.tui import preload  # the mode `initscope` picks now without INITSCOPE_PRELOAD (stdlib only)

    print(f"start-up mode by default now: {preload.mode() if 'INITSCOPE_PRELOAD' not in os.environ else 'set'}"
          f" (load average {os.getloadavg()[0]:.2f}, after the runs)")
    print(f"{' '.join(cmd)} in a {cols}x{rows} pty; median of {ns.repeat} fresh processes"
          f"{' each, interleaved' if len(configs) > 1 else ''}; load average {os.getloadavg()[0]:.2f}")
    keys = list(KEYS)
    if ns.trace:
        stamps = {k for rs in runs.values() for r in rs for k in r if k.startswith(("trace: ", "cpu: "))}
        keys += sorted(k for k in stamps if all(k in r for rs in runs.values() for r in rs))
    medians = {name: dict(sorted(((k, statistics.median(r[k] for r in rs)) for k in keys),
                                 key=lambda kv: (kv[0].startswith("cpu: "), kv[1])))
               for name, rs in runs.items()}
    for name, med in medians.items():
        spread = {k: (min(r[k] for r in runs[name]), max(r[k] for r in runs[name])) for k in med}
        print(f"  {name}")
        for k, v in med.items():
            unit = "" if k == "load" else " s"
            print(f"    {k:<28} {v:6.3f}{unit:<2}   (min {spread[k][0]:.3f}, max {spread[k][1]:.3f})")
    if len(medians) == 2:
        (a, ma), (b, mb) = medians.items()
        for k in KEYS[:-1]:
            within = statistics.median(ra[k] / rb[k] for ra, rb in zip(runs[a], runs[b], strict=True))
            print(f"  {k}: {a} / {b} = {within:.2f} (median of the ratio within a round; "
                  f"ratio of the medians {ma[k] / mb[k]:.2f})")


if __name__ == "__main__":
    main()
