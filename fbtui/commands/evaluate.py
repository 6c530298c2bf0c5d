"""`fbtui eval`: evaluate earlier runs' models again under today's suite, one by one or every
stale run of a project at once."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from fbtui.commands.common import Command, existing_store, lab_of, run_id
from fbtui.errors import UsageError

if TYPE_CHECKING:
    from fbtui.store import Store


def add_parsers(sub: Any, cmd: Command) -> None:
    ev = cmd("eval", "evaluate earlier runs' models again under today's evaluation suite",
             "Evaluate each run's trained model again with today's evaluation code, eval\n"
             "config and data: results under one suite are comparable again. The stages that\n"
             "made the model are the run's own; the evaluation (and the data it reads) runs in\n"
             "today's image. The result is recorded against the run itself: no new row in ps\n"
             "or in comparisons. An evaluation of the same model under the same suite is\n"
             "reused, never computed twice.\n\n"
             "examples:\n  fbtui eval 12 13\n"
             "  fbtui eval --stale digits-mlp --ablation depth\n"
             "  fbtui eval --stale                  every stale run of every project")
    ev.add_argument("runs", type=run_id, nargs="*", metavar="RUN", help="run numbers")
    ev.add_argument("--stale", nargs="?", const="", metavar="PROJECT",
                    help="every succeeded run (of PROJECT) whose latest evaluation is not under today's suite")
    ev.add_argument("--ablation", metavar="A", help="with --stale: only this ablation's runs")
    ev.add_argument("--stage", metavar="S", help="the stage to run again (default: the one that declares "
                    "evaluates:, else the one called evaluate)")

    ev.add_argument("--detach", "-d", action="store_true", help="start and return at once")


def cmd_eval(args: argparse.Namespace) -> int:
    from fbtui.pipeline.reevaluate import reevaluate
    from fbtui.pipeline.watch import follow_runs
    from fbtui.progress import BuildProgress

    lab = lab_of(args)
    if args.stale is None and (args.ablation or not args.runs):
        raise UsageError("fbtui eval: give run numbers, or --stale [PROJECT] [--ablation A]")
    if args.stale is not None and args.runs:
        raise UsageError("fbtui eval: give run numbers or --stale, not both")
    with existing_store(lab, write=True) as store:
        runs = args.runs if args.stale is None else _stale(lab, store, args.stale or None, args.ablation, args.stage)
        if not runs:
            return 0
        new = reevaluate(lab, store, runs, emit=BuildProgress(sys.stderr), stage=args.stage)
        for src, rid in zip(runs, new):
            print(f"run #{src}: evaluating again under today's suite (re-evaluation #{rid})")
        if args.detach:
            return 0
        finals = follow_runs(lab, store, new)
        _say_results(lab, store, runs)
    return 0 if all(v == "succeeded" for v in finals.values()) else 1


def _stale(lab: Any, store: Store, project: str | None, ablation: str | None, stage: str | None) -> list[int]:
    """The runs --stale picks, each project's reason for the others said in one line."""
    from fbtui.errors import FBError
    from fbtui.pipeline.reevaluate import check_reads, evaluation_stage
    from fbtui.records.suite import stale_runs

    if project is not None:
        lab.project(project)  # an unknown project: its own clear error
    projects = [project] if project else [r["project"] for r in
                                          store.query("SELECT DISTINCT project FROM runs ORDER BY project")]
    if ablation and not store.query("SELECT 1 FROM runs WHERE ablation = ?" + (" AND project = ?" if project else "")
                                    + " LIMIT 1", (ablation, project) if project else (ablation,)):
        raise UsageError(f"no runs of ablation '{ablation}'" + (f" of project {project}" if project else ""))
    busy = {r["eval_of"] for r in store.query("SELECT eval_of FROM runs WHERE eval_of IS NOT NULL AND status IN "
                                              "('pending', 'queued', 'running')")}
    picked: list[int] = []
    for p in projects:
        ref = stale_runs(lab, store, p, ablation)
        where = p + (f", ablation {ablation}" if ablation else "")
        if ref.how == "voted":
            print(f"{where}: its evaluations do not say what their suite covers: the runs under another suite "
                  "than most are taken as stale")
        todo = []
        for rid in ref.stale:
            if rid in busy:
                print(f"run #{rid}: already being re-evaluated")
                continue
            try:
                spec, _ = evaluation_stage(lab, store.run(rid), stage)
                check_reads(store, store.run(rid), spec)
            except FBError as e:
                print(f"run #{rid}: skipped: {e}")
                continue
            todo.append(rid)
        if not ref.stale:
            print(f"{where}: nothing stale: every succeeded run is under today's suite")
        picked += todo
    return picked


def _say_results(lab: Any, store: Store, runs: list[int]) -> None:
    """Each run's latest evaluation, and whether it is today's suite (the suite may have changed
    while it was queued: it finishes under the suite it started with, and is named so)."""
    from fbtui.records.suite import stale_runs

    refs: dict[str, Any] = {}
    for src in runs:
        evs = store.evaluations(src)
        if not evs:
            continue
        project = store.run(src)["project"]
        ref = refs.setdefault(project, stale_runs(lab, store, project))
        note = f" (not today's: {ref.why(src)})" if src in ref.stale and ref.how != "voted" else ""
        shown = {k: v for k, v in evs[-1]["results"].items() if isinstance(v, (int, float))}
        print(f"run #{src}: suite {evs[-1]['fingerprint'][:12]}{note}: " + json.dumps(shown)[:200])
