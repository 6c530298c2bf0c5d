"""`fbtui backup` / `fbtui restore` (#16, part 5): a backup taken while a stage ingests is one
moment of the store (its metric rows equal its committed offset), unlike a `cp` of the file;
restore refuses while runs are active and keeps the replaced store beside it."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

from fbtui.lab import Lab
from fbtui.store import Store


def _ingest(store_path: Path, run_id: int, stop: threading.Event, batches: int = 400) -> None:
    """What a stage's ingest does: points and the stage's offset in one transaction per batch."""
    with Store(store_path) as s:
        for b in range(batches):
            if stop.is_set():
                return
            rows = [("train/loss", b * 100 + i, 1.0 / (1 + b * 100 + i), 0.0) for i in range(100)]
            s.add_metrics(run_id, rows, stage="train", offset=(b + 1) * 100)


def _offset_and_rows(path: Path, run_id: int) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        offset = conn.execute("SELECT metrics_offset FROM stages WHERE run_id = ? AND name = 'train'",
                              (run_id,)).fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
    finally:
        conn.close()
    return int(offset or 0), int(rows)


def test_backup_during_ingest_is_one_moment_of_the_store(lab_dir: Path, fbtui, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store_path = Lab(lab_dir).store_path
    with Store(store_path) as s:
        rid = s.create_run("digits-mlp", config="{}", params={"a": 1}, stages=["prepare", "train"])
        s.set_run_status(rid, "running")
    stop = threading.Event()
    writer = threading.Thread(target=_ingest, args=(store_path, rid, stop))
    writer.start()
    try:
        seen = []
        for i in range(5):
            target = tmp_path / f"b{i}.db"
            proc = fbtui("backup", str(target))
            assert proc.returncode == 0, proc.stderr
            assert f"to {target}" in proc.stdout and "metric points" in proc.stdout
            offset, rows = _offset_and_rows(target, rid)
            assert rows == offset  # every committed batch, and only committed ones
            seen.append(rows)
            shutil.copy(store_path, tmp_path / f"cp{i}.db")  # what the README warns against
    finally:
        stop.set()
        writer.join()
    assert seen == sorted(seen) and seen[-1] > 0
    assert not list(tmp_path.glob(".*.part"))  # no half-written file is left


def test_backup_refusals_are_one_line(lab_dir: Path, fbtui, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = fbtui("backup", str(tmp_path / "x.db"))
    assert proc.returncode == 1 and "no runs in this lab yet" in proc.stderr
    with Store(Lab(lab_dir).store_path) as s:
        s.create_run("digits-mlp", config="{}", params={"a": 1}, stages=["train"])
    (tmp_path / "exists.db").write_text("x")
    for target, expected in ((tmp_path / "exists.db", "exists already"),
                             (tmp_path / "no/such/x.db", "the folder"),
                             (tmp_path, "is a folder"),
                             (Path("/proc/x.db"), "cannot write /proc/x.db")):
        proc = fbtui("backup", str(target))
        assert proc.returncode == 1, proc.stdout
        assert expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("fbtui: error: ")
    assert (tmp_path / "exists.db").read_text() == "x"
    assert fbtui("backup", str(tmp_path / "exists.db"), "--force").returncode == 0
    assert _offset_and_rows(tmp_path / "exists.db", 1) == (0, 0)


def test_restore_refuses_active_runs_and_keeps_the_old_store(lab_dir: Path, fbtui, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store_path = Lab(lab_dir).store_path
    with Store(store_path) as s:
        s.set_run_status(s.create_run("digits-mlp", config="{}", params={"a": 1}, stages=["train"]), "cancelled")
    assert fbtui("backup", str(tmp_path / "one.db")).returncode == 0
    with Store(store_path) as s:
        rid = s.create_run("digits-mlp", config="{}", params={"a": 2}, stages=["train"])
        s.set_run_status(rid, "queued")
    proc = fbtui("restore", str(tmp_path / "one.db"), "--yes")
    assert proc.returncode == 1 and f"runs are active (1: {rid})" in proc.stderr
    assert f"fbtui cancel {rid}" in proc.stderr
    with Store(store_path) as s:
        s.set_run_status(rid, "cancelled")
    proc = fbtui("restore", str(tmp_path / "one.db"))
    assert proc.returncode == 2 and "pass --yes" in proc.stderr  # no terminal to ask
    proc = fbtui("restore", str(tmp_path / "one.db"), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "restored 1 runs" in proc.stdout
    with Store(store_path) as s:
        assert [r["id"] for r in s.runs()] == [1]
    (kept,) = store_path.parent.glob("fb.db.before-restore-*")
    with Store(kept, read_only=True) as old:
        assert len(old.runs()) == 2
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    proc = fbtui("restore", str(tmp_path / "junk.db"), "--yes")
    assert proc.returncode == 1 and "is not an fbtui store" in proc.stderr
    proc = fbtui("restore", str(tmp_path / "missing.db"), "--yes")
    assert proc.returncode == 1 and "no backup at" in proc.stderr


def test_a_backup_on_a_full_or_read_only_disk_is_one_line(lab_dir: Path, fbtui, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from tests.test_storage_faults import fill, mount_tmpfs, unmount

    with Store(Lab(lab_dir).store_path) as s:
        rid = s.create_run("digits-mlp", config="{}", params={"a": 1}, stages=["train"])
        s.add_metrics(rid, [("loss", i, 1.0, 0.0) for i in range(20_000)], stage="train", offset=1)
    disk = tmp_path / "disk"
    disk.mkdir()
    mount_tmpfs(disk, "2m")
    try:
        filler = fill(disk)
        proc = fbtui("backup", str(disk / "b.db"))
        assert proc.returncode == 1 and "disk is full" in proc.stderr, proc.stderr
        assert proc.stderr.startswith("fbtui: error: ") and "Traceback" not in proc.stderr
        assert not [p for p in disk.iterdir() if p != filler]  # no partial file left behind
        filler.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        proc = fbtui("backup", str(disk / "b.db"))
        assert proc.returncode == 1 and "cannot write" in proc.stderr and "Read-only" in proc.stderr, proc.stderr
    finally:
        unmount(disk)
