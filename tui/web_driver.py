"""SessionWebDriver: Textual's web driver, ending the app when the server closes the app's input.

Textual's WebDriver reads the browser's keys and resizes from stdin in a thread; when the server
closes that stream (the browser disconnected) the thread ends and the app runs on with no client.
Here the end of input quits the app (status 0), unless the app is already stopping.
"""

from __future__ import annotations

from textual.drivers.web_driver import WebDriver

from .lifecycle import request_exit


class SessionWebDriver(WebDriver):
    def run_input_thread(self) -> None:
        try:
            super().run_input_thread()
        finally:
            if not self.exit_event.is_set():  # input ended while the app runs: the client is gone
                self._loop.call_soon_threadsafe(request_exit, self._app, 0, None)
