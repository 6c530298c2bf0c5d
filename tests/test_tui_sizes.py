"""Every screen usable at 80x24 (#14 item 2): the footer keeps q, ?, esc and the screen's main keys;
the launcher fits and scrolls to its buttons; the comparison keeps ROW, shows metrics before params
and scrolls a column at a time. The pictures themselves: test_tui_snapshots.py at three sizes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from fbtui.tui.widgets.footer import key_width, pick
from tests.labs import LAB_CODE, copy_lab
from tests.test_tui import make_app, screen_text, sync, until
from tests.test_tui_data import make_run, populate

SMALL = (80, 24)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield populate(copy_lab(tmp_path / "lab", LAB_CODE))


def footer(app: object) -> str:
    return (screen_text(app).splitlines() or [""])[-1]


def test_pick_ranks_quit_help_back_then_main_keys() -> None:
    keys = ["s", "escape", "f", "slash", "backslash", "m", "e", "w", "x", "q", "question_mark"]
    entries = [(k, key_width(k[:1], "description")) for k in keys]  # 15 cells each
    chosen = {keys[i] for i in pick(entries, ("x", "f"), 75)}
    assert chosen == {"q", "question_mark", "escape", "x", "f"}
    chosen = {keys[i] for i in pick(entries, ("x",), 90)}
    assert chosen == {"q", "question_mark", "escape", "x", "s", "f"}  # then the rest in binding order


@sync
async def test_narrow_footers_keep_quit_help_back_and_cancel(lab: Lab) -> None:
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_run(8)  # running: x cancels it
        await until(pilot, lambda: "x cancel run" in footer(app))
        assert all(k in footer(app) for k in ("q quit", "? help", "esc back"))
        app.pop_screen()
        app.open_runs("digits-mlp")
        await until(pilot, lambda: "8 of 8 runs" in screen_text(app) and "x cancel run" in footer(app))
        assert all(k in footer(app) for k in ("q quit", "? help", "esc back", "/ filter"))
        await pilot.resize_terminal(120, 40)  # more room: more keys, the same first ones
        await until(pilot, lambda: "F where" in footer(app))
        assert all(k in footer(app) for k in ("q quit", "? help", "esc back", "x cancel run"))


@sync
async def test_launcher_fits_80x24_and_scrolls_to_launch(lab: Lab) -> None:
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_launcher("digits-mlp")
        await until(pilot, lambda: "Run digits-mlp" in screen_text(app))
        box = app.screen.query_one("#launcher")
        assert box.outer_size.width <= SMALL[0] and box.outer_size.height <= SMALL[1]
        assert "Launch" not in screen_text(app).replace("^s launch", "")  # below the fold…
        field = app.screen.query_one("#overrides")
        field.focus()
        await pilot.press(*"model.hidden=wide", "enter")  # …validation brings message and buttons up
        await until(pilot, lambda: "expected an integer" in screen_text(app))
        await until(pilot, lambda: "Launch" in screen_text(app).replace("^s launch", ""))
        assert "Overrides" in screen_text(app)


@sync
async def test_comparison_keeps_row_and_scrolls_by_column(lab: Lab) -> None:
    with Store(lab.store_path) as store:
        for k in range(3):
            params = {"optim.learning_rate": 10.0 ** -k, "model.hidden_width": 64 * (k + 1),
                      "model.dropout": round(0.1 * k, 1), "optim.weight_decay": k, "train.batch_size": 32 * (k + 1)}
            make_run(store, lab, ablation="sweep", variant=f"v{k}", seed=0, params=params, offset=700 + k)
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_compare("digits-mlp", "sweep")
        await until(pilot, lambda: "eval/accuracy" in screen_text(app))

        def header() -> str:
            return next(line for line in screen_text(app).splitlines() if "ROW" in line)

        assert header().split()[:4] == ["ROW", "SEEDS", "eval/accuracy", "eval/loss"]  # metrics first
        assert header().rstrip().endswith("▸") and "train.batch_size" not in header()
        await pilot.press("right")  # one whole column: eval/accuracy goes, ROW and SEEDS stay
        await until(pilot, lambda: header().split()[:3] == ["ROW", "SEEDS", "eval/loss"])
        for _ in range(10):  # no further than the last column
            await pilot.press("right")
        await until(pilot, lambda: "train.batch_size" in header() and "▸" not in header())
        assert header().split()[:2] == ["ROW", "SEEDS"] and "v2" in screen_text(app)
        for _ in range(10):
            await pilot.press("left")
        await until(pilot, lambda: header().split()[:3] == ["ROW", "SEEDS", "eval/accuracy"])


@sync
async def test_a_long_confirmation_fits_80x24_and_scrolls(lab: Lab) -> None:
    from fbtui.tui.screens.confirm import ConfirmScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        answers: list[bool | None] = []
        detail = "\n".join(f"run #{i}: its outputs and logs" for i in range(60))
        app.push_screen(ConfirmScreen("delete 60 runs for good?", detail), answers.append)
        await until(pilot, lambda: "delete 60 runs" in screen_text(app))
        box = app.screen.query_one("#confirm")
        assert box.outer_size.height <= SMALL[1] and box.show_vertical_scrollbar  # and the wheel scrolls it
        assert "y / enter: yes" not in screen_text(app)
        box.scroll_end(animate=False)
        await until(pilot, lambda: "y / enter: yes" in screen_text(app))
        await pilot.press("n")
        await until(pilot, lambda: answers == [False])


@sync
async def test_runs_table_keeps_run_column_when_scrolled(lab: Lab) -> None:
    from fbtui.tui.widgets.table import FastTable

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_runs("digits-mlp")
        await until(pilot, lambda: "8 of 8 runs" in screen_text(app))
        app.screen.query_one("#runs", FastTable).focus()

        def header() -> list[str]:
            return next(line for line in screen_text(app).splitlines() if "RUN" in line).split()

        assert header()[:2] == ["RUN", "STATUS"]
        await pilot.press("right", "right")  # the second: the last column shows already, no further
        await until(pilot, lambda: header()[:2] == ["RUN", "VARIANT"] and header()[-1] == "EVAL/LOSS")
        assert "#8" in screen_text(app)
