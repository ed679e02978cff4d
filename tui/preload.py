"""Load the engine's run path (torch, numpy, the runner, the theory) in a background thread.

`initscope` (the app) calls `start()` the moment it knows it will open the screen, so `import torch`
(about 1-2 s, the bulk of the time to the first plot) runs while Textual imports itself and draws
the first frame, instead of after it. The first run then finds torch loaded, or waits on Python's
import lock for the rest of the import; nothing else changes: the run itself still imports what it
needs, so a failed preload costs nothing but its own time and is reported by the run.
`INITSCOPE_PRELOAD=0` turns it off (benchmarks/bench_startup.py compares the two).

Python runs one thread at a time (the GIL), so the import and the first frame share the CPU; the
first frame still comes before torch has finished loading (tests/tui/test_startup.py).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

MODULES = ("torch", "initscope.engine.runner", "initscope.engine.theory")
SWITCH_INTERVAL_S = 0.0005  # how long a thread may hold the interpreter while the import runs
done = threading.Event()  # set when the preload has finished (or failed, or was never started)
_thread: threading.Thread | None = None


def enabled() -> bool:
    return os.environ.get("INITSCOPE_PRELOAD", "1").strip().lower() not in ("0", "false", "no", "off")


def start() -> threading.Thread | None:
    """Start the background import once (a daemon thread); None when it is turned off."""
    global _thread
    if not enabled():
        done.set()
        return None
    if _thread is None:
        _thread = threading.Thread(target=_load, name="initscope-preload", daemon=True)
        _thread.start()
    return _thread


def _load() -> None:
    interval = sys.getswitchinterval()
    # Textual's thread wakes often for short work; with the default 5 ms interval each wake waits up to
    # 5 ms for the import to hand over the interpreter, so the first frame would crawl
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        for name in MODULES:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - the run imports the same modules and reports the failure
        pass
    finally:
        sys.setswitchinterval(interval)
        done.set()
