"""Storage faults are loud and lose nothing (#16, part 3): a store on a small tmpfs that fills up.

A stage whose ingest cannot write is `degraded` with the reason (ps, show, the app, the run's
events, the supervisor's log), its points wait in metrics.jsonl past the committed offset, and
when space returns it catches up: every point once, and its container's outcome decides. On a full
disk, commands that read still read, and one that writes says so in one line.

Real parts: a tmpfs mount (root), the real CLI, SQLite, git and, for the stage, the Docker engine."""

from __future__ import annotations

import fcntl
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.pipeline.paths import lock_path, run_folder
from fbtui.store import Store
from tests.labs import copy_lab, end_lab, make_git_lab
from tests.test_pipeline import TINY, TINY_PY
from tests.test_store_errors import one_line_error


def mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the store needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


def unmount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)  # a process still holds a file


def fill(disk: Path) -> Path:
    """Write a filler file until the disk has no byte left."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for block in (2**20, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def store_on(root: Path, disk: Path) -> Path:
    """Point the lab's store at a file on `disk`."""
    y = root / "lab.yaml"
    y.write_text(y.read_text().replace("store: .fb/fb.db", f"store: {disk / 'fb.db'}"))
    assert Lab(root).store_path == disk / "fb.db"
    return disk / "fb.db"


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr


# ---------------------------------------------------------------- commands on a full disk (no engine)


@pytest.fixture
def full_lab(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    root = copy_lab(tmp_path / "flab")
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "4m")
    try:
        yield root, disk
    finally:
        unmount(disk)


def test_commands_on_a_full_disk_read_or_say_so_in_one_line(full_lab, fbtui):  # type: ignore[no-untyped-def]
    root, disk = full_lab
    path = store_on(root, disk)
    out = root / ".fb/runs/1/train/out"  # a local stage's output: off the full disk, as a lab's data may be
    out.mkdir(parents=True)
    lines = [json.dumps({"step": i, "key": "train/loss", "value": 1.0, "t": 0.0}) + "\n" for i in range(2400)]
    (out / "metrics.jsonl").write_text("".join(lines))
    with Store(path) as s:
        done = s.create_run("digits-mlp", config="{}", params={"a": 1}, stages=["train"])
        s.set_run_status(done, "cancelled")
        rid = s.create_run("digits-mlp", config="{}", params={"a": 2}, stages=["train"])
        s.set_run_status(rid, "running")
        s.set_stage_status(rid, "train", "running", out=str(out))
        s.add_metrics(rid, [("train/loss", i, 1.0, 0.0) for i in range(100)], stage="train",
                      offset=len("".join(lines[:100])))  # 100 recorded, 2,300 wait past the offset
    assert not Path(f"{path}-wal").exists()  # closed: the file alone is the whole store
    lock_path(Lab(root)).parent.mkdir(parents=True, exist_ok=True)
    with lock_path(Lab(root)).open("a+") as lock:  # "a supervisor serves this lab": ps starts none
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        filler = fill(disk)

        ps = fbtui("ps", cwd=root)
        no_traceback(ps)
        assert ps.returncode == 0, ps.stderr
        assert "running (degraded: disk full — 2,300 points waiting)" in ps.stdout, ps.stdout
        warning = [x for x in ps.stderr.splitlines() if x.strip()]
        assert len(warning) == 1 and "disk of the store" in warning[0] and "is full" in warning[0], ps.stderr
        rows = json.loads(fbtui("ps", "--json", cwd=root).stdout)
        assert rows[0]["degraded"] == "degraded: disk full — 2,300 points waiting"

        ls = fbtui("ls", cwd=root)
        no_traceback(ls)
        assert ls.returncode == 0 and "digits-mlp" in ls.stdout, ls.stderr

        show = fbtui("show", str(rid), cwd=root)
        no_traceback(show)
        assert show.returncode == 0, show.stderr
        assert "running (degraded: disk full — 2,300 points waiting)" in show.stdout
        assert "its disk is full" in show.stdout
        rec = json.loads(fbtui("show", str(rid), "--json", cwd=root).stdout)
        assert rec["store_disk_full"] and rec["stages"][0]["degraded"].startswith("degraded: disk full")

        from fbtui.tui import data  # the app reads it too

        stores = data.Stores(path)
        try:
            got = stores.get()
            assert got is not None, stores.problem
            assert data.run_detail(got, rid).degraded == {"train": "degraded: disk full — 2,300 points waiting"}
        finally:
            stores.close()

        cancel = fbtui("cancel", str(rid), cwd=root)  # a command that writes: one line, nothing changed
        one_line_error(cancel, "disk is full")

        # A writer killed with its newest changes in the WAL, and no -shm to read it by: one line.
        os.remove(filler)
        code = (f"import os; from fbtui.store import Store; s = Store({str(path)!r}); "
                f"s.update_run({rid}, reason='late'); os._exit(0)")
        subprocess.run([sys.executable, "-c", code], check=True)
        assert Path(f"{path}-wal").stat().st_size > 0
        os.remove(f"{path}-shm")
        fill(disk)
        one_line_error(fbtui("ps", cwd=root), "disk is full", "free some space")

        os.remove(filler)
        ps = fbtui("ps", cwd=root)
        assert ps.returncode == 0 and "degraded" not in ps.stdout and not ps.stderr.strip(), ps.stderr
        with Store(path) as s:
            assert s.run(rid)["reason"] == "late" and s.run(rid)["cancel_requested"] == 0  # nothing lost


def test_ingest_on_a_full_disk_keeps_the_offset_and_catches_up_exactly(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Each chunk's rows and offset commit together: a disk that fills mid-ingest leaves the offset
    on a line boundary with exactly the rows before it, and the next ingest adds the rest once."""
    from fbtui.pipeline import ingest
    from fbtui.pipeline.degraded import StoreHealth

    disk = tmp_path / "disk"
    mount_tmpfs(disk, "4m")
    try:
        out = tmp_path / "out"
        out.mkdir()
        n = 30000
        (out / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "key": "train/loss", "value": i / n,
                                                               "t": 0.0}) + "\n" for i in range(n)))
        monkeypatch.setattr(ingest, "INGEST_CHUNK", 64 * 1024)  # many transactions, some before the disk fills
        with Store(disk / "fb.db") as s:
            rid = s.create_run("p", config="{}", params={}, stages=["train"])
            s.set_run_status(rid, "running")
            s.set_stage_status(rid, "train", "running", out=str(out))
            health = StoreHealth(s, rid, "train", None, lambda: "some points wait")
            filler = fill(disk)
            os.truncate(filler, os.path.getsize(filler) - 400 * 1024)  # room for a few chunks, not all
            with pytest.raises(Exception) as failed:
                ingest.ingest_file(s, rid, "train", out / "metrics.jsonl")
            assert ingest.store_fault(failed.value, s.path) == "disk full" and health.failed(failed.value)
            offset = int(s.stage(rid, "train")["metrics_offset"])
            data = (out / "metrics.jsonl").read_bytes()
            assert 0 < offset < len(data) and data[offset - 1:offset] == b"\n"
            assert s.metric_count(rid) == data[:offset].count(b"\n")  # the rows before the offset, no more
            assert ingest.waiting_points(s.stage(rid, "train")) == n - s.metric_count(rid)
            os.remove(filler)
            assert ingest.ingest_file(s, rid, "train", out / "metrics.jsonl") == n - data[:offset].count(b"\n")
            health.ok()
            assert [step for step, _, _ in s.metric_history(rid, "train/loss")] == list(range(n))
            assert s.stage(rid, "train")["degraded"] is None and health.reason is None
    finally:
        unmount(disk)


# ---------------------------------------------------------------- a stage whose store fills up


@pytest.fixture
def slab(tmp_path: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    monkeypatch.setenv("FB_TEST_SECRET", "hunter2-value")
    root = make_git_lab(tmp_path / "slab")
    (root / "projects/tiny").mkdir()
    (root / "projects/tiny/project.yaml").write_text(TINY)
    (root / "projects/tiny/tiny.py").write_text(TINY_PY)
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "24m")
    try:
        yield root, disk
    finally:
        end_lab(root, docker_host)  # its supervisor holds the store open: it goes first
        unmount(disk)


def wait(what: str, check, timeout: float = 90):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.engine
def test_a_full_store_degrades_the_stage_and_it_catches_up(slab, fbtui):  # type: ignore[no-untyped-def]
    root, disk = slab
    path = store_on(root, disk)
    points = 1500
    proc = fbtui("run", "tiny", "-o", f"tiny.points={points}", "-o", "tiny.sleep=0.004", "--detach", cwd=root)
    assert proc.returncode == 0, proc.stderr
    lab = Lab(root)
    spool = run_folder(lab, 1) / "train.log"
    events = io.StringIO()  # the run's events, as `fbtui run` and `fbtui logs -f` print them
    follower = threading.Thread(target=follow, args=(lab, path, events), daemon=True)
    with Store(path, read_only=True) as s:
        wait("train's first points", lambda: s.stage(1, "train")["status"] == "running" and s.metric_count(1) >= 50)
        follower.start()
        filler = fill(disk)
        try:
            # loud at once: the supervisor's log, then ps (from the store's row, or from the disk itself)
            log = root / ".fb/supervisor.log"
            wait("the supervisor's degraded line",
                 lambda: "stage train: degraded: disk full" in log.read_text(errors="replace"))
            ps = fbtui("ps", cwd=root)
            no_traceback(ps)
            assert ps.returncode == 0 and "running (degraded: disk full" in ps.stdout, ps.stdout + ps.stderr
            # the container ends while the disk is full: its outcome waits, the stage is not failed
            wait("train's container to end", lambda: "train end" in spool.read_text(errors="replace"))
            ps = fbtui("ps", cwd=root)
            assert "points waiting" in ps.stdout, ps.stdout
            assert s.stage(1, "train")["status"] == "running" and s.metric_count(1) < points
            show = fbtui("show", "1", cwd=root)
            no_traceback(show)
            assert "running (degraded: disk full" in show.stdout
        finally:
            os.remove(filler)
        run = wait("the run to end", lambda: (r := s.run(1))["status"] in ("succeeded", "failed", "cancelled") and r)
        assert run["status"] == "succeeded", run
        steps = [step for step, _, _ in s.metric_history(1, "train/loss")]
        assert steps == list(range(points))  # every point, once
        assert s.metric_count(1) == points + 1  # and evaluate's one
        stages = s.stages(1)
        assert [x["status"] for x in stages] == ["succeeded"] * 3
        assert all(x["degraded"] is None for x in stages)
        assert s.stage(1, "train")["exit_code"] == 0
    text = log.read_text(errors="replace")
    assert "stage train: caught up" in text, text
    follower.join(timeout=30)
    assert "run #1 stage train: degraded: disk full" in events.getvalue(), events.getvalue()
    assert "run #1 stage train: succeeded" in events.getvalue()


def follow(lab: Lab, path: Path, out: io.StringIO) -> None:
    from fbtui.pipeline.watch import follow_runs

    with Store(path, read_only=True) as s:
        follow_runs(lab, s, [1], out, logs=False)
