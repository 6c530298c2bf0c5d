"""Backing the store up while runs go on, and putting a backup back."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from fbtui.commands.common import Command, existing_store, lab_of

BACKUP_HELP = """\
A consistent copy of the store (runs, stages, metrics, images, code states) made with SQLite's
online backup API: runs keep going while it copies, and the copy is one moment of the store.
A plain `cp .fb/fb.db` is not enough: recent writes live in .fb/fb.db-wal until SQLite moves them.

examples:
  fbtui backup ~/backups/lab-$(date +%F).db
  fbtui restore ~/backups/lab-2026-11-27.db   (no run queued or running)
"""


def add_parsers(sub: Any, cmd: Command) -> None:
    b = cmd("backup", "write a consistent copy of the store to PATH, while runs go on", BACKUP_HELP)
    b.add_argument("path", metavar="PATH", help="the backup file to write (a new file unless --force)")
    b.add_argument("--force", action="store_true", help="replace PATH if it exists")
    r = cmd("restore", "replace the store with a backup (refused while runs are queued or running)", BACKUP_HELP)
    r.add_argument("path", metavar="PATH", help="a file that fbtui backup wrote")
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def cmd_backup(args: argparse.Namespace) -> int:
    from fbtui.store.backup import backup

    lab = lab_of(args)
    with existing_store(lab) as store:  # read-only: a store you may only read can still be backed up
        copied = backup(store.conn, Path(args.path), force=args.force)
    print(f"backed up {copied.runs} runs and {copied.metric_points:,} metric points "
          f"({copied.bytes / 2**20:.1f} MiB) to {copied.path} in {copied.seconds:.1f} s")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    import sys

    from fbtui.errors import UsageError
    from fbtui.pipeline.supervisor import supervisor_alive
    from fbtui.store.backup import BackupError, backup, check_backup, restore_into
    from fbtui.store.migrations import LATEST

    lab = lab_of(args)
    source = Path(args.path).expanduser()
    version, runs, points = check_backup(source, LATEST)
    with existing_store(lab, write=True) as store:
        active = store.query("SELECT id, status FROM runs WHERE status IN ('pending', 'queued', 'running') "
                             "ORDER BY id")
        if active or supervisor_alive(lab):
            ids = " ".join(str(r["id"]) for r in active)
            raise BackupError(
                f"runs are active ({len(active)}: {ids or 'the supervisor is still running'}); "
                "a restore would lose what they record",
                hint=f"wait for them, or stop them: fbtui cancel {ids}" if ids else "wait for the supervisor to end")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("restore replaces the store: pass --yes to confirm (no terminal to ask)")
            mine = len(store.runs(archived=True))
            answer = input(f"replace the store ({mine} runs) with {source} ({runs} runs)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing changed")
                return 1
        keep = lab.store_path.with_name(f"{lab.store_path.name}.before-restore-{time.strftime('%Y%m%d-%H%M%S')}")
        backup(store.conn, keep)  # nothing is lost: the store as it was stays beside it
        with store._lock:
            restore_into(store.conn, source)
        store.migrate()  # a backup from an older fbtui is brought up to this one's schema
    print(f"restored {runs} runs and {points:,} metric points from {source} (store version {version}); "
          f"the store as it was is in {keep}")
    return 0
