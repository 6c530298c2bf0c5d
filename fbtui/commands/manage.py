"""Runs management commands (#14): note, tag, archive, delete."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from fbtui.commands.common import Command, existing_store, lab_of, run_id

if TYPE_CHECKING:
    from fbtui.store import Store


def add_parsers(sub: Any, cmd: Command) -> None:
    nt = cmd("note", "set a run's note (shown by show, filtered with note~WORD)",
             "Set a run's note: free text shown by fbtui show and the app, and searched by filter\n"
             "expressions (--where 'note~diverged'). An empty TEXT clears it; no TEXT prints it.\n\n"
             "examples:\n  fbtui note 12 \"lr too high: diverged after epoch 3\"\n  fbtui note 12 ''"
             "                  clear it\n  fbtui note 12                     print it")
    nt.add_argument("run", type=run_id, metavar="RUN")
    nt.add_argument("text", nargs="*", metavar="TEXT", help="the note (words are joined with spaces)")
    nt.add_argument("--json", action="store_true", help="print JSON")

    tg = cmd("tag", "add tags to a run (or remove them with --remove)",
             "Tag a run: tags are shown by fbtui show and ps, and filtered with tag=NAME.\n\n"
             "examples:\n  fbtui tag 12 baseline paper\n  fbtui tag 12 paper --remove\n"
             "  fbtui ps --where 'tag=baseline'")
    tg.add_argument("run", type=run_id, metavar="RUN")
    tg.add_argument("tags", nargs="+", metavar="TAG", help="one word each: letters, digits, _ . : / + @ -")
    tg.add_argument("--remove", action="store_true", help="remove these tags instead")
    tg.add_argument("--json", action="store_true", help="print JSON")

    ar = cmd("archive", "hide finished runs from tables and comparisons (kept; --undo)",
             "Archive runs: they leave ps, compare, the leaderboard and eval --stale, and stay in the\n"
             "store with their files (fbtui show still shows them; ps --archived lists them).\n"
             "--undo brings them back.\n\n"
             "examples:\n  fbtui archive 12 13\n  fbtui archive --where 'status=failed'\n"
             "  fbtui archive 12 --undo\n  fbtui ps --archived --where archived")
    ar.add_argument("runs", type=run_id, nargs="*", metavar="RUN")
    ar.add_argument("--where", metavar="EXPR", help="also the runs this filter matches")
    ar.add_argument("--undo", action="store_true", help="bring archived runs back")
    ar.add_argument("--json", action="store_true", help="print JSON")

    de = cmd("delete", "delete runs: store rows, logs and run folders (asks for --yes)",
             "Delete runs for good: their rows in the store (stages, params, metrics, artifacts,\n"
             "evaluations, tags), their spooled logs and their folder under .fb/runs (links are removed,\n"
             "never followed), with their hidden re-evaluations. Without --yes it lists what would go\n"
             "and exits 1. Runs in progress are refused, and so is a run whose stage outputs another\n"
             "run reuses (a cache hit): delete both, or archive it instead.\n\n"
             "examples:\n  fbtui delete 12 13               list what would go\n"
             "  fbtui delete 12 13 --yes\n  fbtui delete --where 'archived and status=failed' --yes")
    de.add_argument("runs", type=run_id, nargs="*", metavar="RUN")
    de.add_argument("--where", metavar="EXPR", help="also the runs this filter matches (archived ones too)")
    de.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    de.add_argument("--json", action="store_true", help="print JSON")


def _named(store: Store, args: argparse.Namespace, verb: str, *, archived: bool) -> list[int]:
    from fbtui.errors import UsageError
    from fbtui.records.filters import select

    ids = list(args.runs)
    if args.where is not None:
        ids += sorted(select(store, args.where, archived=archived))
    if not ids and args.where is None:
        raise UsageError(f"name the runs to {verb}: RUN numbers or --where EXPR")
    return list(dict.fromkeys(ids))


def cmd_note(args: argparse.Namespace) -> int:
    from fbtui.output import print_json
    from fbtui.records.manage import note, runs_named

    lab = lab_of(args)
    with existing_store(lab, write=bool(args.text)) as store:
        if not args.text:
            text = runs_named(store, [args.run])[0]["note"]
        else:
            text = note(store, args.run, " ".join(args.text))
    if args.json:
        print_json({"run": args.run, "note": text})
    elif args.text:
        print(f"run #{args.run}: " + ("note set" if text else "note cleared"))
    else:
        print(text if text else f"run #{args.run} has no note (fbtui note {args.run} TEXT sets one)")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from fbtui.output import print_json
    from fbtui.records.manage import tag

    lab = lab_of(args)
    with existing_store(lab, write=True) as store:
        tags = tag(store, args.run, args.tags, remove=args.remove)
    if args.json:
        print_json({"run": args.run, "tags": tags})
    else:
        print(f"run #{args.run} tags: {', '.join(tags) or 'none'}")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    from fbtui.output import print_json
    from fbtui.records.manage import archive, unarchive

    lab = lab_of(args)
    with existing_store(lab, write=True) as store:
        # --undo --where 'tag=x' looks among the archived runs
        ids = _named(store, args, "archive", archived=args.undo)
        changed = (unarchive if args.undo else archive)(store, ids)
    if args.json:
        print_json({"runs": ids, "changed": changed, "archived": not args.undo})
        return 0
    if not ids:
        print("no run matches the filter")
        return 0
    same = [i for i in ids if i not in changed]
    state = "brought back" if args.undo else "archived"
    if changed:
        print(f"{state}: " + " ".join(f"#{i}" for i in changed)
              + ("" if args.undo else f"  (undo: fbtui archive {' '.join(map(str, changed))} --undo)"))
    if same:
        print(("not archived" if args.undo else "already archived") + ": " + " ".join(f"#{i}" for i in same))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from fbtui.output import print_json
    from fbtui.records.manage import delete, plan_delete

    lab = lab_of(args)
    with existing_store(lab, write=True) as store:
        ids = _named(store, args, "delete", archived=True)
        if not ids:
            print("no run matches the filter")
            return 0
        plan = plan_delete(lab, store, ids)
        if not args.yes:
            if args.json:
                print_json({"deleted": False, "runs": plan.runs, "rows": plan.rows,
                            "folders": [str(f) for f, _, _ in plan.folders]})
            else:
                print("would delete:")
                for line in plan.lines():
                    print("  " + line)
            print(f"nothing deleted: fbtui delete {' '.join(map(str, plan.named))} --yes deletes them",
                  file=sys.stderr)
            return 1
        done = delete(lab, store, plan)
    if args.json:
        print_json({"deleted": True, "runs": done.runs, "rows": done.rows,
                    "failed": {str(k): v for k, v in done.failed.items()}})
    elif done.runs:
        print("deleted " + " ".join(f"#{i}" for i in done.runs) + f" ({sum(done.rows.values())} rows)")
    if done.failed:
        first = next(iter(done.failed.items()))
        print(f"fbtui: error: the folder of run {', '.join(f'#{i}' for i in done.failed)} could not be removed "
              f"(its rows are kept; fix and delete again): #{first[0]}: {first[1]}", file=sys.stderr)
        return 1
    return 0
