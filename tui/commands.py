"""The command palette (ctrl+p) mirrors every action of the app, each pin, tensor and preset."""

from __future__ import annotations

from functools import partial

from textual import on
from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.widgets import Input

from .screens.dialog import AnswersOnce


class InitScopePalette(AnswersOnce, CommandPalette):
    """Textual's palette, answering once (see screens/dialog.py), whose page keys wait for its list's layout.

    Typed quickly after ctrl+p, pageup/pagedown reach the list once it has hits but before it has a
    size; Textual 8.2's OptionList then looks up line positions it has not computed yet (KeyError).
    Before that layout there is no page to move by, so the key does nothing.
    """

    @on(Input.Changed)
    def _drop_input_after_answer(self, event: Input.Changed) -> None:
        """Text typed just before the palette closed: Textual's handler would start a search on the
        removed palette (its worker fails with NoMatches and takes the app down)."""
        if not self.accepts_input:
            event.stop()
            event.prevent_default()

    def _action_command_list(self, action: str) -> None:
        if action in ("page_up", "page_down") and not self.query_one(CommandList).scrollable_content_region:
            return
        super()._action_command_list(action)


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
