"""Ablation comparison: one row per variant (seeds aggregated as mean and std), columns only for
the params that differ, then metrics; the best value per metric; deltas against a baseline; and
runs evaluated under another evaluation-suite fingerprint set apart, never silently compared."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fbtui.store import Store

LOWER_IS_BETTER = re.compile(r"(loss|ece|error|err|time|seconds|perplexity|mse|mae)", re.IGNORECASE)


@dataclass
class Stat:
    mean: float
    std: float
    n: int

    def text(self, digits: int = 4) -> str:
        if self.n > 1:
            return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        return f"{self.mean:.{digits}f}"


@dataclass
class VariantRow:
    variant: str
    runs: list[int]
    seeds: list[int]
    params: dict[str, Any]
    metrics: dict[str, Stat]
    fingerprint: str | None
    delta: dict[str, float] = field(default_factory=dict)


@dataclass
class AblationTable:
    project: str
    ablation: str | None
    params: list[str]
    metrics: list[str]
    rows: list[VariantRow]
    best: dict[str, str]  # metric -> variant with the best mean
    baseline: str | None
    fingerprint: str | None  # the suite the rows were compared under
    set_apart: list[dict[str, Any]]  # runs under another fingerprint: id, variant, fingerprint
    unfinished: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project, "ablation": self.ablation, "params": self.params, "metrics": self.metrics,
            "baseline": self.baseline, "fingerprint": self.fingerprint, "best": self.best,
            "set_apart": self.set_apart, "unfinished": self.unfinished,
            "rows": [{"variant": r.variant, "runs": r.runs, "seeds": r.seeds, "params": r.params,
                      "metrics": {k: {"mean": s.mean, "std": s.std, "n": s.n} for k, s in r.metrics.items()},
                      "delta": r.delta, "fingerprint": r.fingerprint} for r in self.rows],
        }


def lower_is_better(metric: str) -> bool:
    return bool(LOWER_IS_BETTER.search(metric.rsplit("/", 1)[-1]))


def _stat(values: list[float]) -> Stat:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Stat(mean, std, n)


def ablation_table(store: Store, project: str, ablation: str | None = None, *, metrics: list[str] | None = None,
                   baseline: str | None = None) -> AblationTable:
    cmp_ = store.compare(project, ablation)
    done = [r for r in cmp_.rows if r["status"] == "succeeded" and r["eval_of"] is None]
    unfinished = sum(1 for r in cmp_.rows if r["status"] != "succeeded")
    # A run evaluated again later: its eval/ metrics are those of its latest evaluation, so the
    # numbers shown always belong to the fingerprint shown.
    for r in done:
        if r["reevaluated"]:
            for k, v in json.loads(r["reevaluated"]).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and f"eval/{k}" in r["metrics"]:
                    r["metrics"][f"eval/{k}"] = float(v)
    # The suite most runs were evaluated under is the one compared; others are set apart.
    counts = Counter(r["fingerprint"] for r in done)
    fingerprint = counts.most_common(1)[0][0] if counts else None
    set_apart = [{"run": r["run"], "variant": r["variant"], "fingerprint": r["fingerprint"]}
                 for r in done if r["fingerprint"] != fingerprint]
    done = [r for r in done if r["fingerprint"] == fingerprint]
    if metrics is None:
        evals = [m for m in cmp_.metrics if m.startswith("eval/") and m != "eval/n"]
        metrics = evals or list(cmp_.metrics)
    params = [p for p in cmp_.params if p != "seed"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in done:
        name = r["variant"] or ",".join(f"{k}={r['params'].get(k)}" for k in params) or f"run {r['run']}"
        groups.setdefault(name, []).append(r)
    rows = []
    for name, runs in groups.items():
        stats = {}
        for m in metrics:
            values = [r["metrics"][m] for r in runs if r["metrics"].get(m) is not None]
            if values:
                stats[m] = _stat(values)
        rows.append(VariantRow(name, [r["run"] for r in runs], sorted(r["seed"] for r in runs if r["seed"] is not None),
                               {k: runs[0]["params"].get(k) for k in params}, stats, fingerprint))
    best: dict[str, str] = {}
    for m in metrics:
        have = [r for r in rows if m in r.metrics]
        if have:
            pick = min if lower_is_better(m) else max
            best[m] = pick(have, key=lambda r: r.metrics[m].mean).variant
    base = next((r for r in rows if r.variant == baseline), None)
    if base is not None:
        for r in rows:
            r.delta = {m: r.metrics[m].mean - base.metrics[m].mean for m in metrics
                       if m in r.metrics and m in base.metrics}
    return AblationTable(project, ablation, params, metrics, rows, best, baseline if base else None, fingerprint,
                         set_apart, unfinished)
