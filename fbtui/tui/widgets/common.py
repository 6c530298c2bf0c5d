"""Small shared pieces: status marks, the engine banner, the base screen with header and footer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Static

from fbtui.tui.widgets.footer import FBFooter

if TYPE_CHECKING:
    from fbtui.tui.app import FBApp

STATUS = {
    "succeeded": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "running": ("●", "bold yellow"),
    "queued": ("◌", "cyan"),
    "pending": ("○", "dim"),
    "cancelled": ("⊘", "dim"),
    "lost": ("!", "bold red"),  # its host stopped answering: found again when it answers
    "cached": ("≡", "cyan"),
    "skipped": ("–", "dim"),
    "current": ("✓", "green"),
    "stale": ("!", "yellow"),
    "building": ("⟳", "bold yellow"),
    "unknown": ("?", "dim"),
}


def status_text(status: str | None, label: str | None = None) -> Text:
    if not status:
        return Text(label or "never run", style="dim")
    mark, style = STATUS.get(status, ("·", ""))
    return Text(f"{mark} {label or status}", style=style)


class EngineBanner(Static):
    """Says plainly when the local engine does not answer; hidden otherwise."""

    DEFAULT_CSS = """
    EngineBanner { display: none; background: $error; color: $text; padding: 0 1; height: auto; }
    EngineBanner.down { display: block; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "engine_error", self._show, init=True)

    def _show(self, error: str | None) -> None:
        self.set_class(bool(error), "down")
        if error:
            self.update(f"Docker engine unreachable: {error}. Runs, logs and comparisons still work; "
                        "building and launching need it (fbtui doctor says how to fix it).")


class FBScreen(Screen[None]):
    """A screen with the app's header, the engine banner and the footer of bindings."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", tooltip="back to the previous screen"),
    ]

    @property
    def fb(self) -> FBApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⚒")
        yield EngineBanner()
        yield from self.body()
        yield FBFooter()  # q, ?, esc and the screen's main keys stay when narrow

    def body(self) -> ComposeResult:
        yield from ()

    def poll_every(self, seconds: float, load: Callable[[], Any], group: str) -> Timer:
        """Call `load` (a thread worker in `group`) every `seconds` while this screen is the one on
        top, and never while its previous call still runs: a thread cannot be cancelled, so a slow
        query under a short interval would otherwise pile up threads that starve the app."""

        def tick() -> None:
            if self.app.screen is not self:  # (Screen.is_current is also true for the one just below)
                return
            if any(w.group == group and w.node is self and not w.is_finished for w in self.workers):
                return
            load()

        return self.set_interval(seconds, tick)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:  # the bottom screen is Textual's default one
            self.app.pop_screen()
