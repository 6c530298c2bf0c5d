"""The store API. One SQLite file in WAL mode; sqlite-utils for schema and queries, the
connection's executemany in one transaction on the metric hot path (measured 1.9-3.5x faster)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.store import opening
from fbtui.store.annotations import Annotations
from fbtui.store.evaluations import Evaluations
from fbtui.store.metrics import Metrics
from fbtui.store.migrations import LATEST, MIGRATIONS
from fbtui.store.opening import StoreError

if TYPE_CHECKING:
    import sqlite_utils

    from fbtui.gitstate import GitState

TERMINAL = ("succeeded", "failed", "cancelled")
RUN_STATUSES: dict[str, tuple[str, ...]] = {  # status -> statuses it may move to
    "pending": ("queued", "running", "cancelled", "failed"),
    "queued": ("running", "cancelled", "failed"),
    "running": TERMINAL,
    "succeeded": (),
    "failed": (),
    "cancelled": (),
}
STAGE_STATUSES: dict[str, tuple[str, ...]] = {
    "pending": ("running", "cached", "skipped", "cancelled", "failed"),
    "running": (*TERMINAL, "lost"),
    "lost": ("running", *TERMINAL),  # its host stopped answering; found again when it answers
    "succeeded": (),
    "failed": (),
    "cancelled": (),
    "cached": (),
    "skipped": (),
}

class Store(Annotations, Evaluations, Metrics):
    def __init__(self, path: Path | str, *, migrate: bool = True, target: int | None = None,
                 read_only: bool = False, on_wait: Callable[[], None] | None = None) -> None:
        """Open (and with `migrate`, create or upgrade) the store. `read_only` opens the file as it
        is, creating, migrating and registering nothing; `on_wait` is called when a write has waited
        WAIT_NOTICE_S for another writer's lock (the CLI tells the person)."""
        self.path = Path(path)
        self.read_only, self.on_wait = read_only, on_wait
        self.timeout = opening.timeout_s()
        self._lock = threading.RLock()
        self._db: sqlite_utils.Database | None = None
        memory = str(path) == ":memory:"
        if not memory:
            opening.check_path(self.path, create=not read_only)
            if not read_only and self.path.exists() and not opening.writable(self.path):
                raise opening.read_only_error(self.path)
        try:
            self.conn = opening.connect(self.path, read_only=read_only and not memory, timeout=self.timeout)
        except sqlite3.Error as e:
            raise opening.store_error(e, self.path) from None
        try:
            self._setup(migrate, target)
        except BaseException as e:
            self.conn.close()
            if isinstance(e, sqlite3.Error):
                raise opening.store_error(e, self.path) from None
            raise
        if migrate and not read_only and not memory:
            from fbtui.store.registry import register

            register(self.path)

    def _setup(self, migrate: bool, target: int | None) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        if self.read_only:
            self.migrate(0)  # migrates nothing: refuses a schema newer than this fbtui's
            return
        self._wal()
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if migrate:
            self.migrate(target)

    # ------------------------------------------------------------ plumbing

    def _wal(self) -> None:
        """WAL mode. Switching a brand-new file needs it unlocked, and SQLite does not wait for
        that with the busy handler: a second process racing the first one's migration retries."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @property
    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            import sqlite_utils  # lazily: it is slow to import (see MEASURED.md)

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def close(self) -> None:
        with self._lock:  # never under a query another thread is running on this connection
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of failing."""
        if self.read_only:
            raise opening.read_only_error(self.path)
        with self._lock:
            self._begin()
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting up to the timeout for another writer; with `on_wait`, a wait
        past WAIT_NOTICE_S is reported once per write, then the wait goes on."""
        try:
            if self.on_wait is None:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            self.conn.execute(f"PRAGMA busy_timeout = {int(min(opening.WAIT_NOTICE_S, self.timeout) * 1000)}")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if not opening.is_locked(e) or self.timeout <= opening.WAIT_NOTICE_S:
                    raise
            self.on_wait()
            self.conn.execute(f"PRAGMA busy_timeout = {int((self.timeout - opening.WAIT_NOTICE_S) * 1000)}")
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise opening.store_error(e, self.path) from None
        finally:
            if self.on_wait is not None:
                self.conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, target: int | None = None) -> int:
        """Apply forward migrations up to `target` (default: the latest). Safe to race."""
        target = LATEST if target is None else target
        current = self.schema_version
        if current > LATEST:
            raise StoreError(
                f"the store {self.path} has schema v{current}, newer than this fbtui knows (v{LATEST})",
                hint="update fbtui (in its checkout: git pull && scripts/setup) or point lab.yaml's store: elsewhere",
            )
        while current < target:
            with self.write():
                current = self.schema_version  # another process may have migrated meanwhile
                if current >= target:
                    break
                MIGRATIONS[current](self.db)
                current += 1
                self.conn.execute(f"PRAGMA user_version = {current}")
        return current

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.conn.execute(sql, params)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    # ------------------------------------------------------------ projects and commits

    def ensure_project(self, name: str, environment: str, path: str) -> None:
        with self.write() as c:
            c.execute(
                "INSERT INTO projects (name, environment, path, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET environment = excluded.environment, path = excluded.path",
                (name, environment, path, time.time()),
            )

    def record_commit(self, state: GitState, root: Path | None = None) -> int:
        """The id of this git state's row, inserting it the first time it is seen. With `root` (the
        lab the untracked paths are relative to), the untracked files' content is kept too, so the
        state can be rebuilt later (`fbtui rerun`)."""
        blobs = []
        for f in state.untracked if root is not None else []:
            try:
                data = (root / f["path"]).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() == f["sha256"]:  # changed since the capture: not that state
                blobs.append((f["sha256"], len(data), data))
        with self.write() as c:
            if blobs:
                c.executemany("INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES (?, ?, ?)", blobs)
            c.execute(
                "INSERT OR IGNORE INTO commits (state_hash, is_repo, sha, branch, dirty, diff, untracked, "
                "captured_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (state.state_hash, int(state.is_repo), state.sha, state.branch, int(state.dirty),
                 state.diff, json.dumps(state.untracked), time.time()),
            )
            row = c.execute("SELECT id FROM commits WHERE state_hash = ?", (state.state_hash,)).fetchone()
        return int(row[0])

    def blob(self, sha256: str) -> bytes | None:
        with self._lock:
            row = self.conn.execute("SELECT data FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else bytes(row[0])

    def commit(self, commit_id: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM commits WHERE id = ?", (commit_id,))
        return rows[0] if rows else None

    # ------------------------------------------------------------ runs and stages

    def create_run(
        self,
        project: str,
        *,
        config: str,
        params: dict[str, Any],
        stages: Sequence[str],
        origins: dict[str, str] | None = None,
        ablation: str | None = None,
        variant: str | None = None,
        seed: int | None = None,
        commit_id: int | None = None,
        image: str | None = None,
        host: str | None = None,
        overrides: Sequence[str] = (),
        pipeline: list[dict[str, Any]] | None = None,
        layers: list[dict[str, Any]] | None = None,
        rerun_of: int | None = None,
        source: str | None = None,
    ) -> int:
        """Record a run (status pending) with its resolved config, params and stages."""
        from fbtui.records.identity import config_hash

        now = time.time()
        with self.write() as c:
            cur = c.execute(  # the id: one past any run's, deleted ones too (a number is never given twice)
                "INSERT INTO runs (id, project, ablation, variant, seed, config, origins, commit_id, image, host, "
                "status, created_at, config_hash, overrides, pipeline, layers, rerun_of, source) "
                "VALUES (MAX((SELECT COALESCE(MAX(id), 0) FROM runs), (SELECT COALESCE(MAX(id), 0) FROM deleted_runs))"
                " + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                (project, ablation, variant, seed, config, json.dumps(origins or {}), commit_id, image, host, now,
                 config_hash(config), json.dumps(list(overrides)),
                 None if pipeline is None else json.dumps(pipeline),
                 None if layers is None else json.dumps(layers), rerun_of, source),
            )
            run_id = int(cur.lastrowid or 0)
            c.executemany(
                "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, k, json.dumps(v, sort_keys=True)) for k, v in params.items()],
            )
            c.executemany(
                "INSERT INTO stages (run_id, name, idx, status, host) VALUES (?, ?, ?, 'pending', ?)",
                [(run_id, name, i, host) for i, name in enumerate(stages)],
            )
        return run_id

    def run(self, run_id: int) -> dict[str, Any]:
        rows = self.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"no run {run_id} in {self.path}")
        return rows[0]

    def runs(self, project: str | None = None, status: str | None = None, limit: int | None = None,
             archived: bool = False) -> list[dict[str, Any]]:
        """Runs of their own, newest first; archived ones only with `archived`."""
        sql, args = "SELECT * FROM runs WHERE eval_of IS NULL", []  # re-evaluations are part of their run
        if not archived:
            sql += " AND archived_at IS NULL"
        if project:
            sql += " AND project = ?"
            args.append(project)
        if status:
            sql += " AND status = ?"
            args.append(status)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.query(sql, args)

    def stages(self, run_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM stages WHERE run_id = ? ORDER BY idx", (run_id,))

    def params(self, run_id: int) -> dict[str, Any]:
        rows = self.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,))
        return {r["key"]: json.loads(r["value"]) for r in rows}

    def params_of(self, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The params of many runs in few queries (a comparison names its rows from them)."""
        out: dict[int, dict[str, Any]] = {rid: {} for rid in run_ids}
        ids = list(run_ids)
        with self._lock:
            for i in range(0, len(ids), 900):  # under SQLite's bound-variable limit
                chunk = ids[i:i + 900]
                for rid, key, value in self.conn.execute(
                        f"SELECT run_id, key, value FROM params WHERE run_id IN ({','.join('?' * len(chunk))})", chunk):
                    out[rid][key] = json.loads(value)
        return out

    def set_run_status(self, run_id: int, status: str, reason: str | None = None, **fields: Any) -> None:
        self._move("runs", "id = ?", (run_id,), RUN_STATUSES, status, reason, fields, f"run {run_id}")

    def update_stage(self, run_id: int, stage: str, **fields: Any) -> None:
        """Set fields of a stage without moving its status."""
        with self.write() as c:
            sets = ", ".join(f"{k} = ?" for k in fields)
            c.execute(f"UPDATE stages SET {sets} WHERE run_id = ? AND name = ?", (*fields.values(), run_id, stage))

    def update_run(self, run_id: int, **fields: Any) -> None:
        with self.write() as c:
            sets = ", ".join(f"{k} = ?" for k in fields)
            c.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def stage(self, run_id: int, name: str) -> dict[str, Any]:
        rows = self.query("SELECT * FROM stages WHERE run_id = ? AND name = ?", (run_id, name))
        if not rows:
            raise StoreError(f"run {run_id} has no stage '{name}'")
        return rows[0]

    def set_stage_status(self, run_id: int, stage: str, status: str, reason: str | None = None,
                         **fields: Any) -> None:
        self._move("stages", "run_id = ? AND name = ?", (run_id, stage), STAGE_STATUSES, status, reason,
                   fields, f"stage {stage} of run {run_id}")

    def _move(self, table: str, where: str, key: tuple[Any, ...], allowed: dict[str, tuple[str, ...]],
              status: str, reason: str | None, fields: dict[str, Any], what: str) -> None:
        if status not in allowed:
            raise StoreError(f"unknown status '{status}' (one of: {', '.join(allowed)})")
        now = time.time()
        with self.write() as c:
            row = c.execute(f"SELECT status FROM {table} WHERE {where}", key).fetchone()
            if row is None:
                raise StoreError(f"no {what}")
            if status != row[0] and status not in allowed[row[0]]:
                raise StoreError(f"{what} cannot go from {row[0]} to {status}")
            values: dict[str, Any] = {"status": status, **fields}
            if reason is not None:
                values["reason"] = reason
            elif status in ("running", "succeeded") and status != row[0]:
                values["reason"] = None  # what it waited for ("waiting for …"), and the wait is over
            if status == "running" and "started_at" not in fields:
                values["started_at"] = now
            if status in (*TERMINAL, "cached", "skipped") and "finished_at" not in fields:
                values["finished_at"] = now
            sets = ", ".join(f"{k} = ?" for k in values)
            c.execute(f"UPDATE {table} SET {sets} WHERE {where}", (*values.values(), *key))

    # ------------------------------------------------------------ metrics

    def copy_stage_results(self, source: dict[str, Any], run_id: int, stage: str) -> None:
        """A cache hit: the new run gets the metrics, artifacts and evaluations of the stage it reuses."""
        src_run, src_stage = source["run_id"], source["name"]
        with self.write() as c:
            c.execute("INSERT INTO metrics (run_id, stage, key, step, value, t) SELECT ?, ?, key, step, value, t "
                      "FROM metrics WHERE run_id = ? AND stage = ?", (run_id, stage, src_run, src_stage))
            c.execute("INSERT INTO run_metrics (run_id, key, step, value, t) SELECT ?, m.key, m.step, m.value, m.t "
                      "FROM metrics m WHERE m.run_id = ? AND m.stage = ? AND m.rowid = (SELECT m2.rowid FROM "
                      "metrics m2 WHERE m2.run_id = m.run_id AND m2.key = m.key ORDER BY m2.step DESC, m2.rowid "
                      "DESC LIMIT 1) ON CONFLICT(run_id, key) DO UPDATE SET step = excluded.step, "
                      "value = excluded.value, t = excluded.t WHERE excluded.step >= run_metrics.step",
                      (run_id, src_run, src_stage))
            c.execute("INSERT INTO artifacts (run_id, stage, path, size, sha256, host, created_at) "
                      "SELECT ?, ?, path, size, sha256, host, created_at FROM artifacts WHERE run_id = ? AND stage = ?",
                      (run_id, stage, src_run, src_stage))
            # only what the stage itself computed: evaluations credited by later re-evaluations of the
            # source run are other suites' (copied, the latest would be taken for this hit's)
            c.execute("INSERT INTO evaluations (run_id, stage, fingerprint, results, created_at, covers, suite, "
                      "made_by_run) SELECT ?, ?, fingerprint, results, created_at, covers, suite, made_by_run "
                      "FROM evaluations WHERE run_id = ? AND stage = ? AND made_by_run IS NULL",
                      (run_id, stage, src_run, src_stage))

    def unbind_run(self, run_id: int, reason: str) -> list[str]:
        """A run that has not started a container goes back to the queue unbound: its cache hits
        (whose outputs live on the host it was bound to) are pending again, with what they copied
        removed. Returns those stages' names."""
        with self.write() as c:
            names = [r[0] for r in c.execute("SELECT name FROM stages WHERE run_id = ? AND status = 'cached'",
                                             (run_id,)).fetchall()]
            for table in ("metrics", "artifacts", "evaluations"):
                c.executemany(f"DELETE FROM {table} WHERE run_id = ? AND stage = ?", [(run_id, n) for n in names])
            c.execute("DELETE FROM run_metrics WHERE run_id = ?", (run_id,))
            c.execute("INSERT INTO run_metrics (run_id, key, step, value, t) SELECT m.run_id, m.key, m.step, m.value, "
                      "m.t FROM metrics m WHERE m.run_id = ? AND m.rowid = (SELECT m2.rowid FROM metrics m2 WHERE "
                      "m2.run_id = m.run_id AND m2.key = m.key ORDER BY m2.step DESC, m2.rowid DESC LIMIT 1)",
                      (run_id,))
            c.execute("UPDATE stages SET status = 'pending', cached_from = NULL, out = NULL, host = NULL, reason = ? "
                      "WHERE run_id = ? AND status IN ('cached', 'pending')", (reason, run_id))
            c.execute("UPDATE runs SET host = NULL, reason = ? WHERE id = ? AND status = 'queued'", (reason, run_id))
        return names

    # ------------------------------------------------------------ artifacts, evaluations, images

    def add_artifact(self, run_id: int, stage: str, path: str, size: int, sha256: str | None,
                     host: str | None = None) -> None:
        with self.write() as c:
            c.execute(
                "INSERT INTO artifacts (run_id, stage, path, size, sha256, host, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, stage, path, size, sha256, host, time.time()))

    def record_image(self, **row: Any) -> None:
        row.setdefault("built_at", time.time())
        with self.write():  # (tag, host) is unique: a rebuild replaces the row
            self.db["images"].insert(row, replace=True)

    def last_run_status(self) -> dict[str, dict[str, Any]]:
        """project -> its latest run (id, status, finished_at) and how many are running."""
        # One pass grouped by project: a per-run subquery here was quadratic in the number of runs.
        rows = self.query(
            # a re-evaluation is no run of its own: never the last run; it makes its run active again
            "SELECT r.project, r.id, r.status, r.finished_at, g.active FROM (SELECT project, "
            "MAX(CASE WHEN eval_of IS NULL THEN id END) AS id, COUNT(DISTINCT CASE WHEN status IN "
            "('running', 'queued') THEN COALESCE(eval_of, id) END) AS active FROM runs GROUP BY project) g "
            "JOIN runs r ON r.id = g.id"
        )
        return {r["project"]: r for r in rows}
