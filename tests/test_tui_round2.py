"""The app, round two (#14): the live log's race, status colours, confirmations before cancelling,
and the small defects (palette, dashboard height, latest run, variant labels, theme, cancel hint)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.test_tui import SIZE, make_app, screen_text, sync, until
from tests.test_tui_data import populate, spool


@pytest.fixture
def lab(lab_dir: Path) -> Lab:
    return populate(lab_dir)


# ------------------------------------------------------------------ the live log's race


def test_reading_a_growing_spool_while_it_is_scanned_from_another_thread(tmp_path: Path) -> None:
    """The follow worker scans while the event loop reads lines: every line read is the line
    written, and nothing raises (a cache used outside the lock raised KeyError, or kept a block
    read before a scan grew it, so newer lines read empty)."""
    from fbtui.tui.widgets.logview import BLOCK, SpoolIndex

    path = tmp_path / "grow.log"
    path.write_bytes(b"")
    idx = SpoolIndex(path)
    stop = threading.Event()
    errors: list[str] = []

    def writer() -> None:
        n = 0
        with path.open("ab", buffering=0) as f:
            while not stop.is_set() and n < 2_000_000:
                f.write(b"".join(b"2025-01-01T00:00:00.000000000Z line %d\n" % (n + k) for k in range(7)))
                n += 7
                time.sleep(0.0005)

    def scanner() -> None:
        try:
            while not stop.is_set():
                idx.scan()
        except Exception as e:
            errors.append(f"scan: {e!r}")

    threads = [threading.Thread(target=writer), threading.Thread(target=scanner)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows in a second
    for t in threads:
        t.start()
    reads = 0
    try:
        while reads < 400_000 and len(errors) < 20:
            n = idx.count
            for i in range(max(0, n - 3 * BLOCK), n):  # the last blocks: those a scan changes
                try:
                    got = idx.line(i)
                except Exception as e:
                    errors.append(f"line({i}): {e!r}")
                    continue
                reads += 1
                if not got.endswith(b"line %d" % i):
                    errors.append(f"line({i}) read {got[-24:]!r}")
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(interval)
        idx.close()
    assert not errors, f"{len(errors)} bad reads of {reads}: {errors[:5]}"
    assert idx.count > 3 * BLOCK


@sync
async def test_quitting_while_following_a_live_log_exits_cleanly(lab: Lab) -> None:
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.logview import LogView

    stop = threading.Event()

    def writer() -> None:  # the stage goes on writing while the app quits
        i = 0
        while not stop.is_set():
            spool(lab, 8, "train", [f"step {i + k}" for k in range(200)])
            i += 200
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    app = make_app(lab, restore=False)
    try:
        async with app.run_test(size=SIZE) as pilot:
            app.open_run(8)
            await until(pilot, lambda: isinstance(app.screen, RunScreen) and "following" in screen_text(app))
            thread.start()
            log = app.screen.query_one(LogView)
            await until(pilot, lambda: log.index is not None and log.index.count > 2000)
            tails = [w for w in app.workers if w.group == "logview-tail"]
            assert tails and not tails[0].is_finished
            await pilot.press("q")
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
    assert app.return_code == 0 and app.crash_report is None
    deadline = time.monotonic() + 5
    while not all(w.is_finished for w in tails) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(w.is_finished for w in tails), "the follow worker went on after the app quit"


# ------------------------------------------------------------------ status colours


def add_runs(lab: Lab) -> dict[str, int]:
    """Beside populate's runs: one cancelled before it started, one queued, and run 2 made from a
    dirty working tree."""
    from fbtui.gitstate import GitState
    from tests.test_tui_data import T0

    with Store(lab.store_path) as s:
        cancelled = s.create_run("digits-mlp", config="{}", params={}, stages=["prepare", "train", "evaluate"],
                                 host="local")
        s.update_run(cancelled, requested_host="local", created_at=T0 + 600)
        s.set_run_status(cancelled, "queued")
        s.set_run_status(cancelled, "cancelled", "cancelled before it started", finished_at=T0 + 610)
        queued = s.create_run("digits-mlp", config="{}", params={}, stages=["prepare", "train", "evaluate"],
                              host="local")
        s.update_run(queued, requested_host="local", created_at=T0 + 700)
        s.set_run_status(queued, "queued")
        cid = s.record_commit(GitState(is_repo=True, sha="abcdef0123456789", dirty=True, diff="+x"))
        s.update_run(2, commit_id=cid)
    return {"cancelled": cancelled, "queued": queued}


def cell_style(table, key: object, needle: str):  # type: ignore[no-untyped-def]
    """The style the table draws the cell containing `needle` with, in the row of `key`."""
    pos = next(p for p, i in enumerate(table.view) if table.rows[i].key == key)
    assert pos != table.cursor, "the cursor row is drawn plain"
    y = pos + 1 - int(table.scroll_y)
    assert 0 < y < table.size.height, "the row is off screen"
    seg = next((s for s in table.render_line(y) if needle in s.text), None)
    assert seg is not None, f"{needle!r} not in row {key}"
    return seg.style


@sync
async def test_tables_draw_status_in_colour_and_mark_a_dirty_commit(lab: Lab) -> None:
    from fbtui.tui.screens.dashboard import DashboardScreen
    from fbtui.tui.screens.projects import ProjectsScreen
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.screens.runs import RunsScreen
    from fbtui.tui.widgets.table import FastTable

    ids = add_runs(lab)
    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen) and "digits-mlp" in screen_text(app))
        table = app.screen.query_one(FastTable)
        table.cursor = next(p for p, i in enumerate(table.view) if table.rows[i].key != "digits-mlp")
        await pilot.pause()
        assert cell_style(table, "digits-mlp", "queued").color.name == "cyan"  # its latest run

        app.open_runs("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and f"#{ids['queued']}" in screen_text(app))
        table = app.screen.query_one(FastTable)
        table.cursor = len(table.view) - 1  # run 1, the oldest
        await pilot.pause()
        assert cell_style(table, 7, "failed").color.name == "red"
        assert cell_style(table, 3, "succeeded").color.name == "green"
        running, queued = cell_style(table, 8, "running"), cell_style(table, ids["queued"], "queued")
        assert running.color.name == "yellow" and queued.color.name == "cyan"
        assert cell_style(table, ids["cancelled"], "cancelled").dim
        dirty = cell_style(table, 2, "abcdef01*")
        assert dirty.color is not None and dirty.color.name == "yellow"
        assert cell_style(table, 3, "succeeded").color != cell_style(table, 3, "local").color

        app.open_project("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and "#7" in screen_text(app))
        table = app.screen.query_one(FastTable)
        assert cell_style(table, 7, "failed").color.name == "red"
        assert cell_style(table, 8, "running").color.name == "yellow"

        app.open_run(7)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and "evaluate log" in screen_text(app))
        table = app.screen.query_one("#run-stages", FastTable)
        table.move_to_key("prepare")
        await pilot.pause()
        assert cell_style(table, "evaluate", "failed").color.name == "red"
        assert cell_style(table, "train", "succeeded").color.name == "green"


# ------------------------------------------------------------------ x asks before it cancels


def test_the_cancel_question_says_what_stops_and_what_never_starts() -> None:
    from fbtui.tui import data

    run = {"id": 12, "eval_of": None, "project": "digits-mlp", "ablation": "sweep", "status": "running",
           "variant": "hidden=64,lr=0.001,dropout=0.1,batch=128"}
    stages = [{"name": "prepare", "status": "succeeded"}, {"name": "train", "status": "running"},
              {"name": "evaluate", "status": "pending"}]
    question, detail = data.cancel_question(run, stages)
    assert question == "cancel run #12 (digits-mlp sweep hidden=64,lr=0.001,dro…)?"
    assert detail == "its running stage train is stopped, evaluate never starts"
    queued = {**run, "status": "queued", "variant": None, "ablation": None}
    question, detail = data.cancel_question(queued, [{**s, "status": "pending"} for s in stages])
    assert question == "cancel run #12 (digits-mlp)?"
    assert detail == "it has not started: prepare, train, evaluate never run"


@pytest.fixture
def supervisor_starts(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Cancelling sets the run's request in the store and wakes the lab's supervisor: the wake-up
    is recorded here instead of starting a supervisor on the test's lab."""
    started: list[Path] = []
    monkeypatch.setattr("fbtui.pipeline.supervisor.ensure_supervisor", lambda lab: started.append(lab.root))
    return started


def cancel_requested(lab: Lab, run_id: int) -> int:
    with Store(lab.store_path) as s:
        return int(s.run(run_id)["cancel_requested"])


@sync
async def test_x_asks_before_it_cancels_in_the_run_view_and_the_runs_table(
        lab: Lab, supervisor_starts: list[Path]) -> None:
    from fbtui.tui.screens.confirm import ConfirmScreen
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.screens.runs import RunsScreen
    from fbtui.tui.widgets.table import FastTable

    ids = add_runs(lab)
    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_run(8)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and "train log" in screen_text(app))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "cancel run #8 (digits-mlp)?" in text
        assert "its running stage train is stopped, evaluate never starts" in text
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.pause(0.3)
        assert cancel_requested(lab, 8) == 0 and not supervisor_starts  # no: nothing happened
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: cancel_requested(lab, 8) == 1)
        assert isinstance(app.screen, RunScreen) and supervisor_starts == [lab.root]

        app.open_runs("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and f"#{ids['queued']}" in screen_text(app))
        table = app.screen.query_one(FastTable)
        table.move_to_key(ids["queued"])
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"cancel run #{ids['queued']} (digits-mlp)?" in screen_text(app)
        assert "it has not started: prepare, train, evaluate never run" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.pause(0.3)
        assert cancel_requested(lab, ids["queued"]) == 0
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")
        await until(pilot, lambda: cancel_requested(lab, ids["queued"]) == 1)
        # a finished run: nothing to ask about
        table.move_to_key(7)
        await pilot.press("x")
        await until(pilot, lambda: any("already failed" in str(n.message) for n in app._notifications))
        assert isinstance(app.screen, RunsScreen)


# ------------------------------------------------------------------ small defects


@sync
async def test_the_palette_offers_a_project_added_while_the_app_runs(lab: Lab) -> None:
    import shutil

    from fbtui.tui.screens.dashboard import DashboardScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_project("digits-mlp")  # the switcher (which lists projects as it polls) is below
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and "Recent runs" in screen_text(app))
        shutil.copytree(lab.root / "projects/digits-cnn", lab.root / "projects/digits-new")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        for ch in "Switch project: digits-new":
            await pilot.press(ch if ch != " " else "space")
        await until(pilot, lambda: "Switch project: digits-new" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.project == "digits-new")


def cancel_before_start(lab: Lab) -> int:
    from tests.test_tui_data import T0

    with Store(lab.store_path) as s:
        rid = s.create_run("digits-mlp", config="{}", params={}, stages=["prepare", "train", "evaluate"],
                           host="local")
        s.update_run(rid, requested_host="local", created_at=T0 + 800)
        s.set_run_status(rid, "queued")
        s.set_run_status(rid, "cancelled", "cancelled before it started", finished_at=T0 + 810)
    return rid


def test_the_dashboards_pipeline_is_the_latest_run_that_started(lab: Lab) -> None:
    from fbtui.tui import data

    rid = cancel_before_start(lab)
    with Store(lab.store_path) as s:
        d = data.dashboard(lab, s, "digits-mlp")
        assert d.latest is not None and d.latest["id"] == 8  # the running one, not the cancelled
        assert [st["status"] for st in d.latest_stages] == ["succeeded", "running", "pending"]
        assert d.never_started is not None and d.never_started["id"] == rid
        assert d.recent[0]["id"] == rid  # still listed among the recent runs
        assert len(data.dashboard(lab, s, "digits-mlp", recent=3).recent) == 3
        # a run whose every stage came from the cache started none, and is the latest all the same
        cached = s.create_run("digits-mlp", config="{}", params={}, stages=["prepare", "train", "evaluate"],
                              host="local")
        s.set_run_status(cached, "queued")
        for name in ("prepare", "train", "evaluate"):
            s.set_stage_status(cached, name, "cached", "same inputs as run 1")
        s.set_run_status(cached, "running")
        s.set_run_status(cached, "succeeded")
        d = data.dashboard(lab, s, "digits-mlp")
        assert d.latest is not None and d.latest["id"] == cached and d.never_started is None
        assert [st["status"] for st in d.latest_stages] == ["cached"] * 3


@sync
async def test_the_dashboard_lists_as_many_runs_as_its_height_holds(lab: Lab) -> None:
    from fbtui.tui.screens.dashboard import DashboardScreen
    from fbtui.tui.widgets.table import FastTable
    from tests.test_tui_data import make_run

    with Store(lab.store_path) as s:
        for i in range(40):
            make_run(s, lab, offset=1000 + i, curve=2)
    rid = cancel_before_start(lab)
    app = make_app(lab, restore=False)
    async with app.run_test(size=(200, 60)) as pilot:
        app.open_project("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and f"#{rid}" in screen_text(app))
        table = app.screen.query_one(FastTable)
        await until(pilot, lambda: len(table.rows) == table.size.height - 1)
        assert len(table.rows) > 12
        # the panels fill from their own workers, after the table (under load, a while after; a frame
        # read mid-refresh can even show the header alone): the pipeline shows the last run that ran
        await until(pilot, lambda: f"run #{rid - 1} succeeded" in (t := screen_text(app))
                    and f"#{rid} cancelled before it started" in t)


def test_cut_variant_names_stay_distinct() -> None:
    from fbtui.tui.labels import distinct_labels

    a, b = "hidden=64,lr=0.001,dropout=0.1,batch=32", "hidden=64,lr=0.001,dropout=0.1,batch=64"
    labels = distinct_labels([a, b, "shallow", a], 24)
    assert labels["shallow"] == "shallow" and len(labels) == 3
    assert labels[a] != labels[b] and all(len(x) <= 24 for x in labels.values())
    assert labels[a].startswith("hidden=64") and labels[a].endswith("32") and labels[b].endswith("64")
    # alone, a long name is cut at its end as before
    assert distinct_labels([a], 24)[a] == a[:23] + "…"
    # differing only in the middle: the part where they differ is shown
    c, d = "x" * 20 + "AAA" + "y" * 20, "x" * 20 + "BBB" + "y" * 20
    labels = distinct_labels([c, d], 16)
    assert labels[c] != labels[d] and "AAA" in labels[c] and "BBB" in labels[d]
    assert all(len(x) <= 16 for x in labels.values())


def test_runs_and_comparison_rows_of_long_variants_get_distinct_labels() -> None:
    from fbtui.tui.screens.runs import VARIANT_W, run_rows
    from fbtui.tui.widgets.table import FastTable

    base = {"project": "digits-mlp", "seed": 0, "status": "succeeded", "reason": None, "sha": None, "dirty": 0,
            "host": "local", "requested_host": "local", "created_at": 0.0, "started_at": 0.0, "finished_at": 1.0,
            "eval_of": None, "metrics": {}}
    names = [f"width=512,depth=8,lr=0.0003,warmup=1000,decay=cosine,seed_group={g}" for g in ("a", "b")]
    rows = [{**base, "id": i, "variant": v} for i, v in enumerate(names, 1)]
    cols, out = run_rows(rows, [], 10.0, False)
    at = [c.key for c in cols].index("variant")
    shown = [str(r.cells[at]) for r in out]
    assert shown[0] != shown[1] and all(len(s) <= VARIANT_W for s in shown)
    table = FastTable()
    table.set_data(cols, out)
    table.set_filter("seed_group=b")  # the filter finds a run by its whole variant name
    assert [table.rows[i].key for i in table.view] == [2]


@sync
async def test_the_theme_is_remembered(lab: Lab) -> None:
    from tests.test_tui_data import tui_state

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "digits-mlp" in screen_text(app))
        assert "theme" not in tui_state(lab)  # the default is not written
        default = app.theme
        other = next(t for t in ("nord", "gruvbox", "dracula") if t != default)
        app.theme = other  # what ctrl+p "Change theme" does
        await pilot.pause()
    assert tui_state(lab)["theme"] == other
    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "digits-mlp" in screen_text(app))
        assert app.theme == other


def test_the_printed_cancel_hint_is_a_command_that_parses_as_printed() -> None:
    import shlex

    from fbtui.cli import _parser
    from fbtui.commands.runs import cancel_hint

    hint = cancel_hint([2, 3, 4], None, "digits-mlp")
    assert hint == "fbtui cancel 2 3 4"
    args = _parser().parse_args(shlex.split(hint)[1:])
    assert args.command == "cancel" and args.runs == [2, 3, 4]
    hint = cancel_hint([2, 3], "sweep", "digits-mlp")
    args = _parser().parse_args(shlex.split(hint)[1:])
    assert (args.ablation, args.project) == ("sweep", "digits-mlp")
    with pytest.raises(SystemExit):  # what was printed before: "2," is no run number
        _parser().parse_args(shlex.split("fbtui cancel 2, 3, 4")[1:])
