"""Git capture on real temporary repositories: clean, dirty, untracked, not a repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fbtui.gitstate import capture
from fbtui.store import Store


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(lab_dir: Path) -> Path:
    git(lab_dir, "init", "-q", "-b", "main")
    git(lab_dir, "config", "user.email", "t@example.com")
    git(lab_dir, "config", "user.name", "t")
    (lab_dir / ".gitignore").write_text("*.ckpt\n.fb/\n")
    git(lab_dir, "add", "-A")
    git(lab_dir, "commit", "-q", "-m", "lab")
    return lab_dir


def test_clean(repo):  # type: ignore[no-untyped-def]
    s = capture(repo)
    assert s.is_repo and not s.dirty and s.diff == "" and s.untracked == []
    assert s.sha == git(repo, "rev-parse", "HEAD").strip()
    assert s.branch == "main"


def test_dirty_tracked_change_has_its_diff(repo):  # type: ignore[no-untyped-def]
    clean = capture(repo)
    path = repo / "projects/digits-mlp/project.yaml"
    path.write_text(path.read_text().replace("hidden: 256", "hidden: 512"))
    s = capture(repo)
    assert s.dirty and s.sha == clean.sha
    assert "-    hidden: 256" in s.diff and "+    hidden: 512" in s.diff
    assert s.state_hash != clean.state_hash


def test_untracked_files_a_build_would_include(repo):  # type: ignore[no-untyped-def]
    (repo / "projects/digits-mlp/model.py").write_text("x = 1\n")
    (repo / "projects/digits-mlp/weights.ckpt").write_bytes(b"0" * 1000)  # ignored
    (repo / "notes.txt").write_text("outside what a build includes\n")
    s = capture(repo)
    assert [u["path"] for u in s.untracked] == ["projects/digits-mlp/model.py"]
    assert s.untracked[0]["size"] == 6 and len(s.untracked[0]["sha256"]) == 64
    assert s.dirty
    before = s.state_hash
    (repo / "projects/digits-mlp/model.py").write_text("x = 2\n")
    assert capture(repo).state_hash != before  # content counts, not only the name


def test_detached_head_and_lab_in_a_subfolder(repo, tmp_path):  # type: ignore[no-untyped-def]
    git(repo, "checkout", "-q", "--detach")
    assert capture(repo).branch is None
    outer = tmp_path / "outer"
    outer.mkdir()
    git(outer, "init", "-q", "-b", "main")
    (outer / "lab").mkdir()
    (outer / "lab/projects").mkdir()
    (outer / "lab/projects/new.py").write_text("y = 1\n")
    s = capture(outer / "lab")
    assert s.is_repo and s.sha is None and [u["path"] for u in s.untracked] == ["projects/new.py"]


def test_not_a_repository_is_recorded_as_such(lab_dir, tmp_path):  # type: ignore[no-untyped-def]
    s = capture(lab_dir)
    assert not s.is_repo and s.sha is None and not s.dirty
    with Store(tmp_path / "fb.db") as store:
        cid = store.record_commit(s)
        assert store.commit(cid)["is_repo"] == 0
        assert store.record_commit(capture(lab_dir)) == cid


def test_hash_is_the_same_for_the_same_state(repo):  # type: ignore[no-untyped-def]
    assert capture(repo).state_hash == capture(repo).state_hash
