"""Search across a project's run logs (#14 item 11), as `fbtui logs --grep` does: a regular
expression (ignoring case unless it has a capital letter), matches listed by run and stage as they
are found, newest run first; enter opens the run view at the matching line."""

from __future__ import annotations

import re
import time
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from fbtui.errors import FBError
from fbtui.tui.widgets.common import FBScreen
from fbtui.tui.widgets.table import Column, FastTable, Row

if TYPE_CHECKING:
    from fbtui.records.logsearch import Match

LIMIT = 1000  # matches listed; a narrower pattern finds the rest
BATCH_S = 0.1  # matches reach the table in batches: a log of millions of hits costs no message each
TEXT_W = 400


def smart_case(pattern: str) -> bool:
    """Ignore case unless the pattern has a capital letter (as ripgrep's --smart-case)."""
    return pattern == pattern.lower()


def _highlight(text: str, rx: re.Pattern[str] | None) -> Text:
    out = Text(text)
    if rx is not None:
        for m in rx.finditer(text):
            if m.end() > m.start():
                out.stylize("bold reverse", m.start(), m.end())
    return out


class LogSearchScreen(FBScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "edit", "pattern", key_display="/", tooltip="change the pattern (a regular expression)"),
        Binding("enter", "open", "open", show=False, tooltip="the run view at the matching line"),
    ]

    def __init__(self, project: str | None) -> None:
        super().__init__()
        self.project = project
        self.matches: list[Match] = []
        self.generation = 0  # a new search's results replace the old one's; stale batches are dropped
        self.pattern = ""

    def body(self) -> ComposeResult:
        where = f"{self.project}'s runs" if self.project else "every project's runs"
        yield Static(f"Search the logs of {where}", classes="title")
        yield Input(id="ls-input", placeholder="a regular expression, e.g. out of memory|nan  (enter: search)")
        yield Static("", id="ls-status", classes="hint")
        yield FastTable(id="ls-results", empty="type a pattern and press enter")

    def on_mount(self) -> None:
        self.sub_title = "log search"
        self.query_one(Input).focus()

    def action_edit(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        pattern = event.value
        if not pattern:
            self.status(Text("type a pattern first", style="yellow"))
            return
        self.generation += 1
        self.pattern = pattern
        self.matches = []
        table = self.query_one(FastTable)
        table.empty = "searching…"
        table.set_data([], [])
        self.status(Text("searching…"))
        self.search(pattern, self.generation)

    def status(self, text: Text) -> None:
        self.query_one("#ls-status", Static).update(text)

    @work(thread=True, exclusive=True, group="logsearch")
    def search(self, pattern: str, generation: int) -> None:
        from fbtui.records.logsearch import compile_pattern, search_logs

        worker = get_current_worker()
        try:
            rx = compile_pattern(pattern, ignore_case=smart_case(pattern))
        except FBError as e:  # a bad pattern: the reason, on the screen
            message = e.message.removeprefix("--grep ").split("; --fixed")[0]  # (the CLI's flags)
            self.deliver(self.failed, generation, message)
            return
        store = self.fb.store()
        if store is None:
            self.deliver(self.add, generation, [], True)
            return
        batch: list[Match] = []
        last = time.monotonic()
        try:
            for m in search_logs(self.fb.lab, store, rx, project=self.project, limit=LIMIT):
                if worker.is_cancelled:  # a newer search took over
                    return
                batch.append(m)
                if time.monotonic() - last >= BATCH_S:
                    self.deliver(self.add, generation, batch, False)
                    batch, last = [], time.monotonic()
        except (FBError, OSError) as e:  # said on the screen; the app stays up
            self.deliver(self.failed, generation, getattr(e, "message", None) or str(e))
            return
        self.deliver(self.add, generation, batch, True)

    def failed(self, generation: int, message: str) -> None:
        if generation != self.generation:
            return
        table = self.query_one(FastTable)
        table.empty = "no search"
        table.set_data([], [])
        self.status(Text(message, style="bold red"))
        self.query_one(Input).focus()

    def add(self, generation: int, batch: list[Match], done: bool) -> None:
        if generation != self.generation:
            return
        self.matches += batch
        try:
            flags = re.IGNORECASE if smart_case(self.pattern) else 0
            show_rx: re.Pattern[str] | None = re.compile(self.pattern, flags)
        except re.error:
            show_rx = None
        cols = [Column("run", "RUN", align="right"), Column("where", "STAGE:LINE"),
                Column("text", "TEXT", max_width=TEXT_W)]
        rows = [Row(i, [f"#{m.run}", f"{m.stage}:{m.line}", m.text[:TEXT_W]],
                    rich=partial(self._cells, m, show_rx)) for i, m in enumerate(self.matches)]
        table = self.query_one(FastTable)
        was_empty = not table.rows
        if done and not rows:
            table.empty = f"no line matches {self.pattern!r}"
        table.set_data(cols, rows)
        if was_empty and rows and self.query_one(Input).has_focus:
            table.focus()  # the first matches: arrows and enter work on them at once
        n = len(self.matches)
        runs = len({m.run for m in self.matches})
        text = f"{n:,} match{'es' if n != 1 else ''} in {runs} run{'s' if runs != 1 else ''}"
        if not done:
            text = "searching… " + text
        elif n >= LIMIT:
            text = f"the first {LIMIT:,} matches (a narrower pattern finds the rest), in {runs} runs"
        case = "ignoring case" if smart_case(self.pattern) else "case as typed"
        self.status(Text(f"{text}  ·  {case}  ·  enter: open at the line"))

    @staticmethod
    def _cells(m: Match, rx: re.Pattern[str] | None) -> list[object]:
        return [f"#{m.run}", Text(f"{m.stage}:{m.line}", style="cyan"), _highlight(m.text[:TEXT_W], rx)]

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        self.open_match(event.key)

    def action_open(self) -> None:
        self.open_match(self.query_one(FastTable).cursor_key)

    def open_match(self, key: object) -> None:
        if isinstance(key, int) and 0 <= key < len(self.matches):
            m = self.matches[key]
            self.fb.open_run(m.run, stage=m.stage, line=m.line - 1)  # (the view counts lines from 0)
