"""The footer rebuilds its keys only when what they show changes: bindings are "updated" on every
focus change and refresh, and rebuilding the same keys restyled them each time (5 rebuilds as the
comparison of 10,000 runs opened, a third of the event loop's work, taken from the worker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey

from fbtui.lab import Lab
from tests.test_tui import SIZE, make_app, screen_text, sync, until
from tests.test_tui_data import populate


@pytest.fixture
def lab(lab_dir: Path) -> Lab:
    return populate(lab_dir)


@sync
async def test_same_keys_are_kept_and_a_narrower_terminal_gets_new_ones(lab: Lab) -> None:
    from fbtui.tui.screens.compare import CompareScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_compare("digits-mlp", "depth")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and "shallow" in screen_text(app))
        keys = list(app.screen.query(FooterKey))
        assert keys and not any(k.has_class("-compact") for k in keys)  # (key widths assume so)
        for _ in range(3):
            app.screen.refresh_bindings()
            await pilot.pause(0.05)
        assert list(app.screen.query(FooterKey)) == keys  # the same widgets: nothing rebuilt
        await pilot.resize_terminal(60, SIZE[1])
        await until(pilot, lambda: len(app.screen.query(FooterKey)) < len(keys))
        shown = {k.key for k in app.screen.query(FooterKey)}
        assert {"q", "question_mark", "escape"} <= shown  # what ranks first stays
