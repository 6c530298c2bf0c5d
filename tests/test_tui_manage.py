"""Runs management in the app (#14 item 5): notes, tags, archiving (and undoing it), deleting
after a confirmation (a refused delete says why), filter expressions and the column chooser,
driven through Textual's pilot at 80x24 against a real store in a temporary lab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from fbtui.tui import data
from tests.test_tui import make_app, notes, screen_text, sync, until
from tests.test_tui_data import populate

SMALL = (80, 24)


@pytest.fixture
def lab(lab_dir: Path) -> Lab:
    return populate(lab_dir)


async def open_runs(app: Any, pilot: Any) -> Any:
    """The runs table of digits-mlp, loaded; returns its FastTable."""
    from fbtui.tui.screens.runs import RunsScreen
    from fbtui.tui.widgets.table import FastTable

    app.open_runs("digits-mlp")
    await until(pilot, lambda: isinstance(app.screen, RunsScreen) and "of 8 runs" in screen_text(app))
    return app.screen.query_one(FastTable)


def shown(table: Any) -> list[int]:
    return [table.rows[i].key for i in table.view]


async def on_run(pilot: Any, table: Any, run_id: int) -> None:
    await until(pilot, lambda: run_id in shown(table))
    table.move_to_key(run_id)
    await pilot.pause()
    assert table.cursor_key == run_id


async def type_text(pilot: Any, text: str) -> None:
    for ch in text:
        await pilot.press({" ": "space", "<": "less_than_sign", ">": "greater_than_sign", ".": "full_stop",
                           "/": "slash", "-": "minus"}.get(ch, ch))


@sync
async def test_archive_hides_a_run_and_undo_brings_it_back(lab: Lab) -> None:
    from fbtui.tui.screens.confirm import ConfirmScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await on_run(pilot, table, 6)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "archive run #6 (digits-mlp depth deep seed 2)?" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: 6 not in shown(table) and "7 of 7 runs" in screen_text(app))
        assert any("u brings it back" in n for n in notes(app))
        with Store(lab.store_path) as store:
            assert store.run(6)["archived_at"] is not None  # kept, only hidden
            assert 6 not in [r["id"] for r in data.dashboard(lab, store, "digits-mlp").recent]
        await pilot.press("u")  # undo
        await until(pilot, lambda: 6 in shown(table) and "8 of 8 runs" in screen_text(app))

        # again, then A shows archived runs and a on one brings it back (no question: nothing is lost)
        await on_run(pilot, table, 6)
        await pilot.press("a", "y")
        await until(pilot, lambda: 6 not in shown(table))
        await pilot.press("A")
        await until(pilot, lambda: 6 in shown(table) and "archived shown" in screen_text(app))
        assert "archived" in table.rows[[r.key for r in table.rows].index(6)].cells[1].plain
        await on_run(pilot, table, 6)
        await pilot.press("a")
        await until(pilot, lambda: any("brought back #6" in n for n in notes(app)))
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("A")
        await until(pilot, lambda: 6 in shown(table) and "archived shown" not in screen_text(app))
        with Store(lab.store_path) as store:
            assert store.run(6)["archived_at"] is None


@sync
async def test_a_running_run_is_not_archived(lab: Lab) -> None:
    from fbtui.tui.screens.confirm import ConfirmScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await on_run(pilot, table, 8)
        await pilot.press("a")
        await until(pilot, lambda: any("cannot archive run #8: it is running" in n for n in notes(app)))
        assert not isinstance(app.screen, ConfirmScreen) and 8 in shown(table)


@sync
async def test_delete_asks_naming_what_goes_then_removes_the_run_and_its_folder(lab: Lab) -> None:
    from fbtui.pipeline.paths import run_folder
    from fbtui.tui.screens.confirm import ConfirmScreen

    folder = run_folder(lab, 7)
    assert (folder / "train.log").exists()
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await on_run(pilot, table, 7)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "delete run #7 for good?" in text and "store rows:" in text and "folder" in text
        await pilot.press("n")  # no: nothing goes
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert folder.exists() and 7 in shown(table)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: 7 not in shown(table) and "7 of 7 runs" in screen_text(app))
        assert any("deleted #7" in n for n in notes(app))
    assert not folder.exists()
    with Store(lab.store_path) as store:
        assert store.deleted_run(7) is not None
        assert not store.query("SELECT 1 FROM runs WHERE id = 7")


@sync
async def test_a_refused_delete_shows_the_reason(lab: Lab) -> None:
    from fbtui.tui.screens.confirm import ConfirmScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await on_run(pilot, table, 8)  # still running
        await pilot.press("D")
        await until(pilot, lambda: any("cannot delete runs in progress: #8 (running)" in n for n in notes(app)))
        assert any("fbtui cancel 8" in n for n in notes(app))  # the hint: how to get there
        assert not isinstance(app.screen, ConfirmScreen)
        assert 8 in shown(table) and app.return_code is None


@sync
async def test_note_and_tags_are_edited_and_shown_in_the_table_and_the_run_view(lab: Lab) -> None:
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.screens.runs_modals import EditScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await on_run(pilot, table, 5)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, EditScreen))
        assert "Note of run #5" in screen_text(app)
        await type_text(pilot, "try [lower] lr")  # brackets: no markup
        await pilot.press("enter")
        await until(pilot, lambda: "#5✎" in screen_text(app))

        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, EditScreen))
        await type_text(pilot, "-bad")
        await pilot.press("enter")  # refused in the modal, which stays open
        await until(pilot, lambda: "a tag is one word" in screen_text(app))
        assert isinstance(app.screen, EditScreen)
        for _ in range(4):
            await pilot.press("backspace")
        await type_text(pilot, "baseline best")
        await pilot.press("enter")
        await until(pilot, lambda: "TAGS" in screen_text(app) and "baseline best" in screen_text(app))
        with Store(lab.store_path) as store:
            assert store.run(5)["note"] == "try [lower] lr"
            assert store.tags(5) == ["baseline", "best"]

        # editing tags replaces them: one dropped
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, EditScreen))
        for _ in range(5):
            await pilot.press("backspace")
        await pilot.press("enter")
        await until(pilot, lambda: any(n == "tags of #5: baseline" for n in notes(app)))
        await pilot.press("slash")
        await type_text(pilot, "lower")  # / finds a run by its note too
        await until(pilot, lambda: shown(table) == [5])
        await pilot.press("enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and "✎ try [lower] lr" in screen_text(app))
        assert "tags baseline" in screen_text(app)


@sync
async def test_a_filter_expression_narrows_the_table_and_a_bad_one_says_where(lab: Lab) -> None:
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        await pilot.press("F")
        await type_text(pilot, "depth>2 and eval/accuracy>0.9")
        await pilot.press("enter")
        await until(pilot, lambda: sorted(shown(table)) == [3, 5] and "2 of 8 runs where" in screen_text(app))

        await pilot.press("F")
        for _ in range(40):
            await pilot.press("backspace")
        await type_text(pilot, "depth>>2")
        await pilot.press("enter")
        await until(pilot, lambda: "column 7: " in screen_text(app))
        lines = screen_text(app).splitlines()
        caret = next(i for i, line in enumerate(lines) if line.strip() == "^")
        box = next(line for line in lines if "depth>>2" in line)
        assert lines[caret].index("^") == box.index("depth>>2") + 6  # under the second >
        assert sorted(shown(table)) == [3, 5]  # a bad expression is never applied

        for _ in range(10):
            await pilot.press("backspace")
        await pilot.press("enter")  # empty: every run again
        await until(pilot, lambda: len(shown(table)) == 8 and "column 7" not in screen_text(app))


@sync
async def test_the_column_chooser_hides_a_column_and_is_remembered(lab: Lab) -> None:
    from textual.widgets import SelectionList

    from fbtui.tui.screens.runs_modals import ColumnChooser

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        assert "HOST" in [c.label for c in table.columns]
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ColumnChooser))
        options = app.screen.query_one(SelectionList)
        assert "Columns of the runs table" in screen_text(app)
        for _ in range(4):  # status, variant, seed, commit, host
            await pilot.press("down")
        assert options.get_option_at_index(options.highlighted).value == "host"
        await pilot.press("space", "escape")
        await until(pilot, lambda: "HOST" not in [c.label for c in table.columns])
        assert "local" not in screen_text(app)
    assert json.loads((lab.root / ".fb/tui.json").read_text())["runs_hidden_columns"] == ["host"]

    app = make_app(lab, restore=False)  # the app again: the choice is remembered
    async with app.run_test(size=SMALL) as pilot:
        table = await open_runs(app, pilot)
        assert "HOST" not in [c.label for c in table.columns] and "STATUS" in [c.label for c in table.columns]
