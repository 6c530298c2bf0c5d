"""Limits on config values (common/limits.yaml), checked wherever a config resolves.

defaults.yaml fixes each key's type; limits.yaml says which values of that type make sense:

    train.epochs: {min: 1}
    data.test_fraction: {above: 0, below: 1}
    train.precision: {choices: [auto, fp32, bf16, fp16]}
    loss.clip: {finite: false}        # NaN and infinities are refused unless a key allows them

`min`/`max` are inclusive, `above`/`below` exclusive. A value out of its limits is reported where
it was set (project.yaml's line, the variant, or `-o`), before anything is built or launched,
instead of failing a stage minutes later.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fbtui.errors import ConfigError

if TYPE_CHECKING:
    from fbtui.config.yamlsrc import Source

BOUNDS = ("min", "max", "above", "below")


@dataclass
class Limit:
    key: str
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    choices: list[Any] | None = None
    finite: bool = True  # `finite: false` lets the key be NaN or infinite

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of these limits, or None."""
        if value is None:
            return None
        if self.choices is not None and value not in self.choices:
            return f"expected one of {', '.join(map(str, self.choices))}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None  # the type check (defaults.yaml) speaks for non-numbers
        if self.min is not None and value < self.min:
            return f"must be at least {_num(self.min)}, got {_num(value)}"
        if self.max is not None and value > self.max:
            return f"must be at most {_num(self.max)}, got {_num(value)}"
        if self.above is not None and value <= self.above:
            return f"must be more than {_num(self.above)}, got {_num(value)}"
        if self.below is not None and value >= self.below:
            return f"must be less than {_num(self.below)}, got {_num(value)}"
        return None


def _num(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def parse_limits(src: Source, known: set[str], what: str = "common/defaults.yaml") -> dict[str, Limit]:
    """The limits in `src`, each checked: a known dotted key, a mapping of min/max/above/below
    (numbers) or choices (a list). Errors name the file and line."""
    if src.data is None:
        return {}
    if not isinstance(src.data, dict):
        raise ConfigError("expected a mapping of dotted config keys to limits", file=src.file, line=1)
    out: dict[str, Limit] = {}
    for key, spec in src.data.items():
        line = src.line_of((key,), key=True) or src.line_of((key,))
        key = str(key)
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            raise ConfigError(f"not a key of {what}" + (f"; did you mean '{close[0]}'?" if close else ""),
                              file=src.file, line=line, key=key)
        if not isinstance(spec, dict) or not spec:
            raise ConfigError("expected a mapping such as {min: 1} or {choices: [a, b]}", file=src.file, line=line,
                              key=key)
        limit = Limit(key)
        for name, value in spec.items():
            at = src.line_of((key, name)) or line
            if name in BOUNDS:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ConfigError(f"expected a finite number, got {value!r}", file=src.file, line=at,
                                      key=f"{key}.{name}")
                setattr(limit, name, value)
            elif name == "finite":
                if not isinstance(value, bool):
                    raise ConfigError(f"expected true or false, got {value!r}", file=src.file, line=at,
                                      key=f"{key}.{name}")
                limit.finite = value
            elif name == "choices":
                if not isinstance(value, list) or not value:
                    raise ConfigError("expected a non-empty list", file=src.file, line=at, key=f"{key}.{name}")
                limit.choices = value
            else:
                close = difflib.get_close_matches(str(name), [*BOUNDS, "choices", "finite"], n=1)
                raise ConfigError("unknown limit (min, max, above, below, choices, finite)"
                                  + (f"; did you mean '{close[0]}'?" if close else ""),
                                  file=src.file, line=at, key=f"{key}.{name}")
        out[key] = limit
    return out


def check_limits(limits: dict[str, Limit], flat: dict[str, Any], origins: dict[str, str]) -> None:
    """Raise ConfigError for the first value out of its limits, naming where the value was set."""
    for key, limit in limits.items():
        if key not in flat:
            continue
        problem = limit.problem(flat[key])
        if problem:
            raise ConfigError(problem, file=origins.get(key), key=key)
