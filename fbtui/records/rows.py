"""The ablation table: one row per experiment, never a mix.

A row holds the runs that share the project, the resolved config without its seed, the code state
and the evaluation fingerprint. Within a row each seed is one sample: a cache copy, a --no-cache
rerun or a re-evaluation of the same seed is not a new one (the latest succeeded run of the seed
is used, the others are named as repeats). By default only the newest code state that has
succeeded runs is shown, under the evaluation suite most of its runs were evaluated with; the
runs left out are counted in the table's notes with the reason. `fbtui compare`, the app and the
exports all read this one table.
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fbtui.records.identity import short_state
from fbtui.records.suite import pin_rows, reference

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

LOWER_IS_BETTER = re.compile(r"(loss|ece|error|err|time|seconds|perplexity|mse|mae)", re.IGNORECASE)
PROJECT_ROW = "(project)"  # the name of a row of runs launched without a variant


@dataclass
class Stat:
    mean: float
    std: float
    n: int

    def text(self, digits: int = 4) -> str:
        if self.n > 1:
            return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        return f"{self.mean:.{digits}f}"


@dataclass(slots=True)  # (5,000 rows at 10,000 runs: slots and positional arguments halve their making)
class Row:
    name: str  # unique in its table: the variant plus what its config differs by (and @code)
    ablation: str | None
    variant: str | None
    runs: list[int]  # one per seed: the sample each seed contributes
    seeds: list[int | None]
    expected: list[int]  # the seeds this row should have (the ablation's and every launched one)
    params: dict[str, Any]
    metrics: dict[str, Stat]
    fingerprint: str | None
    state_hash: str | None
    code: str  # the code state as a person reads it
    config_hash: str | None
    overrides: list[str] = field(default_factory=list)  # "key=value": how it differs from its variant
    repeats: dict[str, list[int]] = field(default_factory=dict)  # seed -> runs of it not counted
    delta: dict[str, float] = field(default_factory=dict)

    missing: list[int] = field(init=False)  # expected seeds without a sample
    first: int = field(default=0, init=False)  # its first run, with repeats (the table's order)

    def __post_init__(self) -> None:
        if not self.expected or (len(self.expected) == len(self.seeds) and self.expected == self.seeds):
            self.missing = []  # the usual row: every expected seed there, in order
        else:
            self.missing = sorted(set(self.expected) - {s for s in self.seeds if s is not None})

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    @property
    def seeds_text(self) -> str:
        have = len(self.seeds)
        if self.expected == self.seeds:  # the usual row (its seeds are distinct, None-free): no sets
            return f"{have}/{have}"
        want = len(set(self.expected) | {s for s in self.seeds if s is not None}) or have
        return f"{have}/{want}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "ablation": self.ablation, "variant": self.variant, "runs": self.runs,
            "seeds": self.seeds, "expected_seeds": self.expected, "missing_seeds": self.missing,
            "partial": self.partial, "params": self.params, "overrides": self.overrides,
            "metrics": {k: {"mean": s.mean, "std": s.std if s.n > 1 else None, "n": s.n}
                        for k, s in self.metrics.items()},
            "delta": self.delta, "fingerprint": self.fingerprint, "code": self.code,
            "code_state": self.state_hash, "config_hash": self.config_hash,
            "repeats": {str(k): v for k, v in self.repeats.items()},
        }


@dataclass
class SetApart:
    run: int
    name: str
    why: str  # "code" (an older code state) or "suite" (another evaluation fingerprint)
    code: str
    fingerprint: str | None
    differs: str = ""  # for "suite": what differs from the suite shown (code, config or data)


@dataclass
class AblationTable:
    project: str
    ablation: str | None
    params: list[str]
    metrics: list[str]
    rows: list[Row]
    best: dict[str, str]  # metric -> name of the row with the best mean (complete rows only by default)
    baseline: str | None
    fingerprint: str | None  # the suite every row was evaluated under
    code: str | None  # the newest code state shown
    state_hash: str | None
    set_apart: list[SetApart]
    unfinished: dict[str, int] = field(default_factory=dict)  # status -> runs not shown
    all_code: bool = False
    star_partial: bool = False
    suite_how: str = "voted"  # "today" (computed), "none" (no run has it yet), "pinned" (--suite), "voted"
    stale: list[int] = field(default_factory=list)  # runs whose latest evaluation is not today's suite

    @property
    def repeats(self) -> int:
        return sum(len(v) for r in self.rows for v in r.repeats.values())

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

    def notes(self) -> list[str]:
        """What was grouped and what was set apart, and why: one line each, for every front end."""
        out: list[str] = []
        if not self.rows and not self.set_apart:
            return ["no finished runs yet"]
        n_runs = sum(len(r.runs) for r in self.rows)
        code = f"code {self.code or 'unknown'}" if not self.all_code else "every code state (@ names older ones)"
        out.append(f"{_n(n_runs, 'run')} in {_n(len(self.rows), 'row')}: one row per config, {code}, "
                   f"{self.suite_text()}; each seed counts once")
        if self.repeats:
            ids = sorted(i for r in self.rows for v in r.repeats.values() for i in v)
            out.append(f"{_n(len(ids), 'repeated run')} of a seed already counted (the latest succeeded is used): "
                       + _ids(ids))
        partial = [r for r in self.rows if r.partial]
        if partial:
            verb = "misses" if len(partial) == 1 else "miss"
            out.append(f"† partial: {_n(len(partial), 'row')} {verb} seeds (" + "; ".join(
                f"{r.name}: seed {','.join(map(str, r.missing))}" for r in partial[:3])
                + ("; …" if len(partial) > 3 else "") + ")"
                + ("" if self.star_partial else "; never starred"))
        old = [x for x in self.set_apart if x.why == "code"]
        if old:
            states = Counter(x.code for x in old)
            out.append(f"set apart: {_n(len(old), 'run')} of older code (" + ", ".join(
                f"{c} ×{n}" for c, n in states.most_common(4)) + "); --all-code shows them as their own rows")
        suite = [x for x in self.set_apart if x.why == "suite"]
        if suite:
            ids = [x.run for x in suite]
            whys = Counter(x.differs or "another suite" for x in suite)
            out.append(f"set apart: {_n(len(ids), 'run')} under another suite, not comparable: {_ids(ids)} ("
                       + "; ".join(f"{w} ×{n}" for w, n in whys.most_common(3)) + ")")
        if self.suite_how in ("today", "none") and self.stale:
            out.append(f"{self.stale_command()} brings {_n(len(self.stale), 'stale run')} up to today's suite")
        elif suite and self.suite_how == "voted":
            out.append(f"fbtui eval {' '.join(map(str, ids[:20]))} re-evaluates them")
        if self.unfinished:
            out.append("not shown: " + ", ".join(f"{_n(n, s + ' run')}" for s, n in sorted(self.unfinished.items()))
                       + " (only succeeded runs are compared)")
        return out

    def suite_text(self) -> str:
        fp = (self.fingerprint or "unknown")[:12]
        return {"today": f"today's evaluation suite {fp}",
                "none": "no run has today's evaluation suite yet (--suite FP shows an older one)",
                "pinned": f"evaluation suite {fp} (--suite)",
                }.get(self.suite_how, f"evaluation suite {fp} (most runs')")

    def stale_command(self) -> str:
        return f"fbtui eval --stale {self.project}" + (f" --ablation {self.ablation}" if self.ablation else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project, "ablation": self.ablation, "params": self.params, "metrics": self.metrics,
            "baseline": self.baseline, "fingerprint": self.fingerprint, "suite": self.suite_how,
            "stale": self.stale, "code": self.code,
            "code_state": self.state_hash, "best": self.best, "all_code": self.all_code,
            "set_apart": [x.__dict__ for x in self.set_apart], "unfinished": self.unfinished,
            "notes": self.notes(), "rows": [r.to_dict() for r in self.rows],
        }


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _ids(ids: list[int], limit: int = 12) -> str:
    return ", ".join(f"#{i}" for i in ids[:limit]) + (" …" if len(ids) > limit else "")


def pause_gc() -> Callable[[], None]:
    """Hold off Python's cycle collector while a table of thousands of runs is built; returns what
    lets it run again (once, however often it is called). What a build makes is kept or freed by
    reference counting; meanwhile each collection would walk it and the app's whole heap again and
    free nothing (about a third of a 10,000-run table's build). Process-wide, so only around a
    build; a collector someone else turned off stays off."""
    was = gc.isenabled()
    gc.disable()
    done = False

    def resume() -> None:
        nonlocal done
        if was and not done:
            gc.enable()
        done = True

    return resume


@contextmanager
def gc_paused() -> Iterator[None]:
    """pause_gc() around a block."""
    resume = pause_gc()
    try:
        yield
    finally:
        resume()


def lower_is_better(metric: str) -> bool:
    return bool(LOWER_IS_BETTER.search(metric.rsplit("/", 1)[-1]))


def _stat(values: list[float]) -> Stat:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Stat(mean, std, n)


def ablation_seeds(lab: Lab | None, project: str, ablation: str | None) -> dict[tuple[str | None, str], list[int]]:
    """(ablation, variant) -> the seeds the project's ablations ask for today ({} without a lab)."""
    from fbtui.errors import FBError

    if lab is None:
        return {}
    try:
        from fbtui.config.resolve import expand

        spec = lab.project(project).spec
        out: dict[tuple[str | None, str], list[int]] = {}
        for a in [ablation] if ablation else list(spec.ablations):
            if a in spec.ablations:
                for v in expand(lab, lab.project(project), a):
                    if v.seed is not None:
                        out.setdefault((a, v.name), []).append(v.seed)
        return out
    except FBError:  # a project.yaml that does not load today: rows expect the seeds launched
        return {}


def ablation_table(store: Store, project: str, ablation: str | None = None, *, metrics: list[str] | None = None,
                   baseline: str | None = None, all_code: bool = False, star_partial: bool = False,
                   lab: Lab | None = None, suite: str | None = None, keep: Collection[int] | None = None,
                   archived: bool = False) -> AblationTable:
    """`keep`: only these runs (a filter's); archived runs only with `archived`."""
    cmp_ = store.compare(project, ablation, archived=archived, skip_params=("seed",),
                         metrics=_shown_metrics if metrics is None else metrics)
    if keep is not None:
        cmp_.rows = [r for r in cmp_.rows if r["run"] in keep]
    runs = [r for r in cmp_.rows if r["eval_of"] is None]  # a re-evaluation counts for the run it evaluates
    done = [r for r in runs if r["status"] == "succeeded"]
    unfinished = Counter(r["status"] for r in runs if r["status"] != "succeeded")
    for r in done:  # a run evaluated again later shows its latest evaluation's numbers
        if r["reevaluated"]:
            for k, v in json.loads(r["reevaluated"]).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and f"eval/{k}" in r["metrics"]:
                    r["metrics"][f"eval/{k}"] = float(v)
    # The code state shown: the working tree's, when it has succeeded runs; else the newest state
    # (first seen last) that has. A rerun of an old state does not make that state the newest.
    several = len({r["state_hash"] for r in done}) > 1  # one state: nothing to choose, no git call
    current = _working_tree_state(lab) if lab is not None and several else None
    mine = [r for r in done if r["state_hash"] == current] if current else []
    newest = max(mine or done, key=lambda r: (r["captured_at"] or 0, r["run"])) if done else None
    state = newest["state_hash"] if newest else None
    if suite is not None:
        pin_rows(store, done, suite)
    # Today's suite is computed from the working tree; without itemised evaluations (or a lab),
    # the suite most runs of the code state shown share.
    ref = reference(lab, project, done if lab is not None else [r for r in done if r["state_hash"] == state],
                    pinned=suite)
    fingerprint = ref.fingerprint
    set_apart: list[SetApart] = []
    kept = []
    for r in done:
        if r["state_hash"] != state and not all_code:
            set_apart.append(SetApart(r["run"], r["variant"] or PROJECT_ROW, "code", _code(r), r["fingerprint"]))
        elif r["fingerprint"] != fingerprint:
            set_apart.append(SetApart(r["run"], r["variant"] or PROJECT_ROW, "suite", _code(r), r["fingerprint"],
                                      ref.why(r["run"])))
        else:
            kept.append(r)
    metrics = list(cmp_.metrics)
    params = [p for p in cmp_.params if p != "seed"]
    # Every launched seed of a config is expected, whatever became of its run: the kept runs' seeds
    # are in their rows already, so only the others need looking at.
    shown = {r["run"] for r in kept}
    rows = _group(kept, [r for r in runs if r["run"] not in shown], params, metrics,
                  ablation_seeds(lab, project, ablation))
    # A stable order: variants as they were first launched, then the code shown before older code,
    # then the row's first run (a rerun never moves a row).
    for x in rows:
        x.first = min(x.runs) if not x.repeats else min([*x.runs, *(i for v in x.repeats.values() for i in v)])
    first: dict[tuple[Any, Any], int] = {}
    for x in rows:
        key = (x.ablation, x.variant)
        if x.first < first.get(key, x.first + 1):
            first[key] = x.first
    rows.sort(key=lambda x: (first[(x.ablation, x.variant)], x.state_hash != state, x.first))
    _name_rows(store, rows, multi_ablation=ablation is None and len({r.ablation for r in rows}) > 1,
               newest_state=state, all_code=all_code)
    best: dict[str, str] = {}
    if len(rows) > 1:
        for m in metrics:
            have = [r for r in rows if m in r.metrics and (star_partial or not r.partial)]
            if have:
                pick = min if lower_is_better(m) else max
                best[m] = pick(have, key=lambda r: r.metrics[m].mean).name
    base = next((r for r in rows if r.name == baseline), None)
    if base is None and baseline:  # the ablation's baseline variant, its one row named with extra overrides
        same = [r for r in rows if r.variant == baseline and r.state_hash == state]
        base = same[0] if len(same) == 1 else None
    if base is not None:
        for r in rows:
            r.delta = {m: r.metrics[m].mean - base.metrics[m].mean for m in metrics
                       if m in r.metrics and m in base.metrics}
    return AblationTable(project, ablation, params, metrics, rows, best, base.name if base else None, fingerprint,
                         _code(newest) if newest else None, state, set_apart, dict(unfinished), all_code,
                         star_partial, ref.how, sorted(ref.stale))


def _shown_metrics(keys: list[str]) -> list[str]:
    """The evaluation's metrics (not its sample count) when the runs have any, else every metric."""
    evals = [m for m in keys if m.startswith("eval/") and m != "eval/n"]
    return evals or keys


def _working_tree_state(lab: Lab) -> str | None:
    from fbtui.gitstate import capture

    try:
        return capture(lab.root).state_hash
    except Exception:  # a broken repository: fall back to the newest recorded state
        return None


def _code(r: dict[str, Any]) -> str:
    return short_state(r["sha"], r["dirty"], r["state_hash"])


def _group(kept: list[dict[str, Any]], others: list[dict[str, Any]], params: list[str], metrics: list[str],
           design: dict[tuple[str | None, str], list[int]]) -> list[Row]:
    # Written for 10,000 runs on the app's load path: plain loops, a fast path for the usual
    # group (each seed once), no per-run function calls.
    launched: dict[tuple[Any, ...], set[int]] = {}
    for r in others:  # the seeds launched but not shown: failed, running, set apart
        if r["seed"] is not None:
            launched.setdefault((r["ablation"], r["variant"], r["state_hash"], r["config_hash"]), set()).add(r["seed"])
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in kept:
        groups.setdefault((r["ablation"], r["variant"], r["state_hash"], r["config_hash"], r["fingerprint"]),
                          []).append(r)
    rows = []
    codes: dict[str | None, str] = {}  # state -> its short name, made once
    for key, members in groups.items():
        repeats: dict[str, list[int]] = {}
        seeds = [r["seed"] for r in members]
        if len(members) == 1:
            samples = members
        elif len(set(seeds)) == len(members):
            # Runs arrive in id order, and seeds are usually launched in order: sort only if not.
            if None in seeds or seeds != sorted(seeds):
                samples = sorted(members, key=lambda r: (r["seed"] is None, r["seed"] or 0))
                seeds = [r["seed"] for r in samples]
            else:
                samples = members
        else:
            by_seed: dict[int | None, list[dict[str, Any]]] = {}
            for r in members:
                by_seed.setdefault(r["seed"], []).append(r)
            samples = []
            for seed in sorted(by_seed, key=lambda s: (s is None, s or 0)):
                latest = sorted(by_seed[seed], key=lambda r: (r["finished_at"] or 0, r["run"]))
                samples.append(latest[-1])
                if len(latest) > 1:
                    repeats[str(seed)] = [r["run"] for r in latest[:-1]]
            seeds = [r["seed"] for r in samples]
        stats = {}
        if len(samples) == 2:  # the usual two seeds, _stat's arithmetic inlined (the same floats)
            f0, f1 = samples[0]["metrics"], samples[1]["metrics"]
            for m in metrics:
                a, b = f0.get(m), f1.get(m)
                if a is not None and b is not None:
                    mean = (0 + a + b) / 2  # 0 + as sum() starts: the same float, -0.0 included
                    stats[m] = Stat(mean, math.sqrt((a - mean) ** 2 + (b - mean) ** 2), 2)
                elif a is not None or b is not None:
                    stats[m] = Stat(a if a is not None else b, 0.0, 1)
        else:
            finals = [r["metrics"] for r in samples]
            for m in metrics:
                values = [x[m] for x in finals if x.get(m) is not None]
                if len(values) == 1:
                    stats[m] = Stat(values[0], 0.0, 1)
                elif values:
                    stats[m] = _stat(values)
        first = samples[0]
        designed = design.get((first["ablation"], first["variant"] or ""))
        have = launched.get(key[:4])
        if designed or have or None in seeds:
            expected = sorted({*(designed or ()), *(have or ()), *(x for x in seeds if x is not None)})
        else:  # the seeds shown, distinct and in order already
            expected = list(seeds)
        state = first["state_hash"]
        code = codes.get(state)
        if code is None:
            code = codes[state] = _code(first)
        p = first["params"]
        rows.append(Row(  # name, ablation, variant, runs, seeds, expected, params, metrics, fingerprint,
            # state_hash, code, config_hash, overrides, repeats: positional (a third of the cost)
            "", first["ablation"], first["variant"], [r["run"] for r in samples], seeds, expected,
            dict(zip(params, map(p.get, params))), stats, first["fingerprint"], state, code, first["config_hash"],
            list(first["overrides"] or ()), repeats))
    return rows


def _name_rows(store: Store, rows: list[Row], *, multi_ablation: bool, newest_state: str | None,
               all_code: bool) -> None:
    """Each row: its variant, plus what its config differs by from the variant's plain row (or,
    without one, the -o overrides it was launched with), plus @code for an older code state."""
    from fbtui.config.resolve import format_value

    families: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        families.setdefault((r.ablation, r.variant, r.state_hash), []).append(r)
    # Only a family of several rows, or a row launched with -o, needs the configs to name its rows.
    named = [f for f in families.values() if len(f) > 1 or f[0].overrides]
    every = store.params_of([r.runs[-1] for f in named for r in f])
    for family in named:  # a lone plain row is named by its variant alone
        plain = [r for r in family if not r.overrides]
        ref = max(plain, key=lambda r: max(r.runs)) if plain else None
        flat = {r.runs[-1]: every[r.runs[-1]] for r in family if r.runs[-1] in every}
        for r in family:
            if r is ref or not flat:
                r.overrides = []
                continue
            mine = flat[r.runs[-1]]
            if ref is not None:
                theirs = flat[ref.runs[-1]]
                keys = sorted(k for k in set(mine) | set(theirs) if k != "seed" and mine.get(k) != theirs.get(k))
            else:
                keys = [o.partition("=")[0].strip() for o in r.overrides]
            r.overrides = [f"{k}={format_value(mine.get(k))}" for k in dict.fromkeys(keys)]
    for r in rows:
        name = r.variant or PROJECT_ROW
        if multi_ablation and r.ablation:
            name = f"{r.ablation}/{name}"
        if not r.overrides and not all_code:
            r.name = name
            continue
        if r.overrides:
            name += " + " + ", ".join(r.overrides)
        if all_code and r.state_hash != newest_state:
            name += f" @{r.code}"
        r.name = name
    seen = Counter(r.name for r in rows)
    for r in rows:  # still the same name (the same config edited back and forth): the first run tells
        if seen[r.name] > 1:
            r.name += f" #{min(r.runs)}"
