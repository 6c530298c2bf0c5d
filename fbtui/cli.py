"""The `fbtui` command line. A thin layer over the core: parse, call, render.

Imports stay inside the commands so that `fbtui --version` pays for nothing it does not use.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fbtui import __version__
from fbtui.errors import FBError

EPILOG = """\
examples:
  fbtui ls                                   projects, their environment and last run
  fbtui config digits-mlp                    the resolved config, each value with its origin
  fbtui config digits-mlp -o model.hidden=512 -o optim.lr=3e-4
  fbtui variants digits-mlp                  the variants (and seeds) of every ablation
  fbtui config digits-mlp --variant 'hidden=64,lr=1e-3,dropout=0.0' --seed 1
  fbtui build digits-mlp                     build what the project's image lacks (cached by content)
  fbtui build digits-mlp --host gpu-box      make the image present on a lab server
  fbtui images                               the lab's images, current or stale; fbtui gc cleans up
  fbtui run digits-mlp                       run prepare -> train -> evaluate in containers, following the log
  fbtui run digits-mlp --ablation sweep -d   queue every variant and seed, return at once
  fbtui ps; fbtui logs 12 -f; fbtui cancel 12
  fbtui compare digits-mlp --ablation sweep  variants side by side: seeds as mean ± std, best marked
  fbtui eval 12 13                           evaluate old runs' models with today's evaluation suite
  fbtui hosts                                each host: up?, engine, slots and GPUs in use, running stages
  fbtui doctor                               is everything in place? each failure says how to fix it

The lab is the nearest folder upward with a lab.yaml; --lab PATH or FB_LAB=PATH choose another.
Exit codes: 0 ok, 1 failure, 2 bad usage. Listing commands take --json.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fbtui",
        description="Force Build: build, run and compare deep-learning pipelines in containers.\n"
                    "With no command, fbtui opens the terminal app.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fbtui {__version__}")
    p.add_argument("--lab", metavar="PATH", help="the lab root (default: nearest lab.yaml upward, or $FB_LAB)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name: str, help_: str, description: str | None = None) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=description or help_,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.add_argument("--lab", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return sp

    ls = cmd("ls", "list the lab's projects with their environment and last run")
    ls.add_argument("--json", action="store_true", help="print JSON")

    cfg = cmd(
        "config", "print a project's resolved config and where each value came from",
        "Resolve a project's config: common/defaults.yaml, then projects/P/project.yaml, then the\n"
        "ablation variant, then -o overrides (mappings merge, lists and scalars replace).",
    )
    cfg.add_argument("project", help="project name (a folder under projects/)")
    cfg.add_argument("--variant", metavar="V", help="an ablation variant (see `fbtui variants PROJECT`)")
    cfg.add_argument("--ablation", metavar="A", help="the ablation the variant belongs to, if ambiguous")
    cfg.add_argument("--seed", type=int, help="the seed (default: the variant's first)")
    cfg.add_argument("-o", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                     help="override one key, e.g. -o model.hidden=256 (repeatable; values read as YAML)")
    cfg.add_argument("--json", action="store_true", help="print JSON: config and origins")
    cfg.add_argument("--no-origins", action="store_true", help="plain YAML without origin comments")

    var = cmd("variants", "list the variants of a project's ablations")
    var.add_argument("project")
    var.add_argument("--ablation", metavar="A", help="only this ablation")
    var.add_argument("--json", action="store_true", help="print JSON")

    b = cmd(
        "build", "make a project's image present on a host (base -> environment -> project layers)",
        "Build the layers a project needs, each tagged by a hash of its inputs: what exists is never\n"
        "rebuilt. With --host, base and environment images are shipped from the local engine and the\n"
        "project layer is built on the host from its small context.",
    )
    b.add_argument("project")
    b.add_argument("--variant", metavar="V", help="accepted for symmetry with run: every variant shares one image")
    b.add_argument("--host", default=None, help="a host from lab.yaml (default: defaults.host)")
    b.add_argument("--builder", choices=["auto", "classic", "buildkit"], help="override build.builder")
    b.add_argument("-v", "--verbose", action="store_true", help="print every build log line")
    b.add_argument("--json", action="store_true", help="print the result as JSON")

    im = cmd("images", "list the lab's images on a host, marking current and stale ones")
    im.add_argument("--host", default=None, help="a host from lab.yaml (default: defaults.host)")
    im.add_argument("--json", action="store_true", help="print JSON")

    gc = cmd("gc", "remove stale images that no run used lately (dry run unless --yes)")
    gc.add_argument("--host", default=None, help="a host from lab.yaml (default: defaults.host)")
    gc.add_argument("--days", type=float, default=14, help="keep images used by runs in this many days (14)")
    gc.add_argument("--yes", action="store_true", help="really delete")
    gc.add_argument("--json", action="store_true", help="print JSON")

    r = cmd(
        "run", "run a project's pipeline (or a variant, or a whole ablation) in containers",
        "Resolve the config, capture git, make sure the image is on the host, record the run and run its\n"
        "stages in order in containers. A detached supervisor runs them: Ctrl-C only stops following,\n"
        "and `fbtui cancel RUN` stops a run.",
    )
    r.add_argument("project")
    r.add_argument("--stages", metavar="A,B", help="run only these stages; the others must be cache hits")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--variant", metavar="V", help="one variant of an ablation (all its seeds unless --seed)")
    g.add_argument("--ablation", metavar="A", help="every variant and seed of an ablation")
    r.add_argument("--in-ablation", dest="variant_ablation", metavar="A",
                   help="the ablation of --variant, if ambiguous")
    r.add_argument("--seed", type=int, help="the seed")
    r.add_argument("--host", metavar="H[,H]", help="host(s) from lab.yaml (default: defaults.host)")
    r.add_argument("-o", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override one config key (repeatable)")
    r.add_argument("--no-cache", action="store_true", help="rerun stages even when an earlier result matches")
    r.add_argument("--detach", "-d", action="store_true", help="start and return at once")
    r.add_argument("--json", action="store_true", help="print the run ids as JSON (implies --detach)")

    ps = cmd("ps", "runs in progress (queued or running) across hosts")
    ps.add_argument("--all", action="store_true", help="recent runs too, not only those in progress")
    ps.add_argument("--json", action="store_true", help="print JSON")

    lg = cmd("logs", "print a run's stage logs (spooled: they outlive the containers)")
    lg.add_argument("run", type=int)
    lg.add_argument("--stage", help="only this stage")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    lg.add_argument("--timestamps", action="store_true", help="show each line's timestamp")

    cn = cmd("cancel", "stop runs: their running stage is stopped, later stages never start")
    cn.add_argument("runs", type=int, nargs="+")

    cp = cmd("compare", "compare the variants of a project's runs side by side (seeds as mean ± std)")
    cp.add_argument("project")
    cp.add_argument("--ablation", metavar="A", help="only this ablation's runs")
    cp.add_argument("--baseline", metavar="V", help="show deltas against this variant (default: the ablation's)")
    cp.add_argument("--metric", dest="metrics", action="append", metavar="KEY",
                    help="metrics to show (repeatable; default: the eval/ metrics)")
    cp.add_argument("--sort", metavar="KEY", help="sort by this metric (best first) or param")
    cp.add_argument("--json", action="store_true", help="print JSON")

    ev = cmd("eval", "evaluate earlier runs' models again with the current evaluation suite",
             "Re-run the evaluate stage of each run on its trained model, with today's evaluation code,\n"
             "config and data: results under one fingerprint are comparable again.")
    ev.add_argument("runs", type=int, nargs="+")
    ev.add_argument("--detach", "-d", action="store_true", help="start and return at once")

    hs = cmd("hosts", "the lab's hosts: reachable?, engine version, GPUs, slots in use, running fb containers")
    hs.add_argument("--json", action="store_true", help="print JSON")

    sv = sub.add_parser("supervise")  # internal: the detached supervisor that runs the lab's stages
    sv.add_argument("--lab", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub._choices_actions = [a for a in sub._choices_actions if a.dest != "supervise"]  # keep it out of --help

    doc = cmd("doctor", "check the engine, base image, store and git state; say how to fix what fails")
    doc.add_argument("--json", action="store_true", help="print JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # no command: the terminal app (imported here: --version stays fast)
        try:
            from fbtui.tui import run_app

            return run_app(args.lab)
        except FBError as e:
            print(f"fbtui: error: {e}", file=sys.stderr)
            return e.exit_code
    try:
        return int(globals()[f"cmd_{args.command}"](args) or 0)
    except FBError as e:
        print(f"fbtui: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fbtui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _lab(args: argparse.Namespace) -> Any:
    from fbtui.lab import Lab

    return Lab.find(getattr(args, "lab", None))


# ------------------------------------------------------------------ commands


def cmd_ls(args: argparse.Namespace) -> int:
    from fbtui.output import print_json, table

    lab = _lab(args)
    last: dict[str, Any] = {}
    if lab.store_path.exists():
        from fbtui.store import Store

        with Store(lab.store_path) as store:
            last = store.last_run_status()
    rows = []
    for name in lab.project_names():
        try:
            proj = lab.project(name)
            env, desc, problem = proj.environment, proj.spec.description, None
        except FBError as e:
            env, desc, problem = None, "", str(e)
        run = last.get(name)
        rows.append({
            "project": name, "environment": env, "description": desc,
            "last_run": run["id"] if run else None, "last_status": run["status"] if run else None,
            "active": run["active"] if run else 0, "error": problem,
        })
    if args.json:
        print_json({"lab": str(lab.root), "projects": rows, "environments": lab.environment_names()})
        return 0
    print(f"lab {lab.config.name} at {lab.root}")
    if not rows:
        print("no projects yet: add projects/<name>/project.yaml")
        return 0
    print(table(
        ["PROJECT", "ENVIRONMENT", "LAST RUN", "RUNNING", "DESCRIPTION"],
        [[r["project"], r["environment"] or "(invalid)",
          f"#{r['last_run']} {r['last_status']}" if r["last_run"] else "never run",
          r["active"] or "", r["description"] if not r["error"] else r["error"].splitlines()[0]]
         for r in rows],
    ))
    print(f"environments: {', '.join(lab.environment_names()) or 'none'}")
    return 1 if any(r["error"] for r in rows) else 0


def cmd_config(args: argparse.Namespace) -> int:
    from fbtui.config.resolve import find_variant, resolve
    from fbtui.output import print_json, yaml_with_origins

    lab = _lab(args)
    project = lab.project(args.project)
    variant = None
    if args.variant:
        runs = find_variant(lab, project, args.variant, args.ablation)
        variant = next((v for v in runs if args.seed is None or v.seed == args.seed), runs[0])
    elif args.ablation:
        from fbtui.errors import UsageError

        raise UsageError("--ablation needs --variant (list them with `fbtui variants PROJECT`)")
    resolved = resolve(lab, project, variant, args.overrides, seed=args.seed)
    if args.json:
        print_json({
            "project": project.name, "ablation": variant.ablation if variant else None,
            "variant": variant.name if variant else None, "config": resolved.config,
            "origins": resolved.origins,
        })
        return 0
    what = f"# {project.name}"
    if variant:
        what += f", ablation {variant.ablation}, variant {variant.name}"
    seed = resolved.config.get("seed")
    print(what + (f", seed {seed}" if seed is not None else ""))
    print(yaml_with_origins(resolved.config, None if args.no_origins else resolved.origins))
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from fbtui.config.resolve import expand
    from fbtui.output import print_json, table

    lab = _lab(args)
    project = lab.project(args.project)
    names = [args.ablation] if args.ablation else list(project.spec.ablations)
    out = []
    for a in names:
        runs = expand(lab, project, a)
        seen: dict[str, dict[str, Any]] = {}
        for v in runs:
            row = seen.setdefault(v.name, {"ablation": a, "variant": v.name, "overrides": v.overrides,
                                           "seeds": []})
            if v.seed is not None:
                row["seeds"].append(v.seed)
        out.extend(seen.values())
    if args.json:
        print_json(out)
        return 0
    if not out:
        print(f"project {project.name} has no ablations: add `ablations:` to its project.yaml")
        return 0
    from fbtui.output import yaml_scalar

    print(table(["ABLATION", "VARIANT", "SEEDS", "OVERRIDES"],
                [[r["ablation"], r["variant"], ",".join(map(str, r["seeds"])) or "-",
                  ", ".join(f"{k}={yaml_scalar(v)}" for k, v in r["overrides"].items())] for r in out]))
    total = sum(max(1, len(r["seeds"])) for r in out)
    print(f"{len(out)} variants, {total} runs")
    return 0


def _store(lab: Any) -> Any:
    from fbtui.store import Store

    return Store(lab.store_path)


def _build_failed(e: Any) -> int:
    """The failing step and its last lines, then the error: what a person needs to fix a build."""
    print(f"\nbuild failed: {e.layer} at step: {e.step}", file=sys.stderr)
    for line in e.lines:
        print(f"    | {line}", file=sys.stderr)
    print(f"fbtui: error: {e.message.split(': ', 1)[-1]}", file=sys.stderr)
    return 1


def cmd_build(args: argparse.Namespace) -> int:
    from fbtui.images.builders import BuildFailed
    from fbtui.images.service import ensure_project_image
    from fbtui.output import print_json
    from fbtui.progress import BuildProgress

    lab = _lab(args)
    project = lab.project(args.project)
    if args.variant:
        from fbtui.config.resolve import find_variant

        find_variant(lab, project, args.variant)
    host = args.host or lab.config.defaults.host
    progress = BuildProgress(sys.stderr if args.json else sys.stdout, verbose=args.verbose)
    with _store(lab) as store:
        try:
            result = ensure_project_image(lab, project.name, host=host, store=store, emit=progress,
                                          builder=args.builder)
        except BuildFailed as e:
            progress.finish()
            return _build_failed(e)
    progress.finish()
    if args.json:
        print_json({"tag": result.tag, "image_id": result.image_id, "host": host,
                    "layers": [r.__dict__ for r in result.layers]})
    else:
        made = ", ".join(f"{r.layer} {r.action} in {r.seconds:.1f} s" for r in result.built) or "nothing to build"
        print(f"{result.tag} is on {host} ({made})")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from fbtui.images.service import list_images
    from fbtui.output import print_json, table

    lab = _lab(args)
    host = args.host or lab.config.defaults.host
    rows = list_images(lab, host)
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    if not rows:
        print(f"no images of lab {lab.config.name} on {host} yet: fbtui build PROJECT makes them")
        return 0
    print(table(["HOST", "LAYER", "NAME", "TAG", "STATE", "CREATED", "SIZE"],
                [[r.host, r.layer, r.name, ", ".join(t for t in r.tags) or r.id[7:19],
                  "current" if r.current else "stale", r.created, f"{r.size / 1e6:.0f} MB"] for r in rows]))
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from fbtui.images.service import collect_garbage
    from fbtui.output import print_json

    lab = _lab(args)
    host = args.host or lab.config.defaults.host
    store = _store(lab) if lab.store_path.exists() else None
    try:
        candidates, errors = collect_garbage(lab, store, host=host, days=args.days, delete=args.yes)
    finally:
        if store is not None:
            store.close()
    if args.json:
        print_json({"deleted": args.yes, "images": [r.to_dict() for r in candidates], "errors": errors})
    else:
        verb = "removed" if args.yes else "would remove"
        for r in candidates:
            print(f"{verb} {', '.join(r.tags) or r.id[7:19]} ({r.layer} {r.name}, {r.size / 1e6:.0f} MB)")
        if not candidates:
            print(f"nothing to collect on {host}: every fb image is current or used by a run in {args.days:g} days")
        elif not args.yes:
            print("dry run: add --yes to delete")
        for e in errors:
            print(f"could not remove {e}", file=sys.stderr)
    return 1 if errors else 0


def cmd_run(args: argparse.Namespace) -> int:
    from fbtui.images.builders import BuildFailed
    from fbtui.output import print_json
    from fbtui.pipeline.launch import launch, select_variants
    from fbtui.pipeline.watch import follow_runs
    from fbtui.progress import BuildProgress

    lab = _lab(args)
    hosts = (args.host or lab.config.defaults.host).split(",")
    variants = select_variants(lab, args.project, args.variant, args.ablation or args.variant_ablation, args.seed)
    stages = args.stages.split(",") if args.stages else None
    progress = BuildProgress(sys.stderr)
    with _store(lab) as store:
        try:
            started = launch(lab, store, args.project, variants=variants, overrides=args.overrides, hosts=hosts,
                             stages=stages, seed=args.seed, no_cache=args.no_cache, emit=progress)
        except BuildFailed as e:
            return _build_failed(e)
        if args.json:
            print_json({"runs": started.run_ids, "image": started.image, "hosts": started.hosts})
            return 0
        ids = ", ".join(f"#{i}" for i in started.run_ids)
        print(f"queued {ids} ({args.project}, image {started.image})")
        if args.detach:
            print(f"follow with: fbtui logs {started.run_ids[0]} -f    stop with: fbtui cancel {ids.replace('#', '')}")
            return 0
        try:
            finals = follow_runs(lab, store, started.run_ids)
        except KeyboardInterrupt:
            print(f"\ndetached: the run goes on. fbtui logs {started.run_ids[0]} -f follows it again, "
                  f"fbtui cancel {started.run_ids[0]} stops it")
            return 0
    bad = {k: v for k, v in finals.items() if v != "succeeded"}
    if len(finals) > 1:
        print(f"{len(finals) - len(bad)} of {len(finals)} runs succeeded")
    return 1 if bad else 0


def cmd_ps(args: argparse.Namespace) -> int:
    from fbtui.output import print_json, table
    from fbtui.pipeline.watch import reattach

    lab = _lab(args)
    if not lab.store_path.exists():
        print("no runs yet")
        return 0
    with _store(lab) as store:
        reattach(lab, store)
        where = "" if args.all else "WHERE status IN ('queued', 'running')"
        runs = store.query(f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT 200")
        rows = []
        for r in runs:
            current = next((s for s in store.stages(r["id"]) if s["status"] == "running"), None)
            end = r["finished_at"] or __import__("time").time()
            rows.append({"run": r["id"], "project": r["project"], "variant": r["variant"], "seed": r["seed"],
                         "host": r["host"] or r["requested_host"], "status": r["status"],
                         "stage": current["name"] if current else None,
                         "seconds": round(end - r["started_at"], 1) if r["started_at"] else None,
                         "reason": r["reason"]})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no runs in progress" + ("" if args.all else " (fbtui ps --all shows recent ones)"))
        return 0
    print(table(["RUN", "PROJECT", "VARIANT", "HOST", "STATUS", "STAGE", "TIME", "REASON"],
                [[f"#{r['run']}", r["project"], (r["variant"] or "-") + (f" s{r['seed']}" if r["variant"] else ""),
                  r["host"], r["status"], r["stage"] or "", f"{r['seconds']:.0f}s" if r["seconds"] else "",
                  (r["reason"] or "").splitlines()[0][:60] if r["reason"] else ""] for r in rows]))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from fbtui.pipeline.logs import read_spool
    from fbtui.pipeline.supervisor import run_folder
    from fbtui.pipeline.watch import follow_runs, reattach

    lab = _lab(args)
    with _store(lab) as store:
        run = store.run(args.run)
        names = [s["name"] for s in store.stages(args.run)]
        if args.stage and args.stage not in names:
            from fbtui.errors import UsageError

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


def cmd_cancel(args: argparse.Namespace) -> int:
    import time

    from fbtui.pipeline.supervisor import ensure_supervisor

    lab = _lab(args)
    with _store(lab) as store:
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


def cmd_compare(args: argparse.Namespace) -> int:
    from fbtui.compare import ablation_table, lower_is_better
    from fbtui.output import print_json, table

    lab = _lab(args)
    project = lab.project(args.project)
    baseline = args.baseline
    if baseline is None and args.ablation and args.ablation in project.spec.ablations:
        baseline = project.spec.ablations[args.ablation].baseline
    if not lab.store_path.exists():
        print(f"no runs of {args.project} yet: fbtui run {args.project}")
        return 0
    with _store(lab) as store:
        t = ablation_table(store, args.project, args.ablation, metrics=args.metrics, baseline=baseline)
    if args.sort:
        if args.sort in t.metrics:
            worst = float("inf") if lower_is_better(args.sort) else float("-inf")
            t.rows.sort(key=lambda r: r.metrics[args.sort].mean if args.sort in r.metrics else worst,
                        reverse=not lower_is_better(args.sort))
        elif args.sort in t.params:
            t.rows.sort(key=lambda r: str(r.params.get(args.sort)))
    if args.json:
        print_json(t.to_dict())
        return 0
    if not t.rows:
        print(f"no finished runs of {args.project}" + (f" in ablation {args.ablation}" if args.ablation else ""))
        return 0
    headers = ["VARIANT", "RUNS", *t.params, *t.metrics]
    body = []
    for r in t.rows:
        cells = [r.variant + (" (baseline)" if r.variant == t.baseline else ""), len(r.runs)]
        cells += [r.params.get(p) for p in t.params]
        for m in t.metrics:
            s = r.metrics.get(m)
            text = s.text() if s else "-"
            if t.best.get(m) == r.variant and len(t.rows) > 1:
                text += " *"
            if m in r.delta and r.variant != t.baseline:
                text += f" ({r.delta[m]:+.4f})"
            cells.append(text)
        body.append(cells)
    print(table(headers, body))
    print(f"* best per metric; evaluation suite {t.fingerprint[:12] if t.fingerprint else 'unknown'}"
          + (f"; deltas against {t.baseline}" if t.baseline else ""))
    if t.set_apart:
        ids = ", ".join(f"#{x['run']}" for x in t.set_apart)
        print(f"set apart (evaluated under another suite, not comparable): {ids}; fbtui eval {ids.replace('#', '')} "
              "re-evaluates them")
    if t.unfinished:
        print(f"{t.unfinished} runs not finished or not succeeded are not shown")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from fbtui.pipeline.launch import reevaluate
    from fbtui.pipeline.watch import follow_runs
    from fbtui.progress import BuildProgress

    lab = _lab(args)
    with _store(lab) as store:
        new = reevaluate(lab, store, args.runs, emit=BuildProgress(sys.stderr))
        for src, rid in zip(args.runs, new):
            print(f"run #{rid} evaluates run #{src} again")
        if args.detach:
            return 0
        finals = follow_runs(lab, store, new)
        for src in args.runs:
            ev = store.query("SELECT fingerprint, results FROM evaluations WHERE run_id = ? ORDER BY id DESC LIMIT 1",
                             (src,))
            if ev:
                print(f"run #{src}: suite {ev[0]['fingerprint'][:12]}: {ev[0]['results'][:200]}")
    return 0 if all(v == "succeeded" for v in finals.values()) else 1


def cmd_hosts(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from fbtui.output import print_json, table
    from fbtui.pipeline.hosts import host_status

    lab = _lab(args)
    names = list(lab.config.hosts)
    with ThreadPoolExecutor(max_workers=8) as pool:  # a host that does not answer must not hold up the others
        rows = list(pool.map(lambda n: host_status(lab.root, lab.config.name, lab.config.hosts, n), names))
    if args.json:
        print_json(rows)
        return 0
    print(table(["HOST", "URL", "STATE", "ENGINE", "SLOTS", "GPUS", "RUNNING"],
                [[r["host"], r["url"], "up" if r["reachable"] else "DOWN",
                  f"{r['version']} (API {r['api']})" if r["reachable"] else (r["error"] or "")[:60],
                  f"{r['in_use']}/{r['slots']}",
                  (f"{len(r['gpus_in_use'])}/{len(r['gpus'])} in use" if r["gpus"] else
                   ("nvidia runtime" if "nvidia" in r["runtimes"] else "none")),
                  ", ".join(f"#{c['run']} {c['stage']}" for c in r["containers"] if c["state"] == "running")
                  or "-"] for r in rows]))
    return 0 if all(r["reachable"] for r in rows) else 1


def cmd_supervise(args: argparse.Namespace) -> int:
    from fbtui.pipeline.supervisor import Supervisor

    lab = _lab(args)
    with _store(lab) as store:
        return Supervisor(lab, store).serve()


def cmd_doctor(args: argparse.Namespace) -> int:
    from fbtui.doctor import run_checks
    from fbtui.output import print_json

    checks = run_checks(getattr(args, "lab", None))
    failed = [c for c in checks if c.status == "fail"]
    if args.json:
        print_json([c.__dict__ for c in checks])
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for c in checks:
            print(f"[{marks[c.status]}] {c.name}: {c.detail}")
            if c.fix and c.status != "ok":
                print(f"       fix: {c.fix}")
        print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed" if failed else "\nall checks passed")
    return 1 if failed else 0
