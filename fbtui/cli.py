"""The `fbtui` command line. A thin layer over the core: parse, call, render.

Imports stay inside the commands so that `fbtui --version` pays for nothing it does not use.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from fbtui import __version__
from fbtui.errors import FBError

EPILOG = """\
examples:
  fbtui ls                        projects, their environment and last run
  fbtui config digits-mlp         the resolved config, each value's origin,
                                  and the pipeline rendered from it
  fbtui config digits-mlp -o model.hidden=512 -o optim.lr=3e-4
  fbtui variants digits-mlp       the variants (and seeds) of each ablation
  fbtui config digits-mlp --variant 'hidden=64,lr=1e-3,dropout=0.0' --seed 1
  fbtui new mynet --from-script train.py
                                  an argparse script as a project, no adapter
  fbtui build digits-mlp          build what the image lacks (cached)
  fbtui build digits-mlp --host gpu-box
                                  make the image present on a lab server
  fbtui images                    the lab's images; fbtui gc cleans up
  fbtui run digits-mlp            prepare -> train -> evaluate, log followed
  fbtui run digits-mlp --ablation sweep -d
                                  queue every variant and seed, return at once
  fbtui ps; fbtui logs 12 -f; fbtui cancel 12
  fbtui compare digits-mlp --ablation sweep
                                  one row per config: seeds as mean ± std
  fbtui eval 12 13                score old runs on today's evaluation suite
  fbtui tag 12 baseline; fbtui ps --where 'tag=baseline or lr<0.01'
  fbtui archive 12; fbtui delete 13 --yes
  fbtui hosts                     each host: up?, slots, GPUs, stages
  fbtui doctor                    is all in place? each failure says the fix

The lab is the nearest folder upward with a lab.yaml; --lab PATH or
FB_LAB=PATH choose another. Exit codes: 0 ok, 1 failure, 2 bad usage.
Listing commands take --json.
"""


# One module per verb group (as DVC and pip do): each declares its verbs and runs them.
COMMAND_MODULES = ("lab", "new", "images", "runs", "evaluate", "records", "manage", "compare", "leaderboard", "hosts",
                   "backup", "top")


def _parser() -> argparse.ArgumentParser:
    import importlib

    from fbtui.commands.common import command_maker

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
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"fbtui.commands.{name}")
        module.add_parsers(sub, command_maker(sub, module))
    return p


def _app_only(argv: list[str]) -> tuple[bool, str | None]:
    """`fbtui` and `fbtui --lab PATH` open the app without making every verb's parser (a tenth of
    the time to the app's first frame): whether argv is one of them, and the --lab it names."""
    if not argv:
        return True, None
    if len(argv) == 2 and argv[0] == "--lab" and not argv[1].startswith("-"):
        return True, argv[1]
    if len(argv) == 1 and argv[0].startswith("--lab="):
        return True, argv[0].removeprefix("--lab=")
    return False, None


def main(argv: list[str] | None = None) -> int:
    try:
        app_only, lab = _app_only(sys.argv[1:] if argv is None else argv)
        if app_only:
            from fbtui.tui import run_app

            return run_app(lab)
        args = _parser().parse_args(argv)
        if args.command is None:  # no command: the terminal app (imported here: --version stays fast)
            from fbtui.tui import run_app

            return run_app(args.lab)
        return int(args.func(args) or 0)
    except FBError as e:
        print(f"fbtui: error: {e}", file=sys.stderr)
        return e.exit_code
    except sqlite3.Error as e:  # a store failing under a command (disk full, damaged): one line
        from fbtui.store.opening import store_error

        print(f"fbtui: error: {store_error(e, None)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fbtui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug or a case nobody foresaw: one line here, the traceback in a log file
        from fbtui.pipeline.health import unreachable

        if unreachable(e):  # an engine that stopped answering mid-command is no bug of ours
            print(f"fbtui: error: a Docker engine stopped answering: {_first_line(e)}\n"
                  "  hint: fbtui hosts shows which hosts answer; try again when it does", file=sys.stderr)
            return 1
        from fbtui.store.registry import report_unexpected

        print(f"fbtui: error: {report_unexpected(e, sys.argv if argv is None else ['fbtui', *argv])}",
              file=sys.stderr)
        return 1


def _first_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0][:300]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
