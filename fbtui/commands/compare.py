"""`fbtui compare`: an ablation's rows side by side, or exported for a paper."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fbtui.commands.common import Command, lab_of, open_store

DESCRIPTION = """\
Compare the runs of a project side by side. A row is one experiment: the runs that share the
resolved config (all but the seed), the code state (commit, dirty diff, untracked files) and the
evaluation suite. Each seed counts once (the latest succeeded run of it); a row missing seeds is
marked partial (†) and never starred. Runs of older code are set apart unless --all-code.

examples:
  fbtui compare digits-mlp --ablation sweep
  fbtui compare digits-mlp --ablation sweep --format latex --output table.tex
  fbtui compare digits-mlp --ablation sweep --all-code --json"""


def add_parsers(sub: Any, cmd: Command) -> None:
    from fbtui.records.export import FORMATS

    cp = cmd("compare", "compare the variants of a project's runs side by side (seeds as mean ± std)", DESCRIPTION)
    cp.add_argument("project")
    cp.add_argument("--ablation", metavar="A", help="only this ablation's runs")
    cp.add_argument("--baseline", metavar="ROW", help="show deltas against this row (default: the ablation's)")
    cp.add_argument("--metric", dest="metrics", action="append", metavar="KEY",
                    help="metrics to show (repeatable; default: the eval/ metrics)")
    cp.add_argument("--sort", metavar="KEY", help="sort by this metric (best first) or param")
    cp.add_argument("--all-code", action="store_true",
                    help="include runs of older code states, each state as its own rows (named @commit)")
    cp.add_argument("--star-partial", action="store_true", help="let rows that miss seeds be starred as best")
    cp.add_argument("--format", choices=FORMATS, help="export the table: " + ", ".join(FORMATS))
    cp.add_argument("--digits", type=int, default=4, help="decimals in exports (4)")
    cp.add_argument("--output", metavar="FILE", help="write the export to FILE instead of standard output")
    cp.add_argument("--json", action="store_true", help="print JSON (same as --format json)")


def cmd_compare(args: argparse.Namespace) -> int:
    from fbtui.output import table
    from fbtui.records.export import PARTIAL, export
    from fbtui.records.rows import ablation_table, lower_is_better

    lab = lab_of(args)
    project = lab.project(args.project)
    if args.ablation and args.ablation not in project.spec.ablations:
        from fbtui.errors import UsageError

        raise UsageError(f"project '{args.project}' has no ablation '{args.ablation}' "
                         f"(ablations: {', '.join(project.spec.ablations) or 'none'})")
    baseline = args.baseline
    if baseline is None and args.ablation:
        baseline = project.spec.ablations[args.ablation].baseline
    fmt = "json" if args.json else args.format
    if not lab.store_path.exists():
        print(f"no runs of {args.project} yet: fbtui run {args.project}", file=sys.stderr if fmt else sys.stdout)
        return 0 if not fmt else 1
    with open_store(lab) as store:
        t = ablation_table(store, args.project, args.ablation, metrics=args.metrics, baseline=baseline,
                           all_code=args.all_code, star_partial=args.star_partial, lab=lab)
    if args.sort:
        if args.sort in t.metrics:
            worst = float("inf") if lower_is_better(args.sort) else float("-inf")
            t.rows.sort(key=lambda r: r.metrics[args.sort].mean if args.sort in r.metrics else worst,
                        reverse=not lower_is_better(args.sort))
        elif args.sort in t.params:
            t.rows.sort(key=lambda r: str(r.params.get(args.sort)))
    if fmt:
        text = export(t, fmt, args.digits)
        if args.output:
            Path(args.output).write_text(text)
            print(f"wrote {args.output} ({fmt}, {len(t.rows)} rows)", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    if not t.rows:
        print(f"no finished runs of {args.project}" + (f" in ablation {args.ablation}" if args.ablation else ""))
        for note in t.notes()[1:]:
            print(note)
        return 0
    headers = ["ROW", "SEEDS", *t.params, *t.metrics]
    body = []
    for r in t.rows:
        cells: list[Any] = [r.name + (" (baseline)" if r.name == t.baseline else ""),
                            r.seeds_text + (f" {PARTIAL}" if r.partial else "")]
        cells += [r.params.get(p) for p in t.params]
        for m in t.metrics:
            s = r.metrics.get(m)
            text = s.text() if s else "-"
            if t.best.get(m) == r.name:
                text += " *"
            if m in r.delta and r.name != t.baseline:
                text += f" ({r.delta[m]:+.4f})"
            cells.append(text)
        body.append(cells)
    print(table(headers, body))
    print("* best per metric" + ("" if t.star_partial else " (complete rows)")
          + (f"; deltas against {t.baseline}" if t.baseline else ""))
    for note in t.notes():
        print(note)
    return 0
