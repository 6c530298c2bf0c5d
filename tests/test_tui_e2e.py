"""End to end in a real terminal (tmux, 80x24: the smallest size the app promises to be usable at):
start fbtui in a copy of the lab, switch to the example project, launch its pipeline on the real
engine, see its log lines arrive, open the comparison table, quit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_git_lab

pytestmark = [pytest.mark.slow, pytest.mark.engine]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session: str, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = screen(session)
        if text in shown:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"'{text}' never appeared; the terminal shows:\n{screen(session)}")


def keys(session: str, *k: str) -> None:
    for key in k:  # one at a time: esc followed at once by a letter reads as alt+letter
        tmux("send-keys", "-t", session, key)
        time.sleep(0.3)


def test_tui_in_tmux(tmp_path: Path, docker_host: str) -> None:
    assert shutil.which("tmux"), "tmux is missing: scripts/test installs it (apt-get install tmux)"
    lab = make_git_lab(tmp_path / "lab")
    proj = lab / "projects/digits-mlp/project.yaml"
    proj.write_text(proj.read_text().replace("epochs: 30", "epochs: 2"))  # a short run
    session = f"fbtui-e2e-{os.getpid()}"
    fbtui = Path(sys.executable).parent / "fbtui"
    env = f"DOCKER_HOST={docker_host} TERM=xterm-256color"
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(lab),
         f"env {env} {fbtui}; sleep 5")
    try:
        wait_for(session, "digits-mlp")
        keys(session, "C-p")
        wait_for(session, "Switch project")
        tmux("send-keys", "-t", session, "-l", "Switch project: digits-mlp")
        wait_for(session, "Switch project: digits-mlp")
        keys(session, "Enter")
        wait_for(session, "Recent runs")
        keys(session, "r")
        wait_for(session, "Run digits-mlp")
        assert "esc cancel" in wait_for(session, "^s launch")  # the launcher's keys, not cut at 80
        keys(session, "C-s")  # launch: it validates, builds what is missing, records the run
        wait_for(session, "train log", timeout=300)  # the run view opens on the running stage
        shown = wait_for(session, "train: ", timeout=300)  # common's trainer prints "train: ..." lines
        assert "run #1" in shown
        footer = wait_for(session, "? help").splitlines()[-1]  # the footer keeps them at 80 columns
        assert all(k in footer for k in ("q quit", "? help", "esc back")), footer
        wait_for(session, "digits-mlp  ✓ succeeded", timeout=300)  # the run, not a stage
        keys(session, "Escape")
        wait_for(session, "Recent runs")
        keys(session, "c")
        wait_for(session, "Compare digits-mlp")
        # it opens on what has finished runs: here "all runs", the one just made
        shown = wait_for(session, "eval/accuracy", timeout=30)  # metrics before params: on screen at 80
        assert "all runs" in shown
        keys(session, "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "Force Build" in screen(session):
            time.sleep(0.2)
        assert "Force Build" not in screen(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        subprocess.run([str(Path(sys.executable).parent / "fbtui"), "--lab", str(lab), "cancel", "1"],
                       capture_output=True, timeout=120)


def test_launcher_to_live_run_view_on_the_real_engine(tmp_path: Path, docker_host: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The pilot's version of the same path: launcher -> real containers -> the run view's log,
    stages and curves, then the runs table and comparison, all against the store the run fills."""
    import asyncio

    from textual.widgets import Input

    from fbtui.lab import Lab
    from fbtui.store import Store
    from fbtui.tui.app import FBApp
    from fbtui.tui.screens.launcher import LauncherScreen
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.chart import Chart
    from fbtui.tui.widgets.logview import LogView
    from tests.test_tui import screen_text, until

    monkeypatch.setenv("DOCKER_HOST", docker_host)
    async def go(lab: Lab) -> None:
        app = FBApp(lab, restore=False)
        async with app.run_test(size=(120, 40)) as pilot:
            app.open_project("digits-mlp", remember=False)
            await until(pilot, lambda: "never run" in screen_text(app))
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, LauncherScreen) and app.screen.query("#overrides"))
            app.screen.query_one("#overrides", Input).value = "train.epochs=2"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.query(LogView),
                        timeout=240)  # builds what is missing; then the run view is pushed and mounts
            run = app.screen
            log = run.query_one(LogView)
            await until(pilot, lambda: log.index is not None and log.index.count > 0, timeout=120)
            await until(pilot, lambda: run.detail is not None and run.detail.run["status"] == "succeeded",
                        timeout=180)
            text = screen_text(app)
            assert "✓ succeeded" in text and "evaluate" in text
            assert run.query_one("#chart-loss", Chart).display  # train/loss came from the real run
            with Store(lab.store_path) as store:
                rid = store.runs(project="digits-mlp")[0]["id"]
                assert store.final_metrics(rid)["eval/accuracy"] > 0.5
            assert run.run_id == rid
            app.open_runs("digits-mlp")
            await until(pilot, lambda: "1 of 1 runs" in screen_text(app))

    asyncio.run(go(Lab(make_git_lab(tmp_path / "lab"))))  # FBHeader: no title widget for a race to lose
