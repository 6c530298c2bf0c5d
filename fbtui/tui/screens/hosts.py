"""The lab's hosts: reachability, engine, slots and GPUs in use, running fb containers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from fbtui.tui.widgets.common import FBScreen
from fbtui.tui.widgets.table import Column, FastTable, Row

REFRESH_S = 5.0


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


class HostsScreen(FBScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "runs", "runs", tooltip="the runs placed on this host"),
        Binding("f5,ctrl+r", "reload", "reload", show=False),
    ]

    def body(self) -> ComposeResult:
        yield Static("Hosts", classes="title")
        yield FastTable(id="hosts", empty="asking the hosts…")
        yield Static("enter: the host's runs  ·  refreshes every 5 s", classes="hint")

    def on_mount(self) -> None:
        self.sub_title = "hosts"
        self.query_one(FastTable).focus()
        self.load()
        self.poll_every(REFRESH_S, self.load, "hosts")

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
        self.app.call_from_thread(self.query_one(FastTable).set_data, cols, body)

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        self.fb.open_runs(None, host=event.key)

    def action_runs(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key:
            self.fb.open_runs(None, host=key)
