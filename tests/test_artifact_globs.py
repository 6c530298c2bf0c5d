"""Artifacts as folders and globs (#13): every file recorded once with its size and sha256, on a local
and a remote host; a glob that matches nothing, a link inside a declared folder and a folder of too
many files fail the stage with one named reason."""

from __future__ import annotations

import hashlib
import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.pipeline import artifacts as art
from fbtui.pipeline.outputs import UnsafeOutput
from fbtui.pipeline.paths import run_folder
from fbtui.store import Store
from tests.labs import end_lab, project_lab
from tests.test_pipeline import add_host, wait_for

PROJECT = textwrap.dedent("""
    environment: torch-cpu
    config:
      art: {how: none}
    pipeline:
      - name: work
        command: [python3, /fb/project/art.py]
        artifacts: [ckpt/, "runs/**/*.tfevents.*", model.pt, "ckpt/*.pt"]
        cache: false
""")
ART_PY = textwrap.dedent('''
    import os, yaml
    how = yaml.safe_load(open("/fb/config.yaml"))["art"]["how"]
    files = {"ckpt/a.pt": "A", "ckpt/sub/b.pt": "BB", "runs/r1/events.out.tfevents.1": "e1",
             "runs/r2/deep/events.out.tfevents.2": "e22", "runs/r1/notes.txt": "not declared", "model.pt": "M"}
    if how == "nomatch":
        files = {k: v for k, v in files.items() if "tfevents" not in k}
    for rel, text in files.items():
        os.makedirs(os.path.dirname(f"/fb/out/{rel}") or "/fb/out", exist_ok=True)
        open(f"/fb/out/{rel}", "w").write(text)
    if how == "link":
        os.symlink("/etc/passwd", "/fb/out/ckpt/sub/evil")
    print("done", how, flush=True)
''')
EXPECTED = {"ckpt/a.pt": "A", "ckpt/sub/b.pt": "BB", "runs/r1/events.out.tfevents.1": "e1",
            "runs/r2/deep/events.out.tfevents.2": "e22", "model.pt": "M"}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def alab(tmp_path: Path, docker_host: str) -> Path:
    root = project_lab(tmp_path / "alab", "art", {"project.yaml": PROJECT, "art.py": ART_PY})
    yield root
    end_lab(root, docker_host)


def run_art(root: Path, fbtui, *args: str) -> tuple[dict, list[dict]]:  # type: ignore[no-untyped-def,type-arg]
    proc = fbtui("run", "art", "--json", *args, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (rid,) = json.loads(proc.stdout)["runs"]
    with Store(Lab(root).store_path) as s:
        run = wait_for(s, rid, timeout=180)
        rows = s.query("SELECT path, size, sha256, host FROM artifacts WHERE run_id = ? AND stage = 'work'", (rid,))
    return run, rows


def assert_recorded(rows: list[dict], host: str) -> None:  # type: ignore[type-arg]
    assert sorted(r["path"] for r in rows) == sorted(EXPECTED)  # each once: ckpt/a.pt is declared twice
    for r in rows:
        assert (r["sha256"], r["size"], r["host"]) == (sha(EXPECTED[r["path"]]), len(EXPECTED[r["path"]]), host)


@pytest.mark.slow
@pytest.mark.engine
def test_folder_glob_and_file_are_recorded_file_by_file(alab, fbtui) -> None:  # type: ignore[no-untyped-def]
    run, rows = run_art(alab, fbtui)
    assert run["status"] == "succeeded", run["reason"]
    assert_recorded(rows, "local")
    shown = fbtui("show", str(run["id"]), cwd=alab).stdout.splitlines()
    table = shown[next(i for i, x in enumerate(shown) if x.startswith("STAGE  ARTIFACT")):]
    assert any(x.startswith("work   ckpt/ (2 files)") for x in table)
    assert any(x.strip().startswith("sub/b.pt") and sha("BB")[:16] in x for x in table)
    assert all(len(x) <= 80 for x in table[:8])


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.parametrize(("how", "reason"), [
    ("nomatch", "declared artifact not written: runs/**/*.tfevents.* (no file matches)"),
    ("link", "ckpt/sub/evil is a symbolic link (in the declared folder ckpt/)"),
])
def test_no_match_and_a_link_in_a_folder_fail_the_stage(alab, fbtui, how, reason) -> None:  # type: ignore[no-untyped-def]
    run, rows = run_art(alab, fbtui, "-o", f"art.how={how}")
    assert run["status"] == "failed" and reason in run["reason"], run["reason"]
    with Store(Lab(alab).store_path) as s:
        assert s.stage(run["id"], "work")["reason"].startswith(reason.split(" (in")[0])
    assert not rows  # nothing recorded of a stage whose artifacts failed


@pytest.mark.slow
@pytest.mark.engine
def test_a_remote_stage_lists_and_hashes_through_tar_streams(alab, fbtui, remote_daemon) -> None:  # type: ignore[no-untyped-def]
    add_host(alab, "remote", remote_daemon.url, extra="    insecure: true\n")
    run, rows = run_art(alab, fbtui, "--host", "remote")
    assert run["status"] == "succeeded", run["reason"]
    assert_recorded(rows, "remote")
    back = run_folder(Lab(alab), run["id"]) / "work" / "out"
    assert (back / "ckpt/sub/b.pt").read_text() == "BB"  # small files come back
    assert not (back / "runs/r1/notes.txt").exists()  # what no entry declares stays there
    run, rows = run_art(alab, fbtui, "--host", "remote", "-o", "art.how=link")
    assert run["status"] == "failed" and "ckpt/sub/evil is a symbolic link" in run["reason"], run["reason"]


# ------------------------------------------------------------------ on disk, no engine


@pytest.fixture
def out(tmp_path: Path) -> Path:
    for rel, text in {**EXPECTED, "runs/r1/notes.txt": "x", "eval.json": "{}"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_entries_match_folders_globs_and_plain_paths(out: Path) -> None:
    got = art.collect_local(out, ["ckpt", "runs/*/*.tfevents.*", "**/*.json", "model.pt"])
    assert list(got.files) == ["ckpt/a.pt", "ckpt/sub/b.pt", "runs/r1/events.out.tfevents.1", "eval.json",
                               "model.pt"] and not got.missing
    assert got.files["ckpt/sub/b.pt"] == (sha("BB"), 2)
    got = art.collect_local(out, ["ckpt/*.zz", "empty/", "empty", "nope/", "model.pt/"])
    assert got.missing == ["ckpt/*.zz (no file matches)", "empty/ (no file in it)", "empty/ (no file in it)",
                           "nope/", "model.pt/ (a file, not a folder)"] and not got.files
    assert art.matches("runs/**/*.tfevents.*", "runs/r2/deep/events.out.tfevents.2")
    assert art.matches("runs/**/*.tfevents.*", "runs/events.out.tfevents.0")  # ** is no folder too
    assert not art.matches("*.pt", "ckpt/a.pt")  # * stays within a folder


def test_links_named_by_a_glob_are_refused_and_walked_past_by_double_star(out: Path) -> None:
    os.symlink("/etc", out / "ckpt/etc")
    with pytest.raises(UnsafeOutput, match=r"ckpt/etc is a symbolic link \(in the declared folder ckpt/\)"):
        art.collect_local(out, ["ckpt/"])
    with pytest.raises(UnsafeOutput, match=r"ckpt/etc is a symbolic link \(matched by ckpt/\*\)"):
        art.collect_local(out, ["ckpt/*"])
    with pytest.raises(UnsafeOutput, match=r"ckpt/etc is a symbolic link \(matched by \*/etc/passwd\)"):
        art.collect_local(out, ["*/etc/passwd"])  # never followed into
    assert list(art.collect_local(out, ["**/*.pt"]).files) == ["ckpt/a.pt", "ckpt/sub/b.pt", "model.pt"]
    os.mkfifo(out / "runs/r1/events.out.tfevents.9")
    with pytest.raises(UnsafeOutput, match=r"runs/r1/events.out.tfevents.9 is a FIFO"):
        art.collect_local(out, ["runs/**/*.tfevents.*"])


def test_a_folder_of_too_many_files_fails_rather_than_hashing_them(out: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(art, "MAX_FILES", 3)
    for i in range(4):
        (out / f"ckpt/many{i}.pt").write_text("x")
    with pytest.raises(art.TooManyFiles, match="ckpt/ holds more than 3 files"):
        art.collect_local(out, ["ckpt/"])
    assert len(art.collect_local(out, ["ckpt/many[0-2].pt"]).files) == 3


@pytest.mark.parametrize("entry", ["../x/*", "/abs/*", "ckpt/../../x/", "/fb/out/ckpt/"])
def test_globs_and_folders_outside_out_are_refused_with_file_and_line(write, fbtui, entry) -> None:  # type: ignore[no-untyped-def]
    write("projects/p/project.yaml", f"pipeline:\n  - name: train\n    artifacts: [ok/, '{entry}']\n")
    proc = fbtui("config", "p")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "projects/p/project.yaml:3:" in proc.stderr and "relative to /fb/out" in proc.stderr, proc.stderr


def test_an_evaluation_may_read_a_folder_or_glob_recorded_file_by_file(tmp_path: Path) -> None:
    from fbtui.config.models import StageSpec
    from fbtui.errors import FBError
    from fbtui.pipeline.reevaluate import check_reads

    with Store(tmp_path / "fb.db") as s:
        rid = s.create_run("p", config="{}", params={}, stages=["train", "evaluate"])
        s.add_artifact(rid, "train", "ckpt/sub/b.pt", 2, sha("BB"))
        for reads in (["train/ckpt/"], ["train/ckpt"], ["train/ckpt/**/*.pt"], ["train/ckpt/sub/b.pt"]):
            check_reads(s, s.run(rid), StageSpec(name="evaluate", evaluates={"reads": reads}))
        for reads in (["train/ckpt/*.pt"], ["train/runs/"]):
            with pytest.raises(FBError, match=re.escape(f"run {rid} has no artifact {reads[0]} (its train")):
                check_reads(s, s.run(rid), StageSpec(name="evaluate", evaluates={"reads": reads}))
