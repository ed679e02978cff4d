"""Start-up time stamps, for finding where the time to the first plot goes (benchmarks/bench_startup.py --trace).

With INITSCOPE_TRACE_STARTUP=FILE, `stamp(event)` appends one line `<unix time> <pid> <cpu> <event>` to FILE
(cpu: the CPU seconds this process has used, all its threads: on a busy machine the wall-clock times
stretch, the CPU times much less);
the child process of tui/preload.py inherits the variable and stamps the same file, so one file holds both
processes' timelines on one clock (time.time()). Without the variable `stamp` does nothing. Standard library
only: the entry point stamps before anything else is imported.
"""

from __future__ import annotations

import os
import time

ENV = "INITSCOPE_TRACE_STARTUP"
_path = os.environ.get(ENV) or None


def stamp(event: str) -> None:
    """Append `<time.time()> <pid> <time.process_time()> <event>` to the trace file, if one was asked for
    (one line, appended whole)."""
    if _path is None:
        return
    line = f"{time.time():.6f} {os.getpid()} {time.process_time():.6f} {event}\n".encode()
    try:
        fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read(path: str) -> list[tuple[float, int, float, str]]:
    """The stamps in a trace file: (unix time, pid, CPU seconds, event), in file order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            t, pid, cpu, event = line.rstrip("\n").split(" ", 3)
            out.append((float(t), int(pid), float(cpu), event))
    return out
