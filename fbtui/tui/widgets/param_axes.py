"""A params-vs-metric plot's arithmetic: where a param's values sit on an axis (numeric, log or
categorical), the metric's axis with room for ± std, which rows share a series, how points that
share an x are set side by side, and the 0..1 scaling of parallel coordinates. Pure Python (no
Textual, no rich), on top of the chart's tick maths (axes.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fbtui.tui.widgets.axes import fmt_ticks, linear_ticks, log_ticks

DECADES = 2.0  # values spanning this many decades or more get a log axis by default
MISSING = "-"  # how a row without the param reads on a categorical axis


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def numeric(values: Sequence[Any]) -> bool:
    """Whether the values go on a numeric axis: every one a finite number (bools are categories)."""
    return bool(values) and all(is_number(v) for v in values)


def wants_log(values: Sequence[Any]) -> bool:
    """Positive numbers spanning two decades or more (learning rates, weight decays)."""
    if not numeric(values) or min(values) <= 0:
        return False
    return math.log10(max(values)) - math.log10(min(values)) >= DECADES - 1e-9


def label(v: Any) -> str:
    if v is None:
        return MISSING
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def category_order(values: Sequence[Any]) -> list[Any]:
    """The distinct values in a stable reading order: numbers by value, then the rest by their
    text, a missing value last (so `2 < 10`, not `"10" < "2"`)."""
    seen: dict[str, Any] = {}
    for v in values:
        seen.setdefault(label(v), v)

    def key(v: Any) -> tuple[int, float, str]:
        if v is None:
            return (2, 0.0, "")
        return (0, float(v), "") if is_number(v) else (1, 0.0, label(v))

    return sorted(seen.values(), key=key)


@dataclass
class Axis:
    """Maps values to 0..1 along an axis. `kind`: "linear", "log" or "category"; lo and hi in axis
    units (log10 of the value on a log axis); ticks as (position, label)."""

    kind: str
    lo: float = 0.0
    hi: float = 1.0
    ticks: list[tuple[float, str]] = field(default_factory=list)
    cats: dict[str, float] = field(default_factory=dict)  # a category's label -> its position
    note: str = ""  # why the axis is not what was asked (a log scale over values <= 0)

    def pos(self, v: Any) -> float | None:
        """The value's place in 0..1, None where it cannot sit on this axis."""
        if self.kind == "category":
            return self.cats.get(label(v))
        if not is_number(v):
            return None
        if self.kind == "log":
            if v <= 0:
                return None
            v = math.log10(v)
        return (v - self.lo) / (self.hi - self.lo)


def _span(lo: float, hi: float, pad: float) -> tuple[float, float]:
    """[lo, hi] widened by `pad` of its span each side; a single value gets a span of its own."""
    if hi - lo <= abs(hi) * 1e-12:
        half = 0.5 if lo == 0 else abs(lo) * 0.1
        return lo - half, hi + half
    d = (hi - lo) * pad
    return lo - d, hi + d


def param_axis(values: Sequence[Any], *, log: bool | None = None, count: int = 5, pad: float = 0.06,
               edges: bool = False) -> Axis:
    """The axis for a param's values. Numbers on a linear axis, or a log one when asked (`log`
    True) or by default when they span two decades; anything else as evenly spaced categories,
    in the middle of equal slots or, with `edges`, from 0 to 1 (parallel coordinates)."""
    if not numeric(values):
        cats = [label(v) for v in category_order(values)]
        n = len(cats)
        at = [(i / (n - 1) if n > 1 else 0.5) if edges else (i + 0.5) / max(1, n) for i in range(n)]
        return Axis("category", ticks=list(zip(at, cats)), cats=dict(zip(cats, at)))
    note = ""
    if log is None:
        log = wants_log(values)
    elif log and min(values) <= 0:
        log, note = False, "log scale needs values > 0"
    if log:
        lo, hi = _span(math.log10(min(values)), math.log10(max(values)), pad)
        ticks, step = log_ticks(lo, hi, count)
        at = [math.log10(t) for t in ticks]
        return Axis("log", lo, hi, [((a - lo) / (hi - lo), s) for a, s in zip(at, fmt_ticks(ticks, step))],
                    note=note)
    lo, hi = _span(float(min(values)), float(max(values)), pad)
    integer = all(float(v).is_integer() for v in values)
    ticks, step = linear_ticks(lo, hi, count, integer=integer)
    return Axis("linear", lo, hi, [((t - lo) / (hi - lo), s) for t, s in zip(ticks, fmt_ticks(ticks, step))],
                note=note)


def metric_axis(stats: Sequence[tuple[float, float]], *, count: int = 5, pad: float = 0.05) -> Axis:
    """The metric's linear axis over every mean ± std (whiskers stay inside the plot)."""
    finite = [(m, s if math.isfinite(s) else 0.0) for m, s in stats if math.isfinite(m)]
    if not finite:
        return Axis("linear")
    lo, hi = _span(min(m - s for m, s in finite), max(m + s for m, s in finite), pad)
    ticks, step = linear_ticks(lo, hi, count)
    return Axis("linear", lo, hi, [((t - lo) / (hi - lo), s) for t, s in zip(ticks, fmt_ticks(ticks, step))])


def cell(pos: float, cells: int) -> int:
    """A 0..1 position as one of `cells` (0 the first), clamped."""
    return max(0, min(cells - 1, round(pos * (cells - 1))))


def series_of(rows: Sequence[dict[str, Any]], x: str, params: Sequence[str]) -> list[str]:
    """Each row's series: its values of the other differing params ("optimizer=adam"), so that one
    param is read against the metric per setting of the rest ("" when x is the only param)."""
    others = [p for p in params if p != x]
    return ["  ".join(f"{p}={label(r.get(p))}" for p in others) for r in rows]


def dodge(k: int, n: int, room: int) -> int:
    """Column offset of series k of n at one x: side by side, 2 columns apart when the room (the
    columns between two x positions) allows, centred on the x; 0 when they do not fit."""
    if n <= 1:
        return 0
    gap = 2 if room >= 2 * n else 1 if room >= n else 0
    return round((k - (n - 1) / 2) * gap)


def parallel(rows: Sequence[dict[str, Any]], params: Sequence[str], metric: Sequence[float | None],
             *, count: int = 3) -> tuple[list[Axis], list[list[float | None]]]:
    """Parallel coordinates: an axis per param (0..1 from its lowest to its highest value, log
    when the values span two decades; categories evenly from 0 to 1) and the metric's as the last;
    each row's positions along them (None where it lacks the value)."""
    axes = [param_axis([r.get(p) for r in rows], count=count, pad=0.0, edges=True) for p in params]
    have = [m for m in metric if m is not None and math.isfinite(m)]
    axes.append(param_axis(have, log=False, count=count, pad=0.0) if have else Axis("linear"))
    lines = [[a.pos(r.get(p)) for a, p in zip(axes, params)] + [axes[-1].pos(m) if m is not None else None]
             for r, m in zip(rows, metric)]
    return axes, lines
