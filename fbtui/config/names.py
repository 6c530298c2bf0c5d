"""The one rule for the names a lab gives things (projects, environments, ablations, variants, the
lab itself), and the rules for values that end up in a config, a seed or a run count.

Names become folder names, image tags, container names and store keys: lower-case letters,
digits, `-` and `_` keep them valid in all four, with no path parts to escape a folder.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
NAME_RULE = "lower-case letters, digits, - and _, starting with a letter or digit, at most 64 characters"
SEED_MAX = 2**32 - 1  # numpy's and torch's seeding take 32 bits without complaint
INT_LIMIT = 2**63  # what SQLite and JSON readers hold exactly
DEFAULT_MAX_ABLATION_RUNS = 10_000
DEFAULT_STORE = ".fb/fb.db"  # lab.yaml store: (relative to the lab root)
MAX_SLOTS = 4096  # stages at once on one host: more is a typo, and no engine runs that many


def name_problem(kind: str, name: object) -> str | None:
    """Why `name` cannot name a `kind`, or None; suggests the nearest valid name."""
    if not isinstance(name, str):
        return f"a {kind} name must be text, got {name!r}"
    if NAME_PATTERN.match(name):
        return None
    suggestion = suggest_name(name)
    hint = f"; did you mean '{suggestion}'?" if suggestion and suggestion != name else ""
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"{kind} name {name!r} has path parts: give the bare name ({NAME_RULE}){hint}"
    return f"{kind} name {name!r} is not allowed: use {NAME_RULE}{hint}"


def suggest_name(name: str) -> str:
    """`MyNet` -> `mynet`, `my net` -> `my-net`, `projects/x/` -> `x`."""
    last = [p for p in re.split(r"[/\\]+", name) if p not in ("", ".", "..")]
    text = last[-1] if last else ""
    text = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return text[:64]


def seed_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"a seed is a whole number from 0 to {SEED_MAX}, got {value!r}"
    if not 0 <= value <= SEED_MAX:
        return f"a seed is from 0 to {SEED_MAX} (2^32 - 1), got {value}"
    return None


def json_problem(value: Any, *, allow_nonfinite: bool = False) -> str | None:
    """Why `value` cannot be a config value (it must survive JSON and SQLite unchanged), or None."""
    if value is None or isinstance(value, (bool, str)):
        return None
    if isinstance(value, int):
        if not -INT_LIMIT <= value < INT_LIMIT:
            return f"integers must fit in 64 bits, got one of {len(str(abs(value)))} digits"
        return None
    if isinstance(value, float):
        if not allow_nonfinite and not math.isfinite(value):
            return (f"{value!r} is not a finite number (common/limits.yaml can allow it for this key "
                    "with finite: false)")
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"a YAML date ({value}) is not a config value: quote it ('{value}') to make it text"
    if isinstance(value, list):
        for item in value:
            problem = json_problem(item, allow_nonfinite=allow_nonfinite)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"mapping keys must be text, got {k!r}: quote it"
            problem = json_problem(v, allow_nonfinite=allow_nonfinite)
            if problem:
                return problem
        return None
    return f"expected text, a number, true/false, null, a list or a mapping, got {type(value).__name__}"


def grid_size(grid: dict[str, list[Any]]) -> tuple[int, str]:
    """The number of points of a grid and how it is made (`3 × 4 × 2`), without expanding it."""
    sizes = [len(v) for v in grid.values()]
    return math.prod(sizes), " × ".join(map(str, sizes))
