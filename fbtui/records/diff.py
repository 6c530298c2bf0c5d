"""What differs between two runs: config, code, images, components, evaluation suite, results.
What a researcher runs when two numbers disagree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

MAX_PATCH_LINES = 2000  # the code diff printed; --json carries it whole


def code_between(lab_root: Path, a: str | None, b: str | None) -> tuple[str | None, str | None]:
    """(stat, patch) of the committed change from a to b within the lab, or (None, why) when git
    cannot say (a commit gone from the repository, no repository)."""
    import git

    if not a or not b:
        return None, "one of the runs has no commit recorded"
    try:
        with git.Repo(lab_root, search_parent_directories=True) as repo:
            rel = Path(lab_root).resolve().relative_to(Path(repo.working_tree_dir or lab_root).resolve()).as_posix()
            missing = []
            for sha in (a, b):
                try:
                    repo.git.cat_file("-e", f"{sha}^{{commit}}")
                except git.GitCommandError:
                    missing.append(sha[:10])
            if missing:
                return None, (f"commit {' and '.join(missing)} is no longer in the repository (rebased or pruned?): "
                              "the committed change cannot be shown; each side's uncommitted diff is below")
            stat = repo.git.diff("--stat", a, b, "--", rel or ".")
            patch = repo.git.diff("--no-color", a, b, "--", rel or ".")
            return stat, patch
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None, "the lab is not a git repository"


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    from fbtui.config.resolve import flatten

    return flatten(config)


def run_diff(lab: Lab, store: Store, a: int, b: int) -> dict[str, Any]:
    from fbtui.records.show import run_record

    ra, rb = run_record(lab, store, a, with_diff=True), run_record(lab, store, b, with_diff=True)
    fa, fb = _flat(ra["config"]), _flat(rb["config"])
    config = [{"key": k, "a": fa.get(k), "b": fb.get(k), "a_origin": ra["origins"].get(k),
               "b_origin": rb["origins"].get(k)}
              for k in sorted(set(fa) | set(fb)) if fa.get(k, ...) != fb.get(k, ...)]
    ca, cb = ra["code"], rb["code"]
    code: dict[str, Any] = {"same": bool(ca) and ca.get("state") == cb.get("state"),
                            "a": ca.get("short"), "b": cb.get("short")}
    if not code["same"]:
        if ca.get("sha") != cb.get("sha"):
            stat, patch = code_between(lab.root, ca.get("sha"), cb.get("sha"))
            code.update({"stat": stat, "patch": patch if stat is not None else None,
                         "problem": None if stat is not None else patch})
        code["a_diff"] = ca.get("diff") or ""
        code["b_diff"] = cb.get("diff") or ""
        ua = {f["path"]: f["sha256"] for f in ca.get("untracked", [])}
        ub = {f["path"]: f["sha256"] for f in cb.get("untracked", [])}
        code["untracked"] = [{"path": p, "a": ua.get(p), "b": ub.get(p)}
                             for p in sorted(set(ua) | set(ub)) if ua.get(p) != ub.get(p)]
    la = {x.get("layer"): x for x in ra["images"]}
    lb = {x.get("layer"): x for x in rb["images"]}
    images = [{"layer": k, "a": (la.get(k) or {}).get("tag"), "b": (lb.get(k) or {}).get("tag"),
               "a_id": (la.get(k) or {}).get("id"), "b_id": (lb.get(k) or {}).get("id")}
              for k in ("base", "env", "proj") if (la.get(k) or {}).get("tag") != (lb.get(k) or {}).get("tag")
              or (la.get(k) or {}).get("id") != (lb.get(k) or {}).get("id")]
    ka = {x.get("kind"): x for x in ra["components"]}
    kb = {x.get("kind"): x for x in rb["components"]}
    components = [{"kind": k, "a": _comp(ka.get(k)), "b": _comp(kb.get(k))}
                  for k in sorted(set(ka) | set(kb)) if _comp(ka.get(k)) != _comp(kb.get(k))]
    ea = ra["evaluations"][-1]["fingerprint"] if ra["evaluations"] else None
    eb = rb["evaluations"][-1]["fingerprint"] if rb["evaluations"] else None
    ma, mb = ra["metrics"], rb["metrics"]
    metrics = [{"key": k, "a": ma.get(k), "b": mb.get(k)} for k in sorted(set(ma) | set(mb))
               if k.startswith("eval/") and ma.get(k) != mb.get(k)]
    return {"a": a, "b": b, "config": config, "code": code, "images": images, "components": components,
            "evaluation": {"same": ea == eb, "a": ea, "b": eb}, "metrics": metrics,
            "runs": {"a": _summary(ra), "b": _summary(rb)}}


def _comp(x: dict[str, Any] | None) -> str | None:
    if not x:
        return None
    return f"{x.get('name')} ({x.get('origin')}, {(x.get('sha256') or '')[:12]})"


def _summary(r: dict[str, Any]) -> str:
    return (f"#{r['run']} {r['project']} {r['variant'] or ''} seed {r['seed']} {r['status']} "
            f"on {r['code'].get('short', '?')}").replace("  ", " ")


def render(d: dict[str, Any], *, stat_only: bool = False) -> str:
    from fbtui.output import table, yaml_scalar

    out = [f"a: {d['runs']['a']}", f"b: {d['runs']['b']}", ""]
    if d["config"]:
        out.append(table(["CONFIG KEY", f"#{d['a']}", f"#{d['b']}", "WHERE SET (a / b)"],
                         [[c["key"], yaml_scalar(c["a"]), yaml_scalar(c["b"]),
                           f"{c['a_origin'] or '-'} / {c['b_origin'] or '-'}"] for c in d["config"]]))
    else:
        out.append("config: the same")
    out.append("")
    ev = d["evaluation"]
    out.append("evaluation suite: the same" if ev["same"] else
               f"evaluation suite: differs ({(ev['a'] or 'none')[:12]} vs {(ev['b'] or 'none')[:12]}): "
               "their results are not comparable; fbtui eval brings both to today's suite")
    if d["metrics"]:
        out.append(table(["RESULT", f"#{d['a']}", f"#{d['b']}", "B - A"],
                         [[m["key"], _num(m["a"]), _num(m["b"]),
                           f"{m['b'] - m['a']:+.6f}" if m["a"] is not None and m["b"] is not None else "-"]
                          for m in d["metrics"]]))
    else:
        out.append("results (eval/): the same, to the last bit")
    out.append("")
    if d["images"]:
        out.append(table(["IMAGE", f"#{d['a']}", f"#{d['b']}"],
                         [[i["layer"], i["a"] or "-", i["b"] or "-"] for i in d["images"]]))
    else:
        out.append("images: the same")
    if d["components"]:
        out.append(table(["COMPONENT", f"#{d['a']}", f"#{d['b']}"],
                         [[c["kind"], c["a"] or "-", c["b"] or "-"] for c in d["components"]]))
    else:
        out.append("components: the same")
    out.append("")
    code = d["code"]
    if code["same"]:
        out.append(f"code: the same state ({code['a']})")
        return "\n".join(out)
    out.append(f"code: {code['a']} -> {code['b']}")
    if code.get("problem"):
        out.append(f"  {code['problem']}")
    if code.get("stat"):
        out.append(code["stat"])
        if not stat_only and code.get("patch"):
            lines = code["patch"].splitlines()
            out.extend(lines[:MAX_PATCH_LINES])
            if len(lines) > MAX_PATCH_LINES:
                out.append(f"… {len(lines) - MAX_PATCH_LINES} more lines (--json carries the whole patch)")
    for u in code.get("untracked", []):
        out.append(f"  untracked {u['path']}: {(u['a'] or 'absent')[:12]} -> {(u['b'] or 'absent')[:12]}")
    for side in ("a", "b"):
        diff = code.get(f"{side}_diff")
        if diff:
            n = len(diff.splitlines())
            files = sorted({x[6:] for x in diff.splitlines() if x.startswith("+++ b/")})
            out.append(f"uncommitted diff of #{d[side]} ({n} lines in {', '.join(files) or '?'})"
                       + (":" if not stat_only else ""))
            if not stat_only:
                out.extend(diff.splitlines()[:MAX_PATCH_LINES])
    return "\n".join(out)


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.6f}"
