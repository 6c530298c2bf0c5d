"""The project switcher: every project with its environment, last run and how many are running."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from fbtui.tui import data
from fbtui.tui.widgets.common import FBScreen, status_text
from fbtui.tui.widgets.table import Column, FastTable, Row


class ProjectsScreen(FBScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "open", tooltip="the project's dashboard"),
        # the app's L, shown here where the footer has room: leaderboards are the lab's, not a project's
        Binding("L", "app.leaderboards", "leaderboards", tooltip="lab-wide evaluation suites and their leaderboards"),
        Binding("f5,ctrl+r", "reload", "reload", show=False),
    ]

    def body(self) -> ComposeResult:
        yield Static("Projects", classes="title")
        yield FastTable(id="projects", empty="no projects yet: add projects/<name>/project.yaml")
        yield Static("", id="projects-hint", classes="hint")

    def on_mount(self) -> None:
        self.query_one(FastTable).focus()
        self.load(check=False)  # the first frame: names and last runs; the project.yaml files after it
        self.poll_every(3.0, self.load, "projects")

    _first_rows_drawn = False
    _cursor_for: str | None = None  # the project the cursor was last put on

    def on_screen_resume(self) -> None:
        self.refresh_bindings()  # esc leads back once a project was opened
        self._cursor_for = None
        if self.returned_to():  # (the mount's own first load, then the first frame's, read them)
            self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return bool(self.fb.project) if action == "back" else True  # the root switcher has no "back"

    def action_reload(self) -> None:
        self.fb.project_names = self.fb.lab.project_names()
        self.load()

    @work(thread=True, exclusive=True, group="projects")
    def load(self, check: bool = True) -> None:
        rows = data.project_rows(self.fb.lab, self.fb.store(), check=check)
        self.deliver(self.show, rows)

    def show(self, rows: list[data.ProjectRow]) -> None:
        if not self._first_rows_drawn:  # once these are on screen: lab.yaml, then every project.yaml
            self.call_after_refresh(self._after_first_rows, bool(rows) and not rows[0].checked)
        table = self.query_one(FastTable)
        cols = [Column("name", "PROJECT"), Column("env", "ENVIRONMENT"), Column("last", "LAST RUN"),
                Column("active", "RUNNING", align="right"), Column("desc", "DESCRIPTION", max_width=70)]
        body = []
        unread = self.fb.stores.problem is not None  # (the banner says why)
        for r in rows:
            last = Text("unknown", style="red") if unread else \
                status_text(r.last_status, f"#{r.last_run} {r.last_status}" if r.last_run else None)
            desc = Text(r.error.splitlines()[0], style="red") if r.error else Text(r.description)
            env = r.environment or (Text("(invalid)", style="red") if r.checked else Text("…", style="dim"))
            body.append(Row(r.name, [r.name, env, last, str(r.active or ""), desc],
                            sort=[r.name, r.environment, r.last_run, r.active, r.description]))
        table.set_data(cols, body)
        if self.fb.project and self.fb.project != self._cursor_for:  # on the project left, once per visit
            table.move_to_key(self.fb.project)
            self._cursor_for = self.fb.project
        self.query_one("#projects-hint", Static).update(
            f"lab {self.fb.lab.name} at {self.fb.lab.root}  ·  enter opens  ·  ctrl+p: command palette")

    def _after_first_rows(self, unchecked: bool) -> None:
        self._first_rows_drawn = True
        self.fb.check_lab()
        # Under the restored dashboard: when returned to. Under a dialog it shows: now.
        if unchecked and (self.app.screen is self or self.app.screen.is_modal):
            self.load()

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        self.fb.open_project(event.key)

    def action_open(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key:
            self.fb.open_project(key)

    def action_back(self) -> None:
        if self.fb.project:  # esc from the switcher returns to the project it came from
            self.fb.open_project(self.fb.project, remember=False)
