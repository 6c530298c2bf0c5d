"""Lab-wide evaluation suites (common/suites.yaml) and their leaderboards, over the same
`leaderboard` as `fbtui leaderboard NAME`: the suites first (runs scored, auto projects,
description), then a suite's board: every run scored on today's version, across projects, one row
per project, variant, config and code state (seeds as mean ± std, partial rows marked), ranked by
the suite's first metric; the runs on another version set apart, and u scores them on today's
(`fbtui eval --suite NAME RUN...`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from fbtui.tui import suites as data
from fbtui.tui.widgets.common import FBScreen
from fbtui.tui.widgets.table import Column, FastTable, Row, measure_columns

if TYPE_CHECKING:
    from fbtui.records.leaderboard import Board

CONFIRM_ABOVE = 3  # more runs than this to score: ask first (as the comparison's u)
POLL_S = 3.0


class SuitesScreen(FBScreen):
    """The lab's suites; enter opens one's leaderboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "leaderboard", tooltip="the highlighted suite's leaderboard"),
        Binding("f5,ctrl+r", "reload", "reload", show=False, tooltip="read common/suites.yaml again"),
    ]

    def body(self) -> ComposeResult:
        yield Static("Evaluation suites (common/suites.yaml)", classes="title")
        yield Static("", id="suites-error")
        yield FastTable(id="suites", empty="loading…")
        yield Static("", id="suites-hint", classes="hint")

    def on_mount(self) -> None:
        self.sub_title = "evaluation suites"
        self.query_one("#suites-error", Static).display = False
        self.query_one(FastTable).focus()
        self.load()

    def on_screen_resume(self) -> None:
        if self.returned_to():
            self.load()  # the board may have scored runs

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="suites")
    def load(self) -> None:
        found = data.suite_rows(self.fb.lab, self.fb.store())
        self.deliver(self.show, found)

    def show(self, found: data.Suites) -> None:
        error = self.query_one("#suites-error", Static)
        error.update(Text(found.error or "", style="bold red"))
        error.display = found.error is not None
        table = self.query_one(FastTable)
        table.empty = "common/suites.yaml cannot be read (above)" if found.error else \
            "no suites yet: define them in common/suites.yaml"
        cols = [Column("name", "SUITE", max_width=24), Column("runs", "RUNS", align="right"),
                Column("auto", "AUTO", max_width=20), Column("desc", "DESCRIPTION", max_width=70)]
        table.set_data(cols, [Row(r.name, [r.name, str(r.runs), ", ".join(r.auto) or "-", r.description],
                                  sort=[r.name, r.runs, ", ".join(r.auto), r.description]) for r in found.rows])
        self.query_one("#suites-hint", Static).update(
            "enter: the suite's leaderboard  ·  auto: scores its projects' successful runs"
            if found.rows else "fbtui leaderboard --help says how a suite is written")

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        self.fb.open_leaderboard(event.key)

    def action_open(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key is not None:
            self.fb.open_leaderboard(key)


def board_rows(board: Board) -> tuple[list[Column], list[Row]]:
    """Columns and rows of the board; a row's key is its rank, its latest run opens on enter."""
    cols = [Column("rank", "#", align="right"), Column("project", "PROJECT", max_width=18),
            Column("row", "ROW", max_width=28), Column("seeds", "SEEDS", align="right"),
            Column("code", "CODE", max_width=14)]
    cols += [Column(m, m, align="right", max_width=22) for m in board.metrics]
    rows = []
    for x in board.ranked:
        r = x.row
        cells: list[Any] = [str(x.rank), x.project, r.name or "-", r.seeds_text + (" †" if r.partial else "  "),
                            r.code]
        sort: list[Any] = [x.rank, x.project, r.name, len(r.seeds), r.code]
        for m in board.metrics:
            s = r.metrics.get(m)
            cells.append(s.text() if s is not None else "-")
            sort.append(s.mean if s is not None else None)
        rich = [*cells]
        if r.partial:
            rich[3] = Text(cells[3], style="yellow")
        if x.rank == 1 and board.rank_by in r.metrics:
            at = 5 + board.metrics.index(board.rank_by)
            rich[at] = Text(cells[at], style="bold green")
        rows.append(Row(x.rank, cells, sort, rich=lambda rich=rich: rich))
    return cols, rows


def stale_line(st: data.Standing) -> Text:
    """How many runs are not on today's version, and the key that scores them."""
    board = st.board
    if board is None or not board.stale or board.how not in ("today", "none"):
        return Text()
    n = len(board.stale)
    out = Text(f"{n} run{'s' if n != 1 else ''} not on today's version", style="bold yellow")
    if st.busy:
        out.append(f", {len(st.busy)} being scored", style="yellow")
    if len(st.busy) < n:
        out.append("  ·  u scores them on it", style="dim")
    return out


class LeaderboardScreen(FBScreen):
    """One suite's board."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_run", "open run", tooltip="the highlighted row's latest run"),
        Binding("u", "score_stale", "score stale",
                tooltip="score the runs not on today's version of the suite (fbtui eval --suite NAME RUN...)"),
        Binding("f5,ctrl+r", "reload", "reload", show=False, tooltip="judge the board against the working tree again"),
    ]

    def __init__(self, suite: str) -> None:
        super().__init__()
        self.suite = suite
        self.standing: data.Standing | None = None
        self._stamp: tuple[Any, ...] | None = None

    def body(self) -> ComposeResult:
        yield Static(f"Leaderboard {self.suite}", id="lb-title", classes="title")
        yield Static("loading…", id="lb-header")
        yield Static("", id="lb-stale")
        yield FastTable(id="lb-table", empty="loading…", fixed_columns=3)  # #, PROJECT, ROW stay while ← → scroll
        yield Static("", id="lb-notes")

    def on_mount(self) -> None:
        self.sub_title = f"leaderboard {self.suite}"
        self.grid = self.query_one(FastTable)  # read by the worker: no DOM queries off the event loop
        self.grid.focus()
        self.load()
        self.poll_every(POLL_S, lambda: self.load(force=False), "leaderboard")  # scored runs join the board

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="leaderboard")
    def load(self, force: bool = True) -> None:
        store = self.fb.store()
        stamp = data.stamp(store, self.suite)
        if not force and stamp == self._stamp:
            return
        self._stamp = stamp
        st = data.standing(self.fb.lab, store, self.suite)
        cols: list[Column] = []
        rows: list[Row] = []
        if st.board is not None:  # rows and widths made here, off the event loop
            cols, rows = board_rows(st.board)
            measure_columns(cols, rows, self.grid.sort_column)
        self.deliver(self.show, st, cols, rows)

    def show(self, st: data.Standing, cols: list[Column], rows: list[Row]) -> None:
        self.standing = st
        board = st.board
        header = self.query_one("#lb-header", Static)
        table = self.query_one(FastTable)
        notes = self.query_one("#lb-notes", Static)
        stale = self.query_one("#lb-stale", Static)
        line = stale_line(st)
        stale.update(line)
        stale.display = bool(line.plain)
        if st.error is not None:
            header.update(Text(st.error, style="bold red"))
            table.empty = "no board: fix the line above (f5 reads it again)"
            table.set_data([], [])
            notes.update("")
            return
        if board is None:
            header.update(f"suite {self.suite}")
            table.empty = "no runs in this lab yet"
            table.set_data([], [])
            notes.update(Text(f"fbtui eval --suite {self.suite} RUN... scores runs on it", style="dim"))
            return
        head = Text(board.header(), style="bold")
        if board.description:
            head.append("\n" + board.description, style="dim")
        header.update(head)
        table.empty = "no run on today's version yet: u scores them" if board.stale else "no run is ranked yet"
        table.set_data(cols, rows, measured=True)
        notes.update(self._notes(board))

    def _notes(self, board: Board) -> Text:
        lines: list[tuple[str, str]] = []
        for note in board.notes():  # the same as `fbtui leaderboard NAME`: set apart, and the command
            lines.append((note, "bold yellow" if note.startswith("set apart") else "cyan"))
        if not board.ranked and not board.stale:
            lines.append((f"fbtui eval --suite {board.suite} RUN... scores runs on it", "dim"))
        if any(x.row.partial for x in board.ranked):
            lines.append(("† a row lacks some of its seeds", "dim"))
        out = Text()
        for i, (line, style) in enumerate(lines):
            out.append(("\n" if i else "") + line, style=style)
        return out

    def action_open_run(self) -> None:
        key = self.grid.cursor_key
        board = self.standing.board if self.standing else None
        row = next((x.row for x in board.ranked if x.rank == key), None) if board else None
        if row is not None and row.runs:
            self.fb.open_run(max(row.runs))  # its latest seed's run

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        event.stop()
        self.action_open_run()

    # ------------------------------------------------------------ scoring the stale runs

    def action_score_stale(self) -> None:
        if any(w.group == "leaderboard-score" and not w.is_finished for w in self.workers):
            self.notify("already queuing the stale runs' scoring", severity="warning")
            return  # a second press would queue the same runs twice
        st = self.standing
        board = st.board if st else None
        if st is None or board is None:
            self.notify("nothing to score: the board is not loaded", severity="warning")
            return
        # as `fbtui leaderboard NAME` offers it: only against today's version (not a voted one)
        picked = [r for r in board.stale if r not in st.busy] if board.how in ("today", "none") else []
        if not picked:
            self.notify("nothing to score: " + ("every stale run is being scored already" if board.stale
                                                else "every run is on today's version"))
            return
        if len(picked) <= CONFIRM_ABOVE:
            self._score(picked)
            return
        from fbtui.tui.screens.confirm import ConfirmScreen

        ids = ", ".join(f"#{i}" for i in picked[:12]) + (" …" if len(picked) > 12 else "")
        detail = f"{ids}\nas fbtui eval --suite {self.suite} " + " ".join(map(str, picked[:12])) + \
            (" …" if len(picked) > 12 else "")

        def answered(yes: bool | None) -> None:
            if yes:
                self._score(picked)

        self.app.push_screen(ConfirmScreen(f"Score {len(picked)} runs on today's version of {self.suite}?",
                                           detail), answered)

    def _score(self, picked: list[int]) -> None:
        self.notify(f"scoring {len(picked)} run{'s' if len(picked) != 1 else ''} on {self.suite}…")
        self._queue(picked)

    @work(thread=True, group="leaderboard-score")
    def _queue(self, picked: list[int]) -> None:
        try:
            new = data.score(self.fb.lab, self.fb.stores.create(), self.suite, picked)
        except Exception as e:  # shown, never raised: nothing was queued (every run is checked first)
            self.app.call_from_thread(self.app.notify, f"scoring failed: {data.one_line(e)}", severity="error",
                                      timeout=15)
            return
        text = f"queued scoring of {', '.join(f'#{s}' for s in picked[:12])}" + (" …" if len(picked) > 12 else "") \
            + f" on {self.suite} ({len(new)} evaluation{'s' if len(new) != 1 else ''}; the board updates when done)"
        self.app.call_from_thread(self.app.notify, text, timeout=10)
        self.deliver(self.load)
