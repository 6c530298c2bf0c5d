"""A lab-wide suite's leaderboard: every run scored on it, across projects, ranked.

Rows follow the comparison's rules (fbtui/records/rows.py): one row per project, ablation,
variant, config and code state; each seed counts once (mean ± std). Only evaluations under today's
version of the suite are ranked (its code, data and evaluator config checked against the working
tree, as a comparison checks a project's own suite); the others are set apart with what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fbtui.records.rows import Row, SetApart, _group, _name_rows, lower_is_better

if TYPE_CHECKING:
    from fbtui.config.suites import Suite
    from fbtui.lab import Lab
    from fbtui.store import Store


@dataclass
class Ranked:
    rank: int
    project: str
    row: Row


@dataclass
class Board:
    suite: str
    description: str
    fingerprint: str | None
    how: str  # as AblationTable.suite_how: "today", "none", "pinned", "voted"
    metrics: list[str]
    rank_by: str
    ranked: list[Ranked] = field(default_factory=list)
    set_apart: list[SetApart] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)

    def header(self) -> str:
        fp = (self.fingerprint or "-")[:12]
        version = {"today": f"today's version {fp}", "pinned": f"version {fp} (--fingerprint)",
                   "none": "no run is scored on today's version yet", "voted": f"version {fp}"}[self.how]
        return f"suite {self.suite}: {version}; ranked by {self.rank_by}" + (
            " (lower is better)" if lower_is_better(self.rank_by) else "")

    def notes(self) -> list[str]:
        out = []
        if self.set_apart:
            whys: dict[str, int] = {}
            for x in self.set_apart:
                whys[x.differs or "another version"] = whys.get(x.differs or "another version", 0) + 1
            out.append(f"set apart: {len(self.set_apart)} run(s) scored on another version of the suite ("
                       + "; ".join(f"{w} ×{n}" for w, n in sorted(whys.items(), key=lambda kv: -kv[1])[:3]) + ")")
        if self.stale and self.how in ("today", "none"):
            ids = " ".join(map(str, self.stale[:20])) + (" …" if len(self.stale) > 20 else "")
            out.append(f"fbtui eval --suite {self.suite} {ids} scores them on today's version")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "description": self.description, "fingerprint": self.fingerprint,
                "version": self.how, "metrics": self.metrics, "rank_by": self.rank_by, "stale": self.stale,
                "set_apart": [x.__dict__ for x in self.set_apart], "notes": self.notes(),
                "rows": [{"rank": r.rank, "project": r.project, **r.row.to_dict()} for r in self.ranked]}


def leaderboard(lab: Lab, store: Store, suite: Suite, *, pinned: str | None = None) -> Board:
    from fbtui.records.suite import Today, reference

    evs = [e for e in store.suite_evaluations(suite.name) if e["status"] == "succeeded"]
    rows = []
    for e in evs:
        results = e["results"]
        rows.append({
            "run": e["run_id"], "project": e["project"], "ablation": e["ablation"], "variant": e["variant"],
            "seed": e["seed"], "status": e["status"], "state_hash": e["state_hash"], "config_hash": e["config_hash"],
            "fingerprint": e["fingerprint"], "covers": e["covers"], "overrides": e["overrides"],
            "finished_at": e["finished_at"], "sha": e["sha"], "dirty": bool(e["dirty"]),
            "captured_at": e["captured_at"], "params": {},
            "metrics": {m: float(results[m]) for m in suite.spec.metrics
                        if isinstance(results.get(m), (int, float)) and not isinstance(results.get(m), bool)},
        })
    today = Today(lab, "", fixed=suite.sections(lab.defaults.data or {}))
    ref = reference(lab, "", rows, pinned=pinned, today=today)
    board = Board(suite.name, suite.spec.description, ref.fingerprint, ref.how, list(suite.spec.metrics),
                  suite.rank_by, stale=sorted(ref.stale))
    kept = []
    for r in rows:
        if r["fingerprint"] == ref.fingerprint:
            kept.append(r)
        else:
            board.set_apart.append(SetApart(r["run"], r["variant"] or r["project"], "suite", "", r["fingerprint"],
                                            ref.why(r["run"])))
    by_project: dict[str, list[dict[str, Any]]] = {}
    for r in kept:
        by_project.setdefault(r["project"], []).append(r)
    ranked = []
    for project, members in by_project.items():
        grouped = _group(members, [], [], list(suite.spec.metrics), {})
        _name_rows(store, grouped, multi_ablation=True, newest_state=None, all_code=False)
        ranked += [Ranked(0, project, g) for g in grouped]
    worst = float("inf") if lower_is_better(suite.rank_by) else float("-inf")

    def score(x: Ranked) -> float:
        s = x.row.metrics.get(suite.rank_by)
        return s.mean if s is not None else worst

    ranked.sort(key=lambda x: (score(x), min(x.row.runs)) if lower_is_better(suite.rank_by)
                else (-score(x), min(x.row.runs)))
    for i, x in enumerate(ranked, 1):
        x.rank = i
    board.ranked = ranked
    return board
