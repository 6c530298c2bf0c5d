"""Every run of a project (or of a host), filterable and sortable: status, variant, tags (a note
marked ✎), commit (dirty marked), host, duration and key metrics. Runs management (#14): a
note (n), tags (t), archiving (a, undone with u; A shows archived runs), deleting (D), a filter
expression (F) and the column chooser (c); space marks runs for x, a, D and d (esc unmarks).
Store work happens in thread workers."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from fbtui.errors import FBError
from fbtui.tui import data, runs_data
from fbtui.tui.labels import distinct_labels
from fbtui.tui.screens.runs_manage import RunsManagement
from fbtui.tui.widgets.common import status_text
from fbtui.tui.widgets.table import Column, FastTable, Row, measure_columns

VARIANT_W = 36
TAGS_W = 24


def _waits(r: dict[str, Any]) -> Text | str:
    """A queued run's reason, short (the run view has it whole)."""
    why = (r.get("reason") or "").removeprefix("waiting for ")
    if r["status"] != "queued" or not why:
        return ""
    why = why.split(" (", 1)[0]
    return Text("waits: " + (why if len(why) <= 26 else why[:25] + "…"), style="yellow")


def run_rows(rows: list[dict[str, Any]], metrics: list[str], now: float, with_project: bool
             ) -> tuple[list[Column], list[Row]]:
    """The table's columns and rows; TAGS only when a run has tags (80 columns are few)."""
    tagged = any(r.get("tags") for r in rows)
    cols = [Column("id", "RUN", align="right")]
    if with_project:
        cols.append(Column("project", "PROJECT"))
    cols += [Column("status", "STATUS"), Column("variant", "VARIANT", max_width=VARIANT_W),
             Column("seed", "SEED", align="right"), Column("commit", "COMMIT"), Column("host", "HOST"),
             Column("time", "DURATION", align="right"), Column("created", "CREATED")]
    if tagged:
        cols.append(Column("tags", "TAGS", max_width=TAGS_W))
    cols += [Column(m, m.upper(), align="right") for m in metrics]
    out = []
    labels = distinct_labels((r["variant"] or "-" for r in rows), VARIANT_W)  # two runs never look alike
    for r in rows:
        commit = (r["sha"] or "")[:8]
        if r["dirty"]:
            commit += "*"  # uncommitted changes were part of the run
        secs = ((r["finished_at"] or now) - r["started_at"]) if r["started_at"] else None
        # a re-evaluation going on shows as the run it evaluates (finished ones are in its record)
        cells: list[Any] = [f"#{r['eval_of'] or r['id']}" + ("✎" if r.get("note") else "")]
        sort: list[Any] = [r["eval_of"] or r["id"]]
        if with_project:
            cells.append(r["project"])
            sort.append(r["project"])
        variant = labels[r["variant"] or "-"]
        if r["eval_of"]:
            variant += " (evaluated again)"
        status = status_text(r["status"])
        if r.get("archived_at"):
            status.append(" archived", style="magenta")
        cells += [status, variant, "" if r["seed"] is None else str(r["seed"]),
                  Text(commit, style="yellow" if r["dirty"] else ""), r["host"] or r["requested_host"] or "",
                  data.duration(r["started_at"], r["finished_at"], now) or _waits(r), data.ago(r["created_at"], now)]
        sort += [r["status"], r["variant"], r["seed"], commit, r["host"], secs, r["created_at"]]
        tags = " ".join(r.get("tags") or ())
        if tagged:
            cells.append(Text(tags, style="cyan"))
            sort.append(tags or None)
        for m in metrics:
            v = r["metrics"].get(m)
            cells.append("" if v is None else f"{v:.4f}")
            sort.append(v)
        dim = r["status"] in ("cancelled", "skipped") or r.get("archived_at")
        out.append(Row(r["id"], cells, sort, style="dim" if dim else "",
                       search=" ".join(x for x in (r["variant"], tags, r.get("note")) if x)))
    return cols, out


def hide_columns(cols: list[Column], rows: list[Row], hidden: set[str] | frozenset[str]
                 ) -> tuple[list[Column], list[Row]]:
    """The table without the columns the user hid (RUN always stays)."""
    keep = [i for i, c in enumerate(cols) if c.key == "id" or c.key not in hidden]
    if len(keep) == len(cols):
        return cols, rows
    return [cols[i] for i in keep], [
        Row(r.key, [r.cells[i] for i in keep], [r.sort[i] for i in keep], style=r.style, search=r.search)
        for r in rows]


class RunsScreen(RunsManagement):
    FOOTER_MAIN = ("x", "slash")  # kept in a narrow footer after q, ? and esc
    DEFAULT_CSS = """
    #runs-expr { margin: 0 1; }
    #runs-expr-error { color: $error; height: auto; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "filter", key_display="/", tooltip="show runs whose row contains text"),
        Binding("F", "expression", "where", tooltip="filter expression over status, tags, params and metrics: "
                "lr<0.01 and eval/accuracy>0.9 (enter applies, empty clears)"),
        Binding("x", "cancel", "cancel run", tooltip="stop the highlighted run (or every marked run)"),
        Binding("space", "mark", "mark", show=False, tooltip="mark or unmark the highlighted run: x, a and D then "
                "act on every marked run (one question), d diffs two marked runs; esc unmarks all"),
        # the footer keeps its room for q and ?: these are in the line under the table and in help
        Binding("n", "note", "note", show=False, tooltip="edit the highlighted run's note"),
        Binding("t", "tags", "tags", show=False, tooltip="edit the highlighted run's tags"),
        Binding("a", "archive", "archive", show=False, tooltip="archive the run: hidden from tables and comparisons, "
                "kept (on an archived run: bring it back)"),
        Binding("u", "unarchive_last", "undo archive", show=False, tooltip="bring back the runs archived last"),
        Binding("A", "toggle_archived", "archived", show=False, tooltip="show archived runs too (A again: hide)"),
        Binding("D", "delete", "delete", show=False, tooltip="delete the run: its store rows, logs and outputs "
                "(asks first, naming what goes)"),
        Binding("c", "columns", "columns", show=False, tooltip="choose the columns shown (remembered)"),
        Binding("d", "diff", "diff two runs", show=False, tooltip="d on a run, then d on another (or d with two "
                "runs marked): what differs between them (config keys with where each side set them, code)"),
        Binding("f5,ctrl+r", "reload", "reload", show=False),
        Binding("y", "copy_id", "copy run id", show=False, tooltip="copy the highlighted run's number"),
    ]

    def __init__(self, project: str | None, *, host: str | None = None) -> None:
        super().__init__()
        self.project, self.host = project, host
        self._stamp: tuple[object, ...] | None = None
        self.reevaluations: set[int] = set()  # rows that are re-evaluations: no runs of their own
        self.total = 0  # runs listed before the filter expression
        self.info: dict[int, dict[str, Any]] = {}  # row key -> its run (note, tags, status, archived)
        self.expr = ""  # the filter expression applied (a bad one is never applied)
        self.show_archived = False
        self.hidden: set[str] | None = None  # hidden columns; None: not read from .fb/tui.json yet
        self.columns: list[tuple[str, str]] = []  # every column the table can show now (the chooser's)
        self.last_archived: list[int] = []
        self.marked: set[int] = set()  # row keys marked with space

    def body(self) -> ComposeResult:
        yield Static(self._title(), id="runs-title", classes="title")
        yield Input(placeholder="filter: text in any column (status, variant, commit, host…)", id="runs-filter")
        yield Input(placeholder="where: lr<0.01 and eval/accuracy>0.9 · status=failed · tag=x (empty clears)",
                    id="runs-expr")
        yield Static("", id="runs-expr-error")
        yield FastTable(id="runs", empty="no runs yet", fixed_columns=1)  # RUN stays while ← → scroll
        yield Static("", id="runs-count", classes="hint")

    def _title(self) -> str:
        what = f"Runs of {self.project}" if self.project else "Runs"
        if self.host:
            what += f" on {self.host}"
        what += f"  ({len(self.marked)} marked)" if self.marked else ""
        return what + ("  (archived shown)" if self.show_archived else "")

    def on_mount(self) -> None:
        for box in ("#runs-filter", "#runs-expr", "#runs-expr-error"):
            self.query_one(box).display = False
        self.grid = self.query_one(FastTable)  # read by the worker: no DOM queries off the event loop
        self.grid.focus()
        self.load()
        self.poll_every(2.0, self.load, "runs")

    def action_reload(self) -> None:
        self.load(force=True)

    @work(thread=True, exclusive=True, group="runs")
    def load(self, force: bool = False) -> None:
        store = self.fb.store()
        now = self.fb.clock()
        if self.hidden is None:
            hidden = data.load_state(self.fb.lab).get(runs_data.HIDDEN_COLUMNS)
            self.hidden = {str(k) for k in hidden} if isinstance(hidden, list) else set()
        archived, expr, hidden = self.show_archived, self.expr, frozenset(self.hidden)
        # Nothing moved (and nothing is active): keep the table; ages are redone every 30 s anyway.
        db = runs_data.runs_stamp(store, self.project, self.host, archived)
        stamp = (*db, int(now // 30), archived, expr, hidden)
        if not force and stamp == self._stamp and not (db and db[-1]):
            return
        self._stamp = stamp
        rows, metrics = runs_data.runs_table(store, self.project, self.host, archived=archived)
        total = sum(1 for r in rows if not r["eval_of"])
        problem: FBError | None = None
        if expr and store is not None:
            try:
                ids = runs_data.expression_ids(store, expr, self.project, archived)
                rows = [r for r in rows if (r["eval_of"] or r["id"]) in ids]
            except FBError as e:  # it worked when applied; the runs it named may have gone since
                problem = e
        cols, body = run_rows(rows, metrics, now, self.project is None)
        every = [(c.key, c.label) for c in cols if c.key != "id"]
        cols, body = hide_columns(cols, body, hidden)
        measure_columns(cols, body, self.grid.sort_column)  # here, not on the event loop
        info = {r["id"]: {"run": r["eval_of"] or r["id"], "note": r["note"], "tags": r["tags"],
                          "status": r["status"], "archived": bool(r["archived_at"]),
                          "label": runs_data.run_label(r)} for r in rows}
        self.deliver(self.show, cols, body, info, total, every)
        if problem is not None:
            self.deliver(self.show_expr_error, problem)

    def show(self, cols: list[Column], rows: list[Row], info: dict[int, dict[str, Any]], total: int,
             every: list[tuple[str, str]]) -> None:
        table = self.query_one(FastTable)
        if table.sort_column is not None and table.sort_column < len(table.columns):
            # the sort follows its column when columns come or go
            key = table.columns[table.sort_column].key
            table.sort_column = next((i for i, c in enumerate(cols) if c.key == key), None)
        self.apply_marks(cols, rows)
        table.set_data(cols, rows, measured=True)
        self.info, self.total, self.columns = info, total, every
        self.reevaluations = {k for k, v in info.items() if v["run"] != k}
        self.marks_changed()

    def marks_changed(self) -> None:
        """The title and the line under the table; with runs marked, what the keys do to them."""
        table = self.query_one(FastTable)
        self.query_one("#runs-title", Static).update(self._title())
        keys = "n note · t tags · a archive · A archived · D delete · c columns"
        if self.marked:
            keys = f"{len(self.marked)} marked: x a D act on them · d diffs two · esc unmarks"
        self.query_one("#runs-count", Static).update(f"{self._count(table)} · {keys}")

    def _count(self, table: FastTable) -> str:
        """"N of M runs": a re-evaluation going on is a row, not a run."""
        ev = self.reevaluations
        shown = sum(1 for i in table.view if table.rows[i].key not in ev)
        text = f"{shown:,} of {self.total:,} runs"
        if self.expr:
            text += f" where {self.expr}"
        return text + (f" ({len(ev)} evaluated again)" if ev else "")

    # ------------------------------------------------------------ filters

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.focus()

    def action_expression(self) -> None:
        box = self.query_one("#runs-expr", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            table = self.query_one(FastTable)
            table.set_filter(event.value)
            self.query_one("#runs-count", Static).update(self._count(table))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-expr":
            text = event.value.strip()
            if not text:  # empty: every run again
                self.expr_applied("")
                return
            self.check_expression(text)
            return
        self.query_one(FastTable).focus()

    @work(thread=True, exclusive=True, group="runs-expr")
    def check_expression(self, text: str) -> None:
        """Applied only when it parses and names what these runs have; else its error shows."""
        store = self.fb.store()
        try:
            if store is not None:
                runs_data.expression_ids(store, text, self.project, self.show_archived)
        except FBError as e:
            self.deliver(self.show_expr_error, e)
            return
        self.deliver(self.expr_applied, text)

    def expr_applied(self, text: str) -> None:
        self.expr = text
        self.query_one("#runs-expr-error", Static).display = False
        box = self.query_one("#runs-expr", Input)
        if not text:
            box.display = False
        self.query_one(FastTable).focus()
        self.load(force=True)

    def show_expr_error(self, e: FBError) -> None:
        """The problem, and a caret under the column where it is (the input's text starts 3 columns
        further in than this line's)."""
        pos, problem = getattr(e, "pos", None), getattr(e, "problem", e.message)
        text = problem if pos is None else f"{' ' * (pos + 3)}^\ncolumn {pos + 1}: {problem}"
        error = self.query_one("#runs-expr-error", Static)
        error.update(Text(text))
        error.display = True
        self.query_one("#runs-expr", Input).display = True

    def action_back(self) -> None:
        box, expr = self.query_one("#runs-filter", Input), self.query_one("#runs-expr", Input)
        for b in (box, expr):
            if b.has_focus:  # esc in a filter: back to the table, the filter kept
                if not b.value or (b is expr and b.value.strip() != self.expr):
                    b.value = self.expr if b is expr else ""
                    b.display = bool(b.value)
                    self.query_one("#runs-expr-error", Static).display = False
                self.query_one(FastTable).focus()
                return
        if self.marked:  # esc with runs marked: no marks; the next esc clears filters or leaves
            self.clear_marks()
            return
        if box.value:  # esc on a filtered table: all runs again; the next esc leaves
            box.value = ""
            box.display = False
            return
        if self.expr:
            expr.value = ""
            self.expr_applied("")
            return
        super().action_back()

    # ------------------------------------------------------------ the highlighted run

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        self.fb.open_run(event.key)

    def action_cancel(self) -> None:
        if self.marked:
            self.cancel_marked()
            return
        key = self.query_one(FastTable).cursor_key
        if key is not None:
            self.fb.confirm_cancel(key)

    def action_copy_id(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key is not None:
            self.fb.copy_text(str(key), "run id")

    def action_diff(self) -> None:
        """d on one run, then on another: their diff (#14 item 4); d twice on one run forgets it."""
        from fbtui.tui.screens.run_detail import RunDetailScreen

        if self.marked:
            if len(self.marked) == 2:
                first, second = (k for k, _ in self._marked())
                self.app.push_screen(RunDetailScreen(first, against=second))
            else:
                self.notify(f"d diffs two marked runs: {len(self.marked)} marked (space marks, esc unmarks)")
            return
        key = self.query_one(FastTable).cursor_key
        first, self.diff_from = getattr(self, "diff_from", None), None
        if key is None or first == key:
            return
        if first is None:
            self.diff_from = key
            self.notify(f"diff: run #{key} picked; d on another run shows what differs")
            return
        self.app.push_screen(RunDetailScreen(first, against=key))
