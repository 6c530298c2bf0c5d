"""What every command module shares: how a verb is declared, the lab and the store it works on."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

Command = Callable[..., argparse.ArgumentParser]


def command_maker(sub: Any, module: ModuleType) -> Command:
    """`cmd(name, help, description)` for one module: the verb runs that module's `cmd_<name>`."""

    def cmd(name: str, help_: str, description: str | None = None) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=fit(description or help_),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.add_argument("--lab", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.set_defaults(func=getattr(module, f"cmd_{name.replace('-', '_')}"))
        return sp

    return cmd


def fit(text: str, width: int = 79) -> str:
    """A description in an 80-column terminal: prose lines (a paragraph written across lines) are
    wrapped again; indented lines (examples, tables) stay as written, and so do blank lines."""
    import textwrap

    out: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.extend(textwrap.wrap(" ".join(prose), width, break_on_hyphens=False) or [""])
            prose.clear()

    for line in text.splitlines():
        if line.strip() and not line.startswith(" "):
            prose.append(line.strip())
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


def run_id(text: str) -> int:
    """A run number as argparse reads it: a clear usage error for 'x', 0, -1 or 10**20."""
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a run number like 12, got {text!r}") from None
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a run number like 12, got {text!r}")
    return value


def seed_arg(text: str) -> int:
    """--seed as argparse reads it: 0 ... 2^32 - 1."""
    from fbtui.config.names import seed_problem

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number such as 0 or 1, got {text!r}") from None
    problem = seed_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def stage_list(text: str) -> list[str]:
    """--stages A,B: names, none empty (an empty --stages would otherwise mean every stage)."""
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"expected stage names separated by commas, such as train,evaluate, got "
                                         f"{text!r}")
    return names


def existing_store(lab: Lab, *, write: bool = False) -> Store:
    """The lab's store for a command that reads (or with `write`, changes) existing runs: never
    creates one; a reader opens it read-only, so a store it may not write still reads."""
    from fbtui.records.show import RunNotFound

    if not lab.store_path.exists():
        raise RunNotFound(f"no runs in this lab yet (no store at {lab.store_path})",
                          hint="fbtui run PROJECT starts one")
    return open_store(lab) if write else read_store(lab)


def lab_of(args: argparse.Namespace) -> Lab:
    from fbtui.lab import Lab

    return Lab.find(getattr(args, "lab", None))


def open_store(lab: Lab) -> Store:
    """The store for a command that writes: created when missing; a wait for another writer's lock
    is reported on stderr after a second."""
    from fbtui.store import Store

    return Store(lab.store_path, on_wait=say_waiting)


def read_store(lab: Lab) -> Store:
    """The store (it must exist) for a command that only reads it."""
    from fbtui.store.opening import open_to_read

    return open_to_read(lab.store_path, on_wait=say_waiting)


def say_waiting() -> None:
    import sys

    from fbtui.store.opening import WAITING

    print(f"fbtui: {WAITING}", file=sys.stderr, flush=True)
