"""Metric curves drawn with braille dots (2x4 per cell): several series overlaid, with a y axis
ticked at nice round numbers, an x axis of steps, a log scale, EMA smoothing (the raw curve faint
behind), and a legend that folds or is cut to the width. No plotting dependency: plotext was
judged against it and lost on speed at 100,000 points and on its ticks and legend (bench/tui.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from fbtui.tui.widgets.axes import SMOOTHING, columns, ema, fmt_ticks, linear_ticks, log_ticks, reduce, split

COLORS = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white", "bright_cyan")
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] bits of a braille cell
AXIS = Style(dim=True)

Series = tuple[str, Sequence[tuple[float, float]]]  # name, (x, y) points
Line = tuple[list[float], list[float], float, float]  # x in step order, y, lowest y, highest y
# per series index: (its points, their count, smoothing) -> (raw line, smoothed line or None, values <= 0)
Cache = dict[int, tuple[Any, int, float, tuple[Line, Line | None, int]]]


def legend_lines(entries: Sequence[tuple[str, str]], width: int, max_lines: int) -> list[list[tuple[str, str]]]:
    """The legend's `■ name` entries (text, colour) folded into at most `max_lines` lines of
    `width`: a name too long for a line of its own is cut with …, and what does not fit ends the
    last line as `+N` (dim)."""
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0
    for i, (name, color) in enumerate(entries):
        item = f"■ {name}"
        sep = 2 if lines[-1] else 0
        if used + sep + len(item) > width and lines[-1] and len(lines) < max_lines:
            lines.append([])
            used, sep = 0, 0
        if used + sep + len(item) > width:
            if not lines[-1] and width >= 4:  # alone on its line: cut the name
                item = item[:width - 1] + "…"
            else:
                rest = len(entries) - i
                while lines[-1] and used + 2 + len(f"+{rest}") > width:  # make room for the count
                    gone = lines[-1].pop()
                    used -= len(gone[0]) + (2 if lines[-1] else 0)
                    rest += 1
                lines[-1].append((f"+{rest}", "dim"))
                break
        used += sep + len(item)
        lines[-1].append((item, color))
    return [ln for ln in lines if ln]


class BrailleChart:
    """A rich renderable: a chart of `series` filling the given width and height."""

    def __init__(self, title: str, series: Sequence[Series], height: int, *, log: bool = False,
                 smoothing: float = 0.0, cache: Cache | None = None) -> None:
        self.title, self.series, self.height = title, series, height
        self.log, self.smoothing = log, smoothing
        self.cache: Cache = {} if cache is None else cache

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = max(3, options.height or self.height)
        yield from self.lines(width, height)

    def prepared(self, i: int, pts: Sequence[tuple[float, float]]) -> tuple[Line, Line | None, int]:
        """A series' raw and smoothed lines, reduced to what any width draws (axes.reduce), and how
        many of its values are <= 0; kept while its points are the same list at the same length
        (a redraw, a resize or the log key do not read 100,000 points again)."""
        hit, n = self.cache.get(i), len(pts)
        if hit and hit[0] is pts and hit[1] == n and hit[2] == self.smoothing:
            return hit[3]
        ys = [p[1] for p in pts]
        rx, ry = reduce(pts, ys)
        if not (math.isfinite(sum(ys)) and math.isfinite(sum(rx)) and rx == sorted(rx)):
            xs, ys = split(pts)  # a NaN, an infinity or steps out of order: the slow way
            pts = list(zip(xs, ys))
            rx, ry = reduce(pts, ys)
        raw = (rx, ry, min(ry, default=0.0), max(ry, default=0.0))
        smooth = None
        if self.smoothing > 0 and ys:
            sx, sy = reduce(pts, ema(ys, self.smoothing))
            smooth = (sx, sy, min(sy), max(sy))
        nonpos = len(ys) - len(list(filter((0.0).__lt__, ys))) if raw[2] <= 0 else 0
        self.cache[i] = (self.series[i][1], n, self.smoothing, (raw, smooth, nonpos))
        return raw, smooth, nonpos

    def header(self, width: int, dropped: int) -> tuple[Text, list[Text]]:
        """The title line (title, then the scale and smoothing, then what the log scale left out)
        and the legend's lines: beside the title when it fits, else folded below it."""
        tags = Text()
        if self.log:
            tags.append("  log", style="bold")
        if self.smoothing > 0:
            tags.append(f"  ema {self.smoothing:g}", style="bold")
        if dropped:
            tags.append(f"  {dropped:,} ≤ 0 not shown", style="yellow")
        title = Text(self.title, style="bold")
        title.truncate(max(1, width - len(tags)), overflow="ellipsis")
        title.append_text(tags)
        title.truncate(width, overflow="ellipsis")
        entries = [(name, COLORS[i % len(COLORS)]) for i, (name, _) in enumerate(self.series)]
        if not entries or (len(entries) == 1 and entries[0][0] == self.title):
            return title, []
        room = width - len(title) - 2
        inline = legend_lines(entries, room, 1) if room > 0 else []
        if inline and [item for item, _ in inline[0]] == [f"■ {name}" for name, _ in entries]:
            title.append("  ")
            for k, (item, color) in enumerate(inline[0]):
                title.append(("  " if k else "") + item, style=color)
            return title, []
        out = []
        for line in legend_lines(entries, width, 1 if self.height < 12 else 2):
            t = Text()
            for k, (item, color) in enumerate(line):
                t.append(("  " if k else "") + item, style=color)
            out.append(t)
        return title, out

    def lines(self, width: int, height: int) -> list[Segment]:
        self.height = height
        dropped = 0
        curves: list[tuple[Line, Line | None]] = []
        for i, (_, pts) in enumerate(self.series):
            raw, smooth, nonpos = self.prepared(i, pts)
            if self.log:  # the positive values only; the others are counted and said
                raw = _positive(raw)
                smooth = _positive(smooth) if smooth is not None else None
                dropped += nonpos
            curves.append((raw, smooth))
        title, legend = self.header(width, dropped)
        legend = legend[:max(0, height - 1)]
        out: list[Segment] = []
        for t in (title, *legend):
            t.truncate(width, overflow="ellipsis", pad=True)
            out += [*t.render(Console(width=width)), Segment("\n")]
        body = height - 1 - len(legend)
        if body <= 0:
            return out
        if width < 4:  # no room for an axis and a curve
            return out + [Segment(" " * width + "\n")] * body
        if not any(raw[0] for raw, _ in curves):
            msg = ("no value above 0 to draw on a log scale" if self.log and dropped else "no points yet")
            out += [Segment(msg[:width].ljust(width), Style(dim=True)), Segment("\n")]
            out += [Segment(" " * width + "\n")] * (body - 1)
            return out
        return out + self.plot(curves, width, body)

    def plot(self, curves: list[tuple[Line, Line | None]], width: int, body: int) -> list[Segment]:
        """The axes and the curves, `body` lines high: the smoothed curves over their raw ones (faint)."""
        lines = [line for raw, smooth in curves for line in (raw, smooth) if line is not None and line[0]]
        x0, x1 = min(line[0][0] for line in lines), max(line[0][-1] for line in lines)
        y0, y1 = min(line[2] for line in lines), max(line[3] for line in lines)
        if self.log:
            y0, y1 = math.log10(y0), math.log10(y1)
        if y1 - y0 <= abs(y1) * 1e-12:
            pad = 0.5 if self.log or y0 == 0 else abs(y0) * 0.1
            y0, y1 = y0 - pad, y1 + pad
        if x1 == x0:
            x1 = x0 + 1
        axis = 2 if body >= 6 else 1 if body >= 4 else 0  # the x axis' line, then its labels
        rows = body - axis
        grid_h = rows * 4
        ky = (grid_h - 1) / (y1 - y0)
        count = max(2, min(8, rows // 2))
        if self.log:
            ticks, step = log_ticks(y0, y1, count)
            labels = fmt_ticks(ticks, step)
            ticks = [math.log10(t) for t in ticks]
        else:
            ticks, step = linear_ticks(y0, y1, count)
            labels = fmt_ticks(ticks, step)
        tick_rows: dict[int, str] = {}
        for t, label in zip(ticks, labels):
            tick_rows.setdefault(round((y1 - t) * ky) // 4, label)
        gutter = max((len(s) for s in tick_rows.values()), default=0) + 1
        if width - gutter < 8:  # too narrow for labels: the axis line alone
            tick_rows, gutter = {}, 1
        cols = max(1, width - gutter)
        grid_w = cols * 2
        kx = (grid_w - 1) / (x1 - x0)
        bits = [0] * (rows * cols)
        owner = [-1] * (rows * cols)
        faint = [0] * (rows * cols)
        faint_owner = [-1] * (rows * cols)
        for si, (raw, smooth) in enumerate(curves):
            if smooth is None:
                _draw(self.columns(raw, x0, x1, grid_w), y1, ky, cols, bits, owner, si)
            else:  # the raw curve faint, the smoothed one over it
                _draw(self.columns(raw, x0, x1, grid_w), y1, ky, cols, faint, faint_owner, si)
                _draw(self.columns(smooth, x0, x1, grid_w), y1, ky, cols, bits, owner, si)
        out: list[Segment] = []
        styles = [Style(color=c) for c in COLORS]
        dims = [Style(color=c, dim=True) for c in COLORS]
        for r in range(rows):
            label = tick_rows.get(r)
            out.append(Segment(label.rjust(gutter - 1) + "┤" if label else " " * (gutter - 1) + "│", AXIS))
            run: list[str] = []
            run_style: Style | None = None
            for i in range(r * cols, (r + 1) * cols):
                if bits[i]:
                    ch, st = chr(0x2800 + bits[i]), styles[owner[i] % len(COLORS)]
                elif faint[i]:
                    ch, st = chr(0x2800 + faint[i]), dims[faint_owner[i] % len(COLORS)]
                else:
                    ch, st = " ", None
                if st is not run_style and run:
                    out.append(Segment("".join(run), run_style))
                    run = []
                run_style = st
                run.append(ch)
            if run:
                out.append(Segment("".join(run), run_style))
            out.append(Segment("\n"))
        if axis:
            out += self.x_axis(x0, x1, kx, cols, gutter, width, axis)
        return out

    def columns(self, line: Line, x0: float, x1: float, grid_w: int) -> list[tuple[int, float, float, float, float]]:
        """The line reduced to its pixel columns; on a log scale log10 is taken of these few values
        only (it keeps order, so each column's lowest and highest stay so)."""
        cols = columns(line[0], line[1], x0, x1, grid_w)
        if self.log:
            lg = math.log10
            return [(c, lg(lo), lg(hi), lg(first), lg(last)) for c, lo, hi, first, last in cols]
        return cols

    def x_axis(self, x0: float, x1: float, kx: float, cols: int, gutter: int, width: int,
               axis: int) -> list[Segment]:
        """The x axis (steps) under the plot: its line with ┬ at each tick, then the ticks' labels."""
        integer = float(x0).is_integer() and float(x1).is_integer()
        guess = max(len(s) for s in fmt_ticks([x0, x1], max(1.0, (x1 - x0) / 10))) + 3
        ticks, step = linear_ticks(x0, x1, max(2, min(cols // max(4, guess), 10)), integer=integer)
        line = ["─"] * cols
        labels = [" "] * width
        free = 0  # the first column a label may start at
        for t, label in zip(ticks, fmt_ticks(ticks, step)):
            c = min(cols - 1, round((t - x0) * kx) // 2)
            line[c] = "┬"
            start = max(0, min(width - len(label), gutter + c - len(label) // 2))
            if start >= free and len(label) <= width:
                labels[start:start + len(label)] = label
                free = start + len(label) + 1
        out = [Segment(" " * (gutter - 1) + "└" + "".join(line), AXIS), Segment("\n")]
        if axis > 1:
            out += [Segment("".join(labels), AXIS), Segment("\n")]
        return out


def _positive(line: Line) -> Line:
    """The line's points with y > 0 (a log scale cannot show the others)."""
    xs, ys, lo, _ = line
    if lo > 0 or not ys:
        return line
    kept = [(x, y) for x, y in zip(xs, ys) if y > 0]
    if not kept:
        return [], [], 1.0, 1.0
    kx, ky = [p[0] for p in kept], [p[1] for p in kept]
    return kx, ky, min(ky), max(ky)


def _draw(reduced: list[tuple[int, float, float, float, float]], y1: float, ky: float, cols: int,
          bits: list[int], owner: list[int], si: int) -> None:
    """One curve into the braille cells: per pixel column its lowest to highest point, joined to
    the column before by a line (sparse series read as curves, dense ones as their envelope)."""
    prev: tuple[int, int] | None = None
    for c, lo, hi, first, last in reduced:
        top, bottom, start = round((y1 - hi) * ky), round((y1 - lo) * ky), round((y1 - first) * ky)
        if prev is not None:  # the line from the column before
            px, py = prev
            steps = max(c - px, abs(start - py), 1)
            for k in range(1, steps):
                gx, gy = px + round((c - px) * k / steps), py + round((start - py) * k / steps)
                i = (gy >> 2) * cols + (gx >> 1)
                bits[i] |= DOTS[gy & 3][gx & 1]
                owner[i] = si
        for gy in range(top, bottom + 1):
            i = (gy >> 2) * cols + (c >> 1)
            bits[i] |= DOTS[gy & 3][c & 1]
            owner[i] = si
        prev = (c, round((y1 - last) * ky))


class Chart(Widget):
    """A widget holding one chart; `set_series` redraws it, `toggle_log` and `cycle_smoothing`
    change how it draws (the screens bind the keys)."""

    DEFAULT_CSS = "Chart { height: 10; }"
    title: reactive[str] = reactive("")

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.series: list[Series] = []
        self.log_scale = False
        self.smoothing = 0.0
        self._cache: Cache = {}

    def set_series(self, title: str, series: Sequence[Series]) -> None:
        self.title = title
        self.series = list(series)
        self.refresh()

    def set_view(self, *, log: bool | None = None, smoothing: float | None = None) -> None:
        if log is not None:
            self.log_scale = log
        if smoothing is not None:
            self.smoothing = smoothing
        self.refresh()

    def toggle_log(self) -> bool:
        self.set_view(log=not self.log_scale)
        return self.log_scale

    def cycle_smoothing(self) -> float:
        """The next EMA factor of 0 → 0.6 → 0.9 → 0.99 → 0."""
        nxt = next((s for s in SMOOTHING if s > self.smoothing), SMOOTHING[0])
        self.set_view(smoothing=nxt)
        return nxt

    def render(self) -> BrailleChart:
        return BrailleChart(self.title, self.series, self.size.height, log=self.log_scale,
                            smoothing=self.smoothing, cache=self._cache)
