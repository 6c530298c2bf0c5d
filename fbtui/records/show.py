"""The whole record of one run: what ran, on what code and images, with what config, where, how
long, what it produced and how it was evaluated."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fbtui.errors import FBError
from fbtui.images.freeze import layer_packages
from fbtui.records.identity import short_state

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

COMPONENTS_FILE = "components.json"
MAX_COMPONENTS_BYTES = 1 << 20


class RunNotFound(FBError):
    pass


def reason_line(reason: str | None, width: int = 160) -> str:
    """A failure reason in one line: its first line, and for 'exit code 1; last lines:' the last
    log line too, which is usually the error itself."""
    if not reason:
        return ""
    lines = [x.strip() for x in reason.splitlines() if x.strip()]
    head = lines[0]
    if head.endswith("last lines:") and len(lines) > 1:
        head = head[: -len("; last lines:")].rstrip(";") + ": " + lines[-1]
    return head if len(head) <= width else head[: width - 1] + "…"


def get_run(store: Store, run_id: int) -> dict[str, Any]:
    rows = store.query("SELECT * FROM runs WHERE id = ?", (run_id,))
    if not rows:
        gone = store.deleted_run(run_id)
        if gone:
            raise RunNotFound(f"run {run_id} ({gone['project']}) was deleted on {_when(gone['deleted_at'])}",
                              hint="fbtui ps --all lists recent runs")
        last = store.query("SELECT MAX(id) AS n FROM runs")[0]["n"]
        raise RunNotFound(f"no run {run_id} in this lab" + (f" (runs are #1 to #{last})" if last else " (no runs yet)"),
                          hint="fbtui ps --all lists recent runs")
    return rows[0]


def commit_in_repo(lab_root: Path, sha: str | None) -> bool | None:
    """Whether the repository still has this commit (None: no repository or no sha)."""
    import git

    if not sha:
        return None
    try:
        with git.Repo(lab_root, search_parent_directories=True) as repo:
            repo.git.cat_file("-e", f"{sha}^{{commit}}")
            return True
    except git.GitCommandError:
        return False
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def _components(lab: Lab, stages: list[dict[str, Any]], run_id: int) -> list[dict[str, Any]]:
    """The components the train stage recorded (name, origin, source hash), read without following
    links and at most 1 MiB: a stage's output is data, not something to trust."""
    from fbtui.pipeline.supervisor import run_folder

    for st in stages:
        places = []
        if st.get("out") and Path(st["out"]).is_absolute():
            places.append(Path(st["out"]) / COMPONENTS_FILE)
        places.append(run_folder(lab, run_id) / st["name"] / "out" / COMPONENTS_FILE)  # copied back
        for path in places:
            try:
                if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_COMPONENTS_BYTES:
                    continue
                data = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            items = data.get("components", data) if isinstance(data, dict) else data
            if isinstance(items, dict):
                return [{"kind": k, **(v if isinstance(v, dict) else {"name": v})} for k, v in items.items()]
            if isinstance(items, list):
                return [x for x in items if isinstance(x, dict)]
    return []


def run_record(lab: Lab, store: Store, run_id: int, *, with_diff: bool = False) -> dict[str, Any]:
    from fbtui.pipeline.ingest import degraded_note, full_disk_line

    run = get_run(store, run_id)
    stages = store.stages(run_id)
    full = full_disk_line(store.path)
    commit = store.commit(run["commit_id"]) if run["commit_id"] else None
    config = yaml.safe_load(run["config"]) or {}
    origins = json.loads(run["origins"] or "{}")
    layers = json.loads(run["layers"]) if run.get("layers") else []
    if not layers and run["image"]:  # recorded before v5: what the images table knows of its tag
        known = store.query("SELECT tag, digest AS id, layer, name, inputs_hash, host FROM images WHERE tag = ?",
                            (run["image"],))
        layers = known or [{"layer": "proj", "tag": run["image"], "id": None}]
    for x in layers:  # what each image holds: its pip freeze, recorded when it was built
        x["packages"] = layer_packages(store, x.get("tag"), x.get("id"))
    by_id = {s["id"]: s for s in store.query(
        "SELECT id, run_id, name FROM stages WHERE id IN (SELECT cached_from FROM stages WHERE run_id = ?)",
        (run_id,))}
    recorded = {x.get("name"): x for x in json.loads(run["pipeline"])} if run.get("pipeline") else {}
    out_stages = []
    for s in stages:
        src = by_id.get(s["cached_from"]) if s["cached_from"] else None
        out_stages.append({
            "name": s["name"], "status": s["status"], "reason": s["reason"], "host": s["host"],
            "degraded": degraded_note(s, bool(full)),  # the store cannot take its progress now
            "command": json.loads(s["command"]) if s.get("command") else None, "image": s["image"] or run["image"],
            "container": (s["container_id"] or "")[:12] or None, "exit_code": s["exit_code"], "gpus": s["gpus"],
            "run_as": s.get("run_as"),  # uid:gid; "0:0" is root (a stage's user: root, or a rootless engine)
            "started_at": s["started_at"], "finished_at": s["finished_at"],
            "seconds": round(s["finished_at"] - s["started_at"], 2) if s["started_at"] and s["finished_at"] else None,
            "cached_from": {"run": src["run_id"], "stage": src["name"]} if src else None,
            # when its host stopped answering past the grace period and when it was found again
            "interruptions": json.loads(s["interruptions"]) if s.get("interruptions") else [],
            "lost_at": s.get("lost_at"),
            # values set in the stage's environment (rendered at launch); secrets are never recorded
            "env": (recorded.get(s["name"]) or {}).get("env") if isinstance((recorded.get(s["name"]) or {}).get(
                "env"), dict) else {},
        })
    artifacts = store.query("SELECT stage, path, size, sha256, host FROM artifacts WHERE run_id = ? ORDER BY id",
                            (run_id,))
    evaluations = run_evaluations(lab, store, run)
    code: dict[str, Any] = {}
    if commit:
        untracked = json.loads(commit["untracked"] or "[]")
        code = {
            "state": commit["state_hash"], "short": short_state(commit["sha"], commit["dirty"], commit["state_hash"]),
            "is_repo": bool(commit["is_repo"]), "sha": commit["sha"], "branch": commit["branch"],
            "dirty": bool(commit["dirty"]), "diff_lines": len((commit["diff"] or "").splitlines()),
            "diff_files": sorted({line[6:] for line in (commit["diff"] or "").splitlines()
                                  if line.startswith("+++ b/")}),
            "untracked": untracked, "in_repository": commit_in_repo(lab.root, commit["sha"]),
        }
        if with_diff:
            code["diff"] = commit["diff"] or ""
    created, started, finished = run["created_at"], run["started_at"], run["finished_at"]
    return {
        "run": run_id, "project": run["project"], "ablation": run["ablation"], "variant": run["variant"],
        "seed": run["seed"], "status": run["status"], "reason": run["reason"], "host": run["host"],
        "requested_host": run["requested_host"], "overrides": json.loads(run.get("overrides") or "[]"),
        "rerun_of": run.get("rerun_of"), "eval_of": run["eval_of"], "source": run.get("source"),
        "no_cache": bool(run["no_cache"]), "only_stages": run["only_stages"],
        "note": run.get("note"), "tags": store.tags(run_id), "archived_at": run.get("archived_at"),
        "times": {"created": created, "started": started, "finished": finished,
                  "queued_seconds": round(started - created, 2) if started and created else None,
                  "run_seconds": round(finished - started, 2) if finished and started else None},
        "config": config, "origins": origins, "config_hash": run.get("config_hash"), "code": code,
        "images": layers, "components": _components(lab, stages, run_id), "stages": out_stages,
        "artifacts": artifacts, "evaluations": evaluations, "metrics": store.final_metrics(run_id),
        "suites": _suite_scores(store, run_id),
        "metric_sources": store.metric_sources(run_id),  # stdout / event files: offsets, what was not read
        "store_disk_full": bool(full),
    }


def run_evaluations(lab: Lab, store: Store, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Each evaluation with what its fingerprint covers; the latest with whether it is today's suite."""
    evs = [{"stage": e["stage"], "suite": e["suite"], "fingerprint": e["fingerprint"], "results": e["results"],
            "created_at": e["created_at"], "made_by_run": e["made_by_run"], "covers": e["covers"]}
           for e in store.evaluations(run["id"])]
    if evs and run["status"] == "succeeded" and not run["eval_of"]:
        from fbtui.errors import FBError
        from fbtui.records.suite import stale_runs

        try:
            ref = stale_runs(lab, store, run["project"])
        except FBError:  # today's project does not load: nothing to judge against
            return evs
        if ref.how != "voted":
            evs[-1]["today"] = run["id"] not in ref.stale
            evs[-1]["differs"] = ref.verdicts[run["id"]].differs if run["id"] in ref.verdicts else []
    return evs


def _suite_scores(store: Store, run_id: int) -> list[dict[str, Any]]:
    """The run's latest score on each lab-wide suite (fbtui eval --suite, or auto)."""
    rows = store.query("SELECT * FROM evaluations WHERE id IN (SELECT MAX(id) FROM evaluations WHERE run_id = ? "
                       "AND suite IS NOT NULL GROUP BY suite) ORDER BY suite", (run_id,))
    return [{"suite": r["suite"], "fingerprint": r["fingerprint"], "results": json.loads(r["results"] or "{}"),
             "created_at": r["created_at"], "made_by_run": r["made_by_run"],
             "covers": json.loads(r["covers"]) if r["covers"] else None} for r in rows]


def covers_lines(covers: dict[str, Any] | None, width: int = 76) -> list[str]:
    """What a fingerprint covers, a line per part (show and the app)."""
    if not isinstance(covers, dict):
        return ["covers: not itemised (an evaluation of before, or a stage that does not say)"]
    out = ["covers:"]
    for path, sha in (covers.get("code") or {}).items():
        out.append(f"  code   {path}  {str(sha)[:12]}")
    for section, value in (covers.get("config") or {}).items():
        out.append(_clip(f"  config {section}: {json.dumps(value, sort_keys=True)}", width))
    data = covers.get("data") or {}
    if data:
        out.append(f"  data   {data.get('split', '?')} split {str(data.get('digest'))[:12]}")
        made = data.get("made_by") or {}
        for path, sha in (made.get("code") or {}).items():
            out.append(f"         prepared by {path}  {str(sha)[:12]}")
        for section, value in (made.get("config") or {}).items():
            out.append(_clip(f"         with {section}: {json.dumps(value, sort_keys=True)}", width))
    return out


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _secs(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)}m{int(s % 60):02d}s"


def _user(run_as: str | None) -> str:
    """Who a stage's container ran as: "root" stands out; "-" when not recorded (cached, older runs)."""
    if not run_as:
        return "-"
    return "root" if run_as.split(":")[0] == "0" else run_as


def artifact_rows(artifacts: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per file, sha256 cut to 16 digits so a row fits 80 columns. A stage's files in one
    folder (a declared folder or glob: recorded file by file) go under a row for the folder."""
    rows: list[list[Any]] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in artifacts:
        top = a["path"].split("/", 1)[0] + "/" if "/" in a["path"] else ""
        groups.setdefault((a["stage"], top or a["path"]), []).append(a)
    for (stage, key), files in groups.items():
        if len(files) == 1 or not key.endswith("/"):
            rows += [[stage, a["path"], a["size"], (a["sha256"] or "-")[:16]] for a in files]
            continue
        rows.append([stage, f"{key} ({len(files)} files)", sum(a["size"] or 0 for a in files), ""])
        rows += [["", "  " + a["path"][len(key):], a["size"], (a["sha256"] or "-")[:16]] for a in files]
    return rows


def render(rec: dict[str, Any]) -> str:
    from fbtui.output import table, yaml_with_origins

    out: list[str] = []
    what = rec["project"] + (f", ablation {rec['ablation']}, variant {rec['variant']}" if rec["variant"] else "")
    out.append(f"run #{rec['run']}: {what}, seed {rec['seed']}")
    out.append(f"status   {rec['status']}" + (f" ({reason_line(rec['reason'])})" if rec["reason"] else ""))
    if rec.get("store_disk_full"):
        out.append("store    its disk is full: running stages cannot record their progress now; they keep it and "
                   "catch up once space is freed")
    if rec.get("archived_at"):
        out.append(f"archived {_when(rec['archived_at'])}: hidden from tables and comparisons "
                   f"(fbtui archive {rec['run']} --undo)")
    if rec.get("tags"):
        out.append("tags     " + ", ".join(rec["tags"]))
    if rec.get("note"):
        out += [("note     " if i == 0 else "         ") + line for i, line in enumerate(rec["note"].splitlines())]
    out.append(f"host     {rec['host'] or '-'}" + (f" (asked: {rec['requested_host']})"
                                                    if rec["requested_host"] not in (None, rec["host"]) else ""))
    t = rec["times"]
    out.append(f"times    queued {_when(t['created'])}, started {_when(t['started'])}, "
               f"finished {_when(t['finished'])}; waited {_secs(t['queued_seconds'])}, ran {_secs(t['run_seconds'])}")
    if rec["overrides"]:
        out.append("overrides " + " ".join(f"-o {o}" for o in rec["overrides"]))
    for key, label in (("rerun_of", "rerun of"), ("eval_of", "evaluates")):
        if rec.get(key):
            out.append(f"{label} #{rec[key]}")
    if rec["source"]:
        out.append(f"built from {rec['source']} (the recorded code state checked out)")
    c = rec["code"]
    out.append("")
    if not c:
        out.append("code     not recorded")
    elif not c["is_repo"]:
        out.append("code     not a git repository")
    else:
        out.append(f"code     {c['sha'] or 'no commits'}" + (f" ({c['branch']})" if c["branch"] else "")
                   + (" dirty" if c["dirty"] else " clean") + f", state {c['state'][:12]}")
        if c["in_repository"] is False:
            out.append("         this commit is no longer in the repository (rebased or pruned?); "
                       "the record keeps its diff, not its tree")
        if c["diff_lines"]:
            out.append(f"         uncommitted diff: {c['diff_lines']} lines in {', '.join(c['diff_files']) or '?'}"
                       + ("" if "diff" in c else " (--diff prints it)"))
        for f in c["untracked"]:
            out.append(f"         untracked {f['path']} ({f['size']} bytes, sha256 {f['sha256'][:12]})")
    out.append("")
    out.append("images")
    for x in rec["images"]:
        held = f"{len(x['packages'])} packages" if x.get("packages") is not None else "packages not recorded"
        out.append(f"  {x.get('layer', '?'):<5} {x.get('tag')}  {x.get('id') or '(id not recorded)'}  {held}")
    if any(x.get("packages") for x in rec["images"]):
        out.append("  (the packages: fbtui images --packages TAG, or show --json)")
    if rec["components"]:
        out.append("")
        out.append(table(["KIND", "NAME", "ORIGIN", "SOURCE SHA256"],
                         [[x.get("kind", ""), x.get("name", ""), x.get("origin", ""), (x.get("sha256") or "")[:16]]
                          for x in rec["components"]]))
    out.append("")
    out.append(table(["STAGE", "STATUS", "HOST", "USER", "TIME", "COMMAND / CACHE"],
                     [[s["name"], s["status"] + (f" ({s['degraded']})" if s.get("degraded") else ""),
                       s["host"] or "-", _user(s.get("run_as")), _secs(s["seconds"]),
                       (f"cached from run #{s['cached_from']['run']} {s['cached_from']['stage']}" if s["cached_from"]
                        else _clip(shlex.join(s["command"] or []), 40) or "-")] for s in rec["stages"]]))
    for s in rec["stages"]:  # the whole command as it ran (templates rendered), and the values it set
        if s["command"] and not s["cached_from"] and len(shlex.join(s["command"])) > 40:
            out.append(f"  {s['name']}$ {shlex.join(s['command'])}")
        if s.get("env"):
            out.append(f"  {s['name']} env " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in s["env"].items()))
    for m in rec.get("metric_sources") or []:
        if m.get("note"):
            out.append(f"  {m['stage']} metrics {m['source'].removeprefix('tb:')}: {m['note']}")
    for s in rec["stages"]:
        if s["interruptions"] or s["status"] == "lost":
            spans = ", ".join(f"{_when(a)} for {_secs(b - a)}" for a, b in s["interruptions"])
            now = f"lost since {_when(s['lost_at'])}" if s["status"] == "lost" and s["lost_at"] else ""
            out.append(f"  {s['name']}: host {s['host']} lost: " + "; ".join(x for x in (spans, now) if x))
        if s["reason"] and s["status"] == "failed":  # the whole reason: the log's last lines are the error
            lines = s["reason"].splitlines()
            out.append(f"  {s['name']} failed: {lines[0]}")
            out.extend(f"    | {line}" for line in lines[1:])
    if rec["artifacts"]:
        out.append("")
        out.append(table(["STAGE", "ARTIFACT", "BYTES", "SHA256"], artifact_rows(rec["artifacts"])))
    for i, e in enumerate(rec["evaluations"]):
        out.append("")
        scalars = {k: v for k, v in e["results"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        by = f", by re-evaluation #{e['made_by_run']}" if e.get("made_by_run") else ""
        out.append(f"evaluation {e['fingerprint'][:12]} ({_when(e['created_at'])}{by})"
                   + ("" if "today" not in e else ": today's suite" if e["today"] else ": not today's suite"))
        if e.get("differs"):
            out.append("  differs: " + "; ".join(e["differs"]))
        out.append("  " + ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()))
        if i == len(rec["evaluations"]) - 1:  # the latest: what its fingerprint covers (--json has every one)
            out.extend("  " + line for line in covers_lines(e.get("covers")))
    for e in rec.get("suites") or []:
        scalars = {k: v for k, v in e["results"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        out.append("")
        out.append(f"suite {e['suite']} {e['fingerprint'][:12]} ({_when(e['created_at'])}): "
                   + ", ".join(f"{k} {v:.4g}" for k, v in list(scalars.items())[:4]))
    out.append("")
    out.append(f"config (hash {(rec['config_hash'] or '')[:12]}, seed aside)")
    out.append(yaml_with_origins(rec["config"], rec["origins"]))
    if rec["code"].get("diff"):
        out.append("")
        out.append(rec["code"]["diff"])
    return "\n".join(out)
