"""Evaluating earlier runs' models again under today's suite (`fbtui eval`).

A re-evaluation is a hidden run (`eval_of`): the stages that made the model come from the source
run as cache hits; the evaluation's other inputs (the prepared data) and the evaluation itself run
with today's image and today's eval and data config, so the result is today's suite. Its
evaluation is recorded against the source run: tables, counts and `ps` show the source run only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fbtui.errors import FBError, UsageError

if TYPE_CHECKING:
    from fbtui.config.models import StageSpec
    from fbtui.images.events import EventSink
    from fbtui.lab import Lab
    from fbtui.store import Store

DONE = ("succeeded", "cached")


def evaluation_stage(lab: Lab, run: dict[str, Any], stage: str | None = None) -> tuple[StageSpec, dict[str, list[str]]]:
    """The stage of a run's recorded pipeline that evaluates (the one given, the one that declares
    `evaluates:`, or the one called `evaluate`) and the pipeline's needs."""
    from fbtui.config.models import Evaluates
    from fbtui.pipeline.recorded import pipeline_of

    pipeline = pipeline_of(lab, run)
    specs = {s.name: s for s in pipeline.stages}
    needs = dict(pipeline.needs)
    if stage is not None:
        if stage not in specs:
            raise UsageError(f"run {run['id']} has no stage '{stage}' (stages: {', '.join(specs)})")
        spec = specs[stage]
    else:
        declared = [s for s in specs.values() if s.evaluates is not None]
        if len(declared) > 1:
            raise UsageError(f"run {run['id']} has several evaluation stages "
                             f"({', '.join(s.name for s in declared)}): pick one with --stage")
        if not declared and "evaluate" not in specs:
            raise UsageError(f"run {run['id']} has no evaluation stage (stages: {', '.join(specs)})",
                             hint="mark the stage that evaluates in project.yaml: evaluates: {results: eval.json, "
                                  "reads: [train/model.pt]}")
        spec = declared[0] if declared else specs["evaluate"]
    if spec.evaluates is None and spec.default_command() == ["python3", "-m", "common.stages.evaluate"] \
            and spec.name == "evaluate" and "train" in needs.get(spec.name, []):
        # common's evaluate recorded before it declared what it reads: the model train made
        spec = spec.model_copy(update={"evaluates": Evaluates(reads=["train/model.pt"])})
    return spec, needs


def check_reads(store: Store, run: dict[str, Any], spec: StageSpec) -> None:
    """The artifacts an evaluation stage reads must be in the run's record, and (on this machine)
    still on disk: no model, nothing to score."""
    from fbtui.pipeline.artifacts import matches

    for read in spec.evaluates.reads if spec.evaluates else []:
        producer, _, rel = read.partition("/")
        # a folder or glob (train/ckpt/, train/ckpt/*.pt) was recorded file by file: any of its files
        paths = [r["path"] for r in store.query("SELECT path FROM artifacts WHERE run_id = ? AND stage = ?",
                                                 (run["id"], producer))
                 if r["path"] == rel or r["path"].startswith(rel.rstrip("/") + "/") or matches(rel, r["path"])]
        if not paths:
            raise FBError(f"run {run['id']} has no artifact {read} (its {producer} stage did not record it): "
                          f"{spec.name} has nothing to evaluate")
        row = store.stage(run["id"], producer)
        out = row["out"] if row else None
        if (row and row["host"] in (None, "local")) and out and not any((Path(out) / p).exists() for p in paths):
            raise FBError(f"run {run['id']}: {read} is gone from {out} (removed by fbtui gc or by hand): "
                          f"{spec.name} has nothing to evaluate", hint=f"fbtui rerun {run['id']} trains it again")


def today_stages(spec: StageSpec, needs: dict[str, list[str]], names: list[str]) -> set[str]:
    """The stages before the evaluation that run today rather than coming from the source run:
    what it needs besides the stages that made what it reads (and what those need in turn).
    An evaluation that does not say what it reads takes every earlier stage from the source."""
    made_model = {r.partition("/")[0] for r in (spec.evaluates.reads if spec.evaluates else [])}
    if not made_model:
        return set()
    todo = [n for n in needs.get(spec.name, []) if n not in made_model]
    out: set[str] = set()
    while todo:
        n = todo.pop()
        if n not in out and n in names:
            out.add(n)
            todo += [d for d in needs.get(n, []) if d not in made_model]
    return out


def todays_config(lab: Lab, src: dict[str, Any], store: Store) -> str:
    """The source run's config with the sections its evaluation covers (eval, data) as today's
    project.yaml resolves them for its variant: a re-evaluation is under today's suite."""
    from fbtui.records.suite import Today

    config = yaml.safe_load(src["config"]) or {}
    evs = store.evaluations(src["id"])
    covers = evs[-1]["covers"] if evs else None
    sections = {"eval", "data"}
    if isinstance(covers, dict):
        made = (covers.get("data") or {}).get("made_by") or {}
        sections = set(covers.get("config") or {}) | set(made.get("config") or {}) or sections
    row = {"ablation": src["ablation"], "variant": src["variant"], "overrides": _json_list(src.get("overrides"))}
    today = Today(lab, src["project"]).config(row)
    if today is None:
        raise FBError(f"project {src['project']}: today's project.yaml does not resolve: fix it before "
                      "re-evaluating (fbtui config shows the error)")
    for section in sorted(sections):
        if section in today:
            config[section] = today[section]
    return yaml.safe_dump(config, sort_keys=False)


def _json_list(text: str | None) -> list[str]:
    import json

    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def reevaluate(lab: Lab, store: Store, run_ids: list[int], *, emit: EventSink | None = None,
               stage: str | None = None) -> list[int]:
    """Queue a re-evaluation of each run (all checked before any is queued); returns their ids."""
    from fbtui.images.service import ensure_project_image
    from fbtui.pipeline.launch import fresh_run_folder
    from fbtui.pipeline.supervisor import ensure_supervisor
    from fbtui.records.show import get_run

    plan = []
    for rid in run_ids:
        src = get_run(store, rid)
        if src["eval_of"]:
            raise UsageError(f"run {rid} re-evaluates run {src['eval_of']}: evaluate {src['eval_of']} instead")
        spec, needs = evaluation_stage(lab, src, stage)
        check_reads(store, src, spec)
        stages = store.stages(rid)
        names = [s["name"] for s in stages]
        before = names[:names.index(spec.name)]
        unfinished = [s["name"] for s in stages if s["name"] in before and s["status"] not in DONE]
        if unfinished:
            raise FBError(f"run {rid} cannot be evaluated again: stage {unfinished[0]} did not succeed")
        plan.append((src, spec, stages, before, today_stages(spec, needs, before), todays_config(lab, src, store)))
    images: dict[tuple[str, str], str] = {}
    new_ids = []
    for src, spec, stages, before, today, config in plan:
        rid, host = src["id"], src["host"] or "local"
        if (src["project"], host) not in images:  # one build check per project and host
            images[(src["project"], host)] = ensure_project_image(
                lab, src["project"], host=host, store=store, emit=emit or (lambda e: None)).tag
        new = store.create_run(src["project"], config=config, params=store.params(rid),
                               stages=[s["name"] for s in stages],
                               ablation=src["ablation"], variant=src["variant"], seed=src["seed"],
                               commit_id=src["commit_id"], image=images[(src["project"], host)], host=None)
        folder = fresh_run_folder(lab, new)
        (folder / "config.yaml").write_text(config)
        store.update_run(new, requested_host=host, folder=lab.rel(folder), eval_of=rid,
                         only_stages=",".join([*sorted(today), spec.name]), pipeline=src.get("pipeline"))
        for st in stages:
            if st["name"] in before and st["name"] not in today:
                origin = st["cached_from"] or st["id"]
                store.copy_stage_results({"run_id": rid, "name": st["name"]}, new, st["name"])
                store.set_stage_status(new, st["name"], "cached", f"from run {rid}", cached_from=origin,
                                       out=st["out"], host=host)
            elif st["name"] not in before and st["name"] != spec.name:  # what comes after is no part of it
                store.set_stage_status(new, st["name"], "skipped", "not part of a re-evaluation")
        store.set_run_status(new, "queued")
        new_ids.append(new)
    ensure_supervisor(lab)
    return new_ids


def pick_stale(lab: Lab, store: Store, project: str | None = None, ablation: str | None = None,
               stage: str | None = None) -> tuple[list[int], list[str]]:
    """The runs `fbtui eval --stale` re-evaluates (of a project, or of every project), and a line
    for each run left out or project with nothing stale; nothing is printed (the CLI and the app
    say the lines their own way)."""
    from fbtui.records.suite import stale_runs

    if project is not None:
        lab.project(project)  # an unknown project: its own clear error
    projects = [project] if project else [r["project"] for r in
                                          store.query("SELECT DISTINCT project FROM runs ORDER BY project")]
    if ablation and not store.query("SELECT 1 FROM runs WHERE ablation = ?" + (" AND project = ?" if project else "")
                                    + " LIMIT 1", (ablation, project) if project else (ablation,)):
        raise UsageError(f"no runs of ablation '{ablation}'" + (f" of project {project}" if project else ""))
    busy = {r["eval_of"] for r in store.query("SELECT eval_of FROM runs WHERE eval_of IS NOT NULL AND suite IS NULL "
                                              "AND status IN ('pending', 'queued', 'running')")}
    picked: list[int] = []
    notes: list[str] = []
    for p in projects:
        if project is None:
            try:  # every project: one that no longer loads is said, the others go on
                lab.project(p)
            except FBError as e:
                notes.append(f"{p}: skipped: {e}")
                continue
        ref = stale_runs(lab, store, p, ablation)
        where = p + (f", ablation {ablation}" if ablation else "")
        if ref.how == "voted":
            notes.append(f"{where}: its evaluations do not say what their suite covers: the runs under another suite "
                         "than most are taken as stale")
        for rid in ref.stale:
            if rid in busy:
                notes.append(f"run #{rid}: already being re-evaluated")
                continue
            try:
                run = store.run(rid)
                spec, _ = evaluation_stage(lab, run, stage)
                check_reads(store, run, spec)
            except FBError as e:
                notes.append(f"run #{rid}: skipped: {e}")
                continue
            picked.append(rid)
        if not ref.stale:
            notes.append(f"{where}: nothing stale: every succeeded run is under today's suite")
    return picked, notes
