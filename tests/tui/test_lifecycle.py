"""The app's process: its exit status, SIGTERM, and the web driver's end of session."""

from __future__ import annotations

import pytest
from initscope.tui import cli
from initscope.tui.app import RESIZE_MAX_WAIT_S, RESIZE_SETTLE_S, InitScopeApp
from textual.app import App


@pytest.fixture
def headless_app(monkeypatch):
    """`initscope` runs the real app, headless (no terminal in a test), with the first run replaced."""
    monkeypatch.setattr(InitScopeApp, "run", lambda self, **kw: App.run(self, headless=True, size=(80, 24)))

    def replace_first_run(action):
        monkeypatch.setattr(InitScopeApp, "_start_initial", action)

    return replace_first_run


def test_a_crash_exits_non_zero(headless_app, capsys):
    def crash(self):
        raise RuntimeError("boom in the app")

    headless_app(crash)
    assert cli.main(["--arch", "8-8"]) == 1


def test_a_clean_quit_exits_zero(headless_app):
    headless_app(lambda self: self.exit())
    assert cli.main(["--arch", "8-8"]) == 0


def test_bad_flags_still_exit_two_before_the_app_starts(headless_app, capsys):
    headless_app(lambda self: pytest.fail("the app must not start"))
    assert cli.main(["--arch", "8-x"]) == 2
    assert capsys.readouterr().err.startswith("initscope: ")


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.1, 0.3])
async def test_quitting_while_the_app_starts_is_a_clean_exit(delay):
    # ctrl+q, SIGTERM or a closed browser in the first second used to race the widgets still mounting
    import asyncio

    from tests.tui.fake_engine import FakeEngine

    app = InitScopeApp(engine=FakeEngine())
    async with app.run_test(size=(80, 24)):
        await asyncio.sleep(delay)
        app.exit()
        for _ in range(500):
            if app.return_code is not None:
                break
            await asyncio.sleep(0.02)
    assert app._exception is None
    assert app.return_code == 0


# ------------------------------------------------------------------------------ resizes
async def test_a_burst_of_resizes_lays_out_and_replots_once(monkeypatch):
    # a browser (or a dragged window) sends resizes every few ms: the plots rebuild once it pauses
    from initscope.tui.widgets.layer_plot import LayerPlot
    from textual.events import Resize
    from textual.geometry import Size

    from tests.tui.conftest import settle
    from tests.tui.fake_engine import FakeEngine

    replots: list[str] = []
    replot = LayerPlot.replot
    monkeypatch.setattr(LayerPlot, "replot", lambda self: (replots.append(self.id), replot(self))[1])
    app = InitScopeApp(engine=FakeEngine())
    # settle 1 s and no forced layout during the burst, so that a loaded machine cannot split it
    app.resize_settle_s, app.resize_max_wait_s = 1.0, 600.0
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        replots.clear()
        for i in range(60):  # a new size every 20 ms once the app has handled the last one
            size = Size(100 + i, 30 + i % 7)
            app._driver._size = size
            app.post_message(Resize(size, size))
            await pilot.pause(0.02)  # Textual alone lays out each size 1/120 s after it arrives
        assert replots == [], f"{replots.count('plot-std')} replots while the resizes kept coming"
        for _ in range(100):
            if replots:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        assert app.size == Size(159, 30 + 59 % 7)
        std_plot = app.query_one("#plot-std", LayerPlot)
        assert std_plot.size.width == app.query_one("#plot-mean", LayerPlot).size.width > 62
        assert std_plot.drawn_points > 0
        assert replots.count("plot-std") == 1 and replots.count("plot-mean") == 1
        # with the app's own timings a single resize is laid out as soon as it settles
        app.resize_settle_s, app.resize_max_wait_s = RESIZE_SETTLE_S, RESIZE_MAX_WAIT_S
        # a single resize is laid out as soon as it settles
        width = std_plot.size.width
        await pilot.resize_terminal(100, 30)
        for _ in range(100):
            if std_plot.size.width != width:
                break
            await pilot.pause(0.05)
        assert app.size == Size(100, 30) and std_plot.size.width < width


# ------------------------------------------------------------------------------ in a browser
async def test_in_a_browser_the_footer_and_help_show_keys_that_reach_the_app(monkeypatch):
    from initscope.tui.screens.help import HelpScreen
    from textual.widgets._footer import FooterKey

    from tests.tui.conftest import settle
    from tests.tui.fake_engine import FakeEngine

    async def shown_keys(web: bool) -> tuple[dict[str, str], str]:
        monkeypatch.setattr(InitScopeApp, "is_web", property(lambda self: web))  # Textual's web driver says so
        app = InitScopeApp(engine=FakeEngine())
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            footer = {k.action: k.key_display for k in app.screen.query(FooterKey)}
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            help_text = str(app.screen.query_one("#help-text").render())
            await pilot.press("escape", "ctrl+q")
        return footer, help_text

    footer, help_text = await shown_keys(web=False)
    assert footer["pin"] == "^n" and footer["next_tensor"] == "^t"
    assert "ctrl+n  p" in help_text
    footer, help_text = await shown_keys(web=True)
    assert footer["pin"] == "p" and footer["next_tensor"] == "t"
    assert "p (outside a field)" in help_text and "t (outside a field)" in help_text
    assert "ctrl+n" not in help_text and "ctrl+t" not in help_text
    assert footer["save_menu"] == "^s"  # keys a page can take from the browser stay as they are


# ------------------------------------------------------------------------------ real processes
import os  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

APP_COMMAND = [sys.executable, "-m", "initscope.tui", "--arch", "16-16x3", "--batch", "8"]


def _read_until(fd: int, proc: subprocess.Popen, needle: bytes, timeout: float) -> bytes:
    """Read what the process writes to `fd` until `needle` appears, it exits, or `timeout` passes."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle not in out:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the pty closed: the process is gone
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def _app_in_a_pty() -> tuple[int, subprocess.Popen]:
    """The app on a fresh 80x24 pseudo-terminal (its master fd returned), in a session of its own: the pty
    is not its controlling terminal, so closing it sends no SIGHUP."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(APP_COMMAND, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    return master, proc


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM and pseudo-terminals are POSIX")
def test_sigterm_quits_cleanly_with_status_143():
    master, proc = _app_in_a_pty()
    try:
        drawn = _read_until(master, proc, b"Presets", timeout=60)
        assert b"Presets" in drawn, "the app did not draw its footer"
        proc.send_signal(signal.SIGTERM)
        rest = b""
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            rest += _read_until(master, proc, b"\x00never", timeout=0.5)
        assert proc.wait(timeout=1) == 143
        assert b"\x1b[?1049l" in rest  # the alternate screen was left: the terminal is restored
        assert b"stopped by SIGTERM" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
@pytest.mark.parametrize("end", ["input closed", "server says quit"])
def test_under_the_web_driver_the_app_quits_when_its_client_is_gone(end):
    env = {**os.environ, "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver"}
    proc = subprocess.Popen(APP_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    try:
        started = _read_until(proc.stdout.fileno(), proc, b"__GANGLION__", timeout=60)
        assert b"__GANGLION__" in started, "the web driver did not start"
        # a burst of resizes from the browser, then the server closes the app's input
        resize = b'{"type": "resize", "width": %d, "height": 30}'
        for width in range(60, 160):
            payload = resize % width
            proc.stdin.write(b"M" + len(payload).to_bytes(4, "big") + payload)
        if end == "server says quit":  # textual-serve, when the browser's websocket closes
            quit_packet = b'{"type": "quit"}'
            proc.stdin.write(b"M" + len(quit_packet).to_bytes(4, "big") + quit_packet)
            proc.stdin.flush()
        else:
            proc.stdin.close()
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            _read_until(proc.stdout.fileno(), proc, b"\x00never", timeout=0.5)
        assert proc.poll() == 0, "the app kept running after its client was gone"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_the_app_quits_when_its_terminal_closes_without_a_hangup_signal():
    # the pty is not the process's controlling terminal (a new session opened none), so closing it sends
    # no SIGHUP: before, Textual's input thread then read end-of-file in a loop at 100% CPU, forever
    master, proc = _app_in_a_pty()
    try:
        drawn = _read_until(master, proc, b"Presets", timeout=60)
        assert b"Presets" in drawn, "the app did not draw its footer"
        os.close(master)
        master = None
        assert proc.wait(timeout=20) == 129
    finally:
        if proc.poll() is None:
            proc.kill()
        if master is not None:
            os.close(master)
