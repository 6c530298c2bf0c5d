"""A table that renders only its visible rows (line API). Its first `fixed_columns` stay put and
← → scroll the others a whole column at a time (a wide comparison at 80 columns keeps its ROW).

Textual's DataTable measures every cell up front: 1.1 s for 1,000 rows and 6.7 s for 10,000
(MEASURED.md). Here column widths come from plain string lengths, rows become strips only when
they scroll into view, and sorting and filtering reorder a list of row indices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text


@dataclass
class Column:
    key: str
    label: str
    align: str = "left"  # left | right
    max_width: int = 40
    width: int = 0  # computed


@dataclass(slots=True)  # (thousands per table)
class Row:
    key: Any
    cells: list[Cell]
    sort: list[Any] = field(default_factory=list)  # per column; defaults to the cell's text
    style: str = ""  # a rich style for the whole row (e.g. dim for set-apart runs)
    # Styled cells made only when the row is drawn; `cells` (plain) then serve widths and filters.
    rich: Callable[[], Sequence[Cell]] | None = None
    search: str = ""  # more text the filter finds the row by (a long name its cell shows cut)


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _sort_key(value: Any) -> tuple[int, Any]:
    # None sorts last; numbers before text so mixed columns never raise.
    if value is None or value == "":
        return (2, 0)
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value).lower())


_NARROW = "±★†…●⚑·→"  # the tables' own marks: not ASCII, one cell each (rich's cell_len)


def _narrow(text: str) -> bool:
    """Whether each character of the text is one cell wide: ASCII or the marks (str.replace runs in
    C; translate() looked up each character and cost more than it saved)."""
    if text.isascii():
        return True
    for mark in _NARROW:
        text = text.replace(mark, "")
    return text.isascii()


def measure_columns(columns: Sequence[Column], rows: Sequence[Row], sort_column: int | None = None) -> None:
    """Set each column's width from plain string lengths (no rendering). Safe off the event loop:
    a worker can measure 10,000 rows and hand `set_data(..., measured=True)` the result."""
    cells = [r.cells for r in rows]
    # Rows as long as the header (the usual table): its columns by one transpose, in C.
    by_column = list(zip(*cells)) if set(map(len, cells)) == {len(columns)} else None
    for i, col in enumerate(columns):
        width = cell_len(col.label) + (2 if i == sort_column else 0)
        if by_column is not None:
            texts: Sequence[str] = by_column[i]
            if set(map(type, texts)) != {str}:
                texts = [x if type(x) is str else _plain(x) for x in texts]
        else:
            texts = [_plain(c[i]) if type(c[i]) is not str else c[i] for c in cells if i < len(c)]
        if texts:
            # The common case, all ASCII, stays in C: len() is the width (35,000 cells: ~30 ms -> ~5).
            if _narrow("".join(texts)):
                width = max(width, max(map(len, texts)))
            else:
                width = max(width, max(len(t) if t.isascii() else cell_len(t) for t in texts))
        col.width = min(width, col.max_width)


class FastTable(ScrollView, can_focus=True):
    """Rows of cells with a cursor, sortable by any column and filterable by text."""

    DEFAULT_CSS = """
    FastTable { height: 1fr; }
    FastTable > .fasttable--header { text-style: bold; background: $panel; }
    FastTable > .fasttable--cursor { background: $accent 40%; }
    FastTable:focus > .fasttable--cursor { background: $accent; color: $text; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"fasttable--header", "fasttable--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "up", show=False),
        Binding("down,j", "cursor(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home,g", "edge(0)", "top", show=False),
        Binding("end,G", "edge(1)", "bottom", show=False),
        Binding("enter", "select", "open", show=False),
        Binding("s", "sort_next", "sort", tooltip="sort by the next column"),
        Binding("S", "sort_reverse", "reverse", show=False),
        Binding("left", "column(-1)", "column left", show=False),
        Binding("right", "column(1)", "column right", show=False),
    ]

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)

    class Highlighted(Message):
        def __init__(self, table: FastTable, key: Any) -> None:
            super().__init__()
            self.table, self.key = table, key

    class Selected(Message):
        def __init__(self, table: FastTable, key: Any) -> None:
            super().__init__()
            self.table, self.key = table, key

    def __init__(self, *, empty: str = "nothing here yet", name: str | None = None, id: str | None = None,
                 classes: str | None = None, fixed_columns: int = 0) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.fixed_columns = fixed_columns
        self.column_offset = 0  # scrolled-past columns after the fixed ones
        self.columns: list[Column] = []
        self.rows: list[Row] = []
        self.view: list[int] = []  # indices into rows, in display order
        self.sort_column: int | None = None
        self.sort_reverse = False
        self.filter_text = ""
        self.empty = empty
        self._cache: dict[tuple[int, bool], Strip] = {}
        self._row_filter: Callable[[Row], bool] | None = None

    # ------------------------------------------------------------ data

    def set_data(self, columns: Sequence[Column], rows: Sequence[Row], *, keep_cursor: bool = True,
                 measured: bool = False) -> None:
        old_key = self.cursor_key if keep_cursor else None
        self.columns = list(columns)
        self.rows = list(rows)
        if not measured:
            measure_columns(self.columns, self.rows, self.sort_column)
        if self.sort_column is not None and self.sort_column >= len(self.columns):
            self.sort_column = None
        self._rebuild_view()
        if old_key is not None:
            self.move_to_key(old_key)
        self._changed()

    def _rebuild_view(self) -> None:
        needle = self.filter_text.lower()
        view = [i for i, r in enumerate(self.rows)
                if (not needle or needle in " ".join([*(_plain(c) for c in r.cells), r.search]).lower())
                and (self._row_filter is None or self._row_filter(r))]
        if self.sort_column is not None:
            c = self.sort_column

            def key(i: int) -> tuple[int, Any]:
                r = self.rows[i]
                value = r.sort[c] if c < len(r.sort) else _plain(r.cells[c])
                return _sort_key(value)

            # Missing values stay last whichever way the sort goes.
            present = [i for i in view if key(i)[0] != 2]
            missing = [i for i in view if key(i)[0] == 2]
            present.sort(key=key, reverse=self.sort_reverse)
            view = present + missing
        self.view = view

    def _changed(self) -> None:
        self._cache.clear()
        # No sideways scroll of cells: ← → move by column (action_column), so the width is the view's.
        self.column_offset = min(self.column_offset, self._max_offset())
        self.virtual_size = Size(0, len(self.view) + 1)
        self.cursor = min(self.cursor, max(0, len(self.view) - 1))
        self.refresh()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._rebuild_view()
        self._changed()

    def sort_by(self, column: int, reverse: bool | None = None) -> None:
        key = self.cursor_key
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        if 0 <= column < len(self.columns):  # room for the arrow after the label
            col = self.columns[column]
            col.width = max(col.width, min(cell_len(col.label) + 2, col.max_width))
        self._rebuild_view()
        self.move_to_key(key)
        self._changed()

    @property
    def cursor_key(self) -> Any:
        if 0 <= self.cursor < len(self.view):
            return self.rows[self.view[self.cursor]].key
        return None

    @property
    def cursor_row(self) -> Row | None:
        if 0 <= self.cursor < len(self.view):
            return self.rows[self.view[self.cursor]]
        return None

    def move_to_key(self, key: Any) -> None:
        for pos, i in enumerate(self.view):
            if self.rows[i].key == key:
                self.cursor = pos
                return

    # ------------------------------------------------------------ cursor

    def watch_cursor(self, old: int, new: int) -> None:
        self._cache.pop((old, True), None)
        self._cache.pop((old, False), None)
        self._cache.pop((new, True), None)
        self._cache.pop((new, False), None)
        # Keep the cursor on screen (line 0 is the header).
        visible = max(1, self.size.height - 1)
        if new < self.scroll_y:
            self.scroll_to(y=new, animate=False, force=True)
        elif new >= self.scroll_y + visible:
            self.scroll_to(y=new - visible + 1, animate=False, force=True)
        self.refresh()
        if self.view:
            self.post_message(self.Highlighted(self, self.cursor_key))

    def action_cursor(self, delta: int) -> None:
        if self.view:
            self.cursor = max(0, min(len(self.view) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        if self.view:
            self.cursor = len(self.view) - 1 if end else 0

    def action_select(self) -> None:
        if self.view:
            self.post_message(self.Selected(self, self.cursor_key))

    def _max_offset(self) -> int:
        """The offset past which scrolling right would show no new column."""
        room = self.size.width - sum(c.width + 2 for c in self.columns[:self.fixed_columns])
        rest = [c.width + 2 for c in self.columns[self.fixed_columns:]]
        offset = 0
        while offset < len(rest) and sum(rest[offset:]) > room:
            offset += 1
        return offset

    def _hidden_width(self) -> int:
        start = self.fixed_columns
        return sum(c.width + 2 for c in self.columns[start:start + self.column_offset])

    def action_column(self, delta: int) -> None:
        offset = max(0, min(self._max_offset(), self.column_offset + delta))
        if offset != self.column_offset:
            self.column_offset = offset
            self.refresh()

    def _visible(self, full: Strip, style: Style) -> Strip:
        """The fixed columns, then the scrolled ones from column_offset, cut to the width."""
        width = self.size.width
        hidden = self._hidden_width()
        if not hidden:
            return full.crop_extend(0, width, style)
        fixed = sum(c.width + 2 for c in self.columns[:self.fixed_columns])
        rest = full.crop(fixed + hidden, fixed + hidden + width - fixed)
        return Strip.join([full.crop(0, fixed), rest]).crop_extend(0, width, style)

    def action_sort_next(self) -> None:
        if self.columns:
            nxt = 0 if self.sort_column is None else (self.sort_column + 1) % len(self.columns)
            self.sort_by(nxt, reverse=False)

    def action_sort_reverse(self) -> None:
        if self.columns:
            self.sort_by(self.sort_column or 0, reverse=not self.sort_reverse)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:  # a click on the header sorts by that column
            x = event.x
            shown = [*range(self.fixed_columns), *range(self.fixed_columns + self.column_offset, len(self.columns))]
            for i in shown:
                col = self.columns[i]
                if x < col.width + 2:
                    self.sort_by(i)
                    return
                x -= col.width + 2
            return
        pos = int(self.scroll_y) + event.y - 1
        if 0 <= pos < len(self.view):
            if pos == self.cursor and event.chain == 2:
                self.action_select()
            self.cursor = pos

    # ------------------------------------------------------------ rendering

    def _cell_segments(self, cell: Cell, col: Column, style: Style) -> list[Segment]:
        text = cell if isinstance(cell, Text) else Text(str(cell))
        text = text.copy()
        text.truncate(col.width, overflow="ellipsis")
        pad = col.width - text.cell_len
        if col.align == "right":
            text.pad_left(pad)
        else:
            text.pad_right(pad)
        text.pad_right(2)
        console = self.app.console
        if not text.spans:  # Text.render drops the Text's own style when it has no spans
            own = console.get_style(text.style, default=Style.null()) if text.style else None
            return [Segment(text.plain, style + own if own else style)]
        return [Segment(s.text, style + s.style if s.style else style) for s in text.render(console)]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            hstyle = base + self.get_component_rich_style("fasttable--header")
            segs = []
            for i, col in enumerate(self.columns):
                label = col.label
                if i == self.sort_column:
                    label += " ▼" if self.sort_reverse else " ▲"
                segs += self._cell_segments(label, col, hstyle)
            strip = self._visible(Strip(segs), hstyle)
            if self._more_right():  # a mark that ← → show more columns
                strip = Strip.join([strip.crop(0, width - 1), Strip([Segment("▸", hstyle)])])
            return strip
        pos = int(self.scroll_y) + y - 1
        if not self.view:
            if y == 1:
                return Strip([Segment(self.empty, base + Style(dim=True))]).extend_cell_length(width, base)
            return Strip.blank(width, base)
        if pos >= len(self.view):
            return Strip.blank(width, base)
        is_cursor = pos == self.cursor
        cached = self._cache.get((pos, is_cursor))
        if cached is None:
            row = self.rows[self.view[pos]]
            style = base + Style.parse(row.style) if row.style else base
            if is_cursor:
                style = style + self.get_component_rich_style("fasttable--cursor")
            segs = []
            # The cursor row is drawn plain: cell colours (a green best value) are unreadable on it.
            cells: Sequence[Cell] = row.rich() if row.rich is not None and not is_cursor else row.cells
            for i, col in enumerate(self.columns):
                cell = cells[i] if i < len(cells) else ""
                segs += self._cell_segments(_plain(cell) if is_cursor else cell, col, style)
            cached = Strip(segs).extend_cell_length(sum(c.width + 2 for c in self.columns), style)
            if len(self._cache) > 2000:
                self._cache.clear()
            self._cache[(pos, is_cursor)] = cached
        return self._visible(cached, base)

    def _more_right(self) -> bool:
        return self.column_offset < self._max_offset()

    def on_resize(self) -> None:
        self._cache.clear()
        self.column_offset = min(self.column_offset, self._max_offset())
