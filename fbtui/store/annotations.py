"""The store's runs management (#14): notes, tags, archiving, and deleting a run's rows.
A mixin of Store (it uses Store's connection, lock and write())."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

# Every table with a run_id column: what a deleted run leaves nowhere (children before runs: foreign keys).
RUN_TABLES = ("metrics", "run_metrics", "params", "artifacts", "evaluations", "metric_sources", "run_tags", "stages")


def _marks(ids: Sequence[int]) -> str:
    return ",".join("?" * len(ids))


class Annotations:
    conn: sqlite3.Connection
    _lock: threading.RLock

    def write(self) -> AbstractContextManager[sqlite3.Connection]:  # Store's
        raise NotImplementedError

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:  # Store's
        raise NotImplementedError

    def set_note(self, run_id: int, text: str | None) -> None:
        """A run's note; None or empty clears it."""
        with self.write() as c:
            c.execute("UPDATE runs SET note = ? WHERE id = ?", (text or None, run_id))

    def add_tags(self, run_id: int, tags: Sequence[str]) -> None:
        with self.write() as c:
            c.executemany("INSERT OR IGNORE INTO run_tags (run_id, tag) VALUES (?, ?)", [(run_id, t) for t in tags])

    def remove_tags(self, run_id: int, tags: Sequence[str]) -> None:
        with self.write() as c:
            c.executemany("DELETE FROM run_tags WHERE run_id = ? AND tag = ?", [(run_id, t) for t in tags])

    def tags(self, run_id: int) -> list[str]:
        return [r["tag"] for r in self.query("SELECT tag FROM run_tags WHERE run_id = ? ORDER BY tag", (run_id,))]

    def tags_of(self, run_ids: Sequence[int] | None = None) -> dict[int, list[str]]:
        """run -> its tags (sorted), for these runs or every tagged run; untagged runs are absent."""
        out: dict[int, list[str]] = {}
        with self._lock:
            if run_ids is None:
                rows = self.conn.execute("SELECT run_id, tag FROM run_tags ORDER BY run_id, tag").fetchall()
            else:
                ids, rows = list(run_ids), []
                for i in range(0, len(ids), 900):  # under SQLite's bound-variable limit
                    chunk = ids[i:i + 900]
                    rows += self.conn.execute(f"SELECT run_id, tag FROM run_tags WHERE run_id IN ({_marks(chunk)}) "
                                              "ORDER BY run_id, tag", chunk).fetchall()
        for rid, tag in rows:
            out.setdefault(rid, []).append(tag)
        return out

    def set_archived(self, run_ids: Sequence[int], archived: bool = True) -> list[int]:
        """Archive (or with archived=False bring back) runs; returns those that changed. A run's
        re-evaluations follow it (they are part of its record)."""
        ids = list(run_ids)
        if not ids:
            return []
        with self.write() as c:
            state = "IS NULL" if archived else "IS NOT NULL"
            changed = [r[0] for r in c.execute(
                f"SELECT id FROM runs WHERE id IN ({_marks(ids)}) AND archived_at {state} ORDER BY id", ids)]
            c.execute(f"UPDATE runs SET archived_at = ? WHERE (id IN ({_marks(ids)}) OR eval_of IN ({_marks(ids)})) "
                      f"AND archived_at {state}", (time.time() if archived else None, *ids, *ids))
        return changed

    def delete_runs(self, run_ids: Sequence[int]) -> dict[str, int]:
        """Delete these runs' rows from every table that holds them, in one transaction, and keep
        their ids as used. Returns table -> rows deleted. The caller decides what may go."""
        ids = list(run_ids)
        counts: dict[str, int] = {}
        if not ids:
            return counts
        now = time.time()
        with self.write() as c:
            for i in range(0, len(ids), 900):
                chunk = ids[i:i + 900]
                c.execute(f"INSERT OR IGNORE INTO deleted_runs (id, project, deleted_at) SELECT id, project, ? "
                          f"FROM runs WHERE id IN ({_marks(chunk)})", (now, *chunk))
                for table in (*RUN_TABLES, "runs"):
                    key = "id" if table == "runs" else "run_id"
                    cur = c.execute(f"DELETE FROM {table} WHERE {key} IN ({_marks(chunk)})", chunk)
                    counts[table] = counts.get(table, 0) + cur.rowcount
        return counts

    def deleted_run(self, run_id: int) -> dict[str, Any] | None:
        """A deleted run's id, project and when it was deleted (None: never deleted)."""
        rows = self.query("SELECT * FROM deleted_runs WHERE id = ?", (run_id,))
        return rows[0] if rows else None
