"""Lab commands: ls, config, variants, doctor."""

from __future__ import annotations

import argparse
from typing import Any

from fbtui.commands.common import Command, lab_of, seed_arg
from fbtui.errors import FBError


def add_parsers(sub: Any, cmd: Command) -> None:
    ls = cmd("ls", "list the lab's projects with their environment and last run")
    ls.add_argument("--json", action="store_true", help="print JSON")

    cfg = cmd(
        "config", "print a project's resolved config and where each value came from",
        "Resolve a project's config: common/defaults.yaml (the sections it inherits), then\n"
        "projects/P/defaults.yaml, projects/P/project.yaml, the ablation variant, then -o\n"
        "overrides (mappings merge, lists and scalars replace). Then the effective pipeline:\n"
        "each stage's command and env rendered from this config, its metric sources.",
    )
    cfg.add_argument("project", help="project name (a folder under projects/)")
    cfg.add_argument("--variant", metavar="V", help="an ablation variant (see `fbtui variants PROJECT`)")
    cfg.add_argument("--ablation", metavar="A", help="the ablation the variant belongs to, if ambiguous")
    cfg.add_argument("--seed", type=seed_arg, help="the seed (default: the variant's first)")
    cfg.add_argument("-o", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                     help="override one key, e.g. -o model.hidden=256 (repeatable; values read as YAML)")
    cfg.add_argument("--json", action="store_true", help="print JSON: config and origins")
    cfg.add_argument("--no-origins", action="store_true", help="plain YAML without origin comments")

    var = cmd("variants", "list the variants of a project's ablations")
    var.add_argument("project")
    var.add_argument("--ablation", metavar="A", help="only this ablation")
    var.add_argument("--json", action="store_true", help="print JSON")

    doc = cmd("doctor", "check the engine, base image, store and git state; say how to fix what fails")
    doc.add_argument("--json", action="store_true", help="print JSON")


def cmd_ls(args: argparse.Namespace) -> int:
    from fbtui.output import print_json, table

    lab = lab_of(args)
    last: dict[str, Any] = {}
    if lab.store_path.exists():
        from fbtui.commands.common import read_store

        with read_store(lab) as store:
            last = store.last_run_status()
    rows = []
    for name in lab.project_names():
        try:
            proj = lab.project(name)
            env, desc, problem = proj.environment, proj.spec.description, None
        except FBError as e:
            env, desc, problem = None, "", str(e)
        except Exception as e:  # a case nobody foresaw breaks this project's row, not the listing
            env, desc, problem = None, "", f"unexpected {type(e).__name__}: {e}"
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

    lab = lab_of(args)
    project = lab.project(args.project)
    variant = None
    if args.variant:
        runs = find_variant(lab, project, args.variant, args.ablation)
        variant = next((v for v in runs if args.seed is None or v.seed == args.seed), runs[0])
    elif args.ablation:
        from fbtui.errors import UsageError

        raise UsageError("--ablation needs --variant (list them with `fbtui variants PROJECT`)")
    from fbtui.config.pipelines import describe
    from fbtui.pipeline.recorded import pipeline_record

    resolved = resolve(lab, project, variant, args.overrides, seed=args.seed)
    if args.json:
        print_json({
            "project": project.name, "ablation": variant.ablation if variant else None,
            "variant": variant.name if variant else None, "config": resolved.config,
            "origins": resolved.origins, "pipeline": pipeline_record(project, resolved.config),
        })
        return 0
    what = f"# {project.name}"
    if variant:
        what += f", ablation {variant.ablation}, variant {variant.name}"
    seed = resolved.config.get("seed")
    print(what + (f", seed {seed}" if seed is not None else ""))
    print(yaml_with_origins(resolved.config, None if args.no_origins else resolved.origins))
    if not args.no_origins:
        print("\n".join(describe(project, resolved.config)))
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from fbtui.config.resolve import expand
    from fbtui.output import print_json, table

    lab = lab_of(args)
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
