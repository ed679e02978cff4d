"""Fixtures for the app's Pilot tests: a frozen cursor, a fake engine, and a helper to wait for runs."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.widgets import Input

from tests.tui.fake_engine import FakeEngine


@pytest.fixture(autouse=True)
def _frozen_cursor(monkeypatch):
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def fake():
    return FakeEngine()


async def settle(pilot, timeout: float = 10.0) -> None:
    """Wait until no run is pending, running or queued, and every posted message is handled."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        if not app.run_id:  # the first run starts after the first frame: wait for it to begin
            continue
        if not app.running and app._debounce is None and not app.batch:
            await app.workers.wait_for_complete()
            await pilot.pause()
            if not app.running and app._debounce is None and not app.batch:
                return
    raise AssertionError("the app did not settle")


__all__ = ["settle", "asyncio"]
