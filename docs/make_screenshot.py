"""Regenerate docs/screenshot.svg: the app at 100x30 with the real engine, default configuration.

    python docs/make_screenshot.py
"""

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from initscope.tui.app import InitScopeApp  # noqa: E402


async def main() -> None:
    app = InitScopeApp()
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(600):
            await pilot.pause(0.05)
            if app.current is not None and not app.running:
                break
        await pilot.pause(0.3)
        app.save_screenshot(filename="screenshot.svg", path=str(ROOT / "docs"))


asyncio.run(main())
