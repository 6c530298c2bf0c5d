"""The lab's hosts: reachability, engine, slots and GPUs in use, running fb containers, and what
each running stage uses now (CPU %, memory, processes: #14 item 7)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from fbtui.errors import FBError
from fbtui.tui.widgets.common import FBScreen
from fbtui.tui.widgets.table import Column, FastTable, Row

if TYPE_CHECKING:
    from fbtui.pipeline.usage import StageUsage, UsagePoller

REFRESH_S = 5.0
USAGE_S = 2.0


def host_rows(rows: list[dict[str, Any]]) -> tuple[list[Column], list[Row]]:
    cols = [Column("host", "HOST"), Column("url", "URL"), Column("state", "STATE"),
            Column("engine", "ENGINE", max_width=50), Column("cpus", "CPUS", align="right"),
            Column("gpus", "GPUS"), Column("running", "RUNNING", max_width=60)]
    out = []
    for r in rows:
        up = bool(r["reachable"])
        state = Text("✓ up", style="green") if up else Text("✗ DOWN", style="bold red")
        engine = f"{r['version']} (API {r['api']})" if up else (r["error"] or "")
        gpus = (f"{len(r['gpus_in_use'])}/{len(r['gpus'])} in use" if r["gpus"] else
                ("nvidia runtime" if "nvidia" in r["runtimes"] else "none"))
        running = ", ".join(c["text"] for c in r["containers"]) or "-"  # other checkouts' say whose
        cpus = f"{r['cpus_in_use']:g}/{r['cpus']:g}" if up else "-"
        out.append(Row(r["host"], [r["host"], r["url"], state, engine, cpus, gpus, running]))
    return cols, out


def usage_rows(readings: list[StageUsage]) -> tuple[list[Column], list[Row]]:
    from fbtui.pipeline.usage import size_text

    cols = [Column("host", "HOST"), Column("run", "RUN", align="right"), Column("stage", "STAGE"),
            Column("cpu", "CPU", align="right"), Column("mem", "MEMORY", align="right"),
            Column("limit", "LIMIT", align="right"), Column("pids", "PIDS", align="right")]
    out = []
    for u in sorted(readings, key=lambda u: u.host):  # each host's stages together
        key = (u.host, u.run, u.stage)
        if u.problem:
            out.append(Row(key, [u.host, f"#{u.run}", u.stage, Text("no reading", style="yellow"), u.problem[:40],
                                 "", ""], search=u.project))
            continue
        cpu = "…" if u.cpu_percent is None else f"{u.cpu_percent:.0f}%"  # (the first poll has no CPU % yet)
        out.append(Row(key, [u.host, f"#{u.run}", u.stage, cpu, size_text(u.memory),
                             size_text(u.memory_limit) if u.memory_limit else "-",
                             "-" if u.pids is None else str(u.pids)],
                       sort=[u.host, u.run, u.stage, u.cpu_percent, u.memory, u.memory_limit, u.pids],
                       search=u.project))
    return cols, out


class HostsScreen(FBScreen):
    DEFAULT_CSS = """
    HostsScreen #hosts { height: auto; max-height: 50%; }
    HostsScreen #host-usage { height: 1fr; min-height: 3; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "runs", "runs", tooltip="the runs placed on this host"),
        Binding("f5,ctrl+r", "reload", "reload", show=False),
    ]

    def body(self) -> ComposeResult:
        yield Static("Hosts", classes="title")
        yield FastTable(id="hosts", empty="asking the hosts…")
        yield Static("enter: the host's runs  ·  refreshes every 5 s", classes="hint")
        yield Static("Running stages  (every 2 s)", classes="title")
        yield FastTable(id="host-usage", empty="reading…")

    def on_mount(self) -> None:
        self.sub_title = "hosts"
        self.usage_poller: UsagePoller | None = None  # this screen's own: CPU % is the change between its polls
        self.query_one("#hosts", FastTable).focus()
        self.load()
        self.poll_every(REFRESH_S, self.load, "hosts")
        self.load_usage()
        self.poll_every(USAGE_S, self.load_usage, "host-usage")

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="hosts")
    def load(self) -> None:
        from fbtui.pipeline.hosts import host_status

        lab = self.fb.lab
        names = list(lab.config.hosts)
        # A host that does not answer must not hold up the others.
        with ThreadPoolExecutor(max_workers=8) as pool:
            rows = list(pool.map(lambda n: host_status(lab.root, lab.config.name, lab.config.hosts, n), names))
        cols, body = host_rows(rows)
        self.deliver(lambda *a: self.query_one("#hosts", FastTable).set_data(*a), cols, body)

    @work(thread=True, exclusive=True, group="host-usage")
    def load_usage(self) -> None:
        from fbtui.pipeline.hosts import shared_hosts
        from fbtui.pipeline.usage import UsagePoller, running_stages

        store = self.fb.store()
        try:
            stages = running_stages(store) if store is not None else []
        except FBError:
            return  # the store is busy for a moment: the next poll reads it
        if stages and self.usage_poller is None:
            self.usage_poller = UsagePoller(shared_hosts(self.fb.lab.root, self.fb.lab.config.hosts))
        readings = self.usage_poller.poll(stages) if stages and self.usage_poller else []
        cols, body = usage_rows(readings)
        self.deliver(self.show_usage, cols, body)

    def show_usage(self, cols: list[Column], body: list[Row]) -> None:
        found = self.query("#host-usage")
        if not found:  # a reading that arrives as the screen closes
            return
        table = found.first(FastTable)
        table.empty = "no stage is running"
        table.set_data(cols, body)

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        if event.table.id == "host-usage":
            self.fb.open_run(event.key[1])
        else:
            self.fb.open_runs(None, host=event.key)

    def action_runs(self) -> None:
        key = self.query_one("#hosts", FastTable).cursor_key
        if key:
            self.fb.open_runs(None, host=key)
