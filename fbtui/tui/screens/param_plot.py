"""A comparison's rows against one differing param: x the param (numbers on a numeric axis, log
when they span two decades or with l; other values as evenly spaced labels), y a metric's final
value as the mean over seeds with ± std as a whisker, the best row ★. v shows parallel
coordinates instead: a polyline per row across every differing param, the metric last. Opened
from the comparison with p; reads the same `ablation_table` as it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from fbtui.tui import data
from fbtui.tui.metric_groups import Pick
from fbtui.tui.widgets.common import FBScreen
from fbtui.tui.widgets.param_axes import param_axis, wants_log
from fbtui.tui.widgets.param_chart import ParamChart, PlotData

if TYPE_CHECKING:
    from fbtui.records.rows import AblationTable, Stat


class ParamPlotScreen(FBScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "pick_param", "param", tooltip="which differing param is on the x axis"),
        Binding("m", "pick_metric", "metric", tooltip="which metric is on the y axis (its final value per row)"),
        Binding("l", "log", "log x", tooltip="the param's axis on a log scale, or linear again"),
        Binding("v", "mode", "parallel", tooltip="parallel coordinates across every differing param, or "
                "back to one param against the metric"),
    ]

    def __init__(self, project: str, ablation: str | None, baseline: str | None = None, *,
                 param: str | None = None, metric: str | None = None) -> None:
        super().__init__()
        self.project, self.ablation, self.baseline = project, ablation, baseline
        self.param, self.metric = param, metric
        self.log_x: bool | None = None  # None: log when the values span two decades
        self.parallel = False
        self.table: AblationTable | None = None

    def body(self) -> ComposeResult:
        yield Static("", id="pp-title", classes="title")
        yield ParamChart(id="pp-chart")
        yield Static("", id="pp-notes")

    def on_mount(self) -> None:
        self.sub_title = f"params vs metric {self.project}"
        self._stamp: tuple[object, ...] | None = None
        self.load()
        self.poll_every(3.0, lambda: self.load(force=False), "param-plot")  # runs finishing join the plot

    @work(thread=True, exclusive=True, group="param-plot")
    def load(self, force: bool = True) -> None:
        from fbtui.records.rows import ablation_table

        store = self.fb.store()
        stamp = data.runs_stamp(store, self.project)
        if not force and stamp == self._stamp:
            return
        self._stamp = stamp
        t = None if store is None else ablation_table(store, self.project, self.ablation, baseline=self.baseline,
                                                       lab=self.fb.lab)
        self.deliver(self.show, t)

    def show(self, t: AblationTable | None) -> None:
        self.table = t
        if t is not None:
            if self.param not in t.params:
                self.param = t.params[0] if t.params else None
            if self.metric not in t.metrics:
                self.metric = next((m for m in t.metrics if m in t.best), t.metrics[0] if t.metrics else None)
        self.redraw()

    def redraw(self) -> None:
        t = self.table
        chart = self.query_one(ParamChart)
        title = self.query_one("#pp-title", Static)
        notes = self.query_one("#pp-notes", Static)
        what = f"{self.project} {self.ablation or 'all runs'}"
        if t is None or not t.rows:
            title.update(f"Params vs metric: {what}")
            chart.show(PlotData(empty="no store yet: nothing has run in this lab" if t is None else
                                f"no finished runs in {what}"))
            notes.update("")
            return
        metric = self.metric or ""
        stats = [_stat(r.metrics.get(metric)) for r in t.rows]
        best = t.best.get(metric)
        data = PlotData([r.name for r in t.rows], [r.params for r in t.rows], stats, list(t.params), self.param,
                        metric, best, self.parallel, self.log_x)
        chart.show(data)
        values = [r.params.get(self.param) for r in t.rows] if self.param else []
        log = self.log_x if self.log_x is not None else wants_log(values)
        if self.parallel:
            head = f"{metric} across {', '.join(t.params) or 'no params'}  (parallel)"
        else:
            head = f"{metric} vs {self.param or '-'}" + ("  (log x)" if log and param_axis(values, log=log).kind
                                                        == "log" else "")
        title.update(Text.assemble((head, "bold"), (f"   {what}", "dim")))
        notes.update(self._notes(t, metric, best, stats, values))

    def _notes(self, t: AblationTable, metric: str, best: str | None, stats: list[tuple[float, float] | None],
               values: list[object]) -> Text:
        out = Text()
        row = t.row(best) if best else None
        if row is not None and metric in row.metrics:
            out.append(f"★ best {row.name}: {metric} {row.metrics[metric].text()}", style="bold green")
        else:
            out.append("no best row (one row, or only partial rows)", style="dim")
        lacking = sum(1 for s in stats if s is None)
        if lacking:
            out.append(f"  ·  {lacking} row{'s' if lacking != 1 else ''} without {metric}", style="yellow")
        if not self.parallel and self.param:
            note = param_axis(values, log=self.log_x).note if values else ""
            if note:
                out.append(f"  ·  {note}", style="yellow")
        out.append("  ·  whiskers ± std over seeds" if not self.parallel else "  ·  v: one param", style="dim")
        return out

    # ------------------------------------------------------------ keys

    def action_pick_param(self) -> None:
        from fbtui.tui.screens.metric_picker import MetricPicker

        if self.table is None or not self.table.params:
            self.notify("no param differs between the rows", severity="warning")
            return

        def picked(pick: Pick | None) -> None:
            if pick is not None:
                self.param, self.log_x, self.parallel = pick.name, None, False
                self.redraw()

        self.app.push_screen(MetricPicker(list(self.table.params), Pick("key", self.param or ""), groups=False,
                                          title="Plot against which param?"), picked)

    def action_pick_metric(self) -> None:
        from fbtui.tui.screens.metric_picker import MetricPicker

        if self.table is None or not self.table.metrics:
            self.notify("no metric to plot yet", severity="warning")
            return

        def picked(pick: Pick | None) -> None:
            if pick is not None:
                self.metric = pick.name
                self.redraw()

        self.app.push_screen(MetricPicker(list(self.table.metrics), Pick("key", self.metric or ""), groups=False,
                                          title="Plot which metric?"), picked)

    def action_log(self) -> None:
        t = self.table
        values = [r.params.get(self.param) for r in t.rows] if t is not None and self.param else []
        if self.parallel or param_axis(values or [None]).kind == "category":
            self.notify("a log scale needs a numeric param on x", severity="warning")
            return
        shown = self.log_x if self.log_x is not None else wants_log(values)
        self.log_x = not shown
        self.redraw()

    def action_mode(self) -> None:
        self.parallel = not self.parallel
        self.redraw()


def _stat(s: Stat | None) -> tuple[float, float] | None:
    """A row's mean and std (0 for one seed); None without a finite value to place."""
    if s is None or not math.isfinite(s.mean):
        return None
    return s.mean, s.std if s.n > 1 and math.isfinite(s.std) else 0.0
