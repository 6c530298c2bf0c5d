"""FBApp: the lab's terminal app. Screens live in fbtui/tui/screens/, one module each."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.reactive import reactive

from fbtui.errors import FBError
from fbtui.tui import data
from fbtui.tui.services import TerminalServices

if TYPE_CHECKING:
    from fbtui.images.events import BuildEvent
    from fbtui.lab import Lab
    from fbtui.store import Store

ENGINE_CHECK_S = 10.0
LAB_CHECK_S = 1.0  # lab.yaml's check at the latest this long after start
WATCH_S = 2.0  # how often the runs the user launched or watches are checked for their end


@dataclass
class LayerProgress:
    layer: str
    state: str = "waiting"  # waiting | building | cached | done | error | transfer
    step: int = 0
    total: int = 0
    seconds: float | None = None
    tag: str | None = None


@dataclass
class BuildLog:
    """What builds started from this app did: per-layer progress and the build log. Events arrive
    from worker threads; screens read them on a timer, so a chatty build costs no message per line."""

    title: str = ""
    layers: dict[str, LayerProgress] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    active: bool = False
    error: str | None = None
    version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, title: str) -> None:
        with self._lock:
            self.title, self.layers, self.lines, self.active, self.error = title, {}, [], True, None
            self.version += 1

    def add(self, e: BuildEvent) -> None:
        with self._lock:
            lp = self.layers.setdefault(e.layer, LayerProgress(e.layer))
            if e.kind == "cached":
                lp.state, lp.tag = "cached", e.tag
            elif e.kind == "start":
                lp.state = "building"
            elif e.kind == "step":
                lp.state, lp.step, lp.total = "building", e.step or lp.step, e.total or lp.total
            elif e.kind == "done":
                lp.state, lp.seconds, lp.tag = "done", e.seconds, e.tag
                lp.step = lp.total or lp.step
            elif e.kind == "error":
                lp.state = "error"
                self.lines.extend(f"! {x}" for x in (e.lines or []))
            elif e.kind == "transfer":
                lp.state = "transfer"
            if e.text:
                self.lines.append(f"{e.layer.split('/')[-1]}: {e.text}" if e.kind != "log" else e.text)
            if len(self.lines) > 20000:
                del self.lines[:5000]
            self.version += 1

    def finish(self, error: str | None = None) -> None:
        with self._lock:
            self.active, self.error = False, error
            self.version += 1

    def snapshot(self, since_line: int) -> tuple[list[LayerProgress], list[str], int]:
        with self._lock:
            layers = [LayerProgress(**vars(x)) for x in self.layers.values()]
            start = min(since_line, len(self.lines))
            return layers, self.lines[start:], len(self.lines)


@dataclass
class LaunchRequest:
    project: str
    variant: str | None = None
    ablation: str | None = None
    seed: int | None = None
    hosts: list[str] = field(default_factory=lambda: ["local"])
    stages: list[str] | None = None
    overrides: list[str] = field(default_factory=list)
    resume: bool = False  # only the cells without a succeeded run under today's code and config


class ProjectCommands(Provider):
    """Command palette: "Switch project: …", and the app's screens."""

    async def startup(self) -> None:
        # Listed again each time the palette opens: a project added while the app runs is offered.
        import asyncio

        app: FBApp = self.app  # type: ignore[assignment]
        app.project_names = await asyncio.to_thread(app.lab.project_names)

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app: FBApp = self.app  # type: ignore[assignment]
        out: list[tuple[str, Callable[[], Any], str]] = []
        for name in app.project_names:
            out.append((f"Switch project: {name}", lambda n=name: app.open_project(n), "open its dashboard"))
        if app.project:
            p = app.project
            out.append((f"Compare ablations of {p}", lambda: app.open_compare(p), "variants side by side"))
            out.append((f"Runs of {p}", lambda: app.open_runs(p), "every run, filterable and sortable"))
            out.append((f"Run {p}…", lambda: app.open_launcher(p), "the launcher"))
            out.append((f"Search the logs of {p}…", app.open_log_search, "a pattern across every run's logs (ctrl+g)"))
        out.append(("Hosts", app.open_hosts, "reachability, slots, GPUs, running stages"))
        out.append(("Builds", app.open_builds, "per-layer progress and the build log"))
        out.append(("Leaderboards", app.open_suites, "lab-wide evaluation suites, each run scored on them ranked"))
        return out

    async def discover(self) -> Hits:
        for text, cb, help_ in self._commands():
            yield DiscoveryHit(text, cb, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, cb, help_ in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), cb, text=text, help=help_)


class FBApp(TerminalServices, App[None]):
    """Switch projects, build, launch, follow logs live, compare ablations."""

    CSS_PATH = "app.tcss"
    TITLE = "Force Build"
    # A screen class app.tcss sizes by: on a short terminal (80x24) the tables get the rows first.
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (30, "-normal")]
    # Below 100 columns the run view gives its log the width (at 80: 47 columns of log, not 33).
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (100, "-wide")]
    COMMANDS: ClassVar = App.COMMANDS | {ProjectCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit", tooltip="quit (runs go on)"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("P", "projects", "projects", tooltip="the project switcher"),
        Binding("H", "hosts", "hosts", show=False),
        Binding("B", "builds", "builds", show=False),
        Binding("L", "leaderboards", "leaderboards", show=False),
        Binding("ctrl+g", "log_search", "grep logs", key_display="^g", show=False,
                tooltip="search the logs of the project's runs (a regular expression)"),
    ]

    engine_error: reactive[str | None] = reactive(None)
    store_error: reactive[str | None] = reactive(None)  # the store exists but cannot be read
    project: reactive[str | None] = reactive(None)

    def __init__(self, lab: Lab, *, clock: Callable[[], float] = time.time, check_engine: bool = True,
                 restore: bool = True) -> None:
        super().__init__()
        self.lab = lab
        self.clock = clock  # tests pass a fixed clock: durations of running runs stay still
        self.check_engine = check_engine
        self.restore = restore
        self.stores = data.Stores(lab.store_path, on_problem=self._store_problem)
        self.builds = BuildLog()
        self.project_names: list[str] = lab.project_names()
        self.sub_title = f"lab {lab.name}"
        # Runs launched here or whose view was opened: their end is announced once (#14 item 8).
        self.watched: dict[int, str | None] = {}  # run -> its status when last read (None: not read yet)
        self.announced: set[int] = set()

    # ------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        from fbtui.tui.screens.projects import ProjectsScreen

        self.push_screen(ProjectsScreen())
        state = data.load_state(self.lab)
        self._saved_theme = state.get("theme")
        if self._saved_theme in self.available_themes:  # the theme picked last time (ctrl+p: Change theme)
            self.theme = self._saved_theme
        last = state.get("project") if self.restore else None
        if last in self.project_names:
            self.open_project(last, remember=False)
        self.set_interval(WATCH_S, self._check_watched)
        self._end_on_sigterm()
        # The switcher asks for this once its first rows are drawn; the timer is for when it is not shown.
        self.set_timer(LAB_CHECK_S, self.check_lab)

    def _end_on_sigterm(self) -> None:
        """`kill` (SIGTERM) ends the app as q does: the terminal gets its screen, cursor and mouse
        back (Python's default would leave it in the app's modes). Runs go on either way."""
        import asyncio
        import signal

        if self.is_headless:
            return
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.exit, None, 128 + signal.SIGTERM)
        except (ValueError, RuntimeError, NotImplementedError):  # (not the main thread, or no signals here)
            pass

    _lab_checked = False

    def check_lab(self) -> None:
        """lab.yaml is validated after the first frame (run_app opens the lab with check=False): a
        bad one ends the app with its one line, as it ends any command. The engine checks follow."""
        if not self._lab_checked:
            self._lab_checked = True
            self._check_lab()

    @work(thread=True, group="lab")
    def _check_lab(self) -> None:
        try:
            self.lab.config  # noqa: B018
        except FBError as e:
            self.call_from_thread(self._bad_lab, e)
            return
        self.call_from_thread(self._lab_ok)

    def _bad_lab(self, e: FBError) -> None:
        self.crash_report = str(e)
        self.exit(return_code=e.exit_code)

    def _lab_ok(self) -> None:
        self.sub_title = f"lab {self.lab.config.name}"
        if self.check_engine:
            self.poll_engine()
            self.set_interval(ENGINE_CHECK_S, self.poll_engine)

    crash_report: str | None = None  # the one line for the terminal when the app ends on an error

    def _fatal_error(self) -> None:
        """An unexpected error ends the app (Textual's way) with its traceback in a crash log, not
        on the terminal: run_app prints one line naming the log."""
        import sys

        from fbtui.store.registry import report_unexpected

        error = sys.exc_info()[1] or self._exception
        if error is None:
            super()._fatal_error()
            return
        self.crash_report = report_unexpected(error)
        self.bell()
        self._close_messages_no_wait()

    def on_unmount(self) -> None:
        self.stores.close()

    def _store_problem(self, problem: str | None) -> None:
        """From the worker that opened the store: the banner says it (screens show no runs then,
        which must not read as a lab where nothing ever ran)."""
        if threading.current_thread() is threading.main_thread():
            self.store_error = problem
            return
        try:
            self.call_from_thread(setattr, self, "store_error", problem)
        except RuntimeError:  # the app has stopped
            pass

    def store(self) -> Store | None:
        """This thread's store (call it in workers); None when the lab has never run anything."""
        return self.stores.get()

    @work(thread=True, exclusive=True, group="engine")
    def poll_engine(self) -> None:
        problem = data.engine_ok(self.lab)
        self.call_from_thread(setattr, self, "engine_error", problem)

    _saved_theme: str | None = None

    def watch_theme(self, theme: str) -> None:
        if self.is_mounted and theme != self._saved_theme:  # (not the default at start)
            self._saved_theme = theme
            data.save_state(self.lab, theme=theme)

    def watch_engine_error(self, old: str | None, new: str | None) -> None:
        if old and not new:
            self.notify("Docker engine is back")

    # ------------------------------------------------------------ navigation

    def open_project(self, name: str, *, remember: bool = True) -> None:
        from fbtui.tui.screens.dashboard import DashboardScreen
        from fbtui.tui.screens.projects import ProjectsScreen

        self.project = name
        if remember:
            data.save_state(self.lab, project=name)
        # Switching replaces everything above the switcher: esc then leads back to it.
        while len(self.screen_stack) > 2 and not isinstance(self.screen, ProjectsScreen):
            self.pop_screen()
        self.push_screen(DashboardScreen(name))

    def open_run(self, run_id: int, stage: str | None = None, line: int | None = None) -> None:
        """The run's view; at `stage`'s log `line` (0-based) when given (a log search's match)."""
        from fbtui.tui.screens.run import RunScreen

        self.announce_end_of(run_id)
        self.push_screen(RunScreen(run_id, stage=stage, line=line))

    def open_log_search(self) -> None:
        from fbtui.tui.screens.logsearch import LogSearchScreen

        if not isinstance(self.screen, LogSearchScreen):
            self.push_screen(LogSearchScreen(self.project))

    def open_runs(self, project: str | None, host: str | None = None) -> None:
        from fbtui.tui.screens.runs import RunsScreen

        self.push_screen(RunsScreen(project, host=host))

    def open_compare(self, project: str, ablation: str | None = None) -> None:
        from fbtui.tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(project, ablation))

    def open_hosts(self) -> None:
        from fbtui.tui.screens.hosts import HostsScreen

        self.push_screen(HostsScreen())

    def open_builds(self) -> None:
        from fbtui.tui.screens.builds import BuildsScreen

        self.push_screen(BuildsScreen())

    def open_suites(self) -> None:
        from fbtui.tui.screens.leaderboard import LeaderboardScreen, SuitesScreen

        if not isinstance(self.screen, (SuitesScreen, LeaderboardScreen)):  # on a board, esc leads to the list
            self.push_screen(SuitesScreen())

    def open_leaderboard(self, suite: str) -> None:
        from fbtui.tui.screens.leaderboard import LeaderboardScreen

        self.push_screen(LeaderboardScreen(suite))

    def open_launcher(self, project: str) -> None:
        from fbtui.tui.screens.launcher import LauncherScreen

        def launched(req: LaunchRequest | None) -> None:
            if req is not None:
                self.launch(req)

        self.push_screen(LauncherScreen(project), launched)

    def action_help(self) -> None:
        from fbtui.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_projects(self) -> None:
        from fbtui.tui.screens.projects import ProjectsScreen

        while len(self.screen_stack) > 2 and not isinstance(self.screen, ProjectsScreen):
            self.pop_screen()

    def action_hosts(self) -> None:
        self.open_hosts()

    def action_builds(self) -> None:
        self.open_builds()

    def action_leaderboards(self) -> None:
        self.open_suites()

    def action_log_search(self) -> None:
        self.open_log_search()

    # ------------------------------------------------------------ long operations

    def build(self, project: str) -> None:
        """Make the project's image present on the local engine, progress on the builds screen."""
        if self.builds.active:
            self.notify("a build is already going: B shows it", severity="warning")
            return
        self.builds.start(f"build {project}")
        self._build_worker(project)

    @work(thread=True, group="build")
    def _build_worker(self, project: str) -> None:
        from fbtui.images.service import ensure_project_image

        try:
            store = self.stores.create()
            result = ensure_project_image(self.lab, project, host=self.lab.config.defaults.host, store=store,
                                          emit=self.builds.add)
            self.builds.finish()
            made = ", ".join(f"{r.layer} {r.action}" for r in result.built) or "nothing to build"
            self.call_from_thread(self.notify, f"{result.tag} ready ({made})")
        except Exception as e:  # shown, never raised: the app stays up
            msg = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
            self.builds.finish(msg)
            self.call_from_thread(self.notify, f"build failed: {msg}", severity="error", timeout=10)

    def launch(self, req: LaunchRequest) -> None:
        self.builds.start(f"launch {req.project}")
        self.notify(f"launching {req.project}: building what the image lacks (B shows progress)")
        self._launch_worker(req)

    @work(thread=True, group="launch")
    def _launch_worker(self, req: LaunchRequest) -> None:
        from fbtui.pipeline.launch import launch, select_variants

        try:
            store = self.stores.create()
            variants = select_variants(self.lab, req.project, req.variant, req.ablation, req.seed)
            started = launch(self.lab, store, req.project, variants=variants, overrides=req.overrides,
                             hosts=req.hosts, stages=req.stages, seed=req.seed,
                             emit=self.builds.add, resume=req.resume)
        except Exception as e:
            msg = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
            self.builds.finish(msg)
            self.call_from_thread(self.notify, f"launch failed: {msg}", severity="error", timeout=15)
            return
        self.builds.finish()
        if req.resume and not started.run_ids:
            self.call_from_thread(self.notify, f"nothing to run: all {len(started.cells)} cells succeeded under "
                                  "this code and config")
            return
        self.call_from_thread(self._launched, started.run_ids)

    def _launched(self, run_ids: list[int]) -> None:
        for i in run_ids:
            self.announce_end_of(i, "queued")
        ids = ", ".join(f"#{i}" for i in run_ids)
        self.notify(f"queued {ids}")
        if len(run_ids) == 1:
            self.open_run(run_ids[0])
        elif self.project:
            self.open_runs(self.project)

    def confirm_cancel(self, run_id: int, then: Callable[[], None] | None = None) -> None:
        """x: ask first, naming what stops and what never starts; cancel only on yes."""
        self._ask_cancel_worker(run_id, then)

    @work(thread=True, group="cancel")
    def _ask_cancel_worker(self, run_id: int, then: Callable[[], None] | None) -> None:
        store = self.store()
        if store is None:
            return
        try:
            run, stages = store.run(run_id), store.stages(run_id)
        except FBError as e:
            self.call_from_thread(self.notify, e.message, severity="error")
            return
        self.call_from_thread(self._ask_cancel, run, stages, then)

    def _ask_cancel(self, run: dict[str, Any], stages: list[dict[str, Any]], then: Callable[[], None] | None
                    ) -> None:
        from fbtui.tui.screens.confirm import ConfirmScreen

        if run["status"] not in data.ACTIVE:
            self.notify(f"nothing to cancel: run #{run['eval_of'] or run['id']} has already {run['status']}")
            return
        question, detail = data.cancel_question(run, stages)

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel([run["id"]])
                if then is not None:
                    then()

        self.push_screen(ConfirmScreen(question, detail), answered)

    def cancel(self, run_ids: Iterable[int]) -> None:
        self._cancel_worker(list(run_ids))

    @work(thread=True, group="cancel")
    def _cancel_worker(self, run_ids: list[int]) -> None:
        store = self.store()
        if store is None:
            return
        try:
            asked = data.cancel_runs(self.lab, store, run_ids)
        except FBError as e:
            self.call_from_thread(self.notify, e.message, severity="error")
            return
        text = f"cancelling {', '.join(f'#{i}' for i in asked)}" if asked else "nothing to cancel: already finished"
        self.call_from_thread(self.notify, text)
