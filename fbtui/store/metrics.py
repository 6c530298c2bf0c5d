"""The store's metric points and the comparison query: the hot path of ingest and the table the
app and `fbtui compare` draw from. A mixin of Store (it uses Store's connection, lock and write())."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

MetricRow = tuple[str, int, float, float]  # key, step, value, t


@dataclass
class Comparison:
    """Runs x params x final metrics: what the ablation table shows."""

    params: list[str]
    metrics: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)


class _Decoded(dict[str | None, Any]):
    """JSON text -> its value, each distinct text decoded once: an ablation repeats few values, and a
    hit stays in C (dict lookup) where a Python helper per value cost ~0.1 s at 10,000 runs."""

    def __init__(self) -> None:
        super().__init__({None: None})

    def __missing__(self, text: str) -> Any:
        # A sweep's params are thousands of distinct numbers: int()/float() read the JSON that
        # json.dumps wrote as json.loads would, at a fifth of its cost.
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = json.loads(text)
        self[text] = value
        return value


class Metrics:
    conn: sqlite3.Connection
    _lock: threading.RLock

    def write(self) -> AbstractContextManager[sqlite3.Connection]:  # Store's
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:  # Store's
        raise NotImplementedError

    def _move_offset(self, c: sqlite3.Connection, run_id: int, stage: str, offset: int, source: str | None) -> None:
        if source is None:
            c.execute("UPDATE stages SET metrics_offset = ? WHERE run_id = ? AND name = ?", (offset, run_id, stage))
        else:
            c.execute("INSERT INTO metric_sources (run_id, stage, source, offset) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT(run_id, stage, source) DO UPDATE SET offset = excluded.offset",
                      (run_id, stage, source, offset))

    def source_offset(self, run_id: int, stage: str, source: str) -> int:
        """How far a metric source (`stdout`, `tb:runs/events...`) has been ingested."""
        rows = self.query("SELECT offset FROM metric_sources WHERE run_id = ? AND stage = ? AND source = ?",
                          (run_id, stage, source))
        return int(rows[0]["offset"] or 0) if rows else 0

    def note_source(self, run_id: int, stage: str, source: str, note: str) -> None:
        """What could not be read of a metric source, kept with its offset."""
        with self.write() as c:
            c.execute("INSERT INTO metric_sources (run_id, stage, source, note) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT(run_id, stage, source) DO UPDATE SET note = excluded.note",
                      (run_id, stage, source, note))

    def metric_sources(self, run_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM metric_sources WHERE run_id = ? ORDER BY stage, source", (run_id,))

    def add_metrics(self, run_id: int, rows: Iterable[MetricRow], stage: str | None = None,
                    offset: int | None = None, source: str | None = None) -> int:
        """Insert metric points (key, step, value, t) in one transaction; returns how many.
        With `offset`, the stage's ingest offset (of metrics.jsonl, or of `source`) moves in the
        same transaction: an ingest that dies halfway resumes from the last committed offset, with
        nothing lost and nothing doubled."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            if offset is not None and stage is not None:
                with self.write() as c:
                    self._move_offset(c, run_id, stage, offset, source)
            return 0
        last = {r[0]: r for r in rows}  # the last point written per key (a resumed file is truncated)
        # run id and stage inlined: the hot loop then binds the rows as they are, with no copy
        stage_sql = "NULL" if stage is None else "'" + stage.replace("'", "''") + "'"
        with self.write() as c:
            c.executemany(
                f"INSERT INTO metrics (run_id, stage, key, step, value, t) VALUES ({int(run_id)}, {stage_sql}, "
                "?, ?, ?, ?)", rows)
            c.executemany(
                "INSERT INTO run_metrics (run_id, key, step, value, t) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(run_id, key) DO UPDATE SET step = excluded.step, value = excluded.value, "
                "t = excluded.t WHERE excluded.step >= run_metrics.step",
                [(run_id, k, s, v, t) for k, s, v, t in last.values()],
            )
            if offset is not None and stage is not None:
                self._move_offset(c, run_id, stage, offset, source)
        return len(rows)

    def metric_history(self, run_id: int, key: str) -> list[tuple[int, float, float]]:
        """(step, value, t) of one metric of one run, in step order."""
        with self._lock:
            return self.conn.execute(
                "SELECT step, value, t FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, rowid",
                (run_id, key),
            ).fetchall()

    def metric_mark(self) -> int:
        """The newest metric row's id: histories read now plus `metric_rows_after(mark)` later
        give every row exactly once."""
        with self._lock:
            return self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM metrics").fetchone()[0]

    def metric_rows_after(self, run_id: int, rowid: int, keys: Sequence[str]) -> list[tuple[int, str, int, Any]]:
        """(rowid, key, step, value) of a run's metrics written after `rowid`, in write order. It
        walks the table from `rowid` on (the unary + keeps SQLite off the (run, key, step) index,
        which would scan the run's whole history): a poll costs what was written since the last."""
        with self._lock:
            return self.conn.execute(
                f"SELECT rowid, key, step, value FROM metrics WHERE rowid > ? AND +run_id = ? "
                f"AND +key IN ({','.join('?' * len(keys))}) ORDER BY rowid", (rowid, run_id, *keys)).fetchall()

    def metric_keys(self, run_id: int) -> list[str]:
        return [r["key"] for r in self.query("SELECT key FROM run_metrics WHERE run_id = ? ORDER BY key", (run_id,))]

    def final_metrics(self, run_id: int) -> dict[str, float]:
        rows = self.query("SELECT key, value FROM run_metrics WHERE run_id = ?", (run_id,))
        return {r["key"]: r["value"] for r in rows}

    def metric_count(self, run_id: int | None = None) -> int:
        if run_id is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0])
        return int(self.conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0])

    # ------------------------------------------------------------ comparison

    def compare(
        self,
        project: str,
        ablation: str | None = None,
        *,
        run_ids: Sequence[int] | None = None,
        params: Sequence[str] | None = None,
        metrics: Sequence[str] | Callable[[list[str]], list[str]] | None = None,
        archived: bool = False,
        skip_params: Sequence[str] = (),
    ) -> Comparison:
        """One wide table: a row per run, a column per param (default: those that differ) and per
        final metric (default: all), plus the run's latest evaluation fingerprint and, for a run
        evaluated more than once, that evaluation's results (JSON text) as `reevaluated`, and what the
        latest evaluation's fingerprint covers (`covers`, decoded; None when it does not say).
        `metrics` may pick from the keys the runs have (each metric costs a lookup per run).
        Archived runs are left out unless `archived`; `skip_params` are not looked up (the ablation
        table has each run's seed already: a param lookup per run less)."""
        where, args = "r.project = ?", [project]
        if not archived:
            where += " AND r.archived_at IS NULL"
        if ablation is not None:
            where += " AND r.ablation = ?"
            args.append(ablation)
        if run_ids is not None:
            where += f" AND r.id IN ({','.join('?' * len(run_ids))})"
            args.extend(run_ids)
        selected = f"SELECT r.id FROM runs r WHERE {where}"
        with self._lock:
            n = self.conn.execute(f"SELECT COUNT(*) FROM ({selected})", args).fetchone()[0]
            if params is None:
                params = [k for (k,) in self.conn.execute(
                    f"SELECT key FROM params WHERE run_id IN ({selected}) GROUP BY key "
                    "HAVING MIN(value) <> MAX(value) OR COUNT(*) < ? ORDER BY key", (*args, n))
                    if k not in skip_params]
            if metrics is None or callable(metrics):
                found = [k for (k,) in self.conn.execute(
                    f"SELECT DISTINCT key FROM run_metrics WHERE run_id IN ({selected}) ORDER BY key", args)]
                metrics = found if metrics is None else metrics(found)
            cols = ["r.id", "r.ablation", "r.variant", "r.seed", "r.status", "r.finished_at",
                    "e.fingerprint", "r.eval_of",
                    # a run evaluated again: its latest results (the stage's own are in run_metrics)
                    "CASE WHEN e.id <> (SELECT MIN(id) FROM evaluations WHERE run_id = r.id AND suite IS NULL) "
                    "THEN e.results END",
                    "r.config_hash", "c.state_hash", "c.sha", "c.dirty", "r.overrides", "c.captured_at", "e.covers"]
            cols += ["(SELECT value FROM params WHERE run_id = r.id AND key = ?)"] * len(params)
            cols += ["(SELECT value FROM run_metrics WHERE run_id = r.id AND key = ?)"] * len(metrics)
            sql = (f"SELECT {', '.join(cols)} FROM runs r LEFT JOIN evaluations e ON e.id = "
                   f"(SELECT MAX(id) FROM evaluations WHERE run_id = r.id AND suite IS NULL) "  # the project's own
                   f"LEFT JOIN commits c ON c.id = r.commit_id "
                   f"WHERE {where} ORDER BY r.id")
            raw = self.conn.execute(sql, (*params, *metrics, *args)).fetchall()
        out = Comparison(list(params), list(metrics))
        base, np_ = 16, len(params)
        value = _Decoded().__getitem__
        end = base + np_
        for row in raw:
            out.rows.append({
                "run": row[0], "ablation": row[1], "variant": row[2], "seed": row[3], "status": row[4],
                "finished_at": row[5], "fingerprint": row[6], "eval_of": row[7], "reevaluated": row[8],
                "config_hash": row[9], "state_hash": row[10], "sha": row[11], "dirty": bool(row[12]),
                "overrides": value(row[13]) or [], "captured_at": row[14], "covers": value(row[15]),
                "params": dict(zip(params, map(value, row[base:end]))),
                "metrics": dict(zip(metrics, row[end:])),
            })
        return out

