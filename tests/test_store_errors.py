"""Broken, read-only, locked and foreign stores through the real CLI: each ends in one line
`fbtui: error: ...` that says what to do, never a traceback; a store this user may only read still
lists, shows and compares; commands that read and input that is refused create nothing.

Tests run as root, and root ignores file modes: the read-only cases run the CLI as an unprivileged
user (setpriv) on a lab that user can read but not write, as another user of a shared lab would."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fbtui.store import Store
from fbtui.store.migrations import LATEST
from tests.labs import LAB_CODE, copy_lab, end_lab

NOBODY = 65534
Run = Callable[..., subprocess.CompletedProcess[str]]


def one_line_error(p: subprocess.CompletedProcess[str], *words: str) -> str:
    """The error line of a failed command: exactly one `fbtui: error:` line (its hint may follow
    on a line of its own), no traceback, and these words in it."""
    err = p.stderr
    assert "Traceback" not in err and "Traceback" not in p.stdout, err
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("fbtui: waiting")]
    assert lines and lines[0].startswith("fbtui: error: "), err
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  hint: ")), err
    for w in words:
        assert w in err, err
    return lines[0]


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the example lab's configuration in a folder any user may read (pytest's own
    temporary folders are root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="fb-store-errors-"))
    root.chmod(0o755)
    copy_lab(root, LAB_CODE)
    yield root
    end_lab(root, os.environ.get("DOCKER_HOST"))  # a supervisor `cancel` started, and its containers
    for p in [root, *root.rglob("*")]:  # give write back before removing (the tests take it away)
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fb(lab: Path, tmp_path: Path) -> Iterator[Run]:
    """Run the installed CLI in a subprocess in the lab: fb('ls', user=NOBODY, env={...})."""
    state = Path(tempfile.mkdtemp(prefix="fb-state-"))
    state.chmod(0o777)

    def _run(*args: str, user: int | None = None, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        e = {k: v for k, v in os.environ.items() if k != "FB_LAB"}
        e.update({"FB_STATE_DIR": str(state), "HOME": str(state), **(env or {})})
        cmd = [sys.executable, "-m", "fbtui", *args]
        if user is not None and os.geteuid() == 0:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        return subprocess.run(cmd, cwd=lab, env=e, capture_output=True, text=True, timeout=timeout)

    yield _run
    shutil.rmtree(state, ignore_errors=True)


def seed_store(lab: Path, *, running: bool = True) -> Path:
    """A store with one succeeded run of digits-mlp and one running one (or failed), as fbtui
    records them."""
    path = lab / ".fb" / "fb.db"
    with Store(path) as s:
        s.ensure_project("digits-mlp", "torch-cpu", "projects/digits-mlp")
        for status in ("succeeded", "running"):
            rid = s.create_run("digits-mlp", config="seed: 0\n", params={"seed": 0, "model.hidden": 64},
                               stages=["prepare", "train", "evaluate"], seed=0)
            s.set_run_status(rid, "queued")
            s.set_run_status(rid, "running")
            if status == "succeeded":
                for st in ("prepare", "train", "evaluate"):
                    s.set_stage_status(rid, st, "running")
                    s.set_stage_status(rid, st, "succeeded")
                s.add_metrics(rid, [("accuracy", 1, 0.9, 0.0)], stage="train")
                s.set_run_status(rid, "succeeded")
            elif not running:
                s.set_run_status(rid, "failed")
    return path


def make_read_only(lab: Path) -> None:
    """The store file 0444 and its .fb/ folder 0555: the hostile tester's read-only store."""
    (lab / ".fb" / "fb.db").chmod(0o444)
    (lab / ".fb").chmod(0o555)


needs_setpriv = pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                                   reason="running as root and no setpriv to drop to an unprivileged user")


# ------------------------------------------------------------------ a store this user may only read


@needs_setpriv
def test_a_read_only_store_still_reads(lab: Path, fb: Run) -> None:
    seed_store(lab)
    make_read_only(lab)
    before = files_under(lab)
    ls = fb("ls", user=NOBODY)
    assert ls.returncode == 0 and "#2 running" in ls.stdout, ls.stderr
    ps = fb("ps", "--all", user=NOBODY)
    assert ps.returncode == 0 and "#1" in ps.stdout and "#2" in ps.stdout, ps.stderr
    show = fb("show", "1", user=NOBODY)
    assert show.returncode == 0 and "digits-mlp" in show.stdout, show.stderr
    logs = fb("logs", "1", user=NOBODY)
    assert logs.returncode == 0, logs.stderr
    cmp = fb("compare", "digits-mlp", user=NOBODY)
    assert cmp.returncode == 0 and "accuracy" in cmp.stdout, cmp.stdout + cmp.stderr
    assert files_under(lab) == before  # no -wal, no -shm, no supervisor started for the running run


@needs_setpriv
def test_a_read_only_store_file_in_a_folder_anyone_may_write_gets_nothing_beside_it(lab: Path, fb: Run) -> None:
    """A -shm or -wal made by a reader would be the reader's (0644) and stop the owner's writes."""
    path = seed_store(lab)
    path.chmod(0o444)
    (lab / ".fb").chmod(0o777)
    before = files_under(lab)
    for args in (["ls"], ["ps", "--all"], ["show", "1"], ["compare", "digits-mlp"]):
        p = fb(*args, user=NOBODY)
        assert p.returncode == 0, (args, p.stderr)
    assert files_under(lab) == before


def test_reading_commands_leave_a_writable_store_as_they_found_it(lab: Path, fb: Run) -> None:
    seed_store(lab, running=False)
    before = files_under(lab)
    assert before >= {".fb/fb.db"} and not any(x.endswith(("-wal", "-shm")) for x in before)
    for args in (["ls"], ["ps", "--all"], ["show", "1"], ["logs", "1"], ["compare", "digits-mlp"], ["diff", "1", "2"]):
        p = fb(*args)
        assert p.returncode == 0, (args, p.stderr)
    assert files_under(lab) == before
    with sqlite3.connect(lab / ".fb" / "fb.db") as c:
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2


@needs_setpriv
def test_a_writer_on_a_read_only_store_is_one_line(lab: Path, fb: Run) -> None:
    seed_store(lab)
    make_read_only(lab)
    p = fb("cancel", "2", user=NOBODY)
    assert p.returncode == 1
    one_line_error(p, "is read-only here", "writable")


@needs_setpriv
def test_a_writer_that_would_create_the_store_in_a_read_only_folder_is_one_line(lab: Path, fb: Run) -> None:
    (lab / ".fb").mkdir(mode=0o555)
    p = fb("build", "digits-mlp", user=NOBODY)
    assert p.returncode == 1
    one_line_error(p, "cannot create the store", "its folder is read-only here")
    assert not any((lab / ".fb").iterdir())


def test_a_store_under_an_immutable_file_is_read_only_even_for_root(lab: Path, fb: Run) -> None:
    """What the kernel refuses root too (chattr +i, a read-only mount) is read-only for fbtui."""
    path = seed_store(lab)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        assert fb("ls").returncode == 0
        one_line_error(fb("cancel", "2"), "is read-only here")
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


# ------------------------------------------------------------------ stores that cannot be used


def test_a_file_that_is_not_sqlite(lab: Path, fb: Run) -> None:
    path = lab / ".fb" / "fb.db"
    path.parent.mkdir()
    path.write_text("these are my notes, not a database\n" * 100)
    for args in (["ls"], ["ps"], ["show", "1"], ["cancel", "1"], ["compare", "digits-mlp"]):
        p = fb(*args)
        assert p.returncode == 1, args
        one_line_error(p, "is not a SQLite database", "mv ")
    assert files_under(lab / ".fb") == {"fb.db"}


@pytest.mark.parametrize(("store", "words"), [
    ("''", ("is a folder, not a file", "store:")),
    ("lab.yaml/fb.db", ("lab.yaml is a file, not a folder", "store:")),
    ("projects", ("is a folder, not a file",)),
])
def test_a_store_path_that_cannot_be_a_file(lab: Path, fb: Run, store: str, words: tuple[str, ...]) -> None:
    conf = lab / "lab.yaml"
    conf.write_text(conf.read_text().replace("store: .fb/fb.db", f"store: {store}"))
    before = files_under(lab)
    for args in (["ls"], ["ps"], ["show", "1"]):  # readers: they work (no store) or fail in one line
        p = fb(*args)
        if p.returncode:
            one_line_error(p)
    p = fb("build", "digits-mlp")  # a writer: refused before anything is made
    assert p.returncode == 1
    line = one_line_error(p)
    assert all(w in p.stderr for w in words) or "lab.yaml:" in line, p.stderr  # (or lab.yaml refuses it)
    assert files_under(lab) == before


def test_a_newer_schema(lab: Path, fb: Run) -> None:
    path = seed_store(lab)
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {LATEST + 1}")
    for args in (["ls"], ["show", "1"], ["cancel", "2"]):
        p = fb(*args)
        assert p.returncode == 1
        one_line_error(p, f"schema v{LATEST + 1}", "newer")


def test_a_writer_says_it_waits_for_a_lock_then_gives_up_in_one_line(lab: Path, fb: Run) -> None:
    path = seed_store(lab)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3, sys, time
            c = sqlite3.connect({str(path)!r}, isolation_level=None)
            c.execute("BEGIN IMMEDIATE")
            print("locked", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        p = fb("cancel", "2", env={"FB_STORE_TIMEOUT": "3"})
        ls = fb("ls", env={"FB_STORE_TIMEOUT": "3"})  # a reader does not wait on a writer
    finally:
        holder.communicate("")
    assert p.returncode == 1
    assert p.stderr.splitlines()[0] == "fbtui: waiting for the store (locked by another fbtui process) ...", p.stderr
    one_line_error(p, "stayed locked by another process for 3 s", "FB_STORE_TIMEOUT")
    assert ls.returncode == 0 and "waiting" not in ls.stderr, ls.stderr
    again = fb("cancel", "2")  # the lock gone, the same command goes through
    assert again.returncode == 0 and "waiting" not in again.stderr, again.stderr


def test_a_read_only_store_at_an_older_schema_says_who_can_upgrade_it(lab: Path, fb: Run) -> None:
    path = lab / ".fb" / "fb.db"
    Store(path, target=LATEST - 1).close()
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("no way to drop root's rights here")
    make_read_only(lab)
    p = fb("ls", user=NOBODY)
    one_line_error(p, f"older than this fbtui's (v{LATEST})", "read-only")


# ------------------------------------------------------------------ nothing created


def test_reading_commands_in_a_lab_with_no_store_create_nothing(lab: Path, fb: Run) -> None:
    before = files_under(lab)
    assert fb("ls").returncode == 0
    assert fb("ps").returncode == 0
    assert fb("compare", "digits-mlp").returncode == 0
    for args in (["show", "1"], ["logs", "1"], ["diff", "1", "2"], ["cancel", "1"]):
        p = fb(*args)
        one_line_error(p, "no runs in this lab yet")
    assert files_under(lab) == before


@pytest.mark.parametrize("args", [
    ["run", "no-such-project"],
    ["run", "digits-mlp", "-o", "no.such.key=1"],
    ["run", "digits-mlp", "-o", "=oops"],
    ["run", "digits-mlp", "--host", "nowhere"],
    ["run", "digits-mlp", "--stages", "nope"],
    ["run", "digits-mlp", "--variant", "nope"],
    ["build", "digits-mlp", "--host", "nowhere"],
    ["build", "no-such-project"],
])
def test_rejected_input_creates_nothing(lab: Path, fb: Run, args: list[str]) -> None:
    before = files_under(lab)
    p = fb(*args)
    assert p.returncode in (1, 2), p.stdout + p.stderr
    one_line_error(p)
    assert files_under(lab) == before


# ------------------------------------------------------------------ no traceback, ever


def test_an_unexpected_error_is_one_line_naming_a_crash_log(lab: Path, fb: Run, tmp_path: Path) -> None:
    """A bug (simulated: sitecustomize swaps `ls` for one that raises KeyError in the real CLI
    process) ends in one line naming a crash log that holds the traceback."""
    state = tmp_path / "state"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent("""
        import fbtui.commands.lab as m
        def boom(args):
            raise KeyError("surprise")
        m.cmd_ls = boom
    """))
    p = fb("ls", env={"FB_STATE_DIR": str(state), "PYTHONPATH": f"{hook}:{os.environ.get('PYTHONPATH', '')}"})
    assert p.returncode == 1
    line = one_line_error(p, "unexpected KeyError: 'surprise'", "please report it")
    logs = list((state / "fbtui").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback" in text and "surprise" in text and "argv:" in text


def test_a_crash_log_goes_to_the_temp_folder_when_the_state_folder_cannot_be_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fbtui.store.registry import report_unexpected

    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("FB_STATE_DIR", str(blocked / "under-a-file"))
    try:
        raise ValueError("bad\nsecond line")
    except ValueError as e:
        line = report_unexpected(e, ["fbtui", "x"])
    assert line.startswith("unexpected ValueError: bad (details in ") and "\n" not in line
    path = Path(line.split("details in ")[1].split(";")[0])
    assert path.parent == Path(tempfile.gettempdir()) and "second line" in path.read_text()
    path.unlink()


def test_one_broken_project_is_listed_as_broken_and_the_others_list(lab: Path, fb: Run) -> None:
    (lab / "projects" / "digits-cnn" / "project.yaml").write_text("stages: [\n")
    p = fb("ls")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    rows = {line.split()[0]: line for line in p.stdout.splitlines()[1:] if line.strip()}
    assert "(invalid)" in rows["digits-cnn"] and "project.yaml" in rows["digits-cnn"]
    assert "torch-cpu" in rows["digits-mlp"] and "never run" in rows["digits-mlp"]


def test_a_project_that_breaks_in_an_unforeseen_way_is_one_broken_row(lab: Path, fb: Run, tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent("""
        import fbtui.lab as m
        real = m.Lab.project
        def project(self, name):
            if name == "digits-cnn":
                raise RecursionError("maximum recursion depth exceeded")
            return real(self, name)
        m.Lab.project = project
    """))
    p = fb("ls", env={"PYTHONPATH": f"{hook}:{os.environ.get('PYTHONPATH', '')}"})
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    rows = {line.split()[0]: line for line in p.stdout.splitlines()[1:] if line.strip()}
    assert "(invalid)" in rows["digits-cnn"] and "unexpected RecursionError" in rows["digits-cnn"]
    assert "torch-cpu" in rows["digits-mlp"]


@needs_setpriv
def test_doctor_reads_a_read_only_or_newer_store_and_says_what_it_is(lab: Path, fb: Run) -> None:
    import json

    def store_check(p: subprocess.CompletedProcess[str]) -> dict[str, str]:
        return next(c for c in json.loads(p.stdout) if c["name"] == "store")

    path = seed_store(lab)
    make_read_only(lab)
    before = files_under(lab)
    check = store_check(fb("doctor", "--json", user=NOBODY))
    assert check["status"] == "warn" and "read-only here" in check["detail"] and "2 runs" in check["detail"], check
    assert "move the file aside" not in (check["fix"] or "")
    assert files_under(lab) == before
    (lab / ".fb").chmod(0o755)
    path.chmod(0o644)
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {LATEST + 1}")
    check = store_check(fb("doctor", "--json"))
    assert check["status"] == "fail" and f"schema v{LATEST + 1}" in check["detail"], check
