"""The command palette (ctrl+p) mirrors every action of the app, each pin, tensor and preset."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class InitScopeCommands(Provider):
    def _entries(self) -> list[tuple[str, str, str]]:
        entries = getattr(self.app, "palette_entries", None)
        return entries() if entries is not None else []

    def _runner(self, action: str):
        return partial(self.app.run_action, action)

    async def discover(self) -> Hits:
        for title, help_text, action in self._entries():
            yield DiscoveryHit(title, self._runner(action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), self._runner(action), help=help_text)
