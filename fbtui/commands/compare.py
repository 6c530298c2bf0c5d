"""`fbtui compare`: an ablation's rows side by side, or exported for a paper."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fbtui.commands.common import Command, lab_of, read_store

DESCRIPTION = """\
Compare the runs of a project side by side. A row is one experiment: the runs
that share the resolved config (all but the seed), the code state (commit,
dirty diff, untracked files) and the evaluation suite. Each seed counts once
(the latest succeeded run of it); a row missing seeds is marked partial (†) and
never starred. Runs of older code are set apart unless --all-code.

The suite shown is today's: the one the working tree's evaluation code, eval
config and data produce, checked file by file against what each evaluation
recorded. Runs evaluated under another suite are set apart with what differs;
`fbtui eval --stale PROJECT` brings them up to date. --suite FP shows an older
suite on purpose.

examples:
  fbtui compare digits-mlp --ablation sweep
  fbtui compare digits-mlp --ablation sweep --format latex --output table.tex
  fbtui compare digits-mlp --ablation sweep --all-code --json
  fbtui compare digits-mlp --where 'optim.lr<0.01 and not tag=broken'
  fbtui compare digits-mlp --ablation sweep --suite e7b145b2   (an older suite)"""


def _digits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of decimals from 0 to 10, got {text!r}") from None
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"expected a number of decimals from 0 to 10, got {value}")
    return value


SUFFIXES = {".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".json": "json"}


def _format(args: argparse.Namespace) -> str | None:
    from fbtui.errors import UsageError

    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json and --format {args.format} ask for two formats: pick one")
    fmt = "json" if args.json else args.format
    if args.output and args.output != "-" and Path(args.output).is_dir():
        example = Path(args.output) / "table.tex"
        raise UsageError(f"--output {args.output} is a folder: give a file name, e.g. {example}")
    if args.output and args.output != "-" and fmt is None:
        fmt = SUFFIXES.get(Path(args.output).suffix.lower())
        if fmt is None:
            raise UsageError(f"--output {args.output}: say the format with --format (csv, markdown, latex, json) "
                             "or end the name in .csv, .md, .tex or .json")
    if args.output == "-" and fmt is None:
        raise UsageError("--output -: say the format with --format (csv, markdown, latex, json)")
    return fmt


def _write(path: str, text: str) -> None:
    from fbtui.errors import FBError

    target = Path(path)
    if target.is_dir():
        raise FBError(f"--output {path} is a folder: give a file name, e.g. {target / 'table.tex'}")
    if not target.parent.is_dir():
        raise FBError(f"--output {path}: the folder {target.parent} does not exist")
    tmp = target.with_name(f".{target.name}.fb-tmp")
    try:  # written whole or not at all
        tmp.write_text(text)
        tmp.replace(target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise FBError(f"--output {path}: cannot write it: {e.strerror or e}") from None


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
    cp.add_argument("--suite", metavar="FP", help="show the runs evaluated under this suite (a fingerprint or "
                    "its first characters) instead of today's")
    cp.add_argument("--format", choices=FORMATS, help="export the table: " + ", ".join(FORMATS))
    cp.add_argument("--digits", type=_digits, default=4, help="decimals in exports, 0 to 10 (4)")
    cp.add_argument("--output", metavar="FILE",
                    help="write the export to FILE (- for standard output); the format follows its extension "
                         "(.csv .md .tex .json) unless --format says")
    cp.add_argument("--json", action="store_true", help="print JSON (same as --format json)")
    cp.add_argument("--where", metavar="EXPR", help="only the runs this filter matches (status, tag, params, "
                    "metrics: fbtui ps --help)")
    cp.add_argument("--archived", action="store_true", help="archived runs too")


def cmd_compare(args: argparse.Namespace) -> int:
    from fbtui.errors import UsageError
    from fbtui.output import table
    from fbtui.records.export import PARTIAL, export
    from fbtui.records.rows import ablation_table, lower_is_better

    lab = lab_of(args)
    project = lab.project(args.project)
    if args.ablation and args.ablation not in project.spec.ablations:
        raise UsageError(f"project '{args.project}' has no ablation '{args.ablation}' "
                         f"(ablations: {', '.join(project.spec.ablations) or 'none'})")
    fmt = _format(args)
    baseline = args.baseline
    if baseline is None and args.ablation:
        baseline = project.spec.ablations[args.ablation].baseline
    if not lab.store_path.exists():
        print(f"no runs of {args.project} yet: fbtui run {args.project}", file=sys.stderr if fmt else sys.stdout)
        return 1 if fmt else 0
    with read_store(lab) as store:
        keep = None
        if args.where is not None:
            from fbtui.records.filters import select

            keep = set(select(store, args.where, project=args.project, archived=args.archived))
        t = ablation_table(store, args.project, args.ablation, metrics=args.metrics, baseline=baseline,
                           all_code=args.all_code, star_partial=args.star_partial, lab=lab, suite=args.suite,
                           keep=keep, archived=args.archived or keep is not None)  # the filter chose
    known_metrics = sorted({m for r in t.rows for m in r.metrics} | set(t.metrics))
    if args.metrics and t.rows:
        unknown = [m for m in args.metrics if not any(m in r.metrics for r in t.rows)]
        if unknown:
            every = sorted(store_metrics(lab, args.project, args.ablation))
            raise UsageError(f"--metric {unknown[0]}: no run here has it (metrics: {', '.join(every) or 'none'})")
    if args.baseline and t.rows and t.baseline is None:
        raise UsageError(f"--baseline {args.baseline}: no such row (rows: {', '.join(r.name for r in t.rows)})")
    if args.sort:
        if args.sort in t.metrics:
            worst = float("inf") if lower_is_better(args.sort) else float("-inf")
            t.rows.sort(key=lambda r: r.metrics[args.sort].mean if args.sort in r.metrics else worst,
                        reverse=not lower_is_better(args.sort))
        elif args.sort in t.params:
            def key(r: Any) -> tuple[int, Any]:
                v = r.params.get(args.sort)
                return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, str(v))

            t.rows.sort(key=key)
        elif t.rows:
            raise UsageError(f"--sort {args.sort}: not a column here (metrics: {', '.join(known_metrics)}; "
                             f"params: {', '.join(t.params) or 'none differ'})")
    if fmt:
        text = export(t, fmt, args.digits)
        if args.output and args.output != "-":
            _write(args.output, text)
            print(f"wrote {args.output} ({fmt}, {len(t.rows)} rows)", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    if not t.rows:
        where = f"{args.project}" + (f" in ablation {args.ablation}" if args.ablation else "")
        print(f"no run of {where} is evaluated under today's suite yet" if t.suite_how == "none" and t.set_apart
              else f"no finished runs of {where}")
        for note in t.notes()[1:]:
            print(note)
        older = sorted({x.fingerprint[:12] for x in t.set_apart if x.why == "suite" and x.fingerprint})
        if t.suite_how == "none" and older:  # the numbers they have are still there: say how to see them
            print(f"--suite FP shows them under an older suite ({', '.join(older[:5])})")
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
    if t.best or t.baseline:
        print(("* best per metric" + ("" if t.star_partial else " (complete rows)") if t.best else "")
              + ("; " if t.best and t.baseline else "") + (f"deltas against {t.baseline}" if t.baseline else ""))
    for note in t.notes():
        print(note)
    return 0


def store_metrics(lab: Any, project: str, ablation: str | None) -> set[str]:
    with read_store(lab) as store:
        return set(store.compare(project, ablation).metrics)
