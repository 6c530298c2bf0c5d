"""How long `fbtui backup` takes on a store with a million metric points while a stage ingests,
against `cp` of the same file (the baseline, measured in the same run), and whether each copy is
one moment of the store (metric rows = the stage's committed offset).

    .venv/bin/python bench/backup.py [--points 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fbtui.store import Store
from fbtui.store.backup import backup


def offset_and_rows(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        offset = conn.execute("SELECT metrics_offset FROM stages WHERE run_id = 1 AND name = 'train'").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM metrics WHERE run_id = 1").fetchone()[0]
        return int(offset or 0), int(rows)
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fb.db"
        with Store(db) as s:
            s.create_run("p", config="{}", params={"a": 1}, stages=["train"])
            done = 0
            while done < args.points:
                s.add_metrics(1, [("loss", done + i, 1.0, 0.0) for i in range(10_000)], stage="train",
                              offset=done + 10_000)
                done += 10_000
        stop = threading.Event()

        def ingest() -> None:
            with Store(db) as s:
                n = done
                while not stop.is_set():
                    s.add_metrics(1, [("loss", n + i, 1.0, 0.0) for i in range(500)], stage="train", offset=n + 500)
                    n += 500

        t = threading.Thread(target=ingest)
        t.start()
        time.sleep(0.5)
        try:
            started = time.perf_counter()
            copied = backup(sqlite3.connect(f"file:{db}?mode=ro", uri=True), Path(tmp) / "b.db")
            backup_s = time.perf_counter() - started
            live_before_cp = offset_and_rows(db)[0]  # through SQLite: the WAL included
            started = time.perf_counter()
            shutil.copy(db, Path(tmp) / "cp.db")
            cp_s = time.perf_counter() - started
        finally:
            stop.set()
            t.join()
        live = offset_and_rows(db)
        b = offset_and_rows(Path(tmp) / "b.db")
        print(f"store: {db.stat().st_size / 2**20:.0f} MiB, {live[1]:,} points at the end")
        print(f"fbtui backup: {backup_s:.2f} s, {copied.metric_points:,} points, rows = offset: {b[0] == b[1]}")
        try:
            c = offset_and_rows(Path(tmp) / "cp.db")
            what = (f"{c[1]:,} points, while the store held {live_before_cp:,} when cp started "
                    f"({live_before_cp - c[1]:,} still in the WAL, missing from the copy)")
        except sqlite3.DatabaseError as e:
            what = f"the copy is unreadable ({e}): cp caught a checkpoint halfway"
        print(f"cp (baseline): {cp_s:.2f} s, {what}")
        print(f"ratio backup/cp: {backup_s / cp_s:.1f}")


if __name__ == "__main__":
    main()
