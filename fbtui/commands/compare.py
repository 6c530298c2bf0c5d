"""The comparison of an ablation's variants."""

from __future__ import annotations

import argparse
from typing import Any

from fbtui.commands.common import Command, lab_of, open_store


def add_parsers(sub: Any, cmd: Command) -> None:
    cp = cmd("compare", "compare the variants of a project's runs side by side (seeds as mean ± std)")
    cp.add_argument("project")
    cp.add_argument("--ablation", metavar="A", help="only this ablation's runs")
    cp.add_argument("--baseline", metavar="V", help="show deltas against this variant (default: the ablation's)")
    cp.add_argument("--metric", dest="metrics", action="append", metavar="KEY",
                    help="metrics to show (repeatable; default: the eval/ metrics)")
    cp.add_argument("--sort", metavar="KEY", help="sort by this metric (best first) or param")
    cp.add_argument("--json", action="store_true", help="print JSON")



def cmd_compare(args: argparse.Namespace) -> int:
    from fbtui.compare import ablation_table, lower_is_better
    from fbtui.output import print_json, table

    lab = lab_of(args)
    project = lab.project(args.project)
    baseline = args.baseline
    if baseline is None and args.ablation and args.ablation in project.spec.ablations:
        baseline = project.spec.ablations[args.ablation].baseline
    if not lab.store_path.exists():
        print(f"no runs of {args.project} yet: fbtui run {args.project}")
        return 0
    with open_store(lab) as store:
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
