"""Builds started from the app: a progress bar per layer and the streaming build log."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Log, ProgressBar, Static

from fbtui.tui.widgets.common import FBScreen, status_text

POLL_S = 0.2  # events collect in the app's BuildLog; the screen takes them in batches


class BuildsScreen(FBScreen):
    def body(self) -> ComposeResult:
        yield Static("Builds", id="builds-title", classes="title")
        yield Vertical(id="builds-layers")
        yield Static("", id="builds-state")
        yield Log(id="builds-log", max_lines=20000, auto_scroll=True)

    def on_mount(self) -> None:
        self.sub_title = "builds"
        self._seen_lines = 0
        self._version = -1
        self._bars: dict[str, tuple[ProgressBar, Static]] = {}
        self.poll()
        self.set_interval(POLL_S, self.poll)

    def poll(self) -> None:
        b = self.fb.builds
        if b.version == self._version:
            return
        self._version = b.version
        layers, lines, total = b.snapshot(self._seen_lines)
        if total < self._seen_lines:  # a new build started: start over
            self.query_one(Log).clear()
            lines = b.snapshot(0)[1]
        self._seen_lines = total
        if lines:
            self.query_one(Log).write_lines(lines)
        box = self.query_one("#builds-layers", Vertical)
        for lp in layers:
            if lp.layer not in self._bars:
                bar = ProgressBar(show_eta=False)
                label = Static("", classes="layer-label")
                self._bars[lp.layer] = (bar, label)
                box.mount(Horizontal(label, bar, classes="layer-row"))
            bar, label = self._bars[lp.layer]
            state = {"done": "succeeded", "cached": "current", "error": "failed", "waiting": "pending"}.get(
                lp.state, "building")
            what = lp.state if lp.state != "building" or not lp.total else f"step {lp.step}/{lp.total}"
            label.update(status_text(state, f"{lp.layer:28} {what}"))
            if lp.state in ("done", "cached"):
                bar.update(total=1, progress=1)
            elif lp.total:
                bar.update(total=lp.total, progress=max(0, lp.step - 1))
        head = b.title or "no build started from this app yet: b on a dashboard builds, r runs"
        if b.active:
            head += ": building…"
        elif b.error:
            head += f": failed: {b.error}"
        elif b.title:
            head += ": done"
        self.query_one("#builds-state", Static).update(head)
