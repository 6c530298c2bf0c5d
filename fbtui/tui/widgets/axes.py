"""A chart's arithmetic: ticks at nice round numbers and their labels, log-scale ticks, EMA
smoothing, and the per-column reduction that keeps a redraw of 100,000s of points fast. Pure
Python (no Textual, no rich): the hot loops run in C builtins (min, max, map, bisect, slices)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import islice

SMOOTHING = (0.0, 0.6, 0.9, 0.99)  # what the smoothing key cycles through (TensorBoard's slider range)


def nice_step(span: float, count: int) -> float:
    """The smallest step of 1, 2 or 5 times a power of ten giving at most about `count` ticks."""
    raw = span / max(1, count)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw * (1 - 1e-9):
            return m * mag
    return 10 * mag


def linear_ticks(lo: float, hi: float, count: int, integer: bool = False) -> tuple[list[float], float]:
    """Ticks at multiples of a nice step within [lo, hi], and the step (which sets the labels' decimals)."""
    for more in range(4):  # two ticks at least: a smaller step when the nice one leaves one
        step = nice_step(hi - lo, count + more)
        if integer:
            step = max(step, 1.0)
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last > first:
            break
    # k * step, rounded to the step's digits: 0.30000000000000004 would print as such
    digits = max(0, -math.floor(math.log10(step))) + 2
    return [round(k * step, digits) for k in range(first, last + 1)], step


def log_ticks(lo: float, hi: float, count: int) -> tuple[list[float], float | None]:
    """Ticks for a log axis spanning 10**lo .. 10**hi: whole decades when two or more fit, else
    1-2-5 or 1..9 of each decade, else linear ticks between the two ends (with their step)."""
    decades = list(range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1))
    if len(decades) >= 2:
        every = max(1, math.ceil(len(decades) / max(1, count)))
        return [10.0 ** e for e in decades if e % every == 0] or [10.0 ** decades[0]], None
    for mults in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** e for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in mults
                 if lo - 1e-9 <= math.log10(m) + e <= hi + 1e-9]
        if 2 <= len(ticks) <= max(count, 4):
            return ticks, None
    ticks, step = linear_ticks(10.0 ** lo, 10.0 ** hi, count)
    return [t for t in ticks if t > 0], step


def fmt_tick(v: float, step: float, scale: float | None = None) -> str:
    """A tick's label with the decimals its step needs: 0.25, 20k, 1.5M, 3e-5. `scale` (the axis'
    largest |tick|) picks the form, so that one axis reads 5k, 10k rather than 5000, 10k."""
    if v == 0:
        return "0"
    a = abs(scale) if scale else abs(v)
    step = abs(step) or abs(v)
    for div, suffix, above in ((1e9, "G", 1e9), (1e6, "M", 1e6), (1e3, "k", 1e4)):
        if a >= above:
            d = max(0, -math.floor(math.log10(step / div) + 1e-9))
            return f"{v / div:.{d}f}{suffix}"
    if a < 1e-3:
        d = max(0, math.floor(math.log10(abs(v)) + 1e-9) - math.floor(math.log10(step) + 1e-9))
        mantissa, exp = f"{v:.{d}e}".split("e")
        return f"{mantissa}e{int(exp)}"
    d = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{v:.{d}f}"


def fmt_ticks(ticks: Sequence[float], step: float | None = None) -> list[str]:
    """Labels of one axis' ticks: linear ticks share their step's decimals; log ticks (step None)
    each take their own (0.001, 0.01, 0.1, 1, 10)."""
    if step is None:
        return [fmt_tick(t, t, t) for t in ticks]
    scale = max((abs(t) for t in ticks), default=0.0)
    return [fmt_tick(t, step, scale) for t in ticks]


def ema(ys: Sequence[float], factor: float) -> list[float]:
    """Exponential moving average, debiased as TensorBoard and W&B do (the first points are not
    pulled towards 0): s_i = f*s_(i-1) + (1-f)*y_i, shown as s_i / (1 - f**(i+1))."""
    if factor <= 0 or not ys:
        return list(ys)
    a, last, out = 1.0 - factor, 0.0, []
    append = out.append
    # Past this many points f**(i+1) is below 1e-12: the debias term is 1 and the loop is lighter.
    head = min(len(ys), int(math.log(1e-12) / math.log(factor)) + 1 if factor < 1 else len(ys))
    w = 1.0
    for y in islice(ys, head):
        last += a * (y - last)
        w *= factor
        append(last / (1.0 - w))
    for y in islice(ys, head, None):
        last += a * (y - last)
        append(last)
    return out


def split(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """The points' x and y as two lists, in x order, without non-finite values."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    # A NaN or an infinity makes the sum so (a huge finite sum overflowing only takes the slow way).
    if not (math.isfinite(sum(xs)) and math.isfinite(sum(ys))):
        kept = [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
        xs, ys = [p[0] for p in kept], [p[1] for p in kept]
    if xs != sorted(xs):  # (timsort checks an ordered list in one pass)
        pairs = sorted(zip(xs, ys), key=lambda p: p[0])
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    return xs, ys


def reduce(points: Sequence[tuple[float, float]], ys: Sequence[float],
           buckets: int = 1024) -> tuple[list[float], list[float]]:
    """x from `points` and `ys` (theirs, or their smoothing) as at most 4 points per bucket of
    consecutive points: its first, lowest, highest and last (M4; the extremes at the bucket's middle
    step, less than a pixel off). A chart up to `buckets` pixel columns wide draws them as it would
    draw all the points, and a redraw then costs thousands of points, not 100,000s."""
    n = len(ys)
    if n <= 4 * buckets:
        return [p[0] for p in points], list(ys)
    size = -(-n // buckets)
    rx: list[float] = []
    ry: list[float] = []
    for a in range(0, n, size):
        b = min(n, a + size)
        chunk = ys[a:b]
        mid = points[(a + b) // 2][0]
        rx += (points[a][0], mid, mid, points[b - 1][0])
        ry += (chunk[0], min(chunk), max(chunk), chunk[-1])
    return rx, ry


def columns(xs: Sequence[float], ys: Sequence[float], x0: float, x1: float,
            width: int) -> list[tuple[int, float, float, float, float]]:
    """Each of `width` pixel columns the sorted points fall in, with the lowest, highest, first and
    last y there: what a curve looks like at that width, whatever its number of points."""
    out: list[tuple[int, float, float, float, float]] = []
    n = len(xs)
    if not n:
        return out
    dx = (x1 - x0) / max(1, width - 1)
    a = 0
    for c in range(width):
        b = n if c == width - 1 else bisect_left(xs, x0 + (c + 0.5) * dx, a)
        if b > a:
            if b - a == 1:
                y = ys[a]
                out.append((c, y, y, y, y))
            else:
                chunk = ys[a:b]
                out.append((c, min(chunk), max(chunk), chunk[0], chunk[-1]))
            a = b
        if a >= n:
            break
    return out
