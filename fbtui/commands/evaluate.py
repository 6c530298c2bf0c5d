"""`fbtui eval`: evaluate earlier runs' models again under today's suite, one by one or every
stale run of a project at once."""

from __future__ import annotations

import argparse
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
             "  fbtui eval --stale                  every stale run of every project\n"
             "  fbtui eval --suite digits-holdout 12 40   runs of any project, scored on\n"
             "                                          a lab-wide suite (common/suites.yaml)")
    ev.add_argument("runs", type=run_id, nargs="*", metavar="RUN", help="run numbers")
    ev.add_argument("--stale", nargs="?", const="", metavar="PROJECT",
                    help="every succeeded run (of PROJECT) whose latest evaluation is not under today's suite")
    ev.add_argument("--ablation", metavar="A", help="with --stale: only this ablation's runs")
    ev.add_argument("--stage", metavar="S", help="the stage to run again (default: the one that declares "
                    "evaluates:, else the one called evaluate)")
    ev.add_argument("--suite", metavar="NAME", help="score the runs' models on this lab-wide suite (each in its "
                    "run's own image); fbtui leaderboard NAME ranks them")

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
    if args.suite is not None:
        return _suite(args, lab)
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


def _suite(args: argparse.Namespace, lab: Any) -> int:
    """fbtui eval --suite NAME RUN...: score each run's model on a lab-wide suite."""
    from fbtui.config.suites import get_suite
    from fbtui.pipeline.suite_runs import queue_suite
    from fbtui.pipeline.watch import follow_runs

    if args.stale is not None or args.stage or args.ablation or not args.runs:
        raise UsageError("fbtui eval --suite NAME takes run numbers (and no --stale, --stage or --ablation)")
    suite = get_suite(lab, args.suite)
    with existing_store(lab, write=True) as store:
        new = queue_suite(lab, store, suite, args.runs)
        for src, rid in zip(args.runs, new):
            print(f"run #{src}: scoring on suite {suite.name} (evaluation #{rid})")
        if args.detach:
            return 0
        finals = follow_runs(lab, store, new)
        for src in args.runs:
            evs = store.evaluations(src, suite.name)
            if evs:
                shown = ", ".join(f"{m} {evs[-1]['results'][m]:.4f}" for m in suite.spec.metrics
                                  if isinstance(evs[-1]["results"].get(m), (int, float)))
                print(f"run #{src}: {suite.name} {evs[-1]['fingerprint'][:12]}: {shown}")
    print(f"fbtui leaderboard {suite.name} ranks every run scored on it")
    return 0 if all(v == "succeeded" for v in finals.values()) else 1


def _stale(lab: Any, store: Store, project: str | None, ablation: str | None, stage: str | None) -> list[int]:
    """The runs --stale picks, each project's reason for the others said in one line."""
    from fbtui.pipeline.reevaluate import pick_stale

    picked, notes = pick_stale(lab, store, project, ablation, stage)
    for line in notes:
        print(line)
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
        if project not in refs:  # judged once per project
            refs[project] = stale_runs(lab, store, project)
        ref = refs[project]
        note = f" (not today's: {ref.why(src)})" if src in ref.stale and ref.how != "voted" else ""
        shown = {k: v for k, v in evs[-1]["results"].items() if isinstance(v, (int, float))}
        print(f"run #{src}: suite {evs[-1]['fingerprint'][:12]}{note}: "
              + ", ".join(f"{k} {v:.4g}" for k, v in list(shown.items())[:6]))
