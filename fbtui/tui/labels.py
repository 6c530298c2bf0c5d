"""Short labels for long names (variants) that stay distinct: two runs never share a label. No
Textual here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable


def _cut(name: str, width: int) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def _head_tail(name: str, width: int, tail: int) -> str:
    return name if len(name) <= width else name[:width - 1 - tail] + "…" + name[-tail:]


def _to_boundary(name: str, tail: int, most: int) -> int:
    """`tail` grown back to the start of the key=value (or word) it cuts into, at most `most`."""
    while tail < min(most, len(name)) and name[-tail - 1] not in ", /;|":
        tail += 1
    return tail


def _distinct(labels: dict[str, str]) -> bool:
    return len(set(labels.values())) == len(labels)


def _part(group: list[str], width: int) -> dict[str, str]:
    """Labels for names whose cut to `width` is the same."""
    # The distinguishing tail kept: "hidden=64,lr=0.001,dro…batch=32" beside "…batch=64".
    for tail in range(1, width - 1):
        labels = {n: _head_tail(n, width, tail) for n in group}
        if _distinct(labels):
            # longer tails stay distinct: keep whole "key=value"s ("batch=32", not "2") up to half the width
            grown = max((_to_boundary(n, tail, width // 2) for n in group), default=tail)
            return {n: _head_tail(n, width, grown) for n in group}
    # They differ in the middle only: start a little before where they part.
    first, last = min(group), max(group)  # (their common prefix is these two's)
    common = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first))
    start = max(0, common - 4)
    labels = {n: _cut("…" + n[start:], width) for n in group}
    if _distinct(labels):
        return labels
    return {n: n[:max(1, width - 2 - len(str(i)))] + f"…#{i}" for i, n in enumerate(sorted(group), 1)}


def distinct_labels(names: Iterable[str], width: int) -> dict[str, str]:
    """Each name's label of at most `width` characters (a name that fits is its own label). Names
    cut to the same label keep their distinguishing tail, or middle, instead."""
    width = max(4, width)
    unique = list(dict.fromkeys(names))
    if not unique or max(map(len, unique)) <= width:  # every name fits (the usual table): itself
        return dict(zip(unique, unique))
    out = {n: _cut(n, width) for n in unique}
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for name, label in out.items():
        groups[label].append(name)
    taken = set(out.values())
    for label, group in groups.items():
        if len(group) > 1:
            fixed = _part(group, width)
            if not taken.isdisjoint(set(fixed.values()) - {label}):  # (a new label equal to another name's)
                fixed = {n: n[:max(1, width - 2 - len(str(i)))] + f"…#{i}" for i, n in enumerate(sorted(group), 1)}
            out.update(fixed)
    return out
