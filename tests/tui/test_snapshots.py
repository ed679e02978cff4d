"""Screenshots at fixed sizes with the fake engine (no clock, no ETA, frozen cursor, fixed elapsed time).

Update after an intended change: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from initscope.engine.spec import parse_spec
from initscope.tui.app import InitScopeApp

from tests.tui.conftest import settle
from tests.tui.fake_engine import FakeEngine


async def _settled(pilot) -> None:
    await settle(pilot)
    await pilot.pause(0.1)


def test_default_100x30(snap_compare):
    assert snap_compare(InitScopeApp(engine=FakeEngine()), terminal_size=(100, 30), run_before=_settled)


def test_default_80x24(snap_compare):
    assert snap_compare(InitScopeApp(engine=FakeEngine()), terminal_size=(80, 24), run_before=_settled)


def test_pinned_comparison_log_scale(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.press("l", "f2")
        await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause(0.1)

    app = InitScopeApp(parse_spec(arch="512-512x30"), engine=FakeEngine(), preset="he30")
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_runs_table_80x24(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("p", "f8")
        await pilot.pause(0.1)
        pilot.app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(InitScopeApp(engine=FakeEngine()), terminal_size=(80, 24), run_before=run_before)
