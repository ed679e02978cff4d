"""SessionWebDriver: Textual's web driver, ending the app when its client is gone.

Textual's WebDriver reads the browser's keys and resizes from stdin in a thread; when the server
closes that stream the thread ends and the app runs on with no client. Here the end of input quits
the app (status 0), unless the app is already stopping. The server's "quit" message (textual-serve
sends it when the browser's websocket closes) goes through the same exit, with its watchdog,
instead of a bare ExitApp queued behind whatever the browser sent last.
"""

from __future__ import annotations

from textual.drivers.web_driver import WebDriver

from .lifecycle import request_exit


class SessionWebDriver(WebDriver):
    def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
        if packet_type == "quit":
            self._loop.call_soon_threadsafe(request_exit, self._app, 0, None)
            return
        super().on_meta(packet_type, payload)

    def run_input_thread(self) -> None:
        try:
            super().run_input_thread()
        finally:
            if not self.exit_event.is_set():  # input ended while the app runs: the client is gone
                self._loop.call_soon_threadsafe(request_exit, self._app, 0, None)
