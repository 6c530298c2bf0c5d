"""A footer that keeps the keys that matter when the terminal is narrow (#14 item 2).

Textual's Footer lays the keys out in binding order and cuts whatever does not fit, so at 80
columns quit, help and back fell off the right edge. This one picks keys by rank until the row is
full (q, ?, esc first, then the screen's main keys, then the rest in binding order) and shows
the picked ones in binding order. Every key stays listed under `?`.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ALWAYS = ("q", "question_mark", "escape")  # quit, help, back/cancel: visible on every screen


def key_width(key_display: str, description: str) -> int:
    """A FooterKey's cells in the non-compact style: ' key ' then 'description '."""
    return cell_len(key_display) + 2 + (cell_len(description) + 1 if description else 0)


def main_keys(screen: Any) -> tuple[str, ...]:
    """The screen's main keys: its FOOTER_MAIN, else the first key its own bindings show."""
    declared = getattr(screen, "FOOTER_MAIN", None)
    if declared:
        return tuple(declared)
    for b in screen._bindings.key_to_bindings.values():
        for binding in b:
            if binding.show and binding.key not in ALWAYS:
                return (binding.key,)
    return ()


def pick(entries: list[tuple[str, int]], main: tuple[str, ...], room: int) -> set[int]:
    """Indices of the entries (key, width) to show within `room` cells, by rank."""

    def rank(i: int) -> tuple[int, int]:
        key = entries[i][0]
        if key in ALWAYS:
            return (0, ALWAYS.index(key))
        if key in main:
            return (1, main.index(key))
        return (2, i)

    chosen: set[int] = set()
    used = 0
    for i in sorted(range(len(entries)), key=rank):
        if used + entries[i][1] <= room:
            chosen.add(i)
            used += entries[i][1]
    return chosen


class FBFooter(Footer):
    """Footer(show_command_palette=False) that drops low-ranked keys instead of cutting q, ?, esc."""

    def __init__(self) -> None:
        super().__init__(show_command_palette=False)  # ^p is listed under ? and in the header

    _shown: tuple[Any, ...] | None = None  # what the keys now on screen were made from

    def _picked(self) -> list[tuple[Binding, bool, str, str]]:
        """(binding, enabled, tooltip, key display) of the keys to show, in binding order."""
        if not self._bindings_ready:
            return []
        shown: dict[str, tuple[Binding, bool, str]] = {}  # one key per action, as Footer does
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in shown:
                shown[binding.action] = (binding, enabled, tooltip)
        items = list(shown.values())
        displays = [self.app.get_key_display(b) for b, _, _ in items]
        entries = [(b.key, key_width(d, b.description)) for (b, _, _), d in zip(items, displays, strict=True)]
        keep = pick(entries, main_keys(self.screen), self.app.size.width)
        return [(b, on, tip, d) for i, ((b, on, tip), d) in enumerate(zip(items, displays, strict=True)) if i in keep]

    @staticmethod
    def _signature(picked: list[tuple[Binding, bool, str, str]]) -> tuple[Any, ...]:
        return tuple((b.key, b.action, b.description, on, tip, d) for b, on, tip, d in picked)

    def compose(self) -> ComposeResult:
        picked = self._picked()
        self._shown = self._signature(picked)
        for binding, enabled, tooltip, display in picked:
            key = FooterKey(binding.key, display, binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip)
            # Never compact (key_width assumes so): set before mounting, where Footer's data_bind
            # set it after, through a watcher that restyled every key once more.
            key.set_reactive(FooterKey.compact, False)
            yield key

    async def recompose(self) -> None:
        # Bindings are "updated" on every focus change and refresh_bindings(): rebuilding the same
        # keys restyled ~10 widgets each time (5 times as the comparison opened, a third of the
        # event loop's work there, taken from the worker building the table).
        if self.is_attached and self._shown is not None and self._signature(self._picked()) == self._shown:
            return
        await super().recompose()

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)  # another width keeps other keys
