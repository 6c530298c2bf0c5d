"""The store's evaluations: a run's scores under a suite, with what the suite's fingerprint covers.
A mixin of Store (it uses Store's connection, lock and write())."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from typing import Any


class Evaluations:
    conn: sqlite3.Connection
    _lock: threading.RLock

    def write(self) -> AbstractContextManager[sqlite3.Connection]:  # Store's
        raise NotImplementedError

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:  # Store's
        raise NotImplementedError

    def add_evaluation(self, run_id: int, stage: str, fingerprint: str, results: dict[str, Any], *,
                       covers: dict[str, Any] | None = None, suite: str | None = None,
                       made_by_run: int | None = None) -> None:
        with self.write() as c:
            c.execute(
                "INSERT INTO evaluations (run_id, stage, fingerprint, results, created_at, covers, suite, made_by_run) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, stage, fingerprint, json.dumps(results, sort_keys=True), time.time(),
                 json.dumps(covers, sort_keys=True) if covers else None, suite, made_by_run))

    def credit_evaluation(self, src_run: int, src_stage: str, run_id: int, made_by_run: int) -> None:
        """A re-evaluation whose stage was a cache hit (same model, same suite): the source run gets
        the evaluation it reused, recorded as made by the re-evaluation."""
        with self.write() as c:
            c.execute("INSERT INTO evaluations (run_id, stage, fingerprint, results, created_at, covers, suite, "
                      "made_by_run) SELECT ?, stage, fingerprint, results, ?, covers, suite, ? FROM evaluations "
                      "WHERE id = (SELECT MAX(id) FROM evaluations WHERE run_id = ? AND stage = ?)",
                      (run_id, time.time(), made_by_run, src_run, src_stage))

    def evaluations(self, run_id: int, suite: str | None = None) -> list[dict[str, Any]]:
        """A run's evaluations, oldest first (the project's own when suite is None)."""
        rows = self.query("SELECT * FROM evaluations WHERE run_id = ? AND suite IS ? ORDER BY id", (run_id, suite))
        for r in rows:
            r["results"] = json.loads(r["results"] or "{}")
            r["covers"] = json.loads(r["covers"]) if r["covers"] else None
        return rows
