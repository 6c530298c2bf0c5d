"""What the screens show, gathered from the core as plain data. These functions block (SQLite,
Docker): the app calls them only from thread workers. No Textual here, so they test on their own."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError
from fbtui.tui.metric_groups import Pick, default_picks

# the runs table's data lives in runs_data; re-exported here, where the screens have always found it
from fbtui.tui.runs_data import ACTIVE as ACTIVE
from fbtui.tui.runs_data import SHOWN as SHOWN
from fbtui.tui.runs_data import cancel_question as cancel_question
from fbtui.tui.runs_data import cancel_runs as cancel_runs
from fbtui.tui.runs_data import runs_filter as runs_filter
from fbtui.tui.runs_data import runs_stamp as runs_stamp
from fbtui.tui.runs_data import runs_table as runs_table
from fbtui.tui.stores import Stores as Stores  # re-exported: the app's per-thread stores

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

STATE_FILE = "tui.json"


# ------------------------------------------------------------------ remembered state


def state_path(lab: Lab) -> Path:
    return lab.root / ".fb" / STATE_FILE


def load_state(lab: Lab) -> dict[str, Any]:
    try:
        data = json.loads(state_path(lab).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_state(lab: Lab, **values: Any) -> None:
    data = load_state(lab)
    data.update(values)
    path = state_path(lab)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only lab still works; it just forgets


# ------------------------------------------------------------------ formatting


def duration(start: float | None, end: float | None, now: float) -> str:
    if not start:
        return ""
    secs = max(0.0, (end or now) - start)
    if secs < 60:
        return f"{secs:.1f}s"
    if secs < 3600:
        return f"{int(secs // 60)}m{int(secs % 60):02d}s"
    return f"{int(secs // 3600)}h{int(secs % 3600 // 60):02d}m"


def ago(t: float | None, now: float) -> str:
    if not t:
        return ""
    d = max(0.0, now - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if d >= size:
            return f"{int(d // size)}{unit} ago"
    return f"{int(d)}s ago"


def mean_curve(histories: list[list[tuple[int, float, float]]]) -> list[tuple[float, float]]:
    """Seeds' histories (step, value, t) as one curve: at each step the mean of the seeds that
    logged it; missing values (None: NaN/inf reported) leave that seed out of the mean."""
    total: dict[int, float] = {}
    count: dict[int, int] = {}
    for hist in histories:
        last = {step: value for step, value, _ in hist}  # a step logged twice counts once, its latest
        for step, value in last.items():
            if value is not None:
                total[step] = total.get(step, 0.0) + value
                count[step] = count.get(step, 0) + 1
    return [(float(step), total[step] / count[step]) for step in sorted(total)]


# ------------------------------------------------------------------ projects


@dataclass
class ProjectRow:
    name: str
    environment: str | None
    description: str
    last_run: int | None
    last_status: str | None
    active: int
    error: str | None
    checked: bool = True  # False: project.yaml not read yet (environment and description unknown)


def project_rows(lab: Lab, store: Store | None, *, check: bool = True) -> list[ProjectRow]:
    """`check=False`: names and last runs only, without reading (and validating) any project.yaml."""
    last = store.last_run_status() if store is not None else {}  # re-evaluations are no runs of their own
    out = []
    for name in lab.project_names():
        env, desc, err = None, "", None
        try:
            if check:
                p = lab.project(name)
                env, desc = p.environment, p.spec.description or ""
        except FBError as e:
            err = e.message
        run = last.get(name)
        out.append(ProjectRow(name, env, desc, run["id"] if run else None, run["status"] if run else None,
                              int(run["active"]) if run else 0, err, check))
    return out


# ------------------------------------------------------------------ dashboard


@dataclass
class Dashboard:
    project: str
    description: str = ""
    environment: str = ""
    stages: list[str] = field(default_factory=list)
    needs: dict[str, list[str]] = field(default_factory=dict)
    latest: dict[str, Any] | None = None  # the latest run that started a stage (or goes on)
    never_started: dict[str, Any] | None = None  # a newer run that ended before it started (said, not shown)
    latest_stages: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    ablations: dict[str, str] = field(default_factory=dict)  # name -> description
    error: str | None = None


def dashboard(lab: Lab, store: Store | None, project: str, recent: int = 12) -> Dashboard:
    """`recent`: how many recent runs to list (as many as the table has rows for)."""
    d = Dashboard(project)
    try:
        p = lab.project(project)
    except FBError as e:
        d.error = e.message
        return d
    d.description = p.spec.description or ""
    d.environment = p.environment
    d.stages = [s.name for s in p.stages]
    d.needs = p.needs
    d.ablations = {k: (getattr(v, "description", None) or "") for k, v in p.spec.ablations.items()}
    if store is not None:
        d.recent = store.query(f"SELECT * FROM runs r WHERE r.project = ? AND {SHOWN} ORDER BY r.id DESC "
                               f"LIMIT {max(1, int(recent))}", (project,))
        # A run cancelled (or failed) before any stage started has no pipeline to show: the latest
        # that started one, took one from the cache (or still goes on) is shown, and the newer one said.
        newest = next(iter(store.query("SELECT * FROM runs WHERE project = ? AND eval_of IS NULL ORDER BY id DESC "
                                       "LIMIT 1", (project,))), None)
        d.latest = next(iter(store.query(
            "SELECT * FROM runs r WHERE project = ? AND eval_of IS NULL AND (status IN ('pending', 'queued', "
            "'running') OR EXISTS (SELECT 1 FROM stages s WHERE s.run_id = r.id AND (s.started_at IS NOT NULL "
            "OR s.status = 'cached'))) "
            "ORDER BY id DESC LIMIT 1", (project,))), None)
        if newest is not None and (d.latest is None or newest["id"] != d.latest["id"]):
            d.never_started = newest
        if d.latest:
            d.latest_stages = store.stages(d.latest["id"])
    return d


def engine_ok(lab: Lab, host: str = "local") -> str | None:
    """None when the host's engine answers, else why not."""
    try:
        from fbtui.pipeline.hosts import shared_hosts

        c = shared_hosts(lab.root, lab.config.hosts).client(host, timeout=5)
        c.ping()
        return None
    except Exception as e:
        try:
            from fbtui.pipeline.hosts import shared_hosts

            shared_hosts(lab.root, lab.config.hosts).forget(host)
        except Exception:
            pass
        from fbtui.images.service import engine_problem

        return engine_problem(e)


# ------------------------------------------------------------------ a run


@dataclass
class RunDetail:
    run: dict[str, Any]
    stages: list[dict[str, Any]]
    curves: dict[str, list[tuple[float, float]]]  # metric -> (step, value)
    finals: dict[str, float]
    commit: dict[str, Any] | None
    # stage -> "degraded: disk full — 2,300 points waiting": the store cannot take its progress now
    degraded: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # every metric the run has (the picker lists them)
    charts: list[tuple[str, list[str]]] = field(default_factory=list)  # each chart's title and keys
    tags: list[str] = field(default_factory=list)  # the run's tags (its note is run["note"])


CURVE_POINTS = 1000  # a chart is ~100 braille columns wide: more points only cost drawing time


def bucket_size(count: int, n: int = CURVE_POINTS) -> int:
    """Points per bucket so that `count` points give at most about n: a power of two, so a
    growing curve keeps its buckets until the count doubles."""
    size = 1
    while count > size * (n // 2):
        size *= 2
    return size


def thin_buckets(points: list[tuple[float, float]], size: int, start: int = 0) -> list[tuple[float, float]]:
    """Each bucket of `size` points from `start` as its lowest and highest point (spikes survive)."""
    out: list[tuple[float, float]] = []
    for i in range(start, len(points), size):
        bucket = points[i:i + size]
        lo = min(bucket, key=lambda p: p[1])
        hi = max(bucket, key=lambda p: p[1])
        out.extend((lo,) if lo is hi else (lo, hi) if lo[0] <= hi[0] else (hi, lo))
    return out


def thin(points: list[tuple[float, float]], n: int = CURVE_POINTS) -> list[tuple[float, float]]:
    """At most about n points with the curve's shape, in step order."""
    return points if len(points) <= n else thin_buckets(points, bucket_size(len(points), n))


class Curves:
    """A run's metric histories, read incrementally: each poll fetches only the rows written since
    the last one (a long run has 100,000s of points; re-reading them every second is what made a
    run view slow). A row for an earlier step (a resumed run rewriting its tail) reloads the key."""

    def __init__(self) -> None:
        self.points: dict[str, list[tuple[float, float]]] = {}
        self.mark = -1  # the newest metric row already read; -1: nothing read yet
        # key -> (bucket size, thinned complete buckets, points they cover): only the new tail is thinned
        self._thinned: dict[str, tuple[int, list[tuple[float, float]], int]] = {}

    def _history(self, store: Store, run_id: int, k: str) -> None:
        self.points[k] = [(float(st), float(v)) for st, v, _ in store.metric_history(run_id, k) if v is not None]
        self._thinned.pop(k, None)

    def update(self, store: Store, run_id: int, keys: list[str]) -> dict[str, list[tuple[float, float]]]:
        for k in [k for k in self.points if k not in keys]:  # no longer charted: not kept up to date, so dropped
            del self.points[k]
            self._thinned.pop(k, None)
        missing = [k for k in keys if k not in self.points]
        fresh = -1  # the missing keys' rows up to here are in their whole histories
        if missing:
            # Whole histories of the keys not read yet (the others are not read again), then every
            # row after the mark: a row written in between is read twice at worst, and an
            # earlier-step duplicate makes that key reload.
            fresh = store.metric_mark()
            for k in missing:
                self._history(store, run_id, k)
            if self.mark < 0:
                self.mark = fresh
        rows = store.metric_rows_after(run_id, self.mark, keys) if keys else []
        new: dict[str, list[tuple[float, float]]] = {}
        skip = set(missing)
        for rowid, k, step, v in rows:
            self.mark = max(self.mark, rowid)
            if k in skip and rowid <= fresh:
                continue
            if v is not None:
                new.setdefault(k, []).append((float(step), float(v)))
        for k, pts in new.items():
            pts.sort(key=lambda p: p[0])
            have = self.points[k]
            if have and pts[0][0] <= have[-1][0]:  # not an append: read the key again, in step order
                self._history(store, run_id, k)
            else:
                have.extend(pts)
        return {k: self._thin(k) for k in keys}

    def _thin(self, k: str) -> list[tuple[float, float]]:
        pts = self.points.get(k, [])
        if len(pts) <= CURVE_POINTS:
            return pts
        size = bucket_size(len(pts))
        have_size, done, upto = self._thinned.get(k, (0, [], 0))
        if have_size != size or upto > len(pts):
            done, upto = [], 0
        full = upto + (len(pts) - upto) // size * size  # complete buckets end here
        if full > upto:
            done = done + thin_buckets(pts[upto:full], size)
            upto = full
        self._thinned[k] = (size, done, upto)
        return done + thin_buckets(pts, size, upto)


def run_detail(store: Store, run_id: int, curves: Curves | None = None, picks: list[Pick] | None = None,
               charts: int = 2) -> RunDetail:
    """A run with the curves of its charts: `picks` (the user's), else the default ones. Only the
    charted keys' points are read; the run's other keys come from its final values (one query)."""
    run = store.run(run_id)
    stages = store.stages(run_id)
    sources = [st["cached_from"] for st in stages if st["status"] == "cached" and st.get("cached_from")]
    if sources:  # a cached stage's log is the one its source stage wrote: the run view opens that
        runs = {r["id"]: r["run_id"] for r in store.query(
            f"SELECT id, run_id FROM stages WHERE id IN ({','.join('?' * len(sources))})", tuple(sources))}
        for st in stages:
            st["cached_run"] = runs.get(st.get("cached_from"))
    finals = store.final_metrics(run_id)
    keys = sorted(finals)
    shown = [(p.title(keys), p.keys(keys)) for p in (picks or default_picks(keys, charts))[:charts]]
    history = (curves or Curves()).update(store, run_id, list(dict.fromkeys(k for _, ks in shown for k in ks)))
    commit = store.commit(run["commit_id"]) if run.get("commit_id") else None
    return RunDetail(run, stages, history, finals, commit, degraded_stages(store, stages), keys, shown,
                     store.tags(run.get("eval_of") or run_id))


def metric_keys_of(store: Store, run_ids: list[int]) -> list[str]:
    """The distinct metric keys of these runs (a comparison's), from their final values: one
    query per 500 runs (SQLite's limit on variables), no points read."""
    out: set[str] = set()
    for i in range(0, len(run_ids), 500):
        part = run_ids[i:i + 500]
        out.update(r["key"] for r in store.query(
            f"SELECT DISTINCT key FROM run_metrics WHERE run_id IN ({','.join('?' * len(part))})", part))
    return sorted(out)


def degraded_stages(store: Store, stages: list[dict[str, Any]]) -> dict[str, str]:
    """The running stages whose progress the store cannot take now, with why and what waits."""
    from fbtui.pipeline.ingest import degraded_note
    from fbtui.store.opening import disk_full

    running = [s for s in stages if s["status"] == "running"]
    if not running:
        return {}
    full = disk_full(store.path)
    return {s["name"]: note for s in running if (note := degraded_note(s, full))}


def spool_path(lab: Lab, run_id: int, stage: str) -> Path:
    from fbtui.pipeline.supervisor import run_folder

    return run_folder(lab, run_id) / f"{stage}.log"


def now() -> float:
    return time.time()
