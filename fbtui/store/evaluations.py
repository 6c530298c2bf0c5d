"""The store's evaluations: a run's scores under a suite, with what the suite's fingerprint covers.
A mixin of Store (it uses Store's connection, lock and write())."""

from __future__ import annotations

import hashlib
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

    def add_blob(self, data: bytes) -> str:
        """Keep bytes by their sha256 (a suite's code as it was queued); returns the sha256."""
        sha = hashlib.sha256(data).hexdigest()
        with self.write() as c:
            c.execute("INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES (?, ?, ?)", (sha, len(data), data))
        return sha

    def suite_evaluations(self, suite: str) -> list[dict[str, Any]]:
        """Each run's latest evaluation on a lab-wide suite (runs of their own, not re-evaluations,
        not archived)."""
        rows = self.query(
            "SELECT e.*, r.project, r.ablation, r.variant, r.seed, r.status, r.config_hash, r.overrides, "
            "r.finished_at, r.commit_id, c.state_hash, c.sha, c.dirty, c.captured_at FROM evaluations e "
            "JOIN runs r ON r.id = e.run_id LEFT JOIN commits c ON c.id = r.commit_id "
            "WHERE e.id IN (SELECT MAX(id) FROM evaluations WHERE suite = ? GROUP BY run_id) "
            "AND r.eval_of IS NULL AND r.archived_at IS NULL ORDER BY r.id", (suite,))
        for r in rows:
            r["results"] = json.loads(r["results"] or "{}")
            r["covers"] = json.loads(r["covers"]) if r["covers"] else None
            r["overrides"] = json.loads(r["overrides"] or "[]")
        return rows

    def suite_counts(self) -> dict[str, int]:
        """suite -> how many runs of their own were scored on it."""
        return {r["suite"]: r["n"] for r in self.query(
            "SELECT e.suite AS suite, COUNT(DISTINCT e.run_id) AS n FROM evaluations e JOIN runs r ON r.id = e.run_id "
            "WHERE e.suite IS NOT NULL AND r.eval_of IS NULL AND r.archived_at IS NULL GROUP BY e.suite")}
