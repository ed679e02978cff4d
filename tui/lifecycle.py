"""How the app's process ends, and what changes when it runs in a browser.

Exit status of `initscope` (the app): 0 after ctrl+q (or a closed browser session), 1 after a crash
(Textual prints the traceback), 143 = 128 + 15 after SIGTERM, 129 = 128 + 1 when its terminal closed. SIGTERM ends the app the way ctrl+q
does (the terminal is restored); if the event loop cannot finish within EXIT_GRACE_S seconds (a
client that stopped reading, a loop flooded with events), the process ends anyway with the same status.

In a browser (`textual serve initscope`, Textual's web driver) the browser keeps ctrl+n (new window)
and ctrl+t (new tab) for itself, so the footer and the help show the keys that reach the app there:
`p` and `t` (outside a text field). When the server closes the app's input (the browser is gone),
the app quits with status 0 instead of running on without a client.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.app import App
    from textual.driver import Driver

SIGTERM_STATUS = 128 + signal.SIGTERM  # 143, the shell's convention for "terminated by SIGTERM"
EXIT_GRACE_S = 3.0
# actions whose ctrl key a browser keeps -> the key shown instead in the footer and the help
WEB_KEYS = {"pin": "p", "next_tensor": "t"}
WEB_DRIVER_MODULE = "textual.drivers.web_driver"


def exit_status(app: App) -> int:
    """The process's exit status after `app.run()`: 0 for a clean quit, non-zero otherwise.

    A crash is 1 (Textual's return code), SIGTERM 143; an app that never ran is 1.
    """
    if app._exception is not None:
        return app.return_code or 1
    return 1 if app.return_code is None else app.return_code


def request_exit(app: App, status: int, message: str | None = None) -> None:
    """Quit the app cleanly with `status`; a daemon timer ends the process if that takes over EXIT_GRACE_S."""
    app.exit(return_code=status, message=message)
    watchdog = threading.Timer(EXIT_GRACE_S, os._exit, (status,))
    watchdog.daemon = True
    watchdog.start()


def exit_on_sigterm(app: App) -> bool:
    """Make SIGTERM quit the app (status 143). Call from the app's event loop; False where unsupported."""
    import asyncio

    try:
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGTERM, request_exit, app, SIGTERM_STATUS, "initscope: stopped by SIGTERM")
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        return False
    return True


TERMINAL_GONE_STATUS = 128 + signal.SIGHUP  # 129: as if the terminal's hang-up signal had ended it
TERMINAL_CHECK_S = 1.0


def exit_when_terminal_closes(app: App) -> bool:
    """Quit the app (status 129) once its terminal is gone. Call from the app's event loop.

    A closed terminal normally sends SIGHUP, which ends the process; a process that does not own its
    terminal (started by a harness, or with SIGHUP ignored) gets none, and Textual's input thread then
    reads end-of-file in a loop at 100% CPU. Every TERMINAL_CHECK_S seconds this looks whether standard
    input is still a terminal; False (nothing watched) where it was not one to begin with.
    """
    try:
        fd = sys.__stdin__.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if not os.isatty(fd):
        return False

    def check() -> None:
        if not os.isatty(fd):
            request_exit(app, TERMINAL_GONE_STATUS)  # no message: there is no terminal to print it on

    app.set_interval(TERMINAL_CHECK_S, check, name="terminal check")
    return True


def driver_class_for(driver_class: type[Driver]) -> type[Driver]:
    """Textual's web driver becomes SessionWebDriver (which ends the app with its client); others stay."""
    if any(c.__module__ == WEB_DRIVER_MODULE for c in driver_class.__mro__):
        from .web_driver import SessionWebDriver

        if not issubclass(driver_class, SessionWebDriver):
            return type("SessionWebDriver", (SessionWebDriver, driver_class), {})
    return driver_class
