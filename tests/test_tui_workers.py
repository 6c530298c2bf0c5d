"""A worker's result and the screen it was loaded for: FBScreen.deliver drops a result whose screen
has gone (popped, or the app quitting) instead of querying widgets that no longer exist, and
whatever must run after the draw (the comparison's cycle collector) runs in any case."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import ComposeResult
from textual.widgets import Static

from fbtui.lab import Lab
from fbtui.records.rows import pause_gc
from fbtui.tui.widgets.common import FBScreen
from tests.test_tui import SIZE, make_app, sync, until
from tests.test_tui_data import populate


@pytest.fixture
def lab(lab_dir: Path) -> Lab:
    return populate(lab_dir)


@pytest.fixture
def gc_back_on() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()  # (a failing test must not leave the rest of the session without a collector)


class Late(FBScreen):
    def body(self) -> ComposeResult:
        yield Static("loading", id="late")

    def show(self, text: str) -> None:
        self.query_one("#late", Static).update(text)


@sync
async def test_a_result_for_a_popped_screen_is_dropped_and_the_collector_still_resumes(
        lab: Lab, gc_back_on: None) -> None:
    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        shown = Late()
        await app.push_screen(shown)
        await asyncio.to_thread(shown.deliver, shown.show, "loaded")  # on the stack: shown
        await until(pilot, lambda: "loaded" in str(shown.query_one("#late", Static).render()))

        gone = Late()
        await app.push_screen(gone)
        await pilot.pause()
        app.pop_screen()
        await until(pilot, lambda: gone not in app.screen_stack and not gone.children)
        resume = pause_gc()
        assert not gc.isenabled()
        # Before deliver, this show() raised NoMatches on the event loop and the app failed.
        await asyncio.to_thread(gone.deliver, gone.show, "too late", after_draw=resume)
        await until(pilot, gc.isenabled)
        assert app.screen is shown
    assert app._exception is None


@sync
async def test_the_collector_resumes_when_the_app_quits_before_the_result_arrives(
        lab: Lab, gc_back_on: None) -> None:
    app = make_app(lab, restore=False)
    screen = Late()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(screen)
        await pilot.pause()
    resume = pause_gc()
    with pytest.raises(RuntimeError):  # the app is not running: nothing can reach its screen
        screen.deliver(screen.show, "after the end", after_draw=resume)
    assert gc.isenabled()
