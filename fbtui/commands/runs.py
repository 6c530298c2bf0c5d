"""Run commands: run, ps, logs, cancel, and the internal supervise."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from fbtui.commands.common import Command, existing_store, lab_of, open_store, read_store, run_id, seed_arg, stage_list
from fbtui.commands.images import build_failed
from fbtui.errors import UsageError

if TYPE_CHECKING:
    from fbtui.store import Store


def add_parsers(sub: Any, cmd: Command) -> None:
    r = cmd(
        "run", "run a project's pipeline (or a variant, or a whole ablation) in containers",
        "Resolve the config, capture git, make sure the image is on the host, record the run and run its\n"
        "stages in order in containers. A detached supervisor runs them: Ctrl-C only stops following,\n"
        "and `fbtui cancel RUN` stops a run.",
    )
    r.add_argument("project")
    r.add_argument("--stages", metavar="A,B", type=stage_list,
                   help="run only these stages; the others must be cache hits")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--variant", metavar="V", help="one variant of an ablation (all its seeds unless --seed)")
    g.add_argument("--ablation", metavar="A", help="every variant and seed of an ablation")
    r.add_argument("--in-ablation", dest="variant_ablation", metavar="A",
                   help="the ablation of --variant, if ambiguous")
    r.add_argument("--seed", type=seed_arg, help="run this seed (with --variant or --ablation: only this seed of each "
                   "variant, also one the ablation does not list)")
    r.add_argument("--host", metavar="H[,H]", help="host(s) from lab.yaml (default: defaults.host)")
    r.add_argument("-o", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override one config key (repeatable)")
    r.add_argument("--no-cache", action="store_true", help="rerun stages even when an earlier result matches")
    r.add_argument("--resume", action="store_true",
                   help="queue only the cells (variant x seed) with no succeeded run under today's code and config")
    r.add_argument("--detach", "-d", action="store_true", help="start and return at once")
    r.add_argument("--json", action="store_true", help="print the run ids as JSON (implies --detach)")
    r.add_argument("--notify", action="store_true",
                   help="when the runs end: ring, and a desktop notification where the terminal shows one")

    ps = cmd("ps", "runs in progress (queued or running) across hosts",
             "Runs in progress (queued or running) across hosts; --all lists recent runs too, --where\n"
             "any run a filter expression matches (status, tag, note, params, final metrics).\n"
             "Archived runs are left out unless --archived or the filter names archived.\n\n"
             "examples:\n  fbtui ps\n  fbtui ps --all --limit 50\n"
             "  fbtui ps --where 'lr<0.01 and eval/accuracy>0.9'\n"
             "  fbtui ps --where 'status=failed or tag=baseline' --json\n  fbtui ps --where archived")
    ps.add_argument("--all", action="store_true", help="recent runs too, not only those in progress")
    ps.add_argument("--where", metavar="EXPR", help="runs this filter matches (implies --all)")
    ps.add_argument("--archived", action="store_true", help="archived runs too")
    ps.add_argument("--limit", type=int, default=200, metavar="N", help="list at most N runs (200)")
    ps.add_argument("--json", action="store_true", help="print JSON")

    lg = cmd("logs", "print a run's stage logs, or search every run's (--grep)",
             "Print a run's stage logs (spooled: they outlive the containers), or search the logs of\n"
             "every run with --grep, newest run first: each match as #RUN STAGE:LINE: text.\n\n"
             "examples:\n  fbtui logs 12 -f\n  fbtui logs 12 --stage train --timestamps\n"
             "  fbtui logs --grep 'out of memory' --project digits-mlp\n"
             "  fbtui logs --grep 'nan|inf' -i --stage train --limit 20")
    lg.add_argument("run", type=run_id, nargs="?", help="the run (with --grep: only its logs)")
    lg.add_argument("--stage", help="only this stage")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    lg.add_argument("--timestamps", action="store_true", help="show each line's timestamp")
    lg.add_argument("--grep", metavar="PATTERN", help="search the logs (a Python regular expression)")
    lg.add_argument("--project", metavar="P", help="with --grep: only this project's runs")
    lg.add_argument("-i", "--ignore-case", action="store_true", help="with --grep: any case")
    lg.add_argument("--fixed", action="store_true", help="with --grep: the pattern is plain text")
    lg.add_argument("--limit", type=int, default=200, metavar="N", help="with --grep: at most N matches (200)")
    lg.add_argument("--json", action="store_true", help="with --grep: print the matches as JSON")

    cn = cmd("cancel", "stop runs: their running stage is stopped, later stages never start",
             "Stop runs: their running stage is stopped, later stages never start.\n\n"
             "examples:\n  fbtui cancel 12 13 14\n  fbtui cancel --ablation sweep            every unfinished run of it"
             "\n  fbtui cancel --ablation sweep --project digits-mlp\n"
             "  fbtui cancel --all-queued                every run that has not started yet")
    cn.add_argument("runs", type=run_id, nargs="*", metavar="RUN", help="run numbers")
    cn.add_argument("--ablation", metavar="A", help="every unfinished run of this ablation")
    cn.add_argument("--project", metavar="P", help="with --ablation: only this project's runs")
    cn.add_argument("--all-queued", action="store_true", help="every run still waiting to start")

    cmd("supervise", "internal: the detached supervisor that runs the lab's stages")
    sub._choices_actions = [a for a in sub._choices_actions if a.dest != "supervise"]  # keep it out of --help


def cancel_hint(run_ids: list[int], ablation: str | None, project: str) -> str:
    """A command that stops these runs, pasteable as printed: "fbtui cancel 2 3 4" (never "2, 3, …")."""
    if ablation:
        return f"fbtui cancel --ablation {ablation} --project {project}"
    return "fbtui cancel " + " ".join(str(i) for i in run_ids)


def cmd_run(args: argparse.Namespace) -> int:
    from fbtui.images.builders import BuildFailed
    from fbtui.output import print_json
    from fbtui.pipeline.launch import check_launch, launch, select_variants
    from fbtui.pipeline.watch import follow_runs
    from fbtui.progress import BuildProgress

    lab = lab_of(args)
    hosts = (args.host or lab.config.defaults.host).split(",")
    variants = select_variants(lab, args.project, args.variant, args.ablation or args.variant_ablation, args.seed)
    stages = args.stages
    # Checked before the store is opened: rejected input creates nothing.
    checked = check_launch(lab, args.project, variants=variants, overrides=args.overrides, hosts=hosts,
                           stages=stages, seed=args.seed)
    progress = BuildProgress(sys.stderr)
    with open_store(lab) as store:
        try:
            started = launch(lab, store, args.project, variants=variants, overrides=args.overrides, hosts=hosts,
                             stages=stages, seed=args.seed, no_cache=args.no_cache, emit=progress, resume=args.resume,
                             checked=checked)
        except BuildFailed as e:
            return build_failed(e)
        if args.resume:
            out = sys.stderr if args.json else sys.stdout
            for c in started.cells:
                print(f"{'run ' if c.run else 'skip'} {c.label}: {c.why}", file=out)
            if not started.run_ids:
                print(f"nothing to run: all {len(started.cells)} cells succeeded under this code and config",
                      file=out)
                if args.json:
                    print_json({"runs": [], "image": None, "hosts": started.hosts})
                return 0
        if args.json:
            print_json({"runs": started.run_ids, "image": started.image, "hosts": started.hosts})
            return 0
        ids = ", ".join(f"#{i}" for i in started.run_ids)
        print(f"queued {ids} ({args.project}, image {started.image})")
        stop = cancel_hint(started.run_ids, args.ablation, args.project)
        if args.detach:
            print(f"follow with: fbtui logs {started.run_ids[0]} -f    stop with: {stop}")
            return 0
        try:
            finals = follow_runs(lab, store, started.run_ids)
        except KeyboardInterrupt:
            what = "the run goes on" if len(started.run_ids) == 1 else "the runs go on"
            print(f"\ndetached: {what}. fbtui logs {started.run_ids[0]} -f follows it again, {stop} stops "
                  f"{'it' if len(started.run_ids) == 1 else 'them'}")
            return 0
    bad = {k: v for k, v in finals.items() if v != "succeeded"}
    if len(finals) > 1:
        print(f"{len(finals) - len(bad)} of {len(finals)} runs succeeded")
    if args.notify:
        from fbtui.terminal import notify, write_to_terminal

        what = (f"run #{next(iter(finals))} {next(iter(finals.values()))}" if len(finals) == 1 else
                f"{len(finals) - len(bad)} of {len(finals)} runs succeeded")
        write_to_terminal(notify(f"fbtui: {args.project}", what))
    return 1 if bad else 0


def cmd_ps(args: argparse.Namespace) -> int:
    import time

    from fbtui.output import print_json, table
    from fbtui.pipeline.ingest import degraded_note, full_disk_line
    from fbtui.pipeline.watch import reattach
    from fbtui.records.show import reason_line

    lab = lab_of(args)
    if not lab.store_path.exists():
        print("no runs yet")
        return 0
    with read_store(lab) as store:
        reattach(lab, store)
        full = full_disk_line(store.path)  # nothing can record progress: every running stage waits
        active = "status IN ('queued', 'running')"
        # a finished re-evaluation is part of its run's record (fbtui show), not a run of its own
        where = f"WHERE ({active}" if not args.all and args.where is None else f"WHERE (eval_of IS NULL OR {active}"
        where += ")" if args.archived else ") AND archived_at IS NULL"
        limit = max(1, args.limit)
        if args.where is not None:
            from fbtui.records.filters import select

            matched = select(store, args.where, archived=args.archived)
            shown = matched[:limit]
            by_id = {r["id"]: r for r in store.query(f"SELECT * FROM runs WHERE id IN ({','.join('?' * len(shown))})",
                                                     shown)} if shown else {}
            runs, more = [by_id[i] for i in shown], len(matched) - limit
        else:
            runs = store.query(f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT {limit + 1}")
            runs, more = runs[:limit], len(runs) - limit
        tags = store.tags_of([r["id"] for r in runs])
        rows = []
        now = time.time()
        for r in runs:
            stages = store.stages(r["id"])
            current = next((s for s in stages if s["status"] in ("running", "lost")), None)
            waiting = None if current or r["status"] not in ("queued", "running") else \
                next((s for s in stages if s["status"] == "pending"), None)
            end = r["finished_at"] or now
            # A run's time counts from its first container; before that it is queue time.
            reason = waiting["reason"] if waiting and waiting["reason"] else r["reason"]
            if current and current["status"] == "lost":
                reason = current["reason"]
            # a re-evaluation is shown as the run it evaluates: it is no run of its own
            rows.append({"run": r["eval_of"] or r["id"], "reevaluation": r["id"] if r["eval_of"] else None,
                         "project": r["project"], "variant": r["variant"], "seed": r["seed"],
                         "host": r["host"] or r["requested_host"], "status": r["status"],
                         "stage": current["name"] if current else (waiting["name"] if waiting else None),
                         "stage_status": current["status"] if current else (waiting["status"] if waiting else None),
                         "degraded": degraded_note(current, bool(full)) if current else None,
                         "seconds": round(end - r["started_at"], 1) if r["started_at"] else None,
                         "queued_seconds": round((r["started_at"] or end) - r["created_at"], 1),
                         "reason": reason, "tags": tags.get(r["id"], []), "note": r.get("note"),
                         "archived": r.get("archived_at") is not None})
    if full:
        print(full, file=sys.stderr)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no run matches the filter" if args.where is not None else
              "no runs in progress" + ("" if args.all else " (fbtui ps --all shows recent ones)"))
        return 0
    print(table(["RUN", "PROJECT", "VARIANT", "HOST", "STATUS", "STAGE", "TIME", "REASON"],
                [[f"#{r['run']}" + (" (archived)" if r["archived"] else ""), r["project"],
                  (r["variant"] or "-") + (f" s{r['seed']}" if r["variant"] else "")
                  + "".join(f" [{t}]" for t in r["tags"]),
                  r["host"], r["status"] + (f" ({r['degraded']})" if r["degraded"] else ""),
                  (r["stage"] or "") + (" (lost)" if r["stage_status"] == "lost" else "")
                  + (" (again)" if r["reevaluation"] and r["stage"] else ""),
                  f"{r['seconds']:.0f}s" if r["seconds"] is not None else f"({r['queued_seconds']:.0f}s queued)",
                  reason_line(r["reason"], 70)] for r in rows]))
    if more > 0:
        print(f"the newest {limit} shown; --limit N shows more" + (f" ({more} more match)" if args.where else ""))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from fbtui.pipeline.logs import read_spool
    from fbtui.pipeline.supervisor import run_folder
    from fbtui.pipeline.watch import follow_runs, reattach

    lab = lab_of(args)
    if args.grep is not None:
        return grep_logs(lab, args)
    if args.run is None:
        raise UsageError("name a run (fbtui logs 12), or search every run's logs with --grep PATTERN")
    if args.project or args.ignore_case or args.fixed or args.json:
        raise UsageError("--project, -i, --fixed and --json go with --grep")
    with existing_store(lab) as store:
        run = store.run(args.run)
        names = [s["name"] for s in store.stages(args.run)]
        if args.stage and args.stage not in names:
            raise UsageError(f"run {args.run} has no stage '{args.stage}' (stages: {', '.join(names)})")
        if args.follow and run["status"] not in ("succeeded", "failed", "cancelled"):
            reattach(lab, store)
            follow_runs(lab, store, [args.run])
            return 0
        for name in [args.stage] if args.stage else names:
            lines, _ = read_spool(run_folder(lab, args.run) / f"{name}.log", timestamps=args.timestamps)
            if not args.stage and lines:
                print(f"==> {name} <==")
            for line in lines:
                print(line)
    return 0


def grep_logs(lab: Any, args: argparse.Namespace) -> int:
    """`fbtui logs --grep`: matches across runs; exit 1 when there are none (as grep does)."""
    from dataclasses import asdict

    from fbtui.output import print_json
    from fbtui.records.logsearch import compile_pattern, search_logs

    if args.follow:
        raise UsageError("--grep searches what the logs hold now: leave out -f")
    if args.limit < 1:
        raise UsageError(f"--limit: expected a number of matches above 0, got {args.limit}")
    rx = compile_pattern(args.grep, args.ignore_case, args.fixed)
    if args.project:
        lab.project(args.project)  # an unknown project says so, with the known ones
    with existing_store(lab) as store:
        if args.run is not None:
            store.run(args.run)
        matches = list(search_logs(lab, store, rx, project=args.project, runs=[args.run] if args.run else None,
                                   stage=args.stage, limit=args.limit))
    if args.json:
        print_json([asdict(m) for m in matches])
        return 0 if matches else 1
    for m in matches:
        print(f"#{m.run} {m.stage}:{m.line}: {m.text}")
    runs = len({m.run for m in matches})
    more = " (the first; --limit shows more)" if len(matches) >= args.limit else ""
    print(f"{len(matches)} match{'es' if len(matches) != 1 else ''} in {runs} run{'s' if runs != 1 else ''}{more}",
          file=sys.stderr)
    return 0 if matches else 1


def cmd_cancel(args: argparse.Namespace) -> int:
    import time

    from fbtui.pipeline.supervisor import ensure_supervisor

    lab = lab_of(args)
    if not (args.runs or args.ablation or args.all_queued):
        raise UsageError("name the runs to cancel: RUN numbers, --ablation A or --all-queued")
    if args.project and not args.ablation:
        raise UsageError("--project goes with --ablation: fbtui cancel --ablation A --project P")
    with existing_store(lab, write=True) as store:
        args.runs = list(dict.fromkeys([*args.runs, *_group(store, args)]))
        if not args.runs:
            print("nothing to cancel: " + ("no run is waiting to start" if args.all_queued
                                           else f"every run of ablation {args.ablation} has ended"))
            return 0
        for rid in args.runs:
            run = store.run(rid)
            if run["status"] in ("succeeded", "failed", "cancelled"):
                print(f"run #{rid} already {run['status']}")
                continue
            store.update_run(rid, cancel_requested=1)
        ensure_supervisor(lab)
        deadline = time.monotonic() + 60
        pending = [r for r in args.runs if store.run(r)["status"] not in ("succeeded", "failed", "cancelled")]
        while pending and time.monotonic() < deadline:
            time.sleep(0.2)
            pending = [r for r in pending if store.run(r)["status"] not in ("succeeded", "failed", "cancelled")]
        for rid in args.runs:
            print(f"run #{rid}: {store.run(rid)['status']}")
    return 1 if pending else 0


def _group(store: Store, args: argparse.Namespace) -> list[int]:
    """The unfinished runs that --ablation (with --project) or --all-queued name."""
    ids: list[int] = []
    if args.ablation:
        where, params = "ablation = ?", [args.ablation]
        if args.project:
            where, params = where + " AND project = ?", [*params, args.project]
        rows = store.query(f"SELECT id, status FROM runs WHERE {where} ORDER BY id", params)
        if not rows:
            known = store.query("SELECT DISTINCT ablation FROM runs WHERE ablation IS NOT NULL"
                                + (" AND project = ?" if args.project else "") + " ORDER BY ablation",
                                [args.project] if args.project else [])
            names = ", ".join(r["ablation"] for r in known) or "none"
            of = f" of project {args.project}" if args.project else ""
            raise UsageError(f"no runs of ablation '{args.ablation}'{of} (ablations with runs: {names})")
        ids += [r["id"] for r in rows if r["status"] not in ("succeeded", "failed", "cancelled")]
    if args.all_queued:
        ids += [r["id"] for r in store.query("SELECT id FROM runs WHERE status IN ('pending', 'queued') ORDER BY id")]
    return ids


def cmd_supervise(args: argparse.Namespace) -> int:
    from fbtui.pipeline.supervisor import Supervisor
    from fbtui.store import Store

    lab = lab_of(args)
    with Store(lab.store_path) as store:  # no waiting notice: its output is a log file
        return Supervisor(lab, store).serve()
