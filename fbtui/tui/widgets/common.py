"""Small shared pieces: status marks, the engine banner, the base screen with header and footer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

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
    """Says plainly when the local engine does not answer, or the store cannot be read; hidden otherwise."""

    DEFAULT_CSS = """
    EngineBanner { display: none; background: $error; color: $text; padding: 0 1; height: auto; }
    EngineBanner.down { display: block; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "engine_error", lambda _: self._show(), init=False)
        self.watch(self.app, "store_error", lambda _: self._show(), init=True)

    def _show(self) -> None:
        engine, store = getattr(self.app, "engine_error", None), getattr(self.app, "store_error", None)
        said = []
        if store:
            said.append(f"The store cannot be read, so no run is shown: {store}")
        if engine:
            said.append(f"Docker engine unreachable: {engine}. Runs, logs and comparisons still work; "
                        "building and launching need it (fbtui doctor says how to fix it).")
        self.set_class(bool(said), "down")
        if said:
            self.update("\n".join(said))


class FBHeader(Widget):
    """The app's header: its icon (a click opens the palette) and the screen's title. Textual's own
    Header updates its title from a watcher that can run after a replaced screen has dropped the
    title widget (NoMatches 'HeaderTitle', seen about 1 run in 5 under CI load); this one has no
    child to lose: it draws the title itself."""

    DEFAULT_CSS = """
    FBHeader {
        dock: top;
        width: 100%;
        background: $panel;
        color: $foreground;
        height: 1;
    }
    """
    ICON_WIDTH = 8

    def __init__(self, icon: str = "⚒") -> None:
        super().__init__()
        self.icon = icon

    def on_mount(self) -> None:
        for obj, name in ((self.app, "title"), (self.app, "sub_title"), (self.screen, "title"),
                          (self.screen, "sub_title")):
            self.watch(obj, name, self._changed, init=False)

    def _changed(self, _: object = None) -> None:
        self.refresh()

    def render(self) -> Text:
        try:
            screen = self.screen
            title, sub = screen.title or self.app.title, screen.sub_title or self.app.sub_title
        except Exception:  # not on a screen (any more): nothing to say
            title, sub = self.app.title, self.app.sub_title
        body = Text(title)
        if sub:
            body.append(" — ")
            body.append(sub, style="dim")
        room = max(0, self.size.width - self.ICON_WIDTH)
        body.truncate(room, overflow="ellipsis")
        left = (room - body.cell_len) // 2
        return Text.assemble(f" {self.icon}".ljust(self.ICON_WIDTH), " " * left, body)

    def on_click(self, event: events.Click) -> None:
        if event.x < self.ICON_WIDTH:
            self.app.action_command_palette()


def app_running(app: App[Any]) -> bool:
    """False once the app quits: Textual sets App._running false before it prunes the screens."""
    return bool(getattr(app, "_running", True))


def deliver(screen: Screen[Any], fn: Callable[..., Any], *args: Any, after_draw: Callable[[], None] | None = None,
            **kwargs: Any) -> None:
    """From a worker thread: run `fn` on the event loop, but only while `screen` is still on the
    stack. A load that ends as its screen is popped, or as the app quits, would otherwise query
    widgets that are already gone (NoMatches '#run-title', seen in CI as the app shut down).
    `after_draw` runs in any case, once the screen has been drawn after `fn`."""
    try:
        app = screen.app
    except BaseException:  # (no app any more, as after it has quit)
        if after_draw is not None:
            after_draw()
        raise

    def if_alive() -> None:
        try:
            if app_running(app) and screen in app.screen_stack:
                fn(*args, **kwargs)
        finally:
            if after_draw is not None and app_running(app):
                app.call_after_refresh(after_draw)
            elif after_draw is not None:  # quitting: there is no next frame to wait for
                after_draw()

    try:
        app.call_from_thread(if_alive)
    except BaseException:  # the app has stopped: if_alive will never run
        if after_draw is not None:
            after_draw()
        raise


class FBScreen(Screen[None]):
    """A screen with the app's header, the engine banner and the footer of bindings."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", tooltip="back to the previous screen"),
    ]

    @property
    def fb(self) -> FBApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield FBHeader()
        yield EngineBanner()
        yield from self.body()
        yield FBFooter()  # q, ?, esc and the screen's main keys stay when narrow

    def body(self) -> ComposeResult:
        yield from ()

    _resumes = 0

    def returned_to(self) -> bool:
        """For on_screen_resume: False the first time, for the resume that follows the push (its
        on_mount has just started the same loads; two threads would read and validate it all twice)."""
        self._resumes += 1
        return self._resumes > 1

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

    def deliver(self, fn: Callable[..., Any], *args: Any, after_draw: Callable[[], None] | None = None,
                **kwargs: Any) -> None:
        """deliver(self, …): a worker's result, to this screen while it is on the stack."""
        deliver(self, fn, *args, after_draw=after_draw, **kwargs)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:  # the bottom screen is Textual's default one
            self.app.pop_screen()
