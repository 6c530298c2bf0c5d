"""Every run of a project (or of a host), filterable and sortable: status, variant, commit (dirty
marked), host, duration and key metrics."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from fbtui.tui import data
from fbtui.tui.labels import distinct_labels
from fbtui.tui.widgets.common import FBScreen, status_text
from fbtui.tui.widgets.table import Column, FastTable, Row, measure_columns

VARIANT_W = 36


def _waits(r: dict[str, Any]) -> Text | str:
    """A queued run's reason, short (the run view has it whole)."""
    why = (r.get("reason") or "").removeprefix("waiting for ")
    if r["status"] != "queued" or not why:
        return ""
    why = why.split(" (", 1)[0]
    return Text("waits: " + (why if len(why) <= 26 else why[:25] + "…"), style="yellow")


def run_rows(rows: list[dict[str, Any]], metrics: list[str], now: float, with_project: bool
             ) -> tuple[list[Column], list[Row]]:
    cols = [Column("id", "RUN", align="right")]
    if with_project:
        cols.append(Column("project", "PROJECT"))
    cols += [Column("status", "STATUS"), Column("variant", "VARIANT", max_width=VARIANT_W),
             Column("seed", "SEED", align="right"), Column("commit", "COMMIT"), Column("host", "HOST"),
             Column("time", "DURATION", align="right"), Column("created", "CREATED")]
    cols += [Column(m, m.upper(), align="right") for m in metrics]
    out = []
    labels = distinct_labels((r["variant"] or "-" for r in rows), VARIANT_W)  # two runs never look alike
    for r in rows:
        commit = (r["sha"] or "")[:8]
        if r["dirty"]:
            commit += "*"  # uncommitted changes were part of the run
        secs = ((r["finished_at"] or now) - r["started_at"]) if r["started_at"] else None
        # a re-evaluation going on shows as the run it evaluates (finished ones are in its record)
        cells: list[Any] = [f"#{r['eval_of'] or r['id']}"]
        sort: list[Any] = [r["eval_of"] or r["id"]]
        if with_project:
            cells.append(r["project"])
            sort.append(r["project"])
        variant = labels[r["variant"] or "-"]
        if r["eval_of"]:
            variant += " (evaluated again)"
        cells += [status_text(r["status"]), variant, "" if r["seed"] is None else str(r["seed"]),
                  Text(commit, style="yellow" if r["dirty"] else ""), r["host"] or r["requested_host"] or "",
                  data.duration(r["started_at"], r["finished_at"], now) or _waits(r), data.ago(r["created_at"], now)]
        sort += [r["status"], r["variant"], r["seed"], commit, r["host"], secs, r["created_at"]]
        for m in metrics:
            v = r["metrics"].get(m)
            cells.append("" if v is None else f"{v:.4f}")
            sort.append(v)
        out.append(Row(r["id"], cells, sort, style="dim" if r["status"] in ("cancelled", "skipped") else "",
                       search=r["variant"] or ""))
    return cols, out


class RunsScreen(FBScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "filter", key_display="/", tooltip="show runs whose row contains text"),
        Binding("x", "cancel", "cancel run", tooltip="stop the highlighted run"),
        Binding("d", "diff", "diff two runs", show=False, tooltip="d on a run, then d on another: what differs "
                "between them (config keys with where each side set them, code)"),
        Binding("f5,ctrl+r", "reload", "reload", show=False),
    ]

    def __init__(self, project: str | None, *, host: str | None = None) -> None:
        super().__init__()
        self.project, self.host = project, host
        self._stamp: tuple[object, ...] | None = None
        self.reevaluations: set[int] = set()  # rows that are re-evaluations: no runs of their own

    def body(self) -> ComposeResult:
        what = f"Runs of {self.project}" if self.project else "Runs"
        if self.host:
            what += f" on {self.host}"
        yield Static(what, classes="title")
        yield Input(placeholder="filter: text in any column (status, variant, commit, host…)", id="runs-filter")
        yield FastTable(id="runs", empty="no runs yet")
        yield Static("", id="runs-count", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#runs-filter", Input).display = False
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
        # Nothing moved (and nothing is active): keep the table; ages are redone every 30 s anyway.
        db = data.runs_stamp(store, self.project, self.host)
        stamp = (*db, int(now // 30))
        if not force and stamp == self._stamp and not (db and db[-1]):
            return
        self._stamp = stamp
        rows, metrics = data.runs_table(store, self.project, self.host)
        cols, body = run_rows(rows, metrics, now, self.project is None)
        measure_columns(cols, body, self.grid.sort_column)  # here, not on the event loop
        self.app.call_from_thread(self.show, cols, body, {r["id"] for r in rows if r["eval_of"]})

    def show(self, cols: list[Column], rows: list[Row], reevaluations: set[int]) -> None:
        table = self.query_one(FastTable)
        table.set_data(cols, rows, measured=True)
        self.reevaluations = reevaluations
        self.query_one("#runs-count", Static).update(
            f"{self._count(table)}  ·  enter opens  ·  s sorts (S reverses)  ·  / filters")

    def _count(self, table: FastTable) -> str:
        """"N of M runs": a re-evaluation going on is a row, not a run."""
        ev = self.reevaluations
        shown = sum(1 for i in table.view if table.rows[i].key not in ev)
        text = f"{shown:,} of {len(table.rows) - len(ev):,} runs"
        return text + (f" ({len(ev)} evaluated again)" if ev else "")

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        table = self.query_one(FastTable)
        table.set_filter(event.value)
        self.query_one("#runs-count", Static).update(self._count(table))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(FastTable).focus()

    def action_back(self) -> None:
        box = self.query_one("#runs-filter", Input)
        if box.has_focus:  # esc in the filter: back to the table, the filter kept
            if not box.value:
                box.display = False
            self.query_one(FastTable).focus()
            return
        if box.value:  # esc on a filtered table: all runs again; the next esc leaves
            box.value = ""
            box.display = False
            return
        super().action_back()

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        self.fb.open_run(event.key)

    def action_cancel(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key is not None:
            self.fb.confirm_cancel(key)

    def action_diff(self) -> None:
        """d on one run, then on another: their diff (#14 item 4); d twice on one run forgets it."""
        from fbtui.tui.screens.run_detail import RunDetailScreen

        key = self.query_one(FastTable).cursor_key
        first, self.diff_from = getattr(self, "diff_from", None), None
        if key is None or first == key:
            return
        if first is None:
            self.diff_from = key
            self.notify(f"diff: run #{key} picked; d on another run shows what differs")
            return
        self.app.push_screen(RunDetailScreen(first, against=key))
