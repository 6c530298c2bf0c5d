"""The app's start (#14, first frame <= 1 s): `fbtui` draws the project switcher before lab.yaml and
the project.yaml files are validated (pydantic and the config models are a quarter of a second to
import), validates them right after, and ends with one line on a bad lab.yaml as a command does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.text import Text

from fbtui.cli import _app_only
from fbtui.errors import ConfigError
from fbtui.lab import Lab
from fbtui.tui import make_app
from fbtui.tui.widgets.table import FastTable
from tests.test_tui import SIZE, screen_text, sync, until
from tests.test_tui_e2e import screen, tmux, wait_for

REPO = Path(__file__).resolve().parent.parent


def test_an_unchecked_lab_imports_no_config_models_until_its_config_is_read(lab_dir: Path) -> None:
    code = (
        "import json, sys\n"
        "from fbtui.lab import Lab\n"
        f"lab = Lab.find({str(lab_dir)!r}, check=False)\n"
        "out = {'early': 'pydantic' in sys.modules or 'fbtui.config.models' in sys.modules,\n"
        "       'name': lab.name, 'store': str(lab.store_path), 'projects': lab.project_names()}\n"
        "out['hosts'] = sorted(lab.config.hosts)\n"
        "out['late'] = 'fbtui.config.models' in sys.modules\n"
        "print(json.dumps(out))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    cwd=REPO).stdout)
    assert out == {"early": False, "name": "force-build-demo", "store": str(lab_dir / ".fb/fb.db"),
                   "projects": ["digits-cnn", "digits-mlp"], "hosts": ["local"], "late": True}


def test_an_unchecked_lab_names_a_bad_lab_yaml_when_its_config_is_first_read(lab_dir: Path) -> None:
    (lab_dir / "lab.yaml").write_text("name: demo\nhosts:\n  local:\n    slots: many\n")
    lab = Lab.find(str(lab_dir), check=False)
    assert lab.name == "demo" and lab.store_path == lab_dir / ".fb/fb.db"  # plain text: read as it is
    with pytest.raises(ConfigError) as e:
        lab.config  # noqa: B018
    assert "lab.yaml" in str(e.value) and "slots" in str(e.value)
    with pytest.raises(ConfigError):
        Lab.find(str(lab_dir))  # commands check at once


def test_a_store_setting_that_is_not_text_is_never_opened_before_it_is_validated(lab_dir: Path) -> None:
    (lab_dir / "lab.yaml").write_text("name: demo\nstore: [a, b]\n")
    lab = Lab.find(str(lab_dir), check=False)
    with pytest.raises(ConfigError) as e:
        lab.store_path  # noqa: B018
    assert str(e.value) == "lab.yaml:2: store: expected a string, got a list"


def test_only_a_bare_fbtui_or_fbtui_with_its_lab_skips_the_parser() -> None:
    assert _app_only([]) == (True, None)
    assert _app_only(["--lab", "/x/lab"]) == (True, "/x/lab")
    assert _app_only(["--lab=/x/lab"]) == (True, "/x/lab")
    for argv in (["--help"], ["--lab"], ["--lab", "--help"], ["--lab", "x", "runs"], ["runs"], ["--version"]):
        assert _app_only(argv) == (False, None), argv


@sync
async def test_the_switcher_draws_names_first_then_every_project_read(lab_dir: Path) -> None:
    (lab_dir / "projects/digits-cnn/project.yaml").write_text("environment: [1]\n")  # a broken project
    shown: list[list[str]] = []
    set_data = FastTable.set_data

    def spy(self: FastTable, columns, rows, **kw):  # type: ignore[no-untyped-def]
        if self.id == "projects":
            shown.append([c.plain if isinstance(c, Text) else str(c) for r in rows for c in r.cells[:2]])
        return set_data(self, columns, rows, **kw)

    FastTable.set_data = spy  # type: ignore[method-assign]
    try:
        app = make_app(str(lab_dir), check_engine=False, restore=False)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(shown) >= 2)
            assert shown[0] == ["digits-cnn", "…", "digits-mlp", "…"]
            assert shown[1] == ["digits-cnn", "(invalid)", "digits-mlp", "torch-cpu"]
            await until(pilot, lambda: "environment" in screen_text(app) and "(invalid)" in screen_text(app))
            assert app.sub_title == "lab force-build-demo" and app._lab_checked
    finally:
        FastTable.set_data = set_data  # type: ignore[method-assign]


@sync
async def test_the_app_ends_on_a_bad_lab_yaml_with_its_one_line(lab_dir: Path) -> None:
    (lab_dir / "lab.yaml").write_text("name: demo\nhosts:\n  local:\n    slots: many\n")
    app = make_app(str(lab_dir), check_engine=False, restore=True)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 10
        while app.return_code is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
    assert app.return_code == 1
    assert app.crash_report is not None and app.crash_report.startswith("lab.yaml")
    assert app.crash_report.startswith("lab.yaml:4: ") and "slots" in app.crash_report


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_fbtui_in_a_terminal_prints_a_bad_lab_yaml_and_exits_1(lab_dir: Path, tmp_path: Path) -> None:
    """In a real terminal: the app starts, finds lab.yaml bad, leaves the screen as it was and prints
    the one line a command prints."""
    (lab_dir / "lab.yaml").write_text("name: demo\nhosts:\n  local:\n    slots: many\n")
    fbtui = Path(sys.executable).parent / "fbtui"
    done = tmp_path / "rc"
    session = f"fbtui-start-{os.getpid()}"
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24",
         f"TERM=xterm-256color {fbtui} --lab {lab_dir}; echo $? > {done}; sleep 30")
    try:
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.read_text().strip() == "1"
        shown = screen(session)
        lines = [x for x in shown.splitlines() if x.strip()]
        assert lines == ["fbtui: error: lab.yaml:4: hosts.local.slots: expected an integer, got 'many'"], shown
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@sync
async def test_a_pushed_screen_loads_once_and_again_when_returned_to(lab_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual resumes a screen right after pushing it: the dashboard's resume load waits for a
    real return, or the images' freshness (hashing the layers' files) is read twice at each open."""
    import fbtui.images.service as service
    from fbtui.tui.screens.dashboard import DashboardScreen

    calls: list[str] = []
    monkeypatch.setattr(service, "layer_states", lambda lab, project: (calls.append(project), ([], None))[1])
    app = make_app(str(lab_dir), check_engine=False, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_project("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and "Recent runs" in screen_text(app))
        await pilot.pause(0.3)
        assert calls == ["digits-mlp"]
        await pilot.press("question_mark")  # help, then back
        await until(pilot, lambda: not isinstance(app.screen, DashboardScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and len(calls) == 2)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_sigterm_ends_the_app_and_gives_the_terminal_back(lab_dir: Path, tmp_path: Path) -> None:
    fbtui = Path(sys.executable).parent / "fbtui"
    pid, done = tmp_path / "pid", tmp_path / "rc"
    session = f"fbtui-term-{os.getpid()}"
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24",
         f"sh -c 'echo $$ > {pid}; TERM=xterm-256color exec {fbtui} --lab {lab_dir}'; echo $? > {done}; sleep 30")

    def pane(fmt: str) -> str:
        return tmux("display-message", "-p", "-t", session, fmt).strip()

    try:
        deadline = time.monotonic() + 30
        wait_for(session, "torch-cpu")
        assert pane("#{alternate_on} #{mouse_any_flag} #{cursor_flag}") == "1 1 0"  # the app's modes
        os.kill(int(pid.read_text()), 15)
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.read_text().strip() == "143"
        assert pane("#{alternate_on} #{mouse_any_flag} #{cursor_flag}") == "0 0 1"  # given back
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@sync
async def test_a_store_that_cannot_be_read_is_said_not_shown_as_an_empty_lab(lab_dir: Path) -> None:
    """A damaged store: every screen would read as a lab where nothing ever ran. The banner says it."""
    from tests.test_tui_data import populate

    populate(lab_dir)
    store = lab_dir / ".fb/fb.db"
    with store.open("r+b") as f:
        f.write(b"garbage!" * 64)
    for extra in (".fb/fb.db-wal", ".fb/fb.db-shm"):
        (lab_dir / extra).unlink(missing_ok=True)
    app = make_app(str(lab_dir), check_engine=False, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "The store cannot be read" in screen_text(app))
        assert "not a SQLite database" in screen_text(app)
        await until(pilot, lambda: "digits-mlp  torch-cpu    unknown" in screen_text(app))  # not "never run"
        assert app.store_error is not None



@sync
async def test_a_project_that_does_not_load_is_not_offered_to_run(lab_dir: Path) -> None:
    from fbtui.tui.screens.dashboard import DashboardScreen

    (lab_dir / "projects/digits-cnn/project.yaml").write_text("description: x\nenviroment: torch-cpu\n")
    app = make_app(str(lab_dir), check_engine=False, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_project("digits-cnn")
        await until(pilot, lambda: "fix the error above, then r runs the pipeline" in screen_text(app))
        assert "projects/digits-cnn/project.yaml:2" in screen_text(app)
        await pilot.press("r")
        await until(pilot, lambda: any(n.title == "fix the project's configuration first" and "enviroment" in n.message
                                       for n in app._notifications))
        assert isinstance(app.screen, DashboardScreen)  # no launcher with nothing to launch


@sync
async def test_a_cached_stage_shows_the_log_of_the_run_that_made_it(lab_dir: Path) -> None:
    from fbtui.store import Store
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.logview import LogView
    from tests.test_tui_data import make_run

    lab = Lab.find(str(lab_dir))
    with Store(lab.store_path) as s:
        first = make_run(s, lab, log=["epoch 0: loss 2.1", "the line run one wrote"])
        again = s.create_run("digits-mlp", config="{}", params={}, stages=["prepare", "train", "evaluate"],
                             host="local")
        s.set_run_status(again, "queued")
        for name in ("prepare", "train", "evaluate"):
            s.set_stage_status(again, name, "cached", f"same inputs as run {first}",
                               cached_from=s.stage(first, name)["id"])
        s.set_run_status(again, "running")
        s.set_run_status(again, "succeeded")
    app = make_app(str(lab_dir), check_engine=False, restore=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_run(again)
        # it opens on its last stage, as for any finished run
        await until(pilot, lambda: f"evaluate log of #{first} (cached)" in screen_text(app))
        assert "evaluate: accuracy 0.9500" in screen_text(app)
        await pilot.press("up")  # train
        log = app.screen.query_one(LogView)
        await until(pilot, lambda: f"train log of #{first} (cached)" in screen_text(app))
        await until(pilot, lambda: log.index is not None and log.index.count == 2)
        assert "the line run one wrote" in screen_text(app) and isinstance(app.screen, RunScreen)



@sync
async def test_the_switcher_offers_esc_only_with_a_project_to_go_back_to_and_keeps_its_place(lab_dir: Path) -> None:
    from fbtui.tui.screens.dashboard import DashboardScreen
    from fbtui.tui.screens.projects import ProjectsScreen

    def footer() -> str:
        return screen_text(app).splitlines()[-1]

    app = make_app(str(lab_dir), check_engine=False, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "torch-cpu" in screen_text(app))
        assert "esc back" not in footer() and "q quit" in footer()  # the root: esc leads nowhere
        app.open_project("digits-mlp")  # the second row
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ProjectsScreen) and "esc back" in footer())
        await until(pilot, lambda: app.screen.query_one(FastTable).cursor_key == "digits-mlp")
