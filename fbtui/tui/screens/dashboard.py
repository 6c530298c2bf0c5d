"""A project's dashboard: its pipeline with the latest run's stage states, image freshness per
layer, recent runs, and keys to build, run and compare."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from fbtui.tui import data
from fbtui.tui.labels import distinct_labels
from fbtui.tui.widgets.common import FBScreen, status_text
from fbtui.tui.widgets.table import Column, FastTable, Row

if TYPE_CHECKING:
    from fbtui.images.service import LayerState


NO_RUNS = "no runs yet: press r to run the pipeline"


def pipeline_text(d: data.Dashboard, now: float) -> Text:
    """prepare ✓ 1.2s ──▶ train ● 8.6s ──▶ evaluate ○"""
    by_name = {s["name"]: s for s in d.latest_stages}
    out = Text()
    for i, name in enumerate(d.stages):
        if i:
            out.append("  ──▶  ", style="dim")
        st = by_name.get(name)
        status = st["status"] if st else None
        label = name
        if st and st.get("started_at"):
            label += " " + data.duration(st["started_at"], st.get("finished_at"), now)
        out.append_text(status_text(status, label) if status else Text(f"○ {name}", style="dim"))
    return out


class DashboardScreen(FBScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "run…", tooltip="launch the pipeline, a variant or an ablation"),
        Binding("b", "build", "build", tooltip="build what the project's image lacks"),
        Binding("c", "compare", "compare", tooltip="the ablation comparison"),
        Binding("l", "runs", "all runs", tooltip="every run of the project"),
        Binding("x", "cancel", "cancel run", show=False),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.dash: data.Dashboard | None = None

    def body(self) -> ComposeResult:
        yield Static(self.project, id="dash-title", classes="title")
        yield Static("", id="dash-desc")
        with Horizontal(id="dash-top"):
            with Vertical(id="dash-pipeline-box", classes="box"):
                yield Static("Pipeline (latest run)", classes="box-title")
                yield Static("", id="dash-pipeline")
                yield Static("", id="dash-latest")
            with Vertical(id="dash-images-box", classes="box"):
                yield Static("Image layers", classes="box-title")
                yield Static("checking…", id="dash-images")
        yield Static("Recent runs", classes="box-title")
        yield FastTable(id="dash-runs", empty=NO_RUNS)

    def on_mount(self) -> None:
        self.sub_title = self.project
        self.grid = self.query_one(FastTable)  # read by the worker: no DOM queries off the event loop
        self.grid.focus()
        self.load()
        self.load_images()
        self.poll_every(1.0, self.load, "dashboard")
        self.watch(self.app, "engine_error", lambda _: self.load_images(), init=False)

    def on_screen_resume(self) -> None:
        if self.returned_to():
            self.load()
            self.load_images()

    def on_resize(self) -> None:
        self.load()  # a taller table lists more runs

    @work(thread=True, exclusive=True, group="dashboard")
    def load(self) -> None:
        # as many recent runs as the table has rows (its header takes one); 12 before the first layout
        grid = getattr(self, "grid", None)
        rows = grid.size.height - 1 if grid is not None else 0
        d = data.dashboard(self.fb.lab, self.fb.store(), self.project, recent=max(12, rows))
        self.deliver(self.show, d)

    @work(thread=True, exclusive=True, group="images")
    def load_images(self) -> None:
        from fbtui.images.service import layer_states

        rows, problem = layer_states(self.fb.lab, self.project)
        self.deliver(self.show_images, rows, problem)

    def show_images(self, rows: list[LayerState], problem: str | None) -> None:
        out = Text()
        building = {lp.layer for lp in self.fb.builds.layers.values() if lp.state == "building"}
        for r in rows:
            state = "building" if r.repo in building else r.state
            out.append_text(status_text(state, f"{state:8}"))
            name = r.repo.removeprefix("fb/").removeprefix(f"{r.kind}-").removeprefix(r.kind)  # fb/env-x: x
            out.append(f" {r.kind:4} {name or 'common/':16} {r.tag.rsplit(':', 1)[-1][:12]}\n", style="dim" if
                       state == "unknown" else "")
        if problem:
            out.append(f"freshness unknown: {problem}", style="yellow")
        elif any(r.state == "stale" for r in rows):
            out.append("stale layers rebuild on the next run (b builds now)", style="dim")
        self.query_one("#dash-images", Static).update(out)

    def show(self, d: data.Dashboard) -> None:
        self.dash = d
        now = self.fb.clock()
        desc = self.query_one("#dash-desc", Static)
        if d.error:
            desc.update(Text(d.error, style="bold red"))
            self.grid.empty = "fix the error above, then r runs the pipeline"
            self.grid.refresh()
            return
        self.grid.empty = NO_RUNS
        abl = ", ".join(d.ablations) or "none"
        desc.update(f"{d.description}\nenvironment {d.environment}  ·  ablations: {abl}")
        self.query_one("#dash-pipeline", Static).update(pipeline_text(d, now))
        latest = ""
        if d.latest:
            r = d.latest
            latest = f"run #{r['id']} {r['status']}" + (f" — {r['reason']}" if r.get("reason") else "")
            if r.get("variant"):
                latest += f"  ({r['ablation']}: {r['variant']})"
        else:
            latest = "no run has started a stage yet" if d.never_started else "never run: r launches it"
        if d.never_started:
            n = d.never_started
            latest += f"\n#{n['id']} {n['status']} before it started" + (
                f" ({n['reason']})" if n.get("reason") and "before it started" not in n["reason"] else "")
        self.query_one("#dash-latest", Static).update(latest)
        cols = [Column("id", "RUN", align="right"), Column("status", "STATUS"), Column("variant", "VARIANT"),
                Column("seed", "SEED", align="right"), Column("host", "HOST"), Column("time", "DURATION"),
                Column("created", "STARTED")]
        rows = []
        labels = distinct_labels((r["variant"] or "-" for r in d.recent), 36)  # two runs never look alike
        for r in d.recent:
            rows.append(Row(r["id"], [f"#{r['eval_of'] or r['id']}", status_text(r["status"]),
                                      labels[r["variant"] or "-"] + (" (evaluated again)" if r["eval_of"] else ""),
                                      "" if r["seed"] is None else str(r["seed"]),
                                      r["host"] or r.get("requested_host") or "",
                                      data.duration(r["started_at"], r["finished_at"], now),
                                      data.ago(r["created_at"], now)],
                            sort=[r["eval_of"] or r["id"], r["status"], r["variant"], r["seed"], r["host"],
                                  (r["finished_at"] or now) - r["started_at"] if r["started_at"] else None,
                                  r["created_at"]]))
        self.query_one(FastTable).set_data(cols, rows)

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        self.fb.open_run(event.key)

    def action_run(self) -> None:
        error = getattr(getattr(self, "dash", None), "error", None)
        if error:  # its launcher would offer nothing to run, and say why only below its fields
            self.notify(error.splitlines()[0], title="fix the project's configuration first", severity="error")
            return
        self.fb.open_launcher(self.project)

    def action_build(self) -> None:
        if self.fb.engine_error:
            self.notify(f"cannot build: the engine is down ({self.fb.engine_error})", severity="error")
            return
        self.fb.build(self.project)
        self.fb.open_builds()

    def action_compare(self) -> None:
        self.fb.open_compare(self.project)

    def action_runs(self) -> None:
        self.fb.open_runs(self.project)

    def action_cancel(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key is not None:
            self.fb.confirm_cancel(key)
