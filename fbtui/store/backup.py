"""Consistent copies of the store while runs go on, and putting one back.

A plain `cp` of the store misses what is still in its write-ahead log (`fb.db-wal`): the copy is
stale by minutes of metrics, or torn. SQLite's online backup API copies the pages of one read
snapshot instead, while writers carry on (WAL readers never block them).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fbtui.errors import FBError


class BackupError(FBError):
    pass


@dataclass
class Copied:
    path: Path
    runs: int
    metric_points: int
    bytes: int
    seconds: float


def _counts(conn: sqlite3.Connection) -> tuple[int, int]:
    runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    points = conn.execute("SELECT count(*) FROM metrics").fetchone()[0]
    return int(runs), int(points)


def _os_problem(e: OSError | sqlite3.Error, target: Path) -> BackupError:
    text = getattr(e, "strerror", None) or str(e)
    if "full" in text.lower() or getattr(e, "errno", None) == 28:
        return BackupError(f"cannot write {target}: the disk is full", hint="free some space, or back up elsewhere")
    return BackupError(f"cannot write {target}: {text}", hint="choose a folder you can write")


def backup(source: sqlite3.Connection, target: Path, *, force: bool = False) -> Copied:
    """Copy the store behind `source` (one read snapshot) to `target`, whole or not at all."""
    started = time.perf_counter()
    target = target.expanduser()
    if target.is_dir():
        raise BackupError(f"{target} is a folder: give the backup's file name, e.g. {target / 'fb-backup.db'}")
    if target.exists() and not force:
        raise BackupError(f"{target} exists already", hint="choose another name, or pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: the folder {target.parent} does not exist")
    fd, tmp_name = -1, ""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
        dest = sqlite3.connect(tmp_name, isolation_level=None)
        try:
            source.backup(dest)  # all pages in one step: one snapshot, writers go on meanwhile
            dest.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            if dest.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"the copy at {tmp_name} failed SQLite's check; the store may be damaged",
                                  hint="run fbtui doctor")
            runs, points = _counts(dest)
        finally:
            dest.close()
        os.replace(tmp_name, target)
        tmp_name = ""
    except (OSError, sqlite3.Error) as e:
        raise _os_problem(e, target) from None
    finally:
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
    return Copied(target, runs, points, target.stat().st_size, time.perf_counter() - started)


def check_backup(path: Path, latest: int) -> tuple[int, int, int]:
    """(schema version, runs, metric points) of a file that must be an fbtui store."""
    path = path.expanduser()
    if not path.is_file():
        raise BackupError(f"no backup at {path}" if not path.exists() else f"{path} is not a file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            runs, points = _counts(conn)
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise BackupError(f"{path} is not an fbtui store ({e})", hint="give a file that fbtui backup wrote") from None
    if version > latest:
        raise BackupError(f"{path} was written by a newer fbtui (store version {version}, this one knows {latest})",
                          hint="update fbtui in this checkout: git pull && scripts/setup")
    return version, runs, points


def restore_into(live: sqlite3.Connection, path: Path) -> None:
    """Replace the live store's content with the backup's, through the backup API (so the live
    file's WAL and other readers stay coherent), in one step."""
    src = sqlite3.connect(f"file:{path.expanduser()}?mode=ro", uri=True)
    try:
        src.backup(live)
    finally:
        src.close()
