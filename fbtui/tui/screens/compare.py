"""The ablation comparison, over the same `ablation_table` as `fbtui compare`: one row per config
and code state (seeds as mean ± std, each seed once, partial rows marked), the metrics, then the
params that differ (ROW frozen, ← → scroll by column); the best per metric highlighted; the delta
against a baseline; what was set apart and why; the selected rows' curves overlaid; e exports the
table; u evaluates the runs not under today's evaluation suite again (`fbtui eval --stale`)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from fbtui.errors import FBError
from fbtui.tui import data
from fbtui.tui.labels import distinct_labels
from fbtui.tui.metric_groups import Pick, default_key
from fbtui.tui.screens.compare_export import CompareClipboard
from fbtui.tui.widgets.chart import Chart
from fbtui.tui.widgets.common import FBScreen
from fbtui.tui.widgets.table import Column, FastTable, Row, measure_columns

if TYPE_CHECKING:
    from fbtui.records.rows import AblationTable
    from fbtui.records.rows import Row as TableRow

ROW_W = 40
CONFIRM_ABOVE = 3  # more runs than this to evaluate again: ask first


def table_rows(t: AblationTable, selected: set[str]) -> tuple[list[Column], list[Row]]:
    """Columns and rows for the table: plain cells (widths, filter), styled ones made only when a
    row is drawn (10,000 runs give 5,000 rows; building their `Text`s up front cost 0.15 s)."""
    cols = [Column("sel", " "), Column("variant", "ROW", max_width=ROW_W), Column("seeds", "SEEDS", align="right")]
    # Metrics before params: at 80 columns what the rows scored shows first; the params follow
    # (← → scroll by column, ROW stays).
    cols += [Column(m, m, align="right", max_width=36) for m in t.metrics]
    cols += [Column(p, p, align="right") for p in t.params]
    many = len(t.rows) > 1
    deltas = {m for m in t.metrics if any(m in x.delta for x in t.rows)} if t.baseline else set()
    rows = []
    labels = distinct_labels((r.name for r in t.rows), ROW_W)  # two rows never look alike
    best, baseline = t.best, t.baseline
    for r in t.rows:
        name, cut = r.name, r.partial
        seeds = r.seeds_text + (" †" if cut else "  ")
        cells: list[Any] = [_mark(name in selected, name == baseline), labels[name], seeds]
        sort: list[Any] = [name in selected, name, (len(r.seeds), not cut)]
        for m in t.metrics:
            s = r.metrics.get(m)
            if s is None:
                cells.append("-")
                sort.append(None)
                continue
            # _metric_parts' text and Stat.text, inlined: 10,000 cells at 10,000 runs
            text = f"{s.mean:.4f} ± {s.std:.4f}" if s.n > 1 else f"{s.mean:.4f}"
            if many:
                text += " ★" if best.get(m) == name else "  "
            if m in deltas:
                text += f" ({r.delta[m]:+.4f})" if m in r.delta and name != baseline else " " * 10
            cells.append(text)
            sort.append(s.mean)
        for p in t.params:
            v = r.params.get(p)
            shown = "-" if v is None else str(v)
            cells.append(shown)
            sort.append(v if isinstance(v, (int, float)) else shown)
        rows.append(Row(r.name, cells, sort, "", partial(_styled, t, r, cells, deltas), r.name))  # (positional: faster)
    return cols, rows


def _mark(selected: bool, baseline: bool) -> str:
    return ("●" if selected else " ") + ("⚑" if baseline else " ")


def _metric_parts(t: AblationTable, r: TableRow, m: str, many: bool, deltas: bool) -> tuple[str, str, str]:
    """mean ± std, the star slot and the delta slot; the slots keep their width in every row, so
    the right-aligned means line up."""
    star = (" ★" if t.best.get(m) == r.name else "  ") if many else ""
    delta = ""
    if deltas:
        delta = f" ({r.delta[m]:+.4f})" if m in r.delta and r.name != t.baseline else " " * 10
    return r.metrics[m].text(), star, delta


def _styled(t: AblationTable, r: TableRow, cells: list[Any], deltas: set[str]) -> list[Any]:
    out = list(cells)
    many = len(t.rows) > 1
    base = 3  # the metrics come right after sel, ROW, SEEDS
    if r.partial:
        out[2] = Text(cells[2], style="yellow")
    for j, m in enumerate(t.metrics):
        if m not in r.metrics:
            continue
        value, star, delta = _metric_parts(t, r, m, many, m in deltas)
        best = star.strip() != ""
        style = "bold green" if best else ("yellow" if r.partial else "")
        out[base + j] = Text.assemble((value, style), (star, "bold green"), (delta, "dim"))
    return out


def set_selected(rows: list[Row], selected: set[str], baseline: str | None) -> None:
    """Mark the selected variants in place (the first column) without rebuilding the rows."""
    for row in rows:
        on = row.key in selected
        row.cells[0] = _mark(on, row.key == baseline)
        row.sort[0] = on


def suite_line(t: AblationTable | None, busy: int) -> Text:
    """How many runs are not under today's suite, and the key that brings them up to date."""
    if t is None or not t.stale:
        return Text()
    n = len(t.stale)
    runs = f"{n} run{'s' if n != 1 else ''}"
    out = Text(f"{runs} not under today's evaluation suite" if t.suite_how != "voted" else
               f"{runs} under another evaluation suite than most runs",  # evaluations that do not itemise
               style="bold yellow")
    if busy:
        out.append(f", {busy} being evaluated again", style="yellow")
    if busy < n:
        out.append("  ·  u evaluates them again", style="dim")
    return out


class CompareScreen(CompareClipboard, FBScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "next_ablation", "ablation", tooltip="compare another ablation (or all runs)"),
        Binding("b", "baseline", "baseline", tooltip="deltas against the highlighted variant"),
        # early in the footer: at 80 columns the last keys are cut
        Binding("u", "reevaluate", "re-evaluate stale",
                tooltip="re-evaluate the runs not under today's suite (fbtui eval --stale)"),
        Binding("space", "toggle", "select", tooltip="overlay this variant's curves"),
        Binding("m", "pick_metric", "metric", tooltip="which metric (any key the runs logged) the curves show"),
        Binding("p", "param_plot", "params vs metric", show=False, tooltip="the rows against one differing "
                "param (or parallel coordinates across them), a metric's mean ± std per row"),
        Binding("l", "chart_log", "log scale", show=False, tooltip="the curves' y axis on a log scale, or linear "
                "again (values ≤ 0 are left out, and the chart says how many)"),
        Binding("o", "chart_smooth", "smoothing", show=False, tooltip="smooth the curves: EMA 0 → 0.6 → 0.9 → "
                "0.99 (the raw curve stays faint behind)"),
        Binding("s", "sort_next", "sort", show=False),
        Binding("e", "export", "export", tooltip="write the table as Markdown, LaTeX, CSV and JSON under .fb/exports"),
        Binding("E", "export_to", "export to…", show=False, tooltip="write the table to a file you name: .csv, .md, "
                ".tex or .json"),
        Binding("y", "copy_cell", "copy cell", show=False, tooltip="copy the highlighted row's cell in the sorted "
                "column (else its first metric) to the clipboard"),
        Binding("Y", "copy_row", "copy row", show=False, tooltip="copy the highlighted row, tab-separated under "
                "its header"),
        Binding("C", "copy_table", "copy table", show=False, tooltip="copy the whole table as Markdown"),
    ]

    def __init__(self, project: str, ablation: str | None = None) -> None:
        super().__init__()
        self.project = project
        self.ablations: list[str | None] = [None]
        self.ablation = ablation
        self.chosen = ablation is not None
        self.baseline: str | None = None
        self.baseline_chosen = False
        self.selected: set[str] = set()
        self.table: AblationTable | None = None
        self.curve_keys: list[str] = []  # every metric the table's runs have
        self._keys_of: AblationTable | None = None  # the table curve_keys were read for
        self.curve: str | None = None  # the one the user picked; None: the default

    def body(self) -> ComposeResult:
        yield Static("", id="cmp-title", classes="title")
        yield Static("", id="cmp-suite")
        yield FastTable(id="cmp-table", empty="loading…", fixed_columns=3)  # sel, ROW, SEEDS stay put
        yield Static("", id="cmp-notes")
        yield Chart(id="cmp-chart")

    def on_mount(self) -> None:
        self.sub_title = f"compare {self.project}"
        try:
            spec = self.fb.lab.project(self.project).spec
            self.ablations = [*spec.ablations, None]
            if self.ablation is None and spec.ablations:
                self.ablation = next(iter(spec.ablations))
            if self.ablation in spec.ablations:
                self.baseline = spec.ablations[self.ablation].baseline
        except FBError as e:
            self.notify(e.message, severity="error")
        self.grid = self.query_one(FastTable)  # read by the worker: no DOM queries off the event loop
        self.grid.focus()
        self._stamp: tuple[object, ...] | None = None
        self.load()
        self.poll_every(3.0, lambda: self.load(force=False), "compare")  # runs finishing join the table

    @work(thread=True, exclusive=True, group="compare")
    def load(self, force: bool = True) -> None:
        from fbtui.records.rows import ablation_table, pause_gc

        store = self.fb.store()
        stamp = data.runs_stamp(store, self.project)
        if not force and stamp == self._stamp:
            return
        self._stamp = stamp
        if store is None:
            self.deliver(self.show, None, set(), [], [], 0)
            return
        if not self.chosen:  # opened without an ablation: start on one that has finished runs
            done = {r["ablation"] for r in store.query(
                "SELECT DISTINCT ablation FROM runs WHERE project = ? AND status = 'succeeded'", (self.project,))}
            if self.ablation not in done:
                self.ablation = next((a for a in self.ablations if a in done), None)
                spec = self.fb.lab.project(self.project).spec
                self.baseline = spec.ablations[self.ablation].baseline if self.ablation in spec.ablations else None
            self.chosen = True
        # 10,000 runs: ~100,000 objects made, all kept or freed by refcount. The collector resumes
        # once the table is on screen: its first pass walks all of them (~50 ms) and would otherwise
        # come before the table does.
        resume_gc = pause_gc()
        try:
            t = ablation_table(store, self.project, self.ablation, baseline=self.baseline, lab=self.fb.lab)
            # Rows and their widths are made here, off the event loop: show() only swaps them in.
            selected = set(self.selected) or set(list(t.best.values())[:1]) | ({t.baseline} if t.baseline else set())
            cols, rows = table_rows(t, selected)
            measure_columns(cols, rows, self.grid.sort_column)
            busy = len({r["eval_of"] for r in store.query(
                "SELECT eval_of FROM runs WHERE eval_of IS NOT NULL AND suite IS NULL "  # (a suite's scoring is not)
                "AND status IN ('pending', 'queued', 'running')")}
                & set(t.stale))
        except BaseException:
            resume_gc()
            raise
        self.deliver(self.show, t, selected, cols, rows, busy, after_draw=resume_gc)

    def show(self, t: AblationTable | None, selected: set[str], cols: list[Column], rows: list[Row],
             busy: int) -> None:
        self.table = t
        what = f"ablation {self.ablation}" if self.ablation else "all runs"
        self.query_one("#cmp-title", Static).update(f"Compare {self.project}: {what}   (a: next ablation)")
        suite = self.query_one("#cmp-suite", Static)
        suite.update(suite_line(t, busy))
        suite.display = bool(suite_line(t, busy).plain)
        table = self.query_one(FastTable)
        if t is not None and not t.rows and t.suite_how == "none":
            table.empty = "no run has today's evaluation suite yet: " + (
                "u evaluates them again" if t.stale else "the set-apart runs are under older ones")
            table.set_data([], [])
            self.query_one("#cmp-notes", Static).update(self._notes(t))
            self.load_curves()
            return
        if t is None or not t.rows:
            table.empty = f"no finished runs in {what} yet: r on the dashboard launches them"  # (fits 80)
            table.set_data([], [])
            self.query_one("#cmp-notes", Static).update(self._notes(t))
            self.load_curves()
            return
        self.selected = selected  # at first the best variant and the baseline are overlaid
        table.set_data(cols, rows, measured=True)
        self.query_one("#cmp-notes", Static).update(self._notes(t))
        self.load_curves()

    def _notes(self, t: AblationTable | None) -> Text:
        if t is None:
            return Text("no store yet: nothing has run in this lab", style="dim")
        out = Text()
        out.append("★ best per metric (complete rows)", style="bold green")
        out.append(f"  ·  ⚑ deltas against {t.baseline} (b: the highlighted)" if t.baseline else
                   "  ·  b: deltas against the highlighted row")
        for note in t.notes():  # the same notes as `fbtui compare`: what was grouped, set apart, and why
            warn = note.startswith(("set apart", "†"))
            out.append("\n" + note, style="bold yellow" if warn else "dim")
        return out

    @work(thread=True, exclusive=True, group="compare-curves")
    def load_curves(self) -> None:
        t = self.table
        store = self.fb.store()
        if t is not None and store is not None and self._keys_of is not t:
            # Every metric the table's runs logged (names only): read here, after the table is on
            # screen, not on its way there (15 ms at 10,000 runs).
            self.curve_keys = data.metric_keys_of(store, [run for r in t.rows for run in r.runs])
            self._keys_of = t
        if t is None or store is None or not self.curve_keys:
            self.deliver(lambda *a: self.query_one("#cmp-chart", Chart).set_series(*a), "curves", [])
            return
        key = self.curve_key()
        series = []
        for r in t.rows:
            if r.name in self.selected:  # the row's curve: the mean over its seeds, step by step
                curve = data.mean_curve([store.metric_history(run, key) for run in r.runs])
                series.append((r.name, data.thin(curve)))
        title = f"{key}  (m: metric, space: select rows)"
        self.deliver(lambda *a: self.query_one("#cmp-chart", Chart).set_series(*a), title, series)

    def action_next_ablation(self) -> None:
        i = self.ablations.index(self.ablation) if self.ablation in self.ablations else -1
        self.ablation = self.ablations[(i + 1) % len(self.ablations)]
        try:
            spec = self.fb.lab.project(self.project).spec
            self.baseline = spec.ablations[self.ablation].baseline if self.ablation in spec.ablations else None
        except FBError:
            self.baseline = None
        self.selected = set()
        self.load()

    def action_baseline(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key is not None:
            self.baseline = key
            self.load()

    def action_toggle(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key is None or self.table is None:
            return
        self.selected ^= {key}
        table = self.query_one(FastTable)
        set_selected(table.rows, self.selected, self.table.baseline)
        table.set_data(table.columns, table.rows, measured=True)
        self.load_curves()

    def curve_key(self) -> str:
        return self.curve if self.curve in self.curve_keys else default_key(self.curve_keys) or ""

    def action_chart_log(self) -> None:
        self.query_one("#cmp-chart", Chart).toggle_log()

    def action_chart_smooth(self) -> None:
        self.query_one("#cmp-chart", Chart).cycle_smoothing()

    def action_pick_metric(self) -> None:
        from fbtui.tui.screens.metric_picker import MetricPicker

        if not self.curve_keys:
            self.notify("no metrics to chart yet", severity="warning")
            return

        def picked(pick: Pick | None) -> None:
            if pick is not None:
                self.curve = pick.name
                self.load_curves()

        self.app.push_screen(MetricPicker(self.curve_keys, Pick("key", self.curve_key()), groups=False,
                                          title="Overlay which metric?"), picked)

    def action_param_plot(self) -> None:
        from fbtui.tui.screens.param_plot import ParamPlotScreen

        self.app.push_screen(ParamPlotScreen(self.project, self.ablation, self.baseline))

    def action_export(self) -> None:
        if self.table is None or not self.table.rows:
            self.notify("nothing to export yet", severity="warning")
            return
        self._export(self.table)

    @work(thread=True, group="compare-export")
    def _export(self, t: AblationTable) -> None:
        from fbtui.records.export import export

        folder = self.fb.lab.root / ".fb" / "exports"
        stem = f"{t.project}-{t.ablation or 'all'}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for fmt, suffix in (("markdown", "md"), ("latex", "tex"), ("csv", "csv"), ("json", "json")):
                (folder / f"{stem}.{suffix}").write_text(export(t, fmt))
        except OSError as e:
            self.app.call_from_thread(self.app.notify, f"export failed: {e}", severity="error")
            return
        self.app.call_from_thread(self.app.notify, f"wrote {self.fb.lab.rel(folder)}/{stem}.md, .tex, .csv, .json")

    def action_sort_next(self) -> None:
        self.query_one(FastTable).action_sort_next()

    # ------------------------------------------------------------ evaluating stale runs again

    def action_reevaluate(self) -> None:
        if any(w.group in ("compare-pick", "compare-reevaluate") and not w.is_finished for w in self.workers):
            self.notify("already picking or queuing the stale runs", severity="warning")
            return  # a second press would queue the same runs twice
        self._pick_stale(self.project, self.ablation)

    @work(thread=True, exclusive=True, group="compare-pick")
    def _pick_stale(self, project: str, ablation: str | None) -> None:
        """The runs `fbtui eval --stale` would pick (off the event loop: it hashes the tree's files)."""
        from fbtui.pipeline.reevaluate import pick_stale

        try:
            picked, notes = pick_stale(self.fb.lab, self.fb.stores.create(), project, ablation)
        except Exception as e:  # shown, never raised: the app stays up
            self.app.call_from_thread(self.app.notify, f"cannot evaluate again: {_message(e)}", severity="error",
                                      timeout=10)
            return
        self.deliver(self._confirm, picked, notes)

    def _confirm(self, picked: list[int], notes: list[str]) -> None:
        if not picked:
            self.notify("nothing to evaluate again: " + "; ".join(notes[:3]), timeout=10)
            return
        if len(picked) <= CONFIRM_ABOVE:
            self._reevaluate(picked, notes)
            return
        from fbtui.tui.screens.confirm import ConfirmScreen

        ids = ", ".join(f"#{i}" for i in picked[:12]) + (" …" if len(picked) > 12 else "")
        question = f"Evaluate {len(picked)} runs again under today's suite?"
        detail = f"{ids}\n" + "\n".join(notes[:4])

        def answered(yes: bool | None) -> None:
            if yes:
                self._reevaluate(picked, notes)

        self.app.push_screen(ConfirmScreen(question, detail), answered)

    def _reevaluate(self, picked: list[int], notes: list[str]) -> None:
        self.fb.builds.start(f"re-evaluate {self.project}")
        self.notify(f"evaluating {len(picked)} run{'s' if len(picked) != 1 else ''} again: building what the "
                    "image lacks (B shows progress)")
        self._queue(picked, sum(1 for n in notes if n.startswith("run #")))  # the runs left out, each a line

    @work(thread=True, group="compare-reevaluate")
    def _queue(self, picked: list[int], left_out: int) -> None:
        from fbtui.pipeline.reevaluate import reevaluate

        try:
            new = reevaluate(self.fb.lab, self.fb.stores.create(), picked, emit=self.fb.builds.add)
        except Exception as e:  # shown, never raised: nothing was queued
            self.fb.builds.finish(_message(e))
            self.app.call_from_thread(self.app.notify, f"evaluating again failed: {_message(e)}", severity="error",
                                      timeout=15)
            return
        self.fb.builds.finish()
        text = "queued re-evaluations of " + ", ".join(f"#{s}" for s in picked[:12]) + \
            (" …" if len(picked) > 12 else "") + f" ({len(new)} under today's suite; the runs list shows them)"
        if left_out:
            text += f"; {left_out} left out (fbtui eval --stale says why)"
        self.app.call_from_thread(self.app.notify, text, timeout=10)  # the table's poll shows them


def _message(e: Exception) -> str:
    return getattr(e, "message", None) or f"{type(e).__name__}: {e}"
