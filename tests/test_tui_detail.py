"""The app's run detail, diff, rerun/clone and artifact browser (#14 items 4, 10, 12), driven
through Textual's pilot against a real store in a temporary git lab: runs recorded the way a launch
records them (the launcher's own validation, `queue_run`), real commits, real files."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.labs import make_git_lab
from tests.test_tui import make_app, screen_text, sync, until

SECRET = "top-secret-host-file"


def record_run(lab: Lab, store: Store, *, variant: str | None = None, ablation: str | None = None,
               seed: int | None = None, overrides: list[str]) -> int:
    """A run queued as `launch` queues it (resolved by its validation), without building an image."""
    from fbtui.gitstate import capture
    from fbtui.pipeline.launch import queue_run, select_variants, validate

    variants = select_variants(lab, "digits-mlp", variant, ablation, seed)
    ((v, r),) = validate(lab, "digits-mlp", variants=variants, overrides=overrides, hosts=["local"], seed=seed)
    commit = store.record_commit(capture(lab.root), root=lab.root)
    return queue_run(lab, store, lab.project("digits-mlp"), config=r.config, origins=r.origins, variant=v,
                     commit_id=commit, image="fb/proj-digits-mlp:test", layers=[], hosts=["local"],
                     overrides=overrides)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.email=t@e", "-c", "user.name=t", *args], check=True,
                   capture_output=True)


def artifact(store: Store, lab: Lab, run_id: int, stage: str, rel: str, data: bytes | None,
             host: str | None = None) -> None:
    """A file a stage made, recorded as the supervisor records it (no file: it stayed on `host`)."""
    from fbtui.pipeline.supervisor import run_folder

    if data is not None:
        path = run_folder(lab, run_id) / stage / "out" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    body = data or b"x" * 10
    store.add_artifact(run_id, stage, rel, len(body), hashlib.sha256(body).hexdigest(), host=host)


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    """Run 1 (the project's config, -o train.epochs=2) on the first commit; run 2 (depth/deep seed 1,
    -o optim.lr=0.01) on a second commit that changed common/defaults.yaml. Run 1 made files: JSON,
    a binary, a link to a host file, and one that stayed on a remote host."""
    from fbtui.pipeline.supervisor import run_folder

    root = make_git_lab(tmp_path / "lab")
    lab = Lab(root)
    with Store(lab.store_path) as store:
        a = record_run(lab, store, overrides=["train.epochs=2"])
        defaults = root / "common/defaults.yaml"
        defaults.write_text(defaults.read_text() + "# a comment added by the second commit\n")
        git(root, "commit", "-q", "-am", "second")
        b = record_run(lab, store, variant="deep", ablation="depth", seed=1, overrides=["optim.lr=0.01"])
        assert (a, b) == (1, 2)
        artifact(store, lab, a, "train", "metrics.json", json.dumps({"accuracy": 0.91, "classes": [1, 2]}).encode())
        artifact(store, lab, a, "train", "model.pt", b"\x80\x02PK\x00\x00weights\x00" * 50)
        secret = tmp_path / "host-file.json"
        secret.write_text(json.dumps({"secret": SECRET}))
        (run_folder(lab, a) / "train/out/link.json").symlink_to(secret)
        store.add_artifact(a, "train", "link.json", 30, "0" * 64)
        artifact(store, lab, a, "evaluate", "predictions.bin", None, host="gpu1")
    return lab


async def open_run_screen(app, pilot, run_id: int):  # type: ignore[no-untyped-def]
    from fbtui.tui.screens.run import RunScreen

    app.open_run(run_id)
    await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.detail is not None)


def pane_text(app, pane: str) -> str:  # type: ignore[no-untyped-def]
    from textual.css.query import NoMatches
    from textual.widgets import TextArea

    try:
        return app.screen.query_one(f"#detail-{pane}", TextArea).text
    except NoMatches:  # not composed yet
        return ""


# ------------------------------------------------------------------ run detail


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@sync
async def test_detail_shows_the_config_with_origins_and_the_record(lab: Lab, size: tuple[int, int]) -> None:
    from textual.widgets import TextArea

    from fbtui.tui.screens.run_detail import RunDetailScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=size) as pilot:
        await open_run_screen(app, pilot, 2)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and "# --seed 1" in screen_text(app))
        text = screen_text(app)
        assert "overrides: -o optim.lr=0.01" in text
        assert "run #2  digits-mlp  queued   depth: deep seed 1" in text
        config = pane_text(app, "config")
        assert "lr: 0.01" in config and "# -o optim.lr=0.01" in config
        assert "hidden: 128" in config and "(ablation depth" in config  # the variant's value, where it is set
        # every line of the config is there to scroll to: the pane holds them all
        assert config.count("\n") > size[1]
        await pilot.press("2")
        await until(pilot, lambda: "run #2: digits-mlp, ablation depth, variant deep, seed 1" in screen_text(app))
        record = pane_text(app, "record")
        sha = subprocess.run(["git", "-C", str(lab.root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert f"code     {sha} (main) clean" in record
        assert "images" in record and "fb/proj-digits-mlp:test" in record and "STAGE" in record
        pane = app.screen.query_one("#detail-record", TextArea)
        assert pane.has_focus
        # a line wider than the screen is not lost: the pane scrolls sideways to its end
        widest = max(record.splitlines(), key=len)
        if len(widest) > size[0] - 4:
            await pilot.press(*["right"] * (len(widest) - size[0] + 10))
            assert pane.scroll_offset.x > 0
        await pilot.press("w")  # wrapped instead: nothing left to scroll
        assert pane.soft_wrap and app.screen.query_one("#detail-config", TextArea).soft_wrap
        await pilot.press("escape")
        from fbtui.tui.screens.run import RunScreen

        await until(pilot, lambda: isinstance(app.screen, RunScreen))


@sync
async def test_the_record_shows_the_artifacts_and_a_dirty_diff(lab: Lab) -> None:
    from fbtui.tui.screens.run_detail import RunDetailScreen

    (lab.root / "common/defaults.yaml").write_text("# uncommitted\n" + (lab.root / "common/defaults.yaml").read_text())
    with Store(lab.store_path) as store:
        dirty = record_run(lab, store, overrides=[])
    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(RunDetailScreen(1))
        await until(pilot, lambda: "metrics.json" in pane_text(app, "record"))
        assert "model.pt" in pane_text(app, "record") and "predictions.bin" in pane_text(app, "record")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, RunDetailScreen))
        app.push_screen(RunDetailScreen(dirty))
        await until(pilot, lambda: "uncommitted diff: " in pane_text(app, "record"))
        assert "+# uncommitted" in pane_text(app, "record")  # the diff itself, at the end


# ------------------------------------------------------------------ diff of two runs


@sync
async def test_d_in_the_runs_table_diffs_two_runs_config_with_origins_and_code(lab: Lab) -> None:
    from fbtui.tui.screens.run_detail import RunDetailScreen
    from fbtui.tui.screens.runs import RunsScreen
    from fbtui.tui.widgets.table import FastTable

    app = make_app(lab, restore=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_runs("digits-mlp")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and "#2" in screen_text(app))
        table = app.screen.query_one(FastTable)
        table.move_to_key(1)
        await pilot.press("d")
        await until(pilot, lambda: any("run #1 picked" in str(n.message) for n in app._notifications))
        table.move_to_key(2)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and "CONFIG KEY" in screen_text(app))
        diff = pane_text(app, "diff")
        assert diff.startswith("run #1 against run #2: 5 config keys differ; different code")
        row = next(line for line in diff.splitlines() if line.startswith("model.hidden"))
        assert "256" in row and "128" in row
        # each side's origin: the project's config for #1, the ablation's variant for #2
        assert "projects/digits-mlp/project.yaml:" in row and "(ablation depth" in row
        lr = next(line for line in diff.splitlines() if line.startswith("optim.lr"))
        assert "-o optim.lr=0.01" in lr
        assert "code: " in diff and "common/defaults.yaml" in diff  # the commits' change, its stat and patch
        assert "+# a comment added by the second commit" in diff


@sync
async def test_d_in_the_run_view_asks_for_the_other_run(lab: Lab) -> None:
    from textual.widgets import Input

    from fbtui.tui.screens.run_detail import RunDetailScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_run_screen(app, pilot, 2)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        box = app.screen.query_one("#detail-diff-input", Input)
        await until(pilot, lambda: box.has_focus)
        await pilot.press("1", "2")  # digits are the number here, not tabs
        assert box.value == "12"
        await pilot.press("enter")
        await until(pilot, lambda: "no run 12 in this lab" in pane_text(app, "diff"))
        await pilot.press("d", "backspace", "backspace", "1", "enter")
        await until(pilot, lambda: pane_text(app, "diff").startswith("run #2 against run #1: 5 config keys"))
        assert "-o optim.lr=0.01 / projects/digits-mlp/project.yaml:" in pane_text(app, "diff")


# ------------------------------------------------------------------ rerun / clone


async def open_clone(app, pilot, run_id: int):  # type: ignore[no-untyped-def]
    from fbtui.tui.screens.launcher import LauncherScreen

    await open_run_screen(app, pilot, run_id)
    await pilot.press("R")
    await until(pilot, lambda: isinstance(app.screen, LauncherScreen))
    await pilot.pause(0.2)


@sync
async def test_R_opens_the_launcher_prefilled_with_the_runs_variant_seed_and_overrides(lab: Lab) -> None:
    from textual.widgets import Input, Select, Static

    app = make_app(lab, restore=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_clone(app, pilot, 2)
        s = app.screen
        assert "Run digits-mlp: a clone of run #2" in screen_text(app)
        assert s.query_one("#what", Select).value == "V:depth:deep"
        assert s.query_one("#seed", Input).value == "1"
        assert s.query_one("#overrides", Input).value == "optim.lr=0.01" and s.query_one("#overrides").has_focus
        req = s.request()
        assert (req.ablation, req.variant, req.seed, req.overrides) == ("depth", "deep", 1, ["optim.lr=0.01"])
        # editable, and checked by the launcher's own validation
        s.query_one("#overrides", Input).value = "optim.lr=0.01 model.hiden=3"
        await pilot.press("enter")
        await until(pilot, lambda: "did you mean" in str(s.query_one("#launch-error", Static).render()))
        s.query_one("#overrides", Input).value = "optim.lr=0.01 train.epochs=3"
        await pilot.press("enter")
        await until(pilot, lambda: "ok: 1 run on local" in str(s.query_one("#launch-ok", Static).render()))


def test_overrides_with_spaces_survive_the_field() -> None:
    from fbtui.tui.screens.launcher import join_overrides, split_overrides

    recorded = ["a=1", "name=two words", "layers=[1, 2]", "x={a: 1}"]
    assert split_overrides(join_overrides(recorded)) == ["a=1", 'name="two words"', "layers=[1, 2]", "x={a: 1}"]
    assert split_overrides("a=1  b='c d'") == ["a=1", "b='c d'"]
    assert split_overrides('a="unclosed b=2') == ['a="unclosed', "b=2"]  # as typed: validation says what is wrong


@pytest.mark.slow
@pytest.mark.engine
@sync
async def test_launching_the_clone_records_a_new_run_with_the_same_overrides(
        lab: Lab, docker_host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real launch (validation, image, record); the supervisor's start is recorded instead."""
    started: list[Path] = []
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.setattr("fbtui.pipeline.supervisor.ensure_supervisor", lambda lab: started.append(lab.root))
    from fbtui.tui.screens.run import RunScreen

    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_clone(app, pilot, 2)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: (isinstance(app.screen, RunScreen) and app.screen.run_id == 3)
                    or any("failed" in str(n.message) for n in app._notifications), timeout=280)  # a build, if any
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == 3, [n.message for n in app._notifications]
    assert started == [lab.root]
    with Store(lab.store_path) as store:
        src, new = store.run(2), store.run(3)
    for key in ("project", "ablation", "variant", "seed", "overrides", "config"):
        assert new[key] == src[key], key
    assert json.loads(new["overrides"]) == ["optim.lr=0.01"] and new["status"] == "queued"


# ------------------------------------------------------------------ artifacts


@sync
async def test_artifacts_list_files_view_json_and_refuse_a_link(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.widgets import TextArea

    from fbtui.tui.screens.artifacts import ArtifactsScreen
    from fbtui.tui.widgets.table import FastTable

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    app = make_app(lab, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_run_screen(app, pilot, 1)
        await pilot.press("A")
        await until(pilot, lambda: isinstance(app.screen, ArtifactsScreen) and "metrics.json" in screen_text(app))
        text = screen_text(app)
        for name in ("metrics.json", "model.pt", "link.json", "predictions.bin", "on gpu1"):
            assert name in text, name
        size = len(json.dumps({"accuracy": 0.91, "classes": [1, 2]}))
        assert f"{size} B" in text and "4 files (2 not here)" in text
        screen = app.screen
        table = screen.query_one(FastTable)
        view = screen.query_one("#artifacts-view", TextArea)

        async def enter_on(row: int) -> None:
            table.move_to_key(row)
            await pilot.press("enter")
            await pilot.pause(0.3)

        await enter_on(0)  # metrics.json: pretty-printed in place
        await until(pilot, lambda: view.display and '  "accuracy": 0.91,' in screen_text(app))
        assert "JSON pretty-printed" in screen_text(app) and view.text.count("\n") == 6
        await pilot.press("escape")
        await until(pilot, lambda: table.display and not view.display)
        assert isinstance(app.screen, ArtifactsScreen)

        await enter_on(2)  # link.json: a symbolic link is never followed
        await until(pilot, lambda: "link.json is refused" in screen_text(app))
        assert not view.display and SECRET not in screen_text(app) and SECRET not in view.text

        await enter_on(1)  # model.pt: binary, not shown
        await until(pilot, lambda: "model.pt is not text" in screen_text(app))
        assert not view.display
        await pilot.press("y")
        from fbtui.pipeline.supervisor import run_folder

        assert app.clipboard == str(run_folder(lab, 1) / "train/out/model.pt")
        await pilot.press("o")
        await until(pilot, lambda: any("no display here" in str(n.message) for n in app._notifications))

        await enter_on(3)  # predictions.bin stayed on its remote host: said so
        await until(pilot, lambda: "lives on host gpu1" in screen_text(app))
