"""Record commands: show (a run's whole record), diff (two runs side by side), rerun (from the record)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fbtui.commands.common import Command, existing_store, lab_of, run_id


def add_parsers(sub: Any, cmd: Command) -> None:
    sh = cmd("show", "the whole record of a run: config and origins, code, images, stages, artifacts, evaluations",
             "Everything recorded about one run: project, ablation, variant, seed, overrides, the resolved\n"
             "config with each value's origin, commit, branch, dirty flag (and diff with --diff), image tags\n"
             "and IDs of every layer, components, each stage's command, host and times, failure reasons,\n"
             "artifacts with sha256, evaluation fingerprints and results, and where cached stages came from.\n\n"
             "examples:\n  fbtui show 12\n  fbtui show 12 --diff\n  fbtui show 12 --json | jq .config")
    sh.add_argument("run", type=run_id, metavar="RUN", help="the run number (fbtui ps --all lists them)")
    sh.add_argument("--diff", action="store_true", help="print the uncommitted diff the run was made with")
    sh.add_argument("--json", action="store_true", help="print JSON")

    df = cmd("diff", "what differs between two runs: config, code, images, components, evaluation, results",
             "When two numbers disagree: the config keys that differ (with where each was set), the code\n"
             "between their states (commits, then each side's uncommitted diff), image layers, components,\n"
             "the evaluation suite and the results.\n\nexamples:\n  fbtui diff 12 17\n  fbtui diff 12 17 --stat")
    df.add_argument("a", type=run_id, metavar="RUN_A")
    df.add_argument("b", type=run_id, metavar="RUN_B")
    df.add_argument("--stat", action="store_true", help="summarise the code difference instead of printing it")
    df.add_argument("--json", action="store_true", help="print JSON")

    rr = cmd("rerun", "queue a run again with its recorded config, on its recorded code state",
             "Queue a new run with RUN's recorded config (plus -o overrides). When the working tree is not\n"
             "RUN's code state, that state is rebuilt in a temporary git worktree (the commit, the recorded\n"
             "diff and untracked files), so an old result can be reproduced exactly. Stages run again\n"
             "(no cache) unless --cache.\n\n"
             "examples:\n  fbtui rerun 12\n  fbtui rerun 12 -o train.epochs=50\n  fbtui rerun 12 --here")
    rr.add_argument("run", type=run_id, metavar="RUN", help="the run to repeat (fbtui ps --all lists them)")
    rr.add_argument("-o", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                    help="override one key of the recorded config (repeatable)")
    rr.add_argument("--host", help="a host from lab.yaml (default: the run's host)")
    rr.add_argument("--here", action="store_true", help="use today's code, not the recorded state")
    rr.add_argument("--cache", action="store_true", help="reuse earlier results of stages with the same inputs")
    rr.add_argument("--detach", "-d", action="store_true", help="start and return at once")
    rr.add_argument("--json", action="store_true", help="print the new run id as JSON (implies --detach)")


def cmd_show(args: argparse.Namespace) -> int:
    from fbtui.output import print_json
    from fbtui.records.show import render, run_record

    lab = lab_of(args)
    with existing_store(lab) as store:
        rec = run_record(lab, store, args.run, with_diff=args.diff or args.json)
    if args.json:
        print_json(rec)
    else:
        print(render(rec))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from fbtui.output import print_json
    from fbtui.records.diff import render, run_diff

    lab = lab_of(args)
    with existing_store(lab) as store:
        d = run_diff(lab, store, args.a, args.b)
    if args.json:
        print_json(d)
    else:
        print(render(d, stat_only=args.stat))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from fbtui.commands.images import build_failed
    from fbtui.images.builders import BuildFailed
    from fbtui.output import print_json
    from fbtui.pipeline.watch import follow_runs
    from fbtui.progress import BuildProgress
    from fbtui.records.rerun import rerun

    lab = lab_of(args)
    with existing_store(lab, write=True) as store:
        try:
            started, where = rerun(lab, store, args.run, args.overrides, host=args.host, cache=args.cache,
                                   here=args.here, emit=BuildProgress(sys.stderr))
        except BuildFailed as e:
            return build_failed(e)
        rid = started.run_ids[0]
        if args.json:
            print_json({"run": rid, "rerun_of": args.run, "image": started.image, "code": where})
            return 0
        print(f"queued #{rid}: run #{args.run} again on {where}, image {started.image}")
        if args.detach:
            print(f"follow with: fbtui logs {rid} -f    compare with: fbtui diff {args.run} {rid}")
            return 0
        try:
            finals = follow_runs(lab, store, [rid])
        except KeyboardInterrupt:
            print(f"\ndetached: the run goes on. fbtui logs {rid} -f follows it again")
            return 0
    return 0 if finals.get(rid) == "succeeded" else 1
