"""`fbtui leaderboard`: every run scored on a lab-wide suite, across projects, ranked."""

from __future__ import annotations

import argparse
from typing import Any

from fbtui.commands.common import Command, lab_of, read_store

DESCRIPTION = """\
Rank every run scored on a lab-wide evaluation suite (common/suites.yaml),
whichever project it came from. A row follows the comparison's rules: one
project, variant, config and code state, each seed counted once (mean ± std).
Only runs scored on today's version of the suite are ranked (its code, data and
evaluator config as the working tree has them); the others are set apart with
what differs. With no NAME, lists the lab's suites.

examples:
  fbtui leaderboard
  fbtui eval --suite digits-holdout 12 40     score runs on it first
  fbtui leaderboard digits-holdout
  fbtui leaderboard digits-holdout --json"""


def add_parsers(sub: Any, cmd: Command) -> None:
    lb = cmd("leaderboard", "rank every run scored on a lab-wide evaluation suite, across projects", DESCRIPTION)
    lb.add_argument("suite", nargs="?", metavar="NAME", help="a suite in common/suites.yaml")
    lb.add_argument("--fingerprint", metavar="FP", help="rank the runs scored on this older version instead")
    lb.add_argument("--json", action="store_true", help="print JSON")


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from fbtui.config.suites import get_suite, load_suites
    from fbtui.output import print_json, table
    from fbtui.records.leaderboard import leaderboard

    lab = lab_of(args)
    if args.suite is None:
        suites = load_suites(lab)
        counts = _counts(lab)
        if args.json:
            print_json([{"suite": s.name, "description": s.spec.description, "runs": counts.get(s.name, 0),
                         "auto": s.spec.auto} for s in suites.values()])
            return 0
        if not suites:
            print("no suites yet: define them in common/suites.yaml (see fbtui leaderboard --help)")
            return 0
        print(table(["SUITE", "RUNS", "AUTO", "DESCRIPTION"],
                    [[s.name, counts.get(s.name, 0), ",".join(s.spec.auto) or "-", s.spec.description[:50]]
                     for s in suites.values()]))
        return 0
    suite = get_suite(lab, args.suite)
    if not lab.store_path.exists():
        print(f"no runs scored on {suite.name} yet: fbtui eval --suite {suite.name} RUN...")
        return 0
    with read_store(lab) as store:
        board = leaderboard(lab, store, suite, pinned=args.fingerprint)
    if args.json:
        print_json(board.to_dict())
        return 0
    print(board.header())
    if board.ranked:
        body = []
        for x in board.ranked:
            r = x.row
            cells: list[Any] = [x.rank, x.project, r.name + (" †" if r.partial else ""), r.seeds_text, r.code]
            cells += [r.metrics[m].text() if m in r.metrics else "-" for m in board.metrics]
            body.append(cells)
        print(table(["#", "PROJECT", "ROW", "SEEDS", "CODE", *board.metrics], body))
    else:
        print(f"no run is ranked: fbtui eval --suite {suite.name} RUN... scores runs on it")
    for note in board.notes():
        print(note)
    return 0


def _counts(lab: Any) -> dict[str, int]:
    if not lab.store_path.exists():
        return {}
    with read_store(lab) as store:
        return store.suite_counts()
