"""The terminal app on a read-only or broken store, and after an unexpected error: it shows what
it can, launching says why it cannot, and a bug is one line naming a crash log."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def immutable(path: Path) -> bool:
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def test_the_apps_stores_read_a_read_only_store_and_refuse_to_launch_on_it(lab_dir: Path) -> None:
    from fbtui.errors import FBError
    from fbtui.tui.data import Stores
    from tests.test_tui_data import populate

    lab = populate(lab_dir)
    if not immutable(lab.store_path):
        pytest.skip("chattr +i is not available here")
    try:
        stores = Stores(lab.store_path)
        s = stores.get()
        assert s is not None and s.read_only and len(s.runs()) == 8
        with pytest.raises(FBError, match="is read-only here"):
            stores.create()
        stores.close()
    finally:
        subprocess.run(["chattr", "-i", str(lab.store_path)], check=True)


def test_the_apps_stores_survive_a_store_that_is_not_sqlite(lab_dir: Path) -> None:
    from fbtui.errors import FBError
    from fbtui.lab import Lab
    from fbtui.tui.data import Stores

    lab = Lab.find(str(lab_dir))
    lab.store_path.parent.mkdir()
    lab.store_path.write_text("not a database\n" * 50)
    stores = Stores(lab.store_path)
    assert stores.get() is None and stores.problem is not None
    with pytest.raises(FBError, match="is not a SQLite database"):
        stores.create()


def test_the_app_shows_a_read_only_store_and_a_broken_one_without_crashing(lab_dir: Path) -> None:
    import asyncio

    from tests.test_tui import SIZE, make_app, screen_text, until
    from tests.test_tui_data import populate

    lab = populate(lab_dir)
    if not immutable(lab.store_path):
        pytest.skip("chattr +i is not available here")

    async def drive() -> None:
        app = make_app(lab, restore=False)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "running" in screen_text(app))
            await pilot.press("down", "enter")  # digits-mlp
            await until(pilot, lambda: "Recent runs" in screen_text(app) and "#8" in screen_text(app))
            await pilot.pause(1.5)  # a poll or two
            assert app.return_code is None

    try:
        asyncio.run(drive())
    finally:
        subprocess.run(["chattr", "-i", str(lab.store_path)], check=True)

    lab.store_path.write_text("not a database\n" * 50)
    for suffix in ("-wal", "-shm"):
        Path(f"{lab.store_path}{suffix}").unlink(missing_ok=True)

    async def drive_broken() -> None:
        app = make_app(lab, restore=False)
        async with app.run_test(size=SIZE) as pilot:
            # said, not shown as a lab where nothing ever ran
            await until(pilot, lambda: "The store cannot be read" in screen_text(app) and "unknown" in screen_text(app))
            assert "never run" not in screen_text(app)
            await pilot.pause(1.5)
            assert app.return_code is None

    asyncio.run(drive_broken())


def test_an_unexpected_error_in_the_app_is_one_line_and_a_crash_log(lab_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from fbtui.lab import Lab
    from tests.test_tui import SIZE, make_app

    monkeypatch.setenv("FB_STATE_DIR", str(tmp_path))
    app = make_app(Lab.find(str(lab_dir)), restore=False)

    def boom() -> None:
        raise RuntimeError("the app met a bug")

    async def drive() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.call_later(boom)
            await pilot.pause(0.5)

    with pytest.raises(RuntimeError):  # the pilot hands the app's exception to the test
        asyncio.run(drive())
    assert app.return_code == 1
    assert app.crash_report is not None and "unexpected RuntimeError: the app met a bug" in app.crash_report
    log = Path(app.crash_report.split("details in ")[1].split(";")[0])
    assert log.parent == tmp_path / "fbtui" and "Traceback" in log.read_text()
