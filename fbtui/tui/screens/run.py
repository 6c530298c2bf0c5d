"""One run: its stages with status and durations, the live log of the selected stage, metric
curves that update while it trains, and its latest evaluation: whether it is today's suite, what
differs and what its fingerprint covers (v)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Static

from fbtui.errors import FBError
from fbtui.pipeline.usage import UsagePoller, usage_text
from fbtui.tui import data, evaluations
from fbtui.tui.metric_groups import Pick, default_picks
from fbtui.tui.widgets.chart import Chart
from fbtui.tui.widgets.common import FBScreen, app_running, status_text
from fbtui.tui.widgets.logview import LogView
from fbtui.tui.widgets.table import Column, FastTable, Row

if TYPE_CHECKING:
    from fbtui.pipeline.usage import StageUsage

REFRESH_S = 1.0
USAGE_S = 2.0  # the running stages' CPU and memory (#14 item 7): one engine call each, in parallel


class RunScreen(FBScreen):
    FOOTER_MAIN = ("x", "f", "slash")  # kept in a narrow footer after q, ? and esc
    # The stages table, not the first focusable widget: under load the screen could be focused before
    # the stylesheet hid the evaluation pane, which then kept the focus (seen in CI)
    AUTO_FOCUS = "#run-stages"
    BINDINGS: ClassVar[list[BindingType]] = [
        # The log's keys work wherever the focus is (the stages table or the log itself).
        Binding("f", "log('toggle_follow')", "follow", tooltip="follow the end of the log, or pause where it is"),
        Binding("slash", "search", "search", key_display="/", tooltip="search the log; n/N next/previous"),
        Binding("n", "log('next_match(1)')", "next match", show=False),
        Binding("N", "log('next_match(-1)')", "previous match", show=False),
        Binding("backslash", "filter", "filter", key_display="\\", tooltip="show only lines containing text"),
        # before e: at 80 columns the footer's last keys are cut
        Binding("m", "pick_metric", "metric", tooltip="which metric or group (any key the run logged) the top chart "
                "shows; the one it showed moves below"),
        Binding("l", "chart_log", "log scale", show=False, tooltip="the charts' y axis on a log scale, or linear "
                "again (values ≤ 0 are left out, and the chart says how many)"),
        Binding("o", "chart_smooth", "smoothing", show=False, tooltip="smooth the charts' curves: EMA 0 → 0.6 → "
                "0.9 → 0.99 (the raw curve stays faint behind)"),
        Binding("e", "log('next_error')", "next error", tooltip="jump to the next line that looks like an error"),
        Binding("w", "wrap", "wrap", tooltip="wrap the log's long lines, or cut them at the edge"),
        Binding("t", "log('toggle_timestamps')", "timestamps", show=False),
        Binding("x", "cancel", "cancel run", tooltip="stop the run (later stages never start)"),
        Binding("v", "evaluation", "evaluation", tooltip="the latest evaluation: today's suite or not, what differs, "
                "what its fingerprint covers (v again: the log)"),
        Binding("tab", "switch_focus", "stages/log", show=False),
        Binding("i", "detail(False)", "detail", show=False, tooltip="the run's config with where each value was set, "
                "and its whole record (what `fbtui show` prints)"),
        Binding("d", "detail(True)", "diff against…", show=False, tooltip="what differs from another run: config keys "
                "with where each side set them, and the code"),
        Binding("R", "clone", "rerun / clone", show=False, tooltip="the launcher with this run's variant, seed, "
                "host, stages and overrides, to edit and launch as a new run"),
        Binding("A", "artifacts", "artifacts", show=False, tooltip="the files the run's stages made: view text "
                "and JSON, open others or copy their path"),
        Binding("y", "copy_id", "copy run id", show=False, tooltip="copy the run's number to the clipboard"),
    ]

    def __init__(self, run_id: int, stage: str | None = None, line: int | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.goto = (stage, line)  # opened at a log search's match: this stage's log at this line (0-based)
        self.usage_poller: UsagePoller | None = None  # this screen's own: CPU % is the change between its polls
        self.stage: str | None = None
        self.detail: data.RunDetail | None = None
        self.curves = data.Curves()  # read incrementally, poll after poll
        self._curves_lock = threading.Lock()  # a load started on a pick may overlap the poll's
        self.picks: list[Pick] | None = None  # what the charts show; None: the defaults
        self.input_mode: str | None = None  # search | filter
        self.auto_stage = True  # show whichever stage is running until the user picks one
        self.evaluation: dict[str, Any] | None = None  # the latest, judged against today's suite
        self._eval_key: tuple[Any, ...] | None = None  # judged again only when this changes
        self.showing_eval = False

    def body(self) -> ComposeResult:
        yield Static(f"run #{self.run_id}", id="run-title", classes="title")
        yield Static("", id="run-info")
        yield Static("", id="run-eval")
        with VerticalScroll(id="run-eval-pane"):
            yield Static("", id="run-eval-detail")
        with Horizontal(id="run-main"):
            with Vertical(id="run-left"):
                yield FastTable(id="run-stages", empty="loading…")
                yield Static("", id="run-usage", classes="hint")
                yield Chart(id="chart-loss")
                yield Chart(id="chart-acc")
            with Vertical(id="run-right"):
                yield Static("", id="log-status")
                yield LogView(id="run-log")
                yield Input(id="log-input")

    def on_mount(self) -> None:
        if not app_running(self.app):  # pushed as the app quits: its widgets are being pruned
            return
        self.sub_title = f"run #{self.run_id}"
        self.query_one("#log-input", Input).display = False
        self.query_one("#run-usage", Static).display = False
        self.query_one("#run-stages", FastTable).focus()
        self.load()
        self._timer = self.poll_every(REFRESH_S, self.load, "run")
        self.poll_every(USAGE_S, self.load_usage, "run-usage")

    @work(thread=True, exclusive=True, group="run")
    def load(self) -> None:
        store = self.fb.store()
        if store is None:
            return
        try:
            with self._curves_lock:
                d = data.run_detail(store, self.run_id, self.curves, self.picks)
            # Judging an evaluation hashes the tree's files: only when the run has a new one.
            key = (d.run["status"], store.query("SELECT MAX(id) AS last FROM evaluations WHERE suite IS NULL AND "
                                                "run_id = ?", (self.run_id,))[0]["last"])
            if key != self._eval_key:
                self.evaluation = evaluations.latest_evaluation(self.fb.lab, store, d.run)
                self._eval_key = key
        except FBError as e:
            self.app.call_from_thread(self.app.notify, e.message, severity="error")
            return
        self.deliver(self.show, d)

    def show(self, d: data.RunDetail) -> None:
        first = self.detail is None
        was_live = first or self.detail.run["status"] in data.ACTIVE  # type: ignore[union-attr]
        self.detail = d
        if was_live != (d.run["status"] in data.ACTIVE) or first:
            self.refresh_bindings()  # x (cancel) only while the run goes on
        if d.run["status"] in data.ACTIVE:
            self.fb.announce_end_of(self.run_id, d.run["status"])  # its end is a toast, once
        now = self.fb.clock()
        r = d.run
        live = r["status"] in data.ACTIVE
        title = Text(f"run #{r['id']}  {r['project']}  ")
        title.append_text(status_text(r["status"]))
        if r.get("variant"):
            seed = f" seed {r['seed']}" if r["seed"] is not None else ""
            title.append(f"   {r['ablation']}: {r['variant']}{seed}")
        self.query_one("#run-title", Static).update(title)
        commit = ""
        if d.commit and d.commit.get("sha"):
            commit = d.commit["sha"][:10] + ("-dirty" if d.commit.get("dirty") else "")
        info = (f"host {r['host'] or r.get('requested_host') or '-'}  ·  image {r['image'] or '-'}  ·  commit "
                f"{commit or '-'}  ·  {data.duration(r['started_at'], r['finished_at'], now) or 'not started'}")
        if r.get("reason"):
            info += f"\n{r['reason']}"
        for name, note in d.degraded.items():  # the store cannot take its progress now: it waits, nothing is lost
            info += f"\n{name} {note} (the supervisor retries until the store takes it)"
        said = " ".join((r.get("note") or "").split())  # the note on one line, cut: n edits it in the runs table
        marks = [f"tags {' '.join(d.tags)}" if d.tags else "", f"✎ {said[:99] + '…' if len(said) > 100 else said}"
                 if said else "", "archived (hidden from tables, kept)" if r.get("archived_at") else ""]
        if any(marks):
            info += "\n" + "  ·  ".join(m for m in marks if m)
        self.query_one("#run-info", Static).update(Text(info))  # a note's [brackets] are no markup
        self.show_evaluation(r)
        cols = [Column("stage", "STAGE"), Column("status", "STATUS"), Column("time", "TIME", align="right"),
                Column("reason", "REASON", max_width=14)]  # the whole reason is in the run's info line
        rows = [Row(s["name"], [s["name"], status_text(s["status"], f"{s['status']} ({d.degraded[s['name']]})"
                                                                if s["name"] in d.degraded else None),
                                data.duration(s["started_at"], s["finished_at"], now),
                                (s["reason"] or "").splitlines()[0] if s["reason"] else ""]) for s in d.stages]
        table = self.query_one("#run-stages", FastTable)
        table.set_data(cols, rows)
        if first:
            asked = next((s for s in d.stages if s["name"] == self.goto[0]), None)
            pick = asked or next((s for s in d.stages if s["status"] == "running"), None)
            pick = pick or next((s for s in reversed(d.stages) if s["status"] not in ("pending", "skipped")), None)
            pick = pick or (d.stages[0] if d.stages else None)
            if pick:
                table.move_to_key(pick["name"])
                self.open_stage(pick["name"])
            if asked and self.goto[1] is not None:
                self.auto_stage = False  # stay on the match's stage
                self.query_one(LogView).go_to_line(self.goto[1])
        elif self.stage:
            running = next((s["name"] for s in d.stages if s["status"] == "running"), None)
            if self.auto_stage and running and running != self.stage:  # follow the pipeline along
                self.open_stage(running)
                table.move_to_key(running)
                return
            st = next((s for s in d.stages if s["name"] == self.stage), None)
            log = self.query_one(LogView)
            if st is not None and log.live and st["status"] not in ("pending", "running"):
                log.set_live(False)  # the stage ended: the tail reads what is left, then stops
        self.show_charts(d)
        if not live:
            self._timer.pause()  # a finished run does not change: stop polling

    def show_evaluation(self, r: dict[str, Any]) -> None:
        line = self.query_one("#run-eval", Static)
        ev = self.evaluation
        if r.get("eval_of") and r.get("suite"):
            text, style = f"scores run #{r['eval_of']} on suite {r['suite']} (its record holds the result)", ""
        elif r.get("eval_of"):
            text, style = f"evaluates run #{r['eval_of']} again under today's suite (its record holds the result)", ""
        elif ev is None:
            text, style = "", ""
        else:
            text, style = evaluations.summary(ev)
        line.update(Text(text, style=style, no_wrap=True, overflow="ellipsis"))
        line.display = bool(text)
        detail = evaluations.detail_lines(ev, max(40, self.size.width - 4)) if ev else [
            "no evaluation yet" + (f": this run evaluates run #{r['eval_of']} again" if r.get("eval_of") else "")]
        self.query_one("#run-eval-detail", Static).update("\n".join(detail) + "\n\nv or esc: back to the log")

    def action_evaluation(self) -> None:
        """The evaluation in full, over the stages and the log (at 80 columns it needs the width)."""
        self.showing_eval = not self.showing_eval
        self.query_one("#run-eval-pane").display = self.showing_eval
        self.query_one("#run-main").display = not self.showing_eval
        if self.showing_eval:
            self.query_one("#run-eval-pane").focus()
        else:
            self.query_one("#run-stages", FastTable).focus()
        self.refresh_bindings()

    def show_charts(self, d: data.RunDetail) -> None:
        for i, chart_id in enumerate(("#chart-loss", "#chart-acc")):
            title, keys = d.charts[i] if i < len(d.charts) else ("", [])
            series = [(k, d.curves.get(k, [])) for k in keys]
            chart = self.query_one(chart_id, Chart)
            chart.set_series(title, series)
            chart.display = bool(series)  # no such metric: the stages table and log get the room

    def action_chart_log(self) -> None:
        charts = list(self.query(Chart))
        on = not charts[0].log_scale if charts else False
        for chart in charts:  # both charts alike
            chart.set_view(log=on)

    def action_chart_smooth(self) -> None:
        charts = list(self.query(Chart))
        factor = charts[0].cycle_smoothing() if charts else 0.0
        for chart in charts[1:]:
            chart.set_view(smoothing=factor)

    def action_pick_metric(self) -> None:
        from fbtui.tui.screens.metric_picker import MetricPicker

        keys = self.detail.keys if self.detail else []
        if not keys:
            self.notify("this run has no metrics yet", severity="warning")
            return
        shown = self.picks or default_picks(keys)

        def picked(pick: Pick | None) -> None:
            if pick is not None:
                self.picks = [pick, *[p for p in shown if p != pick][:1]]  # the top chart's moves below
                self.load()

        self.app.push_screen(MetricPicker(keys, shown[0] if shown else None), picked)

    def on_fast_table_highlighted(self, event: FastTable.Highlighted) -> None:
        # Only the cursor's current row counts: a message queued before a programmatic move is stale.
        if event.key and event.key == event.table.cursor_key and event.key != self.stage and self.detail:
            self.auto_stage = False  # the user picked a stage: stop following the running one
            self.open_stage(event.key)

    def open_stage(self, name: str) -> None:
        self.stage = name
        st = next((s for s in self.detail.stages if s["name"] == name), None) if self.detail else None
        live = st is None or st["status"] in ("pending", "running")
        self.log_of = st.get("cached_run") if st else None  # a cached stage: its log is its source's
        self.query_one(LogView).open(data.spool_path(self.fb.lab, self.log_of or self.run_id, name), live=live)
        self.update_log_status()

    log_of: int | None = None

    def on_log_view_status_changed(self, event: LogView.StatusChanged) -> None:
        self.update_log_status()

    def update_log_status(self) -> None:
        log = self.query_one(LogView)
        n = log.index.count if log.index else 0
        # The state first: a long search or filter text is what gets cut at the edge.
        parts = [f"{self.stage or '-'} log" + (f" of #{self.log_of} (cached)" if self.log_of else ""),
                 "following" if log.follow else "paused", f"{n:,} lines"]
        if log.wrap:
            parts.append("wrapped")
        if log.shown is not None:
            parts.append(f"{len(log.shown):,} match filter '{log.filter}'")
        if log.search:
            parts.append(f"search '{log.search}' (n/N)")
        st = next((s for s in self.detail.stages if s["name"] == self.stage), None) if self.detail else None
        if st and st.get("command"):  # the command as it ran, templates rendered (last: cut first at the edge)
            import json
            import shlex

            try:
                parts.append("$ " + shlex.join(json.loads(st["command"])))
            except (ValueError, TypeError):
                pass
        self.query_one("#log-status", Static).update("  ·  ".join(parts))

    # ------------------------------------------------------------ search and filter input

    def _ask(self, mode: str, value: str) -> None:
        self.input_mode = mode
        box = self.query_one("#log-input", Input)
        box.placeholder = "search (enter: find, esc: cancel)" if mode == "search" else "filter (empty: all lines)"
        box.value = value
        box.display = True
        box.focus()

    def action_search(self) -> None:
        self._ask("search", self.query_one(LogView).search)

    def action_filter(self) -> None:
        self._ask("filter", self.query_one(LogView).filter)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        log = self.query_one(LogView)
        if self.input_mode == "search":
            log.search = event.value
        elif self.input_mode == "filter":
            log.filter = event.value
        self._close_input()
        self.update_log_status()

    def _close_input(self) -> None:
        box = self.query_one("#log-input", Input)
        box.display = False
        self.input_mode = None
        self.query_one(LogView).focus()

    def action_back(self) -> None:
        if self.input_mode:
            self._close_input()
            return
        if self.showing_eval:
            self.action_evaluation()
            return
        super().action_back()

    async def action_log(self, action: str) -> None:
        await self.query_one(LogView).run_action(action)

    def action_switch_focus(self) -> None:
        stages, log = self.query_one("#run-stages", FastTable), self.query_one(LogView)
        (stages if log.has_focus else log).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":  # only a run that is still going can be cancelled
            return self.detail is None or self.detail.run["status"] in data.ACTIVE
        # typing into the search box: the keys are text; over the evaluation the log is hidden
        if action in ("log", "wrap", "search", "filter", "switch_focus", "pick_metric") and self.showing_eval:
            return False
        if action == "evaluation" and self.input_mode:
            return False
        return not (action in ("log", "wrap", "search", "filter") and self.input_mode)

    def action_wrap(self) -> None:
        self.query_one(LogView).action_toggle_wrap()

    def action_cancel(self) -> None:
        self.fb.confirm_cancel(self.run_id, then=self._timer.resume)

    def action_copy_id(self) -> None:
        self.fb.copy_text(str(self.run_id), "run id")

    # ------------------------------------------------------------ resource use of running stages

    @work(thread=True, exclusive=True, group="run-usage")
    def load_usage(self) -> None:
        from fbtui.pipeline.hosts import shared_hosts
        from fbtui.pipeline.usage import running_stages

        store = self.fb.store()
        if store is None or self.detail is None or self.detail.run["status"] not in data.ACTIVE:
            readings: list[StageUsage] = []
        else:
            try:
                stages = [s for s in running_stages(store) if s["run_id"] == self.run_id]
            except FBError:
                return  # the store is busy for a moment: the next poll reads it
            if stages and self.usage_poller is None:
                lab = self.fb.lab
                self.usage_poller = UsagePoller(shared_hosts(lab.root, lab.config.hosts))
            readings = self.usage_poller.poll(stages) if stages and self.usage_poller else []
        self.deliver(self.show_usage, readings)

    def show_usage(self, readings: list[StageUsage]) -> None:
        found = self.query("#run-usage")
        if not found:  # a reading that arrives as the screen closes
            return
        line = found.first(Static)
        line.update("\n".join(f"{u.stage}: {usage_text(u)}" for u in readings))
        line.display = bool(readings)

    # ------------------------------------------------------------ detail, diff, clone, artifacts (#14 4, 10, 12)

    def action_detail(self, ask_diff: bool) -> None:
        from fbtui.tui.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(self.run_id, ask_diff=ask_diff))

    def action_clone(self) -> None:
        from fbtui.tui.screens.launcher import Clone, LauncherScreen

        if self.detail is None:
            return
        run = self.detail.run
        if run.get("eval_of"):
            self.notify(f"this run evaluates run #{run['eval_of']} again: clone that one", severity="warning")
            return
        self.app.push_screen(LauncherScreen(run["project"], Clone.of(run)),
                             lambda req: self.fb.launch(req) if req is not None else None)

    def action_artifacts(self) -> None:
        from fbtui.tui.screens.artifacts import ArtifactsScreen

        self.app.push_screen(ArtifactsScreen(self.run_id))
