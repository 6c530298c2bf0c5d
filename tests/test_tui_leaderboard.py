"""The app's leaderboards of lab-wide evaluation suites (#17 part 4), driven through Textual's
pilot against a real store in a lab with its code (the suites' dataset and evaluator names are
read from it): the suites, a board ranked across projects at 80x24, enter on a row, u scoring the
stale runs (asked first above three, a failure in one line) and a broken suites file."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.labs import LAB_CODE, copy_lab
from tests.test_tui import NO_ENGINE, make_app, notes, screen_text, sync, until
from tests.test_tui_data import make_run, populate

SMALL = (80, 24)
TODAY, OLD = "c" * 64, "9" * 64
SUITES = """\
suites:
  holdout:
    description: the digits' test split every project holds out
    data: {name: digits}
    split: test
    evaluator: {name: classification, ece_bins: 15}
    metrics: [accuracy, macro_f1, loss, ece]
    auto: [digits-cnn]
  noisy:
    data: {name: digits}
    evaluator: {name: classification}
    metrics: [loss, accuracy]
"""


def suite_lab(root: Path) -> Lab:
    """populate()'s digits-mlp runs, two digits-cnn seeds (#9, #10), and the suites above."""
    copy_lab(root, LAB_CODE)
    (root / "common/suites.yaml").write_text(SUITES)
    lab = populate(root)
    with Store(lab.store_path) as store:
        for seed in (0, 1):
            make_run(store, lab, project="digits-cnn", seed=seed, acc=0.98 + 0.001 * seed, offset=600 + seed)
    return lab


def score(lab: Lab, store: Store, run_id: int, suite: str, acc: float, *, today: bool = True) -> None:
    """A suite evaluation as the evaluate stage records it: what its fingerprint covers, today's
    suite (the working tree's evaluation code and the suite's sections) unless told older code."""
    from fbtui.config.suites import get_suite

    sections = get_suite(lab, suite).sections(lab.defaults.data or {})
    sha = hashlib.sha256((lab.root / "common/evaluation.py").read_bytes()).hexdigest()
    covers = {"code": {"common/evaluation.py": sha if today else "0" * 64}, "config": {"eval": sections["eval"]},
              "data": {"digest": "d" * 64, "split": "test", "made_by": {
                  "code": {"common/evaluation.py": sha}, "config": {"data": sections["data"]}}}}
    store.add_evaluation(run_id, "evaluate", TODAY if today else OLD,
                         {"accuracy": acc, "macro_f1": acc - 0.01, "loss": 1 - acc, "ece": 0.02},
                         covers=covers, suite=suite)
    store.add_artifact(run_id, "train", "model.pt", 1000, "e" * 64)


def scored(lab: Lab, stale: tuple[int, ...] = (1, 6)) -> Lab:
    """digits-mlp's depth runs and both digits-cnn seeds on today's holdout; `stale` on an older one."""
    with Store(lab.store_path) as store:
        for rid, acc in ((2, 0.97), (3, 0.972), (4, 0.96), (5, 0.962), (9, 0.985), (10, 0.986)):
            if rid not in stale:
                score(lab, store, rid, "holdout", acc)
        for rid in stale:
            score(lab, store, rid, "holdout", 0.5, today=False)
    return lab


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return suite_lab(tmp_path / "lab")


@sync
async def test_suites_list_and_a_board_ranked_across_projects_fit_80x24(lab: Lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fbtui.config.suites import get_suite
    from fbtui.records.leaderboard import leaderboard
    from fbtui.tui import suites
    from fbtui.tui.screens.leaderboard import LeaderboardScreen, SuitesScreen
    from fbtui.tui.screens.run import RunScreen

    scored(lab)
    threads: set[str] = set()
    real = suites.standing

    def standing(*args, **kw):  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)  # the real board, recorded where it was made
        return real(*args, **kw)

    monkeypatch.setattr(suites, "standing", standing)
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: "L leaderboards" in screen_text(app))  # the switcher's footer has room
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, SuitesScreen) and "noisy" in screen_text(app))
        text = screen_text(app)
        assert "holdout     8  digits-cnn  the digits' test split every project holds out" in text
        assert "noisy       0  -" in text
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen) and "ranked by" in screen_text(app))
        await until(pilot, lambda: "scores them on today's version" in screen_text(app))
        text = screen_text(app)
        assert "suite holdout: today's version cccccccccccc; ranked by accuracy" in text
        assert "2 runs not on today's version  ·  u scores them on it" in text
        assert "#  PROJECT     ROW            SEEDS  CODE" in text
        assert "1  digits-cnn  (project)      2/2" in text and "0.9855 ± 0.0007" in text
        assert "2  digits-mlp  depth/deep     2/2" in text and "3  digits-mlp  depth/shallow" in text
        assert "set apart: 2 run(s) scored on another version of the suite (code" in text
        assert "fbtui eval --suite holdout 1 6 scores them on today's version" in text  # whole, not cut
        assert all(len(line) <= 80 for line in text.splitlines())
        assert "ece" not in text.split("CODE")[1].splitlines()[0]  # the last metrics are cut at 80 columns…
        for _ in range(60):
            await pilot.press("right")  # …and the table scrolls to them, as the comparison's does
        await until(pilot, lambda: "ece" in screen_text(app) and "0.0200" in screen_text(app))
        assert threads and threading.main_thread().name not in threads  # made in workers
        # the rows are `fbtui leaderboard holdout`'s (one function for both)
        with Store(lab.store_path) as store:
            board = leaderboard(lab, store, get_suite(lab, "holdout"))
        shown = [[str(c) for c in r.cells[:3]] for r in app.screen.grid.rows]
        assert shown == [[str(x.rank), x.project, x.row.name] for x in board.ranked]
        await pilot.press("question_mark")
        await until(pilot, lambda: "Keys: leaderboard" in screen_text(app))
        assert "score the runs not on today's version of the suite" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen))
        await pilot.press("enter")  # the top row's latest run: digits-cnn seed 1
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert app.screen.run_id == 10
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SuitesScreen))


@sync
async def test_no_run_on_todays_version_is_said_and_a_board_picks_up_new_scores(lab: Lab) -> None:
    from fbtui.tui.screens.leaderboard import LeaderboardScreen

    scored(lab, stale=(2, 3, 4, 5, 9, 10))
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_leaderboard("holdout")
        await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen)
                    and "no run is scored on today's version yet" in screen_text(app))
        text = screen_text(app)
        assert "6 runs not on today's version" in text and "no run on today's version yet: u scores them" in text
        with Store(lab.store_path) as store:  # scored meanwhile (as a finished `fbtui eval --suite` records it)
            score(lab, store, 9, "holdout", 0.99)
        await until(pilot, lambda: "1  digits-cnn" in screen_text(app), timeout=10)  # the poll shows it
        assert "5 runs not on today's version" in screen_text(app)


@sync
async def test_u_scores_the_stale_runs_asks_above_three_and_fails_in_one_line(lab: Lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """u is `fbtui eval --suite holdout <stale ids>` in a worker; without an engine the runs' images
    cannot be checked: one notification line, nothing queued."""
    from fbtui.tui.screens.confirm import ConfirmScreen
    from fbtui.tui.screens.leaderboard import LeaderboardScreen

    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    scored(lab, stale=(1, 2))
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_leaderboard("holdout")
        await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen)
                    and "2 runs not on today's version" in screen_text(app))
        await pilot.press("u")  # two runs: no question asked
        await until(pilot, lambda: any(n.startswith("scoring failed: ") for n in notes(app)), timeout=20)
        failed = next(n for n in notes(app) if n.startswith("scoring failed: "))
        assert "Traceback" not in failed and "\n" not in failed and isinstance(app.screen, LeaderboardScreen)
    with Store(lab.store_path) as store:
        assert store.query("SELECT id FROM runs WHERE eval_of IS NOT NULL") == []  # checked before queuing
        for rid in (3, 4, 5, 10):
            score(lab, store, rid, "holdout", 0.5, today=False)
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_leaderboard("holdout")
        await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen)
                    and "6 runs not on today's version" in screen_text(app))
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "Score 6 runs on today's version of holdout?" in text
        assert "#1, #2, #3, #4, #5, #10" in text and "fbtui eval --suite holdout 1 2 3 4 5 10" in text
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen))
        await pilot.pause(0.3)
        assert not any(n.startswith(("scoring", "queued")) for n in notes(app))  # no: nothing done
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: any(n.startswith("scoring failed: ") for n in notes(app)), timeout=20)
    with Store(lab.store_path) as store:
        assert store.query("SELECT id FROM runs WHERE eval_of IS NOT NULL") == []


@sync
async def test_a_broken_suites_file_is_one_line_on_the_screen(lab: Lab) -> None:
    from fbtui.tui.screens.leaderboard import LeaderboardScreen, SuitesScreen

    scored(lab)
    suites = lab.root / "common/suites.yaml"
    suites.write_text(SUITES.replace("data: {name: digits}\n    split", "data: {name: digitz}\n    split"))
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_suites()
        line = "common/suites.yaml:4: suites.holdout.data.name: unknown dataset 'digitz'"  # wrapped at 80
        await until(pilot, lambda: isinstance(app.screen, SuitesScreen) and line in screen_text(app))
        assert "(registered: csv, digits" in screen_text(app) and "Traceback" not in screen_text(app)
        app.open_leaderboard("holdout")  # a board opened meanwhile says the same, and f5 reads it again
        await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen) and line in screen_text(app))
        assert "no board: fix the line above (f5 reads it again)" in screen_text(app)
        suites.write_text(SUITES)
        await pilot.press("f5")
        await until(pilot, lambda: "ranked by accuracy" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SuitesScreen) and "holdout     8" in screen_text(app))
        app.open_leaderboard("nope")  # a suite gone from the file meanwhile
        await until(pilot, lambda: "no evaluation suite 'nope'" in screen_text(app))


@pytest.mark.slow
@pytest.mark.engine
@sync
async def test_u_queues_the_scoring_recorded_against_the_run(tmp_path: Path, docker_host: str,
                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the engine: u queues exactly the stale run's scoring, a hidden run of the suite against
    it, in the run's own image. (The runs are made up: what the scoring computes is not the point,
    test_suites scores real ones; the lab is ended after.)"""
    from fbtui.images.service import ensure_project_image
    from fbtui.tui.screens.leaderboard import LeaderboardScreen
    from tests.labs import end_lab

    monkeypatch.setenv("DOCKER_HOST", docker_host)
    lab = scored(suite_lab(tmp_path / "lab"), stale=(2,))
    image = ensure_project_image(lab, "digits-mlp").tag  # its own image must be there (usually it is)
    with Store(lab.store_path) as store:
        store.update_run(2, image=image)
    app = make_app(lab, restore=False)
    try:
        async with app.run_test(size=SMALL) as pilot:
            app.open_leaderboard("holdout")
            await until(pilot, lambda: isinstance(app.screen, LeaderboardScreen)
                        and "1 run not on today's version" in screen_text(app))
            await pilot.press("u")
            await until(pilot, lambda: any(n.startswith(("queued scoring", "scoring failed")) for n in notes(app)),
                        timeout=60)
            assert "queued scoring of #2 on holdout (1 evaluation;" in " ".join(notes(app)), notes(app)
    finally:
        lock = lab.root / ".fb/supervisor.lock"  # the supervisor queuing started: ended once it holds the lock
        deadline = time.monotonic() + 60
        while (lab.root / ".fb/supervisor.log").exists() and time.monotonic() < deadline and not (
                lock.exists() and lock.read_text().strip()):
            time.sleep(0.1)
        end_lab(lab.root, docker_host)
    with Store(lab.store_path) as store:
        rows = store.query("SELECT eval_of, suite, image FROM runs WHERE eval_of IS NOT NULL")
        assert rows == [{"eval_of": 2, "suite": "holdout", "image": image}]
