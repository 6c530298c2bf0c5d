"""Today's evaluation suite: whether a recorded evaluation is what the working tree would compute.

An evaluation report itemises what its fingerprint covers (common/fingerprints.py): the suite's
code files with their hashes, its config section, and the data's digest with what prepared it.
Each part is checked against the working tree, nothing is voted:

- code: the same files hash the same today;
- config: today's resolution of the run's own config (its variant and -o overrides) has the same
  section;
- data: its digest equals today's data digest, which is known once some evaluation's data was
  prepared by code and a `data` config that are today's (until then, data whose preparing code
  changed is not today's data).

An evaluation without `covers` (a stage of before, or one that does not itemise) cannot be checked:
the comparison falls back to the suite most of its runs share, and says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fbtui.config.resolve import flatten

if TYPE_CHECKING:
    from fbtui.lab import Lab


@dataclass
class Verdict:
    current: bool
    differs: list[str] = field(default_factory=list)  # "code common/evaluation.py", "config eval.ece_bins", ...

    def text(self) -> str:
        return "; ".join(self.differs) if self.differs else "today's suite"


_MISSING = object()  # a section of a config that does not load today


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class Today:
    """The working tree's side of one project's evaluations; caches file hashes and configs."""

    def __init__(self, lab: Lab, project: str, fixed: dict[str, Any] | None = None) -> None:
        self.lab, self.project = lab, project
        self.fixed = fixed  # a lab-wide suite: its sections are today's config for every run
        self._sha: dict[str, str | None] = {}
        self._config: dict[Any, dict[str, Any] | None] = {}  # resolution key (or "base") -> config
        self._sections: dict[tuple[Any, ...], set[str]] = {}
        self._ablations: dict[str | None, dict[str, Any]] = {}
        self._verdicts: dict[tuple[Any, ...], tuple[dict[str, Any], Verdict]] = {}
        self._named: dict[int, tuple[dict[str, Any], set[str]]] = {}  # id(covers) -> (covers, its sections)
        self._data: dict[str, str] | None = None  # today's data config (canonical) -> digest

    # ------------------------------------------------------------ the working tree

    def file_sha(self, path: str) -> str | None:
        """sha256 of a lab path as the report names it (`project/…` is this project's folder)."""
        if path not in self._sha:
            rel = f"projects/{self.project}/{path[len('project/'):]}" if path.startswith("project/") else path
            file = self.lab.root / rel
            try:
                self._sha[path] = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None
            except OSError:
                self._sha[path] = None
        return self._sha[path]

    def config(self, run: dict[str, Any]) -> dict[str, Any] | None:
        """Today's resolved config for a run's variant and overrides (None: it does not resolve)."""
        if self.fixed is not None:
            return self.fixed
        key = self._key(run)
        if key not in self._config:
            self._config[key] = self._resolve(*key)
        return self._config[key]

    def section(self, run: dict[str, Any], name: str) -> Any:
        """Today's value of one top-level config section for a run (_MISSING: it does not load).
        A run whose variant and -o overrides touch no key of the section has the project's own:
        one resolution serves every such run (a sweep of thousands of variants stays fast)."""
        if self.fixed is not None:
            return self.fixed.get(name)
        config = self.config(run) if name in self._touched(run) else self._base()
        return _MISSING if config is None else config.get(name)

    def _key(self, run: dict[str, Any]) -> tuple[Any, ...]:
        return run.get("ablation"), run.get("variant"), tuple(run.get("overrides") or ())

    def _touched(self, run: dict[str, Any], key: tuple[Any, ...] | None = None) -> set[str]:
        """The top-level sections a run's variant and -o overrides set (`key`: its _key, if made)."""
        key = key or self._key(run)
        if key not in self._sections:
            ablation, variant, overrides = key
            chosen = self._variants(ablation).get(variant or "")
            if chosen is None and not overrides:  # (a variant today's project.yaml no longer has)
                self._sections[key] = set()
                return self._sections[key]
            keys = [o.partition("=")[0].strip() for o in overrides]
            keys += list(chosen.overrides) if chosen is not None else []
            self._sections[key] = {k.split(".", 1)[0] for k in keys}
        return self._sections[key]

    def _variants(self, ablation: str | None) -> dict[str, Any]:
        if ablation not in self._ablations:  # (runs per variant: only the first call per ablation imports)
            from fbtui.config.resolve import expand
            from fbtui.errors import FBError

            try:
                project = self.lab.project(self.project)
                found = {v.name: v for v in expand(self.lab, project, ablation)} \
                    if ablation and ablation in project.spec.ablations else {}
            except FBError:
                found = {}
            self._ablations[ablation] = found
        return self._ablations[ablation]

    def _base(self) -> dict[str, Any] | None:
        if "base" not in self._config:
            self._config["base"] = self._resolve(None, None, ())
        return self._config["base"]

    def _resolve(self, ablation: str | None, variant: str | None, overrides: tuple[str, ...]) -> dict[str, Any] | None:
        from fbtui.config.resolve import resolve
        from fbtui.errors import FBError

        try:
            project = self.lab.project(self.project)
            chosen = self._variants(ablation).get(variant or "")
            try:
                return resolve(self.lab, project, chosen, list(overrides)).config
            except FBError:  # an -o of before that today's config no longer takes
                return resolve(self.lab, project, chosen).config
        except FBError:
            return None

    def code_changes(self, code: dict[str, str]) -> list[str]:
        return [p for p, sha in sorted(code.items()) if self.file_sha(p) != sha]

    def config_changes(self, recorded: dict[str, Any], run: dict[str, Any]) -> list[str] | None:
        """Dotted keys of the recorded sections that differ today (None: today's config does not load)."""
        out = []
        for section, value in recorded.items():
            now = self.section(run, section)
            if now is _MISSING:
                return None
            if _canon(now) != _canon(value):
                a = flatten(value, section + ".") if isinstance(value, dict) else {section: value}
                b = flatten(now, section + ".") if isinstance(now, dict) else {section: now}
                out += sorted(k for k in a.keys() | b.keys() if _canon(a.get(k)) != _canon(b.get(k))) or [section]
        return out

    # ------------------------------------------------------------ judging

    def learn_data(self, evaluations: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Today's data digests, from evaluations (covers, run) whose data was prepared by today's
        code and data config; the newest wins (they are listed oldest first)."""
        self._data = {}
        seen: dict[tuple[Any, ...], dict[str, Any]] = {}  # (keeps each id's object alive)
        for covers, run in evaluations:
            key = self.share_key(covers, run)
            if key in seen:  # the same covers and config as a run before: nothing new to learn
                continue
            seen[key] = covers
            data = covers.get("data") or {}
            made = data.get("made_by")
            if not isinstance(made, dict) or not data.get("digest"):
                continue
            if not self.code_changes(made.get("code") or {}) and \
                    self.config_changes(made.get("config") or {}, run) == []:
                self._data[_canon(made.get("config"))] = str(data["digest"])

    def data_digest(self, run: dict[str, Any], made_config: dict[str, Any] | None) -> str | None:
        if self._data is None or not made_config:
            return None
        today = {k: self.section(run, k) for k in made_config}
        if any(v is _MISSING for v in today.values()):
            return None
        return self._data.get(_canon(today))

    def judge(self, covers: dict[str, Any] | None, run: dict[str, Any]) -> Verdict | None:
        """Whether an evaluation is under today's suite (None: it does not say what it covers).
        Runs that share one decoded covers and today's config share the verdict (10,000 runs)."""
        if not isinstance(covers, dict) or not isinstance(covers.get("code"), dict):
            return None
        key = self.share_key(covers, run)
        if key not in self._verdicts:
            self._verdicts[key] = (covers, self._judge(covers, run))  # (keeps the id's object alive)
        return self._verdicts[key][1]

    def share_key(self, covers: dict[str, Any], run: dict[str, Any]) -> tuple[Any, ...]:
        """Runs whose overrides touch none of the sections these covers name see the same today."""
        if self.fixed is not None:
            return id(covers), "fixed"
        found = self._named.get(id(covers))
        if found is None:  # once per decoded covers (runs share them): ~10 us a run at 10,000 runs
            made = (covers.get("data") or {}).get("made_by") or {}
            named = {*(covers.get("config") or {}), *(made.get("config") or {} if isinstance(made, dict) else {}),
                     "data"}
            found = self._named[id(covers)] = (covers, named)  # (keeps the id's object alive)
        key = self._key(run)
        return id(covers), key if self._touched(run, key) & found[1] else "base"

    def _judge(self, covers: dict[str, Any], run: dict[str, Any]) -> Verdict:
        differs = [f"code {p}" for p in self.code_changes(covers["code"])]
        changed = self.config_changes(covers.get("config") or {}, run)
        if changed is None:
            differs.append("config (today's project.yaml does not load)")
        else:
            differs += [f"config {k}" for k in changed[:3]] + (["config …"] if len(changed) > 3 else [])
        data = covers.get("data") or {}
        made = data.get("made_by") if isinstance(data.get("made_by"), dict) else None
        made_config = (made or {}).get("config") or {"data": None}
        today = self.data_digest(run, made_config)
        if today is not None:
            if today != data.get("digest"):
                differs.append("data (another digest)")
        elif made is not None and (files := self.code_changes(made.get("code") or {})):
            differs.append(f"data (prepared by older {', '.join(files[:2])}; today's not prepared yet)")
        elif made is not None and (keys := self.config_changes(made.get("config") or {}, run)):
            differs.append(f"data (config {', '.join(keys[:2])}; today's not prepared yet)")
        else:
            differs.append("data (not known to be today's: no evaluation says what prepared today's data)")
        return Verdict(not differs, differs)


@dataclass
class Reference:
    """The suite a comparison shows, and each run's standing against it."""

    fingerprint: str | None
    how: str  # "today" (computed), "none" (no run has today's suite), "pinned" (asked for), "voted" (no covers)
    verdicts: dict[int, Verdict] = field(default_factory=dict)  # run -> against today (runs with covers)
    stale: list[int] = field(default_factory=list)  # runs whose latest evaluation is not today's suite

    def why(self, run: int) -> str:
        v = self.verdicts.get(run)
        return v.text() if v is not None and v.differs else "another suite"


NOT_ITEMISED = "not itemised (evaluated before evaluations said what their fingerprint covers)"


def reference(lab: Lab | None, project: str, rows: list[dict[str, Any]], pinned: str | None = None,
              today: Today | None = None) -> Reference:
    """Today's suite for these runs (each a comparison row with `fingerprint` and `covers` of its
    latest evaluation, oldest run first), or the one pinned by a fingerprint prefix."""
    if pinned is not None:
        found = sorted({r["fingerprint"] for r in rows if r["fingerprint"] and r["fingerprint"].startswith(pinned)})
        if len(found) != 1:
            from fbtui.errors import UsageError

            known = sorted({(r["fingerprint"] or "")[:12] for r in rows if r["fingerprint"]})
            raise UsageError(f"--suite {pinned}: " + ("matches several suites" if found else "no run has that suite")
                             + f" (suites: {', '.join(known) or 'none'})")
    # Runs that share decoded covers, variant and overrides share a verdict: judged once (10,000
    # runs are a few hundred such groups; per run, only the lookups below).
    same: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        same.setdefault((id(r.get("covers")), r.get("ablation"), r.get("variant"), tuple(r.get("overrides") or ())),
                        []).append(r)
    itemised = any(isinstance(g[0].get("covers"), dict) for g in same.values())
    if lab is None or not itemised:  # nothing to check against the working tree: the common suite
        counts: dict[str, list[int]] = {}
        for r in rows:
            if r["fingerprint"]:
                counts.setdefault(r["fingerprint"], []).append(r["run"])
        voted = max(counts, key=lambda f: (len(counts[f]), max(counts[f]))) if counts else None
        fp = found[0] if pinned is not None else voted
        return Reference(fp, "pinned" if pinned is not None else "voted",
                         stale=[r["run"] for r in rows if r["fingerprint"] != voted])
    today = today or Today(lab, project)
    # Groups that see the same today (their overrides touch no section the covers name: most) are
    # learnt from and judged once, by their first run.
    shares = [today.share_key(g[0]["covers"], g[0]) if isinstance(g[0].get("covers"), dict) else None
              for g in same.values()]
    firsts: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}
    for g, k in zip(same.values(), shares):
        if k is not None and k not in firsts:
            firsts[k] = (g[0]["covers"], g[0])
    today.learn_data(list(firsts.values()))  # (still oldest first)
    judged = {k: today.judge(c, r) for k, (c, r) in firsts.items()}
    verdicts: dict[int, Verdict] = {}
    current: dict[str, list[int]] = {}
    behind: set[int] = set()
    for group, k in zip(same.values(), shares):
        v = judged[k] if k is not None else None
        v = v if v is not None else Verdict(False, [NOT_ITEMISED])
        ids = [r["run"] for r in group]
        verdicts.update(dict.fromkeys(ids, v))
        if not v.current:
            behind.update(ids)
            continue
        for r in group:
            if r["fingerprint"]:
                current.setdefault(r["fingerprint"], []).append(r["run"])
    stale = [r["run"] for r in rows if r["run"] in behind] if behind else []  # (in the rows' order)
    if pinned is not None:
        return Reference(found[0], "pinned", verdicts, stale)
    if not current:
        return Reference(None, "none", verdicts, stale)
    # Today's suite for every run, but a variant may evaluate its own way (another eval or data
    # config): the suite most current runs share is shown, the others are their own suites.
    fp = max(current, key=lambda f: (len(current[f]), max(current[f])))
    for f, ids in current.items():
        if f != fp:
            for i in ids:
                verdicts[i] = Verdict(True, ["its own eval or data config: today's suite for it, not for the others"])
    return Reference(fp, "today", verdicts, stale)


def stale_runs(lab: Lab, store: Any, project: str, ablation: str | None = None) -> Reference:
    """A project's succeeded runs judged against today's suite (`.stale`: those to re-evaluate)."""
    rows = [r for r in store.compare(project, ablation, params=[], metrics=[]).rows
            if r["eval_of"] is None and r["status"] == "succeeded"]
    return reference(lab, project, rows)


def pin_rows(store: Any, rows: list[dict[str, Any]], prefix: str) -> None:
    """--suite FP: each run's latest evaluation under that suite stands in for its latest one, so
    an older suite shows the runs that were evaluated under it, even after a re-evaluation."""
    found = {e["run_id"]: e for e in store.query(
        "SELECT run_id, fingerprint, results, covers FROM evaluations WHERE suite IS NULL "
        "AND substr(fingerprint, 1, ?) = ? ORDER BY id", (len(prefix), prefix))}
    for r in rows:
        e = found.get(r["run"])
        if e is None:
            continue
        r["fingerprint"], r["covers"] = e["fingerprint"], json.loads(e["covers"]) if e["covers"] else None
        for k, v in json.loads(e["results"] or "{}").items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and f"eval/{k}" in r["metrics"]:
                r["metrics"][f"eval/{k}"] = float(v)
