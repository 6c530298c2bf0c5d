"""Snapshots of every screen at 80x24, 120x40 and 200x60 (pytest-textual-snapshot's SVG extension
over syrupy): each test runs once per size.

The data is fixed: the populated store of test_tui_data with a fixed clock, a lab at a fixed path,
and an engine that is not there (so image freshness and hosts show the same thing on every
machine). Image tags carry content hashes of common/ and the environments, which change with the
code: they are masked. After a deliberate change of a screen:

    scripts/test tests/test_tui_snapshots.py --snapshot-update

and look at the new SVGs under tests/__snapshots__/ before committing them (FB_SNAP_TEXT=DIR also
writes each picture as plain text under DIR, quicker to read).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fbtui.lab import Lab
from tests.labs import LAB_CODE, copy_lab
from tests.test_tui import SIZE, make_app, screen_text, until
from tests.test_tui_data import populate

# The projects screen shows where the lab is: a path of fixed length, its varying part masked, so
# two test sessions on one machine never share a lab and still draw the same picture.
LAB = Path(f"/tmp/fb-snap-{os.getpid() % 10**8:08d}/lab")
LAB_ID = re.compile(r"fb-snap-\d{8}")
NO_ENGINE = "unix:///nonexistent/fb-snapshot-engine.sock"
HASH = re.compile(r"\b[0-9a-f]{12,16}\b")


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    shutil.rmtree(LAB.parent, ignore_errors=True)
    yield populate(copy_lab(LAB, LAB_CODE))  # code too: the image plan is made
    shutil.rmtree(LAB.parent, ignore_errors=True)


SIZES = [(80, 24), SIZE, (200, 60)]


@pytest.fixture(params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def size(request: pytest.FixtureRequest) -> tuple[int, int]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def snap(snapshot: Any, size: tuple[int, int], request: pytest.FixtureRequest) -> Callable[..., None]:
    from pytest_textual_snapshot import SVGImageExtension

    def check(lab: Lab, drive: Callable[[Any], Awaitable[None]], **app_options: Any) -> None:
        async def go() -> str:
            app = make_app(lab, restore=False, **app_options)
            async with app.run_test(size=size) as pilot:
                # The switcher draws names first and its projects' environments once read: every
                # picture starts from the read one (the launcher and leaderboard show it around them).
                await shows(pilot, "torch-cpu")
                await drive(pilot)
                await pilot.pause()
                await pilot.wait_for_scheduled_animations()
                await pilot.pause()
                if os.environ.get("FB_SNAP_TEXT"):
                    out = Path(os.environ["FB_SNAP_TEXT"]) / f"{request.node.name}.txt"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(screen_text(app))
                return app.export_screenshot(title="fbtui", simplify=True)

        svg = LAB_ID.sub("fb-snap-00000000", HASH.sub(lambda m: "#" * len(m.group()), asyncio.run(go())))
        assert snapshot(extension_class=SVGImageExtension) == svg

    return check


async def shows(pilot: Any, *texts: str, timeout: float = 10.0) -> None:
    await until(pilot, lambda: all(t in screen_text(pilot.app) for t in texts), timeout)


def test_projects(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await shows(pilot, "digits-mlp", "digits-cnn", "#8 running")

    snap(lab, drive)


def test_dashboard(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_project("digits-mlp", remember=False)
        await shows(pilot, "Recent runs", "#8", "freshness unknown", "proj")

    snap(lab, drive)


def test_launcher(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await shows(pilot, "digits-mlp")  # over the switcher: the dashboard's image hashes would show around it
        pilot.app.open_launcher("digits-mlp")
        await shows(pilot, "Run digits-mlp", "Overrides")
        field = pilot.app.screen.query_one("#overrides")
        field.cursor_blink = False  # a blinking cursor would make the picture depend on timing
        field.focus()
        await pilot.press(*"model.hidden=wide", "enter")
        await shows(pilot, "expected an integer")

    snap(lab, drive)


def test_run_view(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_run(1)
        await shows(pilot, "evaluate log")
        await pilot.press("up")  # train: its log holds a traceback
        await shows(pilot, "train log", "ValueError")

    snap(lab, drive)


def test_runs_table(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_runs("digits-mlp")
        await shows(pilot, "8 of 8 runs")

    snap(lab, drive)


def test_comparison(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_compare("digits-mlp", "depth")
        await shows(pilot, "shallow", "deep", "best per metric", "eval/accuracy")  # (set apart: below, at 80x24)

    snap(lab, drive)


def test_hosts(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_hosts()
        await shows(pilot, "local", "DOWN")

    snap(lab, drive)


def test_builds(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_builds()
        await shows(pilot, "Builds")

    snap(lab, drive)


def test_help(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_run(1)  # (over the dashboard, ends of image hashes would show around the box)
        await shows(pilot, "evaluate log")
        await pilot.press("question_mark")
        await shows(pilot, "Keys")

    snap(lab, drive)


def test_engine_down(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await shows(pilot, "digits-mlp", "Docker engine unreachable")

    snap(lab, drive, check_engine=True)


def test_leaderboard(lab: Lab, snap: Callable[..., None]) -> None:
    from fbtui.store import Store
    from tests.test_tui_data import make_run
    from tests.test_tui_leaderboard import SUITES, scored

    (lab.root / "common/suites.yaml").write_text(SUITES)  # fixed here: the bundled lab's suites may change
    with Store(lab.store_path) as store:
        for seed in (0, 1):  # #9, #10
            make_run(store, lab, project="digits-cnn", seed=seed, acc=0.98 + 0.001 * seed, offset=600 + seed)
    scored(lab)

    async def drive(pilot: Any) -> None:
        await shows(pilot, "digits-mlp")  # over the switcher: no image hashes around it
        pilot.app.open_leaderboard("holdout")
        await shows(pilot, "ranked by accuracy", "depth/shallow", "scores them on today's version")

    snap(lab, drive)


def test_comparison_sweep(lab: Lab, snap: Callable[..., None]) -> None:
    """Many differing params with long names: at 80x24 the metrics come first and ROW stays."""
    from fbtui.store import Store
    from tests.test_tui_data import make_run

    with Store(lab.store_path) as store:
        for k, (lr, width) in enumerate([(0.1, 64), (0.01, 64), (0.1, 256), (0.01, 256)]):
            params = {"optim.learning_rate": lr, "model.hidden_width": width, "model.dropout": round(0.1 * k, 1),
                      "optim.weight_decay": 10.0 ** -k, "train.batch_size": 32 * (k + 1)}
            name = ",".join(f"{p}={v}" for p, v in params.items())
            make_run(store, lab, ablation="sweep", variant=name, seed=0, params=params, acc=0.9 + 0.01 * k,
                     offset=700 + k)

    async def drive(pilot: Any) -> None:
        pilot.app.open_compare("digits-mlp", "sweep")
        await shows(pilot, "eval/accuracy", "★")

    snap(lab, drive)


async def runs_table(pilot: Any) -> None:
    pilot.app.open_runs("digits-mlp")
    await shows(pilot, "8 of 8 runs")


async def run_view(pilot: Any) -> None:
    pilot.app.open_run(1)
    await shows(pilot, "evaluate log")


def test_confirm(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await runs_table(pilot)  # #8, the first row, is running
        await pilot.press("x")
        await shows(pilot, "cancel run #8")

    snap(lab, drive)


def test_note_editor(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await runs_table(pilot)
        await pilot.press("n")
        await shows(pilot, "Note of run")
        pilot.app.screen.query_one("Input").cursor_blink = False

    snap(lab, drive)


def test_column_chooser(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await runs_table(pilot)
        await pilot.press("c")
        await shows(pilot, "COMMIT")

    snap(lab, drive)


def test_metric_picker(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await run_view(pilot)
        await pilot.press("m")
        await shows(pilot, "val/accuracy")
        pilot.app.screen.query_one("Input").cursor_blink = False

    snap(lab, drive)


def test_run_detail(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await run_view(pilot)
        await pilot.press("i")
        await shows(pilot, "config")

    snap(lab, drive)


def test_artifacts(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        await run_view(pilot)
        await pilot.press("A")
        await shows(pilot, "rtifacts")

    snap(lab, drive)


def test_log_search(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_project("digits-mlp", remember=False)
        await shows(pilot, "Recent runs")
        pilot.app.open_log_search()
        await shows(pilot, "Search the logs")
        pilot.app.screen.query_one("Input").cursor_blink = False
        await pilot.press(*"ValueError", "enter")
        await shows(pilot, "bad things")

    snap(lab, drive)


def test_export(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_compare("digits-mlp", "depth")
        await shows(pilot, "shallow", "eval/accuracy")
        await pilot.press("E")
        await shows(pilot, ".csv")
        pilot.app.screen.query_one("Input").cursor_blink = False

    snap(lab, drive)


def test_param_plot(lab: Lab, snap: Callable[..., None]) -> None:
    async def drive(pilot: Any) -> None:
        pilot.app.open_compare("digits-mlp", "depth")
        await shows(pilot, "shallow", "eval/accuracy")
        await pilot.press("p")
        await shows(pilot, "vs model.depth", "whiskers")

    snap(lab, drive)
