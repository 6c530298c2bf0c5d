"""Plain-text rendering shared by CLI commands: tables, JSON, YAML with origin comments."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def size_text(n: int | None, small: str = "B") -> str:
    """Bytes for people: `312.0 MiB`, `4.0 GiB`, `812 B` (`small` names the unit below a KiB); None is "-"."""
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} {small}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def yaml_scalar(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def yaml_with_origins(config: dict[str, Any], origins: dict[str, str] | None) -> str:
    """The config as YAML; each leaf followed by a comment naming where its value came from."""
    rows: list[tuple[str, str | None]] = []

    def walk(node: dict[str, Any], prefix: str, indent: int) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            name = yaml_scalar(key) if not isinstance(key, str) or ":" in key else key
            if isinstance(value, dict) and value:
                rows.append((" " * indent + f"{name}:", None))
                walk(value, dotted + ".", indent + 2)
            else:
                origin = (origins or {}).get(dotted)
                rows.append((" " * indent + f"{name}: {yaml_scalar(value)}", origin))

    walk(config, "", 0)
    width = max((len(text) for text, origin in rows if origin), default=0)
    return "\n".join(f"{text.ljust(width)}  # {origin}" if origin else text for text, origin in rows)
