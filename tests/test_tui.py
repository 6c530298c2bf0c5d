"""The app driven through Textual's pilot against a real store in a temporary lab."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.test_tui_data import FIXED_CLOCK, T0, itemise, make_reevaluation, make_run, populate, spool, tui_state

SIZE = (120, 40)


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on its own event loop (no pytest-asyncio needed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def make_app(lab: Lab, **kw: object):  # type: ignore[no-untyped-def]
    from fbtui.tui.app import FBApp

    kw.setdefault("check_engine", False)
    return FBApp(lab, clock=lambda: FIXED_CLOCK, **kw)  # type: ignore[arg-type]


async def until(pilot, cond: Callable[[], object], timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; the screen shows:\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


def screen_text(app) -> str:  # type: ignore[no-untyped-def]
    """What the terminal shows, as plain text."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    lines = app.screen._compositor.render_update(full=True)
    console.print(lines)
    return console.export_text()


@pytest.fixture
def lab(lab_dir: Path) -> Lab:
    return populate(lab_dir)


@sync
async def test_switcher_lists_projects_and_remembers_the_choice(lab: Lab) -> None:
    from fbtui.tui.screens.dashboard import DashboardScreen
    from fbtui.tui.screens.projects import ProjectsScreen

    app = make_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "digits-mlp" in screen_text(app))
        assert isinstance(app.screen, ProjectsScreen)
        text = screen_text(app)
        assert "digits-cnn" in text and "never run" in text and "running" in text
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await until(pilot, lambda: "Recent runs" in screen_text(app) and "#8" in screen_text(app))
        text = screen_text(app)
        assert "prepare" in text and "train" in text and "evaluate" in text and "sweep, depth" in text
    assert tui_state(lab) == {"project": "digits-mlp"}
    # The next start opens the remembered project; esc leads back to the switcher.
    app = make_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen))


@sync
async def test_command_palette_switches_project(lab: Lab) -> None:
    from fbtui.tui.screens.dashboard import DashboardScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        for ch in "Switch project: digits-cnn":
            await pilot.press(ch if ch != " " else "space")
        await until(pilot, lambda: "Switch project: digits-cnn" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.project == "digits-cnn")
        await until(pilot, lambda: "never run" in screen_text(app))
    assert tui_state(lab)["project"] == "digits-cnn"


@sync
async def test_run_view_follows_the_log_searches_filters_and_jumps_to_errors(lab: Lab) -> None:
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.logview import LogView

    with Store(lab.store_path) as s:  # the command as it ran (templates rendered) is shown with its log
        s.update_stage(8, "train", command=json.dumps(["python3", "train.py", "--lr", "0.01"]))
    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(8)  # the running run: train is live
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and "epoch 4" in screen_text(app))
        text = screen_text(app)
        assert "● running" in text and "train log" in text and "following" in text
        assert "$ python3 train.py --lr 0.01" in text
        assert "loss" in text and "accuracy" in text  # the curves
        # Lines appended to the spool arrive while following, in batches.
        spool(lab, 8, "train", [f"step {i} of the new batch" for i in range(500)])
        await until(pilot, lambda: "step 499 of the new batch" in screen_text(app))
        log = app.screen.query_one(LogView)
        assert log.index is not None and log.index.count == 505
        # Wrapped while following: the newest long line shows to its end at the bottom.
        log.action_toggle_wrap()
        spool(lab, 8, "train", [f"{'y' * 300} tail of long line {i}" for i in range(3)])
        await until(pilot, lambda: "tail of long line 2" in screen_text(app) and "tail of long line 1" in
                    screen_text(app))
        log.action_toggle_wrap()
        await until(pilot, lambda: "tail of long line" not in screen_text(app))
        # Search highlights and moves the cursor; following pauses.
        await pilot.press("slash")
        for ch in "epoch 2":
            await pilot.press(ch if ch != " " else "space")
        await pilot.press("enter")
        await until(pilot, lambda: not log.follow and log.cursor == 2)
        assert "search 'epoch 2'" in screen_text(app) and "paused" in screen_text(app)
        # Filter shows only matching lines.
        await pilot.press("backslash")
        for ch in "epoch":
            await pilot.press(ch)
        await pilot.press("enter")
        await until(pilot, lambda: log.shown is not None and len(log.shown) == 5)
        assert "step 1 of" not in screen_text(app)
        assert log.line_no(log.cursor) == 2  # still on the line search found ("epoch 2" matches "epoch")
        await pilot.press("down")
        at = log.line_no(log.cursor)
        await pilot.press("backslash", "ctrl+a", "ctrl+k", "enter")
        await until(pilot, lambda: log.shown is None)
        assert log.cursor == at  # unfiltered, the cursor stays on the line it was on

    spool(lab, 1, "train", ["x" * 400 + " END OF A LONG LINE"])
    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(1)  # finished; its train log holds a traceback
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and "evaluate log" in screen_text(app))
        await pilot.press("up")  # the stages table: select train
        await until(pilot, lambda: "train log" in screen_text(app) and "ValueError" in screen_text(app))
        log = app.screen.query_one(LogView)
        log.focus()
        await pilot.press("home", "e")
        await until(pilot, lambda: log.cursor == 2)  # the Traceback line
        await pilot.press("e")
        await until(pilot, lambda: log.cursor == 3)
        assert "END OF A LONG LINE" not in screen_text(app)  # cut at the edge
        await pilot.press("w")
        await until(pilot, lambda: "END OF A LONG LINE" in screen_text(app) and "wrapped" in screen_text(app))
        assert screen_text(app).count("x" * 40) >= 5  # 400 x's over several rows
        await pilot.press("w")
        await until(pilot, lambda: "END OF A LONG LINE" not in screen_text(app))


@sync
async def test_runs_table_filters_and_sorts(lab: Lab) -> None:
    from fbtui.tui.screens.runs import RunsScreen
    from fbtui.tui.widgets.table import FastTable

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_runs("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and "8 of 8 runs" in screen_text(app))
        table = app.screen.query_one(FastTable)
        assert [c.label for c in table.columns][-2:] == ["EVAL/ACCURACY", "EVAL/LOSS"]
        await pilot.press("slash")
        for ch in "deep":
            await pilot.press(ch)
        await until(pilot, lambda: len(table.view) == 3)
        await pilot.press("enter")  # back to the table, the filter stays
        acc = [c.key for c in table.columns].index("eval/accuracy")
        table.sort_by(acc, reverse=True)
        await pilot.pause()
        assert [table.rows[i].key for i in table.view] == [5, 3, 6]  # best accuracy first
        await pilot.press("home", "enter")
        from fbtui.tui.screens.run import RunScreen

        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run_id == 5)
        await pilot.press("escape")  # back on the filtered table: esc clears the filter, then leaves
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert "RUN" in screen_text(app) and len(table.view) == 3
        await pilot.press("escape")
        await until(pilot, lambda: len(table.view) == 8 and isinstance(app.screen, RunsScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, RunsScreen))


@sync
async def test_comparison_marks_best_baseline_and_set_apart(lab: Lab) -> None:
    from fbtui.tui.screens.compare import CompareScreen
    from fbtui.tui.widgets.table import FastTable

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_compare("digits-mlp", "depth")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and "shallow" in screen_text(app)
                    and "set apart" in screen_text(app))
        text = screen_text(app)
        assert "0.9710 ± 0.0014 ★" in text  # seeds as mean ± std, best starred
        assert "set apart" in text and "#6" in text  # the run under another fingerprint
        table = app.screen.query_one(FastTable)
        # metrics before the params that differ (what the rows scored shows first at 80 columns)
        assert [c.label for c in table.columns][3:] == ["eval/accuracy", "eval/loss", "model.depth"]
        table.move_to_key("shallow")
        await pilot.press("b")
        await until(pilot, lambda: "deltas against shallow" in screen_text(app))
        assert "(-0.0100)" in screen_text(app)  # deep vs shallow accuracy
        table.move_to_key("deep")
        await pilot.press("space")  # overlay deep's curves on shallow's (the best, shown from the start)
        await until(pilot, lambda: "■ shallow" in screen_text(app) and "■ deep" in screen_text(app))
        # The same function as the CLI: rows and best agree with `fbtui compare`.
        from fbtui.records.rows import ablation_table

        with Store(lab.store_path) as store:
            t = ablation_table(store, "digits-mlp", "depth")
        assert {r.name for r in t.rows} == {r.key for r in table.rows}
        # A run that finishes while the table is open joins it (the screen polls for changes).
        with Store(lab.store_path) as store:
            make_run(store, lab, ablation="depth", variant="wide", seed=0, params={"model.depth": 2}, acc=0.99,
                     offset=600)
        await until(pilot, lambda: "wide" in screen_text(app), timeout=10)
        assert table.cursor_key == "deep" and "deltas against shallow" in screen_text(app)  # choices kept
        await pilot.press("e")  # the same exports as `fbtui compare --format`
        md = lab.root / ".fb/exports/digits-mlp-depth.md"
        await until(pilot, lambda: md.exists() and (lab.root / ".fb/exports/digits-mlp-depth.tex").exists())
        assert "| shallow | 2/2 |" in md.read_text()


@sync
async def test_launcher_shows_config_errors_inline(lab: Lab) -> None:
    from textual.widgets import Input

    from fbtui.tui.screens.launcher import LauncherScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_launcher("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, LauncherScreen) and app.screen.query("#overrides"))
        app.screen.query_one("#overrides", Input).value = "train.epochs=abc"
        await pilot.click("#validate")
        await until(pilot, lambda: "expected an integer" in screen_text(app))
        assert "override train.epochs=abc: train.epochs" in screen_text(app)
        app.screen.query_one("#overrides", Input).value = "train.epochs=-3"  # the right type, out of range
        await pilot.pause(0.3)
        await pilot.click("#validate")
        await until(pilot, lambda: "train.epochs: must be at least 1, got -3" in screen_text(app))
        app.screen.query_one("#overrides", Input).value = "train.epochs=2"
        await pilot.pause(0.3)  # a button ignores clicks while it still shows the last one
        await pilot.click("#validate")
        await until(pilot, lambda: "ok: 1 run on local" in screen_text(app))
        from textual.widgets import Checkbox, Select

        app.screen.query_one("#what", Select).value = "A:depth"  # resume: what --resume would queue
        app.screen.query_one("#resume", Checkbox).value = True
        await pilot.pause(0.3)
        await pilot.click("#validate")
        await until(pilot, lambda: "ok: 2 of 2 cells to run on local" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LauncherScreen))


@sync
async def test_launcher_names_the_file_and_line_of_a_bad_project(lab: Lab) -> None:
    from fbtui.tui.screens.launcher import LauncherScreen

    path = lab.root / "projects/digits-mlp/project.yaml"
    path.write_text(path.read_text().replace("depth:\n    variants:", "depth:\n    variantz:"))
    app = make_app(Lab.find(str(lab.root)), restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_launcher("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, LauncherScreen))
        await until(pilot, lambda: "projects/digits-mlp/project.yaml:" in screen_text(app))


@sync
async def test_engine_down_is_said_plainly_and_the_app_stays_usable(lab: Lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fbtui.tui.screens.dashboard import DashboardScreen

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    app = make_app(lab, check_engine=True, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.engine_error is not None)
        await until(pilot, lambda: "Docker engine unreachable" in screen_text(app))
        from fbtui.tui.widgets.table import FastTable

        # the projects' rows arrive from a worker: wait for them before moving the cursor
        await until(pilot, lambda: any(r.key == "digits-mlp" for r in app.screen.query_one(FastTable).rows))
        app.screen.query_one(FastTable).move_to_key("digits-mlp")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and "#8" in screen_text(app))
        await until(pilot, lambda: "freshness unknown" in screen_text(app))
        await pilot.press("b")  # building says why it cannot
        await pilot.pause(0.2)
        assert isinstance(app.screen, DashboardScreen)


@sync
async def test_help_hosts_and_builds_screens(lab: Lab) -> None:
    from fbtui.tui.screens.builds import BuildsScreen
    from fbtui.tui.screens.help import HelpScreen
    from fbtui.tui.screens.hosts import HostsScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_project("digits-mlp")
        await until(pilot, lambda: "Recent runs" in screen_text(app))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "launch the pipeline" in screen_text(app) and "command palette" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("B")
        await until(pilot, lambda: isinstance(app.screen, BuildsScreen) and "no build started" in screen_text(app))
        await pilot.press("escape")
        await pilot.press("H")
        await until(pilot, lambda: isinstance(app.screen, HostsScreen) and "local" in screen_text(app))
        await until(pilot, lambda: "up" in screen_text(app) or "DOWN" in screen_text(app), timeout=15)
        await pilot.press("q")


@sync
async def test_an_empty_lab_is_honest(lab_dir: Path) -> None:
    from fbtui.tui.screens.dashboard import DashboardScreen

    app = make_app(Lab.find(str(lab_dir)), restore=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "never run" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await until(pilot, lambda: "never run: r launches it" in screen_text(app))
        await pilot.press("c")
        await until(pilot, lambda: "no store yet" in screen_text(app) or "no finished runs" in screen_text(app))
        await pilot.press("escape", "l")
        await until(pilot, lambda: "no runs yet" in screen_text(app) and "0 of 0 runs" in screen_text(app))
        await pilot.pause(2.5)  # a poll or two with no store
        assert "no runs yet" in screen_text(app)


@sync
async def test_big_tables_render_only_visible_rows(lab_dir: Path) -> None:
    from fbtui.tui.widgets.table import Column, FastTable, Row

    lab = Lab.find(str(lab_dir))
    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        table = FastTable()
        await app.screen.mount(table)
        cols = [Column(f"c{i}", f"C{i}", align="right") for i in range(20)]
        rows = [Row(i, [f"{i * j}" for j in range(20)], [i * j for j in range(20)]) for i in range(10_000)]
        table.set_data(cols, rows)  # how fast: bench/tui.py (no absolute times in tests)
        await pilot.pause()
        assert table.virtual_size.height >= 10_000  # every row can be scrolled to
        table.sort_by(1, reverse=True)
        assert table.cursor_key is not None and table.rows[table.view[0]].key == 9999


def test_make_run_helper_is_deterministic(lab_dir: Path) -> None:
    lab = Lab.find(str(lab_dir))
    with Store(lab.store_path) as store:
        rid = make_run(store, lab)
        assert store.run(rid)["finished_at"] - store.run(rid)["started_at"] == 30


@sync
async def test_polling_never_piles_up_slow_loads_and_stops_under_another_screen(lab: Lab) -> None:
    import threading

    from textual import work

    from fbtui.tui.widgets.common import FBScreen

    calls, running, most = [0], [0], [0]
    lock = threading.Lock()

    class Slow(FBScreen):
        def on_mount(self) -> None:
            self.poll_every(0.02, self.load, "slow")

        @work(thread=True, group="slow")
        def load(self) -> None:  # a query far slower than the interval
            with lock:
                calls[0] += 1
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.15)
            with lock:
                running[0] -= 1

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Slow())
        await until(pilot, lambda: calls[0] >= 3, timeout=20)  # it does keep polling ...
        assert most[0] == 1  # ... one load at a time
        app.open_hosts()
        await until(pilot, lambda: app.screen is not None and type(app.screen).__name__ == "HostsScreen")
        await pilot.pause(0.5)  # a load started just before the switch ends
        before = calls[0]
        await pilot.pause(0.6)
        assert calls[0] == before  # covered by another screen: no polling


@sync
async def test_run_view_log_keys_work_from_the_stages_and_tab_switches_focus(lab: Lab) -> None:
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.logview import LogView
    from fbtui.tui.widgets.table import FastTable

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(1)  # finished: x (cancel) is not offered
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and "evaluate log" in screen_text(app))
        log = app.screen.query_one(LogView)
        assert isinstance(app.focused, FastTable)
        # the footer follows the run's bindings a refresh later than the log's title
        await until(pilot, lambda: "cancel run" not in screen_text(app) and "follow" in screen_text(app))
        await pilot.press("f")
        await until(pilot, lambda: not log.follow and "paused" in screen_text(app))
        await pilot.press("tab")
        await until(pilot, lambda: app.focused is log)
        await pilot.press("f")
        await until(pilot, lambda: log.follow)
        await pilot.press("tab")
        await until(pilot, lambda: isinstance(app.focused, FastTable))
        app.open_run(8)  # still running: x is offered
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run_id == 8
                    and "cancel run" in screen_text(app))


def notes(app) -> list[str]:  # type: ignore[no-untyped-def]
    """The notifications the app shows now."""
    return [str(n.message) for n in app._notifications]


NO_ENGINE = "unix:///nonexistent/fb-tui-test-engine.sock"


@sync
async def test_comparison_counts_stale_runs_and_evaluates_them_again(lab: Lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """u is `fbtui eval --stale PROJECT --ablation A`: the same runs, off the event loop; without an
    engine it ends in one notification line and queues nothing."""
    from fbtui.tui.screens.compare import CompareScreen
    from fbtui.tui.screens.help import HelpScreen

    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with Store(lab.store_path) as store:
        for rid in (2, 3, 4, 5):
            itemise(lab, store, rid)
        itemise(lab, store, 6, ece_bins=10, fingerprint="b" * 64)  # stale: another eval config
    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_compare("digits-mlp", "depth")
        # the count and the key on their line, the key in the footer, what differs in the notes
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and all(
            x in screen_text(app) for x in ("1 run not under today's evaluation suite  ·  u evaluates them again",
                                            "u re-evaluate stale", "shallow", "(config eval.ece_bins ×1)")))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "re-evaluate the runs not under today's suite (fbtui eval --stale)" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.press("u")  # one run: no question asked
        await until(pilot, lambda: any(n.startswith("evaluating again failed: ") for n in notes(app)), timeout=20)
        failed = next(n for n in notes(app) if n.startswith("evaluating again failed: "))
        assert "Traceback" not in failed and "\n" not in failed
        assert isinstance(app.screen, CompareScreen) and app.builds.error is not None
    with Store(lab.store_path) as store:
        assert store.query("SELECT id FROM runs WHERE eval_of IS NOT NULL") == []  # checked before queuing


@sync
async def test_no_run_under_todays_suite_is_said_and_many_runs_are_asked_about(lab: Lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fbtui.tui.screens.compare import CompareScreen
    from fbtui.tui.screens.confirm import ConfirmScreen

    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with Store(lab.store_path) as store:
        for rid in (2, 3, 4, 5):
            itemise(lab, store, rid, old_code=True)  # evaluated by code the working tree no longer has
        itemise(lab, store, 6, old_code=True, fingerprint="b" * 64, model=False)  # nothing to evaluate
    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_compare("digits-mlp", "depth")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen)
                    and "no run has today's evaluation suite yet" in screen_text(app))
        assert "5 runs not under today's evaluation suite" in screen_text(app)
        await pilot.press("u")  # four runs to evaluate again (#6 has no model): asked first
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "Evaluate 4 runs again under today's suite?" in text and "#2, #3, #4, #5" in text
        assert "run #6: skipped: run 6 has no artifact train/model.pt" in text
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.pause(0.3)
        assert not any(n.startswith("evaluating again") for n in notes(app))  # no: nothing done
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: any(n.startswith("evaluating again failed: ") for n in notes(app)), timeout=20)


@sync
async def test_run_view_says_whether_its_evaluation_is_todays_suite_and_what_it_covers(lab: Lab) -> None:
    from textual.containers import VerticalScroll

    from fbtui.tui.screens.run import RunScreen

    with Store(lab.store_path) as store:
        for rid in (2, 3, 4, 5):
            itemise(lab, store, rid)
        itemise(lab, store, 6, ece_bins=10, fingerprint="b" * 64)
    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(6)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and "not today's suite" in screen_text(app))
        assert "evaluation bbbbbbbbbbbb: not today's suite (v: why): config eval.ece_bins" in screen_text(app)
        await pilot.press("v")
        await until(pilot, lambda: "covers:" in screen_text(app))
        text = screen_text(app)
        assert "  config eval.ece_bins" in text and "code   common/evaluation.py" in text
        assert "evaluate log" not in text  # the pane has the width of the terminal
        pane = app.screen.query_one("#run-eval-pane", VerticalScroll)
        assert pane.display and pane.virtual_size.width <= 80
        await pilot.press("escape")  # back to the log, still on the run
        await until(pilot, lambda: "evaluate log" in screen_text(app))
        assert isinstance(app.screen, RunScreen)
        app.open_run(2)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run_id == 2
                    and "evaluation aaaaaaaaaaaa: today's suite" in screen_text(app))


@sync
async def test_a_reevaluation_shows_under_its_runs_number_while_it_goes_on(lab: Lab) -> None:
    from fbtui.tui.screens.runs import RunsScreen
    from fbtui.tui.widgets.table import FastTable

    with Store(lab.store_path) as store:
        make_reevaluation(store, 2, "succeeded")  # finished: part of run 2's record, no row
        going = make_reevaluation(store, 3, "running")
    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_runs("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen)
                    and "8 of 8 runs (1 evaluated again)" in screen_text(app))
        table = app.screen.query_one(FastTable)
        row = next(r for r in table.rows if r.key == going)
        assert row.cells[0] == "#3" and "(evaluated again)" in str(row.cells[2])
        assert len(table.rows) == 9 and going - 1 not in {r.key for r in table.rows}


@pytest.mark.slow
@pytest.mark.engine
@sync
async def test_u_queues_reevaluations_recorded_against_their_runs(tmp_path: Path, docker_host: str,
                                                                   monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the engine: u queues exactly the stale run's re-evaluation, a hidden run against it.
    (Its stages are not the point here: the runs are made up, the lab is ended after.)"""
    from fbtui.tui.data import SHOWN
    from fbtui.tui.screens.compare import CompareScreen
    from tests.labs import LAB_CODE, copy_lab, end_lab

    monkeypatch.setenv("DOCKER_HOST", docker_host)
    root = copy_lab(tmp_path / "lab", LAB_CODE)  # with its code: the image is made (usually there already)
    lab = populate(root)
    with Store(lab.store_path) as store:
        for rid in (2, 3, 4, 5):
            itemise(lab, store, rid)
        itemise(lab, store, 6, ece_bins=10, fingerprint="b" * 64)
    app = make_app(lab, restore=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            app.open_compare("digits-mlp", "depth")
            await until(pilot, lambda: isinstance(app.screen, CompareScreen)
                        and "1 run not under today's evaluation suite" in screen_text(app))
            await pilot.press("u")
            await until(pilot, lambda: any(n.startswith(("queued re-evaluations of #6", "evaluating again failed"))
                                           for n in notes(app)), timeout=280)  # a build, if any
            assert any(n.startswith("queued re-evaluations of #6 (1 under today's suite") for n in notes(app)), \
                notes(app)
    finally:
        lock = root / ".fb/supervisor.lock"  # the supervisor queuing started: ended once it holds the lock
        deadline = time.monotonic() + 60
        while (root / ".fb/supervisor.log").exists() and time.monotonic() < deadline and not (
                lock.exists() and lock.read_text().strip()):
            time.sleep(0.1)
        end_lab(root, docker_host)
    with Store(lab.store_path) as store:
        rows = store.query("SELECT id, eval_of, only_stages FROM runs WHERE eval_of IS NOT NULL")
        assert [r["eval_of"] for r in rows] == [6] and rows[0]["only_stages"].endswith("evaluate")
        shown = store.query("SELECT COUNT(*) AS n FROM runs r WHERE eval_of IS NOT NULL AND " + SHOWN)[0]["n"]
        assert shown == (store.run(rows[0]["id"])["status"] in ("pending", "queued", "running"))  # a row while going


@sync
async def test_any_metric_gets_a_curve_picked_by_group_or_key_at_80x24(lab: Lab) -> None:
    """Issue 13: a foreign script's keys (`Loss/train`, `Loss/val`, `lr`) are charted, grouped by
    prefix in any case, and m picks what the top chart shows (the one it showed moves below)."""
    from fbtui.tui.screens.metric_picker import MetricPicker
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.chart import Chart

    with Store(lab.store_path) as store:
        rid = make_run(store, lab, status="failed", curve=0, offset=600)
        store.add_metrics(rid, [(k, s, 1.0 / (s + 1) + i, T0 + s) for s in range(30)
                                for i, k in enumerate(("Loss/train", "Loss/val", "lr"))], "train")

    def charts(app) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
        # (before the first load the charts are there, empty)
        return [(c.title, [name for name, _ in c.series]) for c in app.screen.query(Chart) if c.display and c.series]

    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(rid)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and charts(app))
        assert charts(app) == [("loss", ["Loss/train", "Loss/val"])]  # the loss chart, in any case; lr not yet
        await until(pilot, lambda: "metric" in screen_text(app).splitlines()[-1])  # the footer names the key
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MetricPicker))
        text = screen_text(app)
        assert "loss/*  (2 keys)" in text and "Loss/train" in text and "lr" in text
        await pilot.press("l", "r", "enter")  # typed: only lr is left
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and [t for t, _ in charts(app)][:1] == ["lr"])
        assert charts(app) == [("lr", ["lr"]), ("loss", ["Loss/train", "Loss/val"])]
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MetricPicker))
        await pilot.press(*"LOSS", "down", "enter")  # the group first, then its first key
        await until(pilot, lambda: isinstance(app.screen, RunScreen)
                    and [t for t, _ in charts(app)][:1] == ["Loss/train"])
        assert charts(app) == [("Loss/train", ["Loss/train"]), ("lr", ["lr"])]
        assert "Loss/train" in screen_text(app) and len(app.screen.query_one("#chart-loss", Chart).series[0][1]) == 30
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MetricPicker))
        await pilot.press("escape")  # esc keeps the charts as they are
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert charts(app)[0][0] == "Loss/train"


@sync
async def test_comparison_overlays_any_metric_the_runs_have(lab: Lab) -> None:
    from fbtui.tui.screens.compare import CompareScreen
    from fbtui.tui.screens.metric_picker import MetricPicker
    from fbtui.tui.widgets.chart import Chart

    def title(app) -> str:  # type: ignore[no-untyped-def]
        shown = app.screen.query(Chart) if isinstance(app.screen, CompareScreen) else []
        return shown[0].title if shown else ""

    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_compare("digits-mlp", "depth")
        # As before, losses first; the title names the key (at 80 columns the footer's last keys are cut).
        await until(pilot, lambda: title(app).startswith("train/loss  (m: metric"))
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MetricPicker))
        assert "eval/accuracy" in screen_text(app)  # every key of the compared runs
        await pilot.press(*"val/acc", "enter")
        await until(pilot, lambda: title(app).startswith("val/accuracy"))
        assert [name for name, _ in app.screen.query_one(Chart).series] == ["shallow"]  # the best, as before
