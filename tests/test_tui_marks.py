"""Marking runs in the runs table (#14): space marks and unmarks the highlighted run (● before its
number, the count in the title and under the table); x, a and D then act on every marked run
after one question naming how many and which, d with two marked shows their diff, esc clears
the marks. Driven through Textual's pilot at 80x24 against a real store in a temporary lab."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.test_tui import make_app, notes, screen_text, sync, until
from tests.test_tui_data import populate
from tests.test_tui_manage import SMALL, on_run, open_runs, shown
from tests.test_tui_round2 import add_runs, cancel_requested, supervisor_starts  # noqa: F401 (a fixture)


@pytest.fixture
def lab(lab_dir: Path) -> Lab:
    return populate(lab_dir)


async def mark(pilot: Any, table: Any, *run_ids: int) -> None:
    for rid in run_ids:
        await on_run(pilot, table, rid)
        await pilot.press("space")


def run_cell(table: Any, run_id: int) -> str:
    return str(next(r for r in table.rows if r.key == run_id).cells[0])


@sync
async def test_space_marks_runs_d_diffs_two_and_esc_clears(lab: Lab) -> None:
    from fbtui.tui.screens.run_detail import RunDetailScreen
    from fbtui.tui.screens.runs import RunsScreen
    from tests.test_tui_detail import pane_text

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await mark(pilot, table, 2, 5, 3)
        await until(pilot, lambda: "3 marked" in screen_text(app))
        assert [run_cell(table, i) for i in (2, 3, 4, 5)] == ["●#2", "●#3", "#4", "●#5"]
        assert "Runs of digits-mlp  (3 marked)" in screen_text(app)
        # one line under the table at 80 columns: what the keys now do to the marked runs
        assert "8 of 8 runs · 3 marked: x a D act on them · d diffs two · esc unmarks" in screen_text(app)
        await pilot.press("d")  # three marked: d says what it wants
        await until(pilot, lambda: any("d diffs two marked runs: 3 marked" in n for n in notes(app)))
        await mark(pilot, table, 5)  # space again: unmarked
        await until(pilot, lambda: run_cell(table, 5) == "#5" and "2 marked" in screen_text(app))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                    and pane_text(app, "diff").startswith("run #2 against run #3"))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert "2 marked" in screen_text(app)  # the marks outlive the diff
        await pilot.press("escape")  # clears the marks, stays on the table
        await until(pilot, lambda: "marked" not in screen_text(app))
        assert isinstance(app.screen, RunsScreen) and run_cell(table, 2) == "#2"
        assert "n note · t tags" in screen_text(app)


@sync
async def test_archive_acts_on_every_marked_run_after_one_question_and_u_undoes_it(lab: Lab) -> None:
    from fbtui.tui.screens.confirm import ConfirmScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await mark(pilot, table, 5, 6, 8)  # 8 is running: it stays
        await on_run(pilot, table, 1)  # the cursor elsewhere: the marks count, not the cursor
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "archive 2 runs: #5, #6?" in text and "left as they are: #8 (running)" in text
        await pilot.press("y")
        await until(pilot, lambda: not {5, 6} & set(shown(table)) and "6 of 6 runs" in screen_text(app))
        assert 1 in shown(table) and 8 in shown(table)
        assert any("archived #5, #6" in n and "u brings them back" in n for n in notes(app))
        assert "marked" not in screen_text(app)  # done: no marks left
        with Store(lab.store_path) as store:
            assert store.run(5)["archived_at"] and store.run(6)["archived_at"] and not store.run(1)["archived_at"]
        await pilot.press("u")
        await until(pilot, lambda: {5, 6} <= set(shown(table)) and "8 of 8 runs" in screen_text(app))


@sync
async def test_delete_acts_on_every_marked_run_after_one_question(lab: Lab) -> None:
    from fbtui.pipeline.paths import run_folder
    from fbtui.tui.screens.confirm import ConfirmScreen

    folders = [run_folder(lab, 6), run_folder(lab, 7)]
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await mark(pilot, table, 6, 7)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "delete 2 runs: #6, #7 for good?" in screen_text(app)
        await pilot.press("n")  # no: nothing goes, the marks stay
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert {6, 7} <= set(shown(table)) and "2 marked" in screen_text(app)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: not {6, 7} & set(shown(table)) and "6 of 6 runs" in screen_text(app))
        assert any("deleted #6, #7" in n for n in notes(app))
        # a running run marked: the whole delete is refused, with the reason
        await mark(pilot, table, 5, 8)
        await pilot.press("D")
        await until(pilot, lambda: any("cannot delete runs in progress: #8 (running)" in n for n in notes(app)))
        assert not isinstance(app.screen, ConfirmScreen) and 5 in shown(table)
    assert not any(f.exists() for f in folders)
    with Store(lab.store_path) as store:
        assert not store.query("SELECT 1 FROM runs WHERE id IN (6, 7)")


@sync
async def test_cancel_acts_on_the_marked_runs_still_going(lab: Lab, supervisor_starts: list[Path]) -> None:  # noqa: F811
    from fbtui.tui.screens.confirm import ConfirmScreen

    queued = add_runs(lab)["queued"]
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        from fbtui.tui.screens.runs import RunsScreen
        from fbtui.tui.widgets.table import FastTable

        app.open_runs("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and "of 10 runs" in screen_text(app))
        table = app.screen.query_one(FastTable)
        await mark(pilot, table, 8, queued, 1)  # 1 has finished: left as it is
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert f"cancel 2 runs: #8, #{queued}?" in text and "left as they are (not going): #1 (succeeded)" in text
        await pilot.press("y")
        await until(pilot, lambda: cancel_requested(lab, 8) == 1 and cancel_requested(lab, queued) == 1)
        assert cancel_requested(lab, 1) == 0 and supervisor_starts == [lab.root]
