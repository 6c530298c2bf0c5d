"""Which metrics a chart shows: any key a run logged, grouped by prefix (the part before the first
`/`, any case: `Loss/train` and `loss/val` are group `loss`; `lr` is a group of its own), today's
loss/accuracy charts by default, and the lines of the picker. No Textual and no store here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_SERIES = 8  # a chart's colours (widgets/chart.py): a bigger group shows its first keys
DEFAULT_KEYS = 4  # the default loss and accuracy charts share the first four curves, as before
CURVE_ORDER = ("train/loss", "val/loss", "val/accuracy", "train/accuracy", "train/epoch_loss")


def curve_keys(keys: Iterable[str]) -> list[str]:
    """The metrics worth a curve by default: losses and accuracies first (any case); `eval/` keys
    are one final point each, no curve."""
    keys = list(keys)
    picked = [k for k in CURVE_ORDER if k in keys]
    picked += [k for k in keys if k not in picked and ("loss" in k.lower() or "acc" in k.lower())
               and not k.lower().startswith("eval/")]
    return picked


def group_of(key: str) -> str:
    return key.split("/", 1)[0].lower()


def _order(keys: Iterable[str]) -> list[str]:
    return sorted(keys, key=lambda k: (k.lower(), k))


def group_keys(keys: Iterable[str]) -> dict[str, list[str]]:
    """Keys by group, the groups in alphabetical order and the keys sorted (any case) in each."""
    out: dict[str, list[str]] = {}
    for k in _order(keys):
        out.setdefault(group_of(k), []).append(k)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Pick:
    """What one chart shows, resolved against the run's keys on every poll (a live run's new keys
    of a picked group join its chart)."""

    kind: str  # "key": one metric; "group": a prefix's keys; "match": keys naming `name` (the defaults)
    name: str  # the key, the group (lower case), or the word
    label: str = ""  # a match's title: "loss", "accuracy"

    def keys(self, keys: Iterable[str]) -> list[str]:
        if self.kind == "key":
            return [self.name] if self.name in set(keys) else []
        if self.kind == "group":
            return [k for k in _order(keys) if group_of(k) == self.name][:MAX_SERIES]
        return [k for k in curve_keys(keys)[:DEFAULT_KEYS] if self.name in k.lower()]

    def title(self, keys: Iterable[str]) -> str:
        if self.kind == "key":
            return self.name
        if self.kind == "group":
            n = sum(1 for k in keys if group_of(k) == self.name)
            return f"{self.name}/*" + (f" (first {MAX_SERIES} of {n})" if n > MAX_SERIES else "")
        return self.label or self.name


LOSS = Pick("match", "loss", "loss")
ACCURACY = Pick("match", "acc", "accuracy")


def default_picks(keys: Iterable[str], charts: int = 2) -> list[Pick]:
    """Today's loss and accuracy charts when the run has such keys, else its first groups (`eval/`
    last: final points, no curves); a group of one key is that key."""
    keys = list(keys)
    picks = [p for p in (LOSS, ACCURACY) if p.keys(keys)]
    if picks:
        return picks[:charts]
    groups = group_keys(keys)
    names = sorted(groups, key=lambda g: g == "eval")  # (a stable sort: the rest stay alphabetical)
    return [Pick("key", groups[g][0]) if len(groups[g]) == 1 else Pick("group", g) for g in names[:charts]]


def default_key(keys: Iterable[str]) -> str | None:
    """The one key a single-metric chart (the comparison's) shows first."""
    keys = _order(keys)
    first = curve_keys(keys) or [k for k in keys if not k.lower().startswith("eval/")] or keys
    return first[0] if first else None


def picker_entries(keys: Iterable[str], text: str = "", groups: bool = True) -> list[tuple[Pick | None, str]]:
    """The picker's lines, as (what picking it shows, label): each group of several keys (a
    header that cannot be picked when `groups` is false) with its keys indented under it. `text`
    (any case) keeps the groups whose name holds it, whole, and elsewhere the keys that hold it."""
    needle = text.strip().lower()
    out: list[tuple[Pick | None, str]] = []
    for g, ks in group_keys(keys).items():
        shown = ks if not needle or needle in g else [k for k in ks if needle in k.lower()]
        if not shown:
            continue
        if len(ks) == 1:
            out.append((Pick("key", ks[0]), ks[0]))
            continue
        out.append((Pick("group", g) if groups else None, f"{g}/*  ({len(ks)} keys)"))
        out += [(Pick("key", k), f"  {k}") for k in shown]
    return out
