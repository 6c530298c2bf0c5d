"""A live view of a spooled stage log that stays fast and small however long the log grows.

The supervisor spools each stage's log to disk as "<RFC3339 timestamp> <text>" lines. This view
never holds the log in memory: it keeps the byte offset of every 64th line (Toolong keeps every
line's; a sparse index holds 10,000 lines/s for an hour in about 5 MB), reads the blocks that scroll
into view, and caches their rendered lines. A worker polls the file every 100 ms and hands over
one batch per poll, never a message per line (MEASURED.md: batches hold 50,000 lines/s).
"""

from __future__ import annotations

import bisect
import os
import re
import threading
from array import array
from collections import OrderedDict
from pathlib import Path
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

BLOCK = 64  # lines per index entry
MAX_RENDER = 1000  # characters of a line that are rendered: long lines freeze log views
ERROR_RE = re.compile(rb"(?i)(error|exception|traceback|fatal|\bfailed\b|\bkilled\b|\boom\b)")  # ValueError too
POLL_S = 0.1


class SpoolIndex:
    """Line access into a growing spool file by a sparse offset index. Only complete lines count.

    The follow worker scans while the event loop (and search/filter workers) read lines: one lock
    guards the shared state (blocks, count, end, the block cache, the descriptor). Readers hold it
    for one block's pread of a few kB; a scan indexes outside it and only publishes under it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blocks = array("Q")  # byte offset of line k*BLOCK
        self.count = 0  # complete lines
        self.end = 0  # byte offset after the last complete line
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()  # one scan at a time: count and end move only under it
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self._fd: int | None = None

    def close(self) -> None:
        with self._lock:  # never under a reader's pread
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def scan(self, max_bytes: int = 1 << 20) -> tuple[int, bytes]:
        """Index what was appended since the last scan (in a worker). Returns the first new line's
        number and the new bytes (complete lines only)."""
        with self._scan_lock:
            end, first = self.end, self.count
            try:
                with self.path.open("rb") as f:
                    f.seek(end)
                    data = f.read(max_bytes)
            except FileNotFoundError:
                return first, b""
            cut = data.rfind(b"\n") + 1
            data = data[:cut]
            if not data:
                return first, b""
            pos, count, new_blocks = 0, first, array("Q")
            while pos < len(data):
                if count % BLOCK == 0:
                    new_blocks.append(end + pos)
                pos = data.index(b"\n", pos) + 1
                count += 1
            with self._lock:
                self.blocks.extend(new_blocks)
                self.count = count
                self.end = end + len(data)
                self._cache.pop(first // BLOCK, None)  # the last block may have grown
            return first, data

    def _block(self, b: int) -> list[bytes]:
        with self._lock:  # a block read here and cached after a scan grew it would stay short
            cached = self._cache.get(b)
            if cached is not None:
                self._cache.move_to_end(b)
                return cached
            start = self.blocks[b]
            stop = self.blocks[b + 1] if b + 1 < len(self.blocks) else self.end
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            lines = os.pread(self._fd, stop - start, start).split(b"\n")[:-1]
            self._cache[b] = lines
            if len(self._cache) > 64:
                self._cache.popitem(last=False)
            return lines

    def line(self, i: int) -> bytes:
        if not 0 <= i < self.count:
            return b""
        block = self._block(i // BLOCK)
        j = i % BLOCK
        return block[j] if j < len(block) else b""

    def iter_from(self, start: int, step: int = 1):  # type: ignore[no-untyped-def]
        """Line numbers and bytes from `start` forwards (step 1) or backwards (step -1)."""
        i = start
        while 0 <= i < self.count:
            yield i, self.line(i)
            i += step


def split_timestamp(raw: bytes) -> tuple[str, str]:
    text = raw.decode("utf-8", "replace")
    ts, sep, rest = text.partition(" ")
    return (ts, rest) if sep else ("", text)


class LogView(ScrollView, can_focus=True):
    """One stage's spooled log, followed live. Keys: f follow/pause, / search, n/N next/previous
    match, e next error, \\ filter, t timestamps, w wrap long lines.

    Scrolling counts log lines, wrapped or not: wrapping lays out only the lines on screen, from
    the top line down (or, following or at the end, from the last line up), so a log of millions
    of lines never needs its wrapped height measured."""

    DEFAULT_CSS = """
    LogView { height: 1fr; }
    LogView > .logview--cursor { background: $accent 30%; }
    LogView > .logview--match { background: $warning; color: $background; }
    LogView > .logview--error { color: $error; }
    LogView > .logview--timestamp { color: $text-muted; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"logview--cursor", "logview--match", "logview--error",
                                             "logview--timestamp"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "follow/pause", tooltip="follow the end of the log, or stop where it is"),
        Binding("n", "next_match(1)", "next match", show=False),
        Binding("N", "next_match(-1)", "prev match", show=False),
        Binding("e", "next_error", "next error", tooltip="jump to the next line that looks like an error"),
        Binding("t", "toggle_timestamps", "timestamps", show=False),
        Binding("up,k", "move(-1)", show=False),
        Binding("down,j", "move(1)", show=False),
        Binding("pageup", "move_page(-1)", show=False),
        Binding("pagedown", "move_page(1)", show=False),
        Binding("home,g", "top", show=False),
        Binding("end,G", "bottom", show=False),
    ]

    follow: reactive[bool] = reactive(True)
    timestamps: reactive[bool] = reactive(False)
    wrap: reactive[bool] = reactive(False)
    search: reactive[str] = reactive("")
    filter: reactive[str] = reactive("")

    class Grew(Message):
        def __init__(self, view: LogView, first: int, matches: list[int] | None, pattern: str) -> None:
            super().__init__()
            self.view, self.first, self.matches, self.pattern = view, first, matches, pattern

    class StatusChanged(Message):
        def __init__(self, view: LogView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.index: SpoolIndex | None = None
        self.cursor = 0  # a position in the shown lines
        self.shown: array[int] | None = None  # line numbers passing the filter, or None: all lines
        self._render_cache: OrderedDict[tuple[int, int, bool], Strip] = OrderedDict()
        self._rows: tuple[tuple[object, ...], list[tuple[int, Strip]]] | None = None  # wrapped: row -> (pos, piece)
        self._search_re: re.Pattern[str] | None = None
        self.live = False  # more lines may come
        self._tail_stop = threading.Event()  # ends the follow worker of the open log
        self._pending_line: int | None = None  # go_to_line's line, until it is indexed

    # ------------------------------------------------------------ source

    def open(self, path: Path, *, live: bool) -> None:
        """Show the log at `path`; follow it while `live`."""
        self._stop_tail()
        if self.index is not None:
            self.index.close()
        self.index = SpoolIndex(path)
        self._tail_stop = threading.Event()
        self.live = live
        self.shown = None
        self.cursor = 0
        self._pending_line = None
        self._render_cache.clear()
        self.virtual_size = Size(0, 0)
        self._tail()

    def set_live(self, live: bool) -> None:
        self.live = live

    @work(thread=True, exclusive=True, group="logview-tail")
    def _tail(self) -> None:
        worker = get_current_worker()
        index, stop = self.index, self._tail_stop
        assert index is not None
        # stop is set on unmount and on the next open(): the loop ends within one poll, never
        # touching a closed index or posting to a view that is gone (quitting while following)
        while not (worker.is_cancelled or stop.is_set()):
            pattern = self.filter
            first, data = index.scan()
            if data:
                matches = None
                if pattern:  # filter the new lines here, off the event loop
                    rx = re.compile(re.escape(pattern.encode()), re.IGNORECASE)
                    matches = [first + k for k, raw in enumerate(data.split(b"\n")[:-1]) if rx.search(raw)]
                if stop.is_set():
                    return
                self.post_message(self.Grew(self, first, matches, pattern))
                if len(data) >= (1 << 19):
                    continue  # more to catch up on: no sleep
            elif not self.live:
                return  # a finished log, read to its end
            stop.wait(POLL_S)

    def _stop_tail(self) -> None:
        self._tail_stop.set()  # (a thread cannot be cancelled: the loop checks this)

    def on_unmount(self) -> None:
        self._stop_tail()
        if self.index is not None:
            self.index.close()

    def on_log_view_grew(self, message: LogView.Grew) -> None:
        message.stop()
        if message.view is not self or self.index is None:
            return
        if self.shown is not None:
            if message.pattern != self.filter or message.matches is None:
                self._refilter()
                return
            self.shown.extend(message.matches)
        self._resize()
        if self._pending_line is not None and self._pending_line < self.index.count:
            self.go_to_line(self._pending_line)
        self.post_message(self.StatusChanged(self))

    def _resize(self) -> None:
        n = self.total_shown
        self.virtual_size = Size(0, n)  # no horizontal scroll: w shows a long line in full
        if self.follow:
            self.cursor = max(0, n - 1)
            # force: the scrollbar that permits scrolling only appears at the next layout
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
        self.refresh()

    @property
    def total_shown(self) -> int:
        if self.index is None:
            return 0
        return len(self.shown) if self.shown is not None else self.index.count

    def line_no(self, pos: int) -> int:
        return self.shown[pos] if self.shown is not None else pos

    # ------------------------------------------------------------ filter and search

    def watch_filter(self) -> None:
        self._refilter()

    def _refilter(self) -> None:
        if not self.filter:
            line = self.line_no(self.cursor) if self.shown is not None and self.cursor < len(self.shown) else None
            self.shown = None
            self._render_cache.clear()
            self._resize()
            if line is not None and not self.follow:
                self.go_to(line)  # the line the cursor was on stays under it
            self.post_message(self.StatusChanged(self))
            return
        self._filter_worker(self.filter)

    @work(thread=True, exclusive=True, group="logview-filter")
    def _filter_worker(self, pattern: str) -> None:
        index = self.index
        if index is None:
            return
        rx = re.compile(re.escape(pattern.encode()), re.IGNORECASE)
        count = index.count
        out = array("q", (i for i, raw in index.iter_from(0) if i < count and rx.search(raw)))
        self.app.call_from_thread(self._apply_filter, pattern, out, count)

    def _apply_filter(self, pattern: str, shown: array[int], count: int) -> None:
        if pattern != self.filter or self.index is None:
            return
        rx = re.compile(re.escape(pattern.encode()), re.IGNORECASE)
        for i in range(count, self.index.count):  # lines that arrived during the scan
            if rx.search(self.index.line(i)):
                shown.append(i)
        line = self.line_no(self.cursor) if self.total_shown else 0
        self.shown = shown
        self._render_cache.clear()
        # the cursor moves to the first matching line at or after the line it was on
        self.cursor = min(bisect.bisect_left(shown, line), max(0, len(shown) - 1))
        self._resize()
        if not self.follow:
            self.go_to(self.cursor)
        self.post_message(self.StatusChanged(self))

    def watch_search(self, value: str) -> None:
        self._search_re = re.compile(re.escape(value), re.IGNORECASE) if value else None
        self._render_cache.clear()
        self.refresh()
        if value:
            self.action_next_match(1, from_cursor=True)

    def action_next_match(self, direction: int = 1, from_cursor: bool = False) -> None:
        if not self.search:
            self.notify("search first with /", severity="warning")
            return
        rx = re.compile(re.escape(self.search.encode()), re.IGNORECASE)
        self._jump(rx, direction, from_cursor)

    def action_next_error(self) -> None:
        self._jump(ERROR_RE, 1, False)

    @work(thread=True, exclusive=True, group="logview-jump")
    def _jump(self, rx: re.Pattern[bytes], direction: int, from_cursor: bool) -> None:
        if self.index is None:
            return
        n = self.total_shown
        start = self.cursor if from_cursor else self.cursor + direction
        for k in range(n):  # wraps around the end, as vim does
            pos = (start + k * direction) % n
            if rx.search(split_timestamp(self.index.line(self.line_no(pos)))[1].encode()):
                self.app.call_from_thread(self.go_to, pos)
                return
        self.app.call_from_thread(self.notify, "no match" if rx is not ERROR_RE else "no error lines")

    def go_to_line(self, line: int) -> None:
        """Put the cursor on log line `line` (0-based), paused; in a log still being read, once
        that line is indexed. Under a filter: the first shown line from there."""
        self.follow = False
        if self.index is None or line >= self.index.count:
            self._pending_line = line
            return
        self._pending_line = None
        pos = line if self.shown is None else min(bisect.bisect_left(self.shown, line), max(0, len(self.shown) - 1))
        self.go_to(pos)

    def go_to(self, pos: int) -> None:
        self.follow = False
        self.cursor = pos
        if self.wrap:
            if pos not in {p for p, _ in self._wrapped_rows()}:
                self.scroll_to(y=pos, animate=False, force=True)
        elif not self.scroll_y <= pos < self.scroll_y + self.size.height:
            self.scroll_to(y=max(0, pos - self.size.height // 2), animate=False, force=True)
        self.refresh()
        self.post_message(self.StatusChanged(self))

    # ------------------------------------------------------------ movement

    def watch_follow(self, value: bool) -> None:
        if value:
            self._resize()
        if self.is_mounted:
            self.post_message(self.StatusChanged(self))

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self._render_cache.clear()
        self.refresh()
        if self.is_mounted:
            self.post_message(self.StatusChanged(self))

    def action_toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps
        self._render_cache.clear()
        self.refresh()

    def action_move(self, delta: int) -> None:
        n = self.total_shown
        if n:
            self.go_to(max(0, min(n - 1, self.cursor + delta)))
            if self.cursor == n - 1 and delta > 0 and self.live:
                self.follow = True

    def action_move_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.size.height - 1))

    def action_top(self) -> None:
        self.go_to(0)

    def action_bottom(self) -> None:
        self.follow = True

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False  # reading back pauses following

    def on_click(self, event: events.Click) -> None:
        if self.wrap:
            rows = self._wrapped_rows()
            if event.y < len(rows):
                self.go_to(rows[event.y][0])
            return
        pos = int(self.scroll_y) + event.y
        if pos < self.total_shown:
            self.go_to(pos)

    # ------------------------------------------------------------ rendering

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if self.index is None or not self.total_shown:
            if y == 0 and self.index is not None and self.index.count == 0:
                msg = "waiting for log lines…" if self.live else "(this stage wrote no log)"
                return Strip([Segment(msg, base + Style(dim=True))]).extend_cell_length(width, base)
            return Strip.blank(width, base)
        if self.wrap:
            rows = self._wrapped_rows()
            if y >= len(rows):
                return Strip.blank(width, base)
            pos, piece = rows[y]
            return piece.extend_cell_length(width, self._line_style(pos))
        pos = int(self.scroll_y) + y
        if pos >= self.total_shown:
            return Strip.blank(width, base)
        return self._strip(pos).crop_extend(0, width, self._line_style(pos))

    def _line_style(self, pos: int) -> Style:
        base = self.rich_style
        return base + self.get_component_rich_style("logview--cursor") if self._is_cursor(pos) else base

    def _is_cursor(self, pos: int) -> bool:
        return pos == self.cursor and not self.follow

    def _strip(self, pos: int) -> Strip:
        """One shown line, whole (at most MAX_RENDER characters), styled; cached."""
        assert self.index is not None
        line_no = self.line_no(pos)
        is_cursor = self._is_cursor(pos)
        key = (line_no, -1, is_cursor)
        strip = self._render_cache.get(key)
        if strip is None:
            ts, text = split_timestamp(self.index.line(line_no))
            text = text[:MAX_RENDER]
            rich = Text(no_wrap=True)
            if self.timestamps and ts:
                rich.append(ts[11:23] + " ", self.get_component_rich_style("logview--timestamp"))
            body = Text(text.expandtabs(4))
            if ERROR_RE.search(text.encode()):
                body.stylize(self.get_component_rich_style("logview--error"))
            if self._search_re is not None:
                for m in self._search_re.finditer(body.plain):
                    body.stylize(self.get_component_rich_style("logview--match"), m.start(), m.end())
            rich.append_text(body)
            style = self._line_style(pos)
            strip = Strip([Segment(s.text, style + s.style if s.style else style)
                           for s in rich.render(self.app.console)])
            self._render_cache[key] = strip
            if len(self._render_cache) > 500:
                self._render_cache.popitem(last=False)
        return strip

    def _pieces(self, pos: int) -> list[Strip]:
        """The line cut into rows of the view's width (at least one row, even when empty)."""
        width = max(1, self.size.width)
        strip = self._strip(pos)
        n = strip.cell_length
        if n <= width:
            return [strip]
        return list(strip.divide([*range(width, n, width), n]))

    def _wrapped_rows(self) -> list[tuple[int, Strip]]:
        """Which shown line, and which piece of it, each row of the view holds, wrapping on: from
        the top line down, or from the last line up when following or scrolled to the end. The
        pieces are kept, so drawing a row cuts nothing again."""
        height, total = self.size.height, self.total_shown
        top = int(self.scroll_y)
        bottom = self.follow or top >= self.max_scroll_y
        key = (top, bottom, height, self.size.width, total, self.timestamps, self.cursor, self.follow, self.search,
               id(self.shown))
        if self._rows is not None and self._rows[0] == key:
            return self._rows[1]
        rows: list[tuple[int, Strip]] = []
        if bottom:
            pos = total - 1
            while pos >= 0 and len(rows) < height:
                rows[:0] = [(pos, piece) for piece in self._pieces(pos)]
                pos -= 1
            rows = rows[-height:] if height else []
        else:
            pos = top
            while pos < total and len(rows) < height:
                rows.extend((pos, piece) for piece in self._pieces(pos))
                pos += 1
            rows = rows[:height]
        self._rows = (key, rows)
        return rows

    def on_resize(self) -> None:
        self._render_cache.clear()
        self._resize()
