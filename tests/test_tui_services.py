"""The app's services (#14 items 7, 8, 9, 11) at 80x24: what running stages use, the end of a watched
run announced once, the comparison's export and the clipboard, and log search across runs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.test_tui import make_app, notes, screen_text, sync, until
from tests.test_tui_data import make_run, populate

SMALL = (80, 24)


@pytest.fixture
def lab(lab_dir: Path) -> Lab:
    return populate(lab_dir)


# ------------------------------------------------------------------ 7. resource use


BURN = "import time\nx = bytearray(48 * 2**20)\nt = time.time()\nwhile time.time() - t < 60: pass"


@pytest.mark.engine
@sync
async def test_run_view_and_hosts_show_what_a_running_stage_uses(lab: Lab, docker_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A stage backed by a real container: its CPU %, memory against its limit and processes, under
    the run's stages and on the hosts screen, read by the screen's own poller."""
    from fbtui.tui.screens import hosts, run
    from fbtui.tui.screens.hosts import HostsScreen
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.table import FastTable

    monkeypatch.setattr(run, "USAGE_S", 0.3)
    monkeypatch.setattr(hosts, "USAGE_S", 0.3)
    c = docker_client.containers.run("fb/torch-stand-in:2.13.0", ["python3", "-c", BURN], detach=True,
                                     labels={"fb.test": f"tui-usage-{uuid.uuid4().hex[:8]}"},
                                     mem_limit=256 * 2**20, nano_cpus=5 * 10**8)
    try:
        with Store(lab.store_path) as s:
            rid = make_run(s, lab, status="running", offset=900)
            s.set_stage_status(rid, "train", "running", container_id=c.id, host="local")
        app = make_app(lab, restore=False)
        async with app.run_test(size=SMALL) as pilot:
            app.open_run(rid)
            await until(pilot, lambda: isinstance(app.screen, RunScreen) and "train: cpu" in screen_text(app), 20)
            # the second poll has the CPU %: half a CPU at most, as the container's limit says
            await until(pilot, lambda: "train: cpu …" not in screen_text(app), 20)
            text = screen_text(app)
            assert "/ 256.0 MiB" in text and "pids" in text
            u = app.screen.usage_poller
            assert u is not None and c.id in u.prev
            app.open_hosts()
            await until(pilot, lambda: isinstance(app.screen, HostsScreen) and app.screen.query("#host-usage")
                        and app.screen.query_one("#host-usage", FastTable).rows, 20)
            table = app.screen.query_one("#host-usage", FastTable)
            row = table.rows[0]
            assert row.key == ("local", rid, "train") and row.cells[5] == "256.0 MiB"
            await until(pilot, lambda: table.rows and table.rows[0].cells[3].endswith("%"), 20)
            assert app.screen.usage_poller is not u  # each screen its own poller
    finally:
        c.remove(force=True)


# ------------------------------------------------------------------ 8. notifications


@sync
async def test_a_run_that_ends_while_its_view_is_open_is_announced_once(lab: Lab, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One toast, the bell and one desktop notification (OSC 9 for this terminal) through the
    app's driver; later checks never repeat it."""
    from fbtui.tui import app as app_module
    from fbtui.tui.screens.run import RunScreen

    monkeypatch.setattr(app_module, "WATCH_S", 0.1)
    monkeypatch.setenv("TERM_PROGRAM", "WezTerm")
    monkeypatch.delenv("TMUX", raising=False)
    app = make_app(lab, restore=False)
    sent: list[str] = []
    bells: list[int] = []
    async with app.run_test(size=SMALL) as pilot:
        monkeypatch.setattr(app, "write_escape", lambda seq: sent.append(seq) or True)
        monkeypatch.setattr(app, "bell", lambda: bells.append(1))
        app.open_run(8)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.watched.get(8) == "running")
        with Store(lab.store_path) as s:
            s.set_stage_status(8, "train", "failed", "exit code 137", finished_at=1.0)
            s.set_run_status(8, "failed", "stage train failed: exit code 137 (out of memory)", finished_at=1.0)
        await until(pilot, lambda: any("run #8" in n for n in notes(app)))
        for _ in range(10):  # many checks later: still one
            await pilot.pause(0.1)
        ended = [n for n in notes(app) if "run #8" in n]
        assert ended == ["run #8 digits-mlp failed: stage train failed: exit code 137 (out of memory)"]
        assert bells == [1]
        assert len(sent) == 1 and sent[0].startswith("\x1b]9;fbtui: run #8 failed: digits-mlp")
        assert 8 in app.announced and 8 not in app.watched
        # a run that had ended before it was watched is no news
        app.pop_screen()
        app.open_run(1)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run_id == 1)
        for _ in range(5):
            await pilot.pause(0.1)
        assert not any("run #1 " in n for n in notes(app)) and 1 not in app.watched


# ------------------------------------------------------------------ 9. export and clipboard


async def open_compare(app, pilot) -> None:  # type: ignore[no-untyped-def]
    from fbtui.tui.screens.compare import CompareScreen

    app.open_compare("digits-mlp", "depth")
    await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.table is not None
                and app.screen.grid.rows)


@sync
async def test_export_writes_what_fbtui_compare_exports(lab: Lab, fbtui) -> None:  # type: ignore[no-untyped-def]
    from textual.widgets import Input

    from fbtui.tui.screens.compare_export import ExportScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        await open_compare(app, pilot)
        await pilot.press("E")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        box = app.screen.query_one(Input)
        assert box.value == ".fb/exports/digits-mlp-depth.md"
        assert "Export the comparison to" in screen_text(app)
        await pilot.press("enter")
        md = lab.root / ".fb/exports/digits-mlp-depth.md"
        await until(pilot, md.exists)
        await until(pilot, lambda: any("wrote .fb/exports/digits-mlp-depth.md" in n for n in notes(app)))
        await pilot.press("E")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        app.screen.query_one(Input).value = "tables/depth.txt"  # no format in the name: said in the modal
        await pilot.press("enter")
        await until(pilot, lambda: "end the name in .csv, .md, .tex or .json" in screen_text(app))
        app.screen.query_one(Input).value = str(lab.root / "tables" / "depth.csv")
        await pilot.press("enter")
        await until(pilot, (lab.root / "tables/depth.csv").exists)
    md_cli = fbtui("compare", "digits-mlp", "--ablation", "depth", "--format", "markdown")
    csv_cli = fbtui("compare", "digits-mlp", "--ablation", "depth", "--format", "csv")
    assert md_cli.returncode == 0 and csv_cli.returncode == 0
    assert md.read_text() == md_cli.stdout
    assert (lab.root / "tables/depth.csv").read_text() == csv_cli.stdout


@sync
async def test_copy_keys_put_the_cell_row_table_and_run_id_on_the_clipboard(lab: Lab) -> None:
    from fbtui.records.export import export
    from fbtui.terminal import MAX_CLIPBOARD
    from fbtui.tui.screens.compare_export import row_text
    from fbtui.tui.screens.run import RunScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        await open_compare(app, pilot)
        screen = app.screen
        t, row = screen.table, screen.grid.cursor_key
        first_metric = t.metrics[0]
        await pilot.press("y")  # no column chosen: the row's first metric
        await until(pilot, lambda: app.clipboard == next(r for r in t.rows if r.name == row).metrics[first_metric]
                    .text())
        await pilot.press("Y")
        await until(pilot, lambda: app.clipboard == row_text(t, row))
        assert app.clipboard.splitlines()[0].split("\t")[:2] == ["row", "seeds"]
        await pilot.press("C")
        await until(pilot, lambda: app.clipboard == export(t, "markdown"))
        assert any(n.startswith("copied the table as Markdown") for n in notes(app))
        assert not app.copy_text("x" * (MAX_CLIPBOARD + 1), "the log")  # too much for a terminal: refused, said
        assert app.clipboard == export(t, "markdown")
        await until(pilot, lambda: any(n.startswith("the log not copied: 100,001 bytes") for n in notes(app)))
        app.open_run(3)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.detail is not None)
        await pilot.press("y")
        await until(pilot, lambda: app.clipboard == "3")


# ------------------------------------------------------------------ 11. log search


@sync
async def test_log_search_lists_matches_and_opens_the_run_at_the_line(lab: Lab) -> None:
    from fbtui.tui.screens.logsearch import LogSearchScreen
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.logview import LogView
    from fbtui.tui.widgets.table import FastTable

    with Store(lab.store_path) as s:
        rid = make_run(s, lab, offset=950, log=[f"step {i}" + (": Needle found" if i == 320 else "")
                                                for i in range(600)])
    app = make_app(lab, restore=False)
    async with app.run_test(size=SMALL) as pilot:
        app.open_project("digits-mlp", remember=False)
        await until(pilot, lambda: bool(app.screen.query("#dash-title")))
        await pilot.press("question_mark")  # the help names the key
        await until(pilot, lambda: bool(app.screen.query("#help")))
        app.screen.query_one("#help").scroll_end(animate=False)
        await until(pilot, lambda: "grep: a pattern in the logs" in screen_text(app))
        await pilot.press("escape")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: isinstance(app.screen, LogSearchScreen))
        await pilot.press(*"(bad")
        await pilot.press("enter")
        await until(pilot, lambda: "not a valid regular expression" in screen_text(app))
        box = app.screen.query_one("#ls-input")
        box.value = "needle|valueerror"  # lower case: ignoring case
        await pilot.press("enter")
        table = app.screen.query_one(FastTable)
        await until(pilot, lambda: "2 matches in 2 runs" in screen_text(app))
        text = screen_text(app)
        assert f"#{rid}  train:321" in text and "#1  train:4" in text and "ValueError: bad things" in text
        assert [r.cells[:2] for r in table.rows] == [[f"#{rid}", "train:321"], ["#1", "train:4"]]  # newest first
        assert table.has_focus
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.query_one(LogView).index
                    is not None and app.screen.query_one(LogView).cursor == 320)
        log = app.screen.query_one(LogView)
        assert app.screen.stage == "train" and not log.follow
        await until(pilot, lambda: "step 320: Needle found" in screen_text(app))
        await pilot.pause(0.5)  # the stage's log read on: the cursor stays at the match
        assert log.cursor == 320 and "step 320: Needle found" in screen_text(app)

