"""A params-vs-metric chart: one point per comparison row at (a param's value, the metric's mean)
with its ± std as a whisker, the rows coloured by the other params' values, the best as ★; or
parallel coordinates, a braille polyline per row across the differing params and the metric.
The arithmetic is param_axes' (no Textual there); this draws it in box and braille characters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.widget import Widget

from fbtui.tui.widgets.chart import COLORS, DOTS, legend_lines
from fbtui.tui.widgets.param_axes import Axis, cell, dodge, metric_axis, parallel, param_axis, series_of

AXIS = Style(dim=True)
BEST = Style(color="bright_green", bold=True)


@dataclass
class PlotData:
    """What the chart shows: the rows (name, params, metric mean and std or None), the param on x
    (None: no param differs), the metric, the best row, the mode and the log choice (None: auto)."""

    names: list[str] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    stats: list[tuple[float, float] | None] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    x: str | None = None
    metric: str = ""
    best: str | None = None
    parallel: bool = False
    log: bool | None = None
    empty: str = "loading…"


class Canvas:
    """Cells of braille dots (each with its colour) under glyphs (text that wins over dots)."""

    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self.bits = [0] * (rows * cols)
        self.owner: list[Style | None] = [None] * (rows * cols)
        self.glyph: dict[int, tuple[str, Style | None]] = {}

    def put(self, r: int, c: int, ch: str, style: Style | None = None) -> None:
        if 0 <= r < self.rows and 0 <= c < self.cols:
            self.glyph[r * self.cols + c] = (ch, style)

    def text(self, r: int, c: int, s: str, style: Style | None = None, limit: int | None = None) -> None:
        for k, ch in enumerate(s[:limit]):
            self.put(r, c + k, ch, style)

    def line(self, x0: int, y0: int, x1: int, y1: int, style: Style) -> None:
        """Braille dots from (x0, y0) to (x1, y1) in dot units (2 per cell across, 4 down)."""
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for k in range(steps + 1):
            gx, gy = x0 + round((x1 - x0) * k / steps), y0 + round((y1 - y0) * k / steps)
            if 0 <= gy < self.rows * 4 and 0 <= gx < self.cols * 2:
                i = (gy >> 2) * self.cols + (gx >> 1)
                self.bits[i] |= DOTS[gy & 3][gx & 1]
                self.owner[i] = style

    def segments(self) -> list[Segment]:
        out: list[Segment] = []
        for r in range(self.rows):
            for i in range(r * self.cols, (r + 1) * self.cols):
                if i in self.glyph:
                    ch, st = self.glyph[i]
                    out.append(Segment(ch, st))
                elif self.bits[i]:
                    out.append(Segment(chr(0x2800 + self.bits[i]), self.owner[i]))
                else:
                    out.append(Segment(" "))
            out.append(Segment("\n"))
        return list(Segment.simplify(out))


class ParamPlot:
    """A rich renderable of `data` filling the width and height it is given."""

    def __init__(self, data: PlotData, height: int) -> None:
        self.data, self.height = data, height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(options.max_width, max(4, options.height or self.height))

    def lines(self, width: int, height: int) -> list[Segment]:
        d = self.data
        rows = [i for i, s in enumerate(d.stats) if s is not None]
        msg = d.empty if not d.names else ("no param differs between the rows" if d.x is None else
                                           f"no row has {d.metric}" if not rows else "")
        if msg or width < 20 or height < 4:
            blank = [Segment(" " * width + "\n")] * (height - 1)
            return [Segment(msg[:width].ljust(width), AXIS), Segment("\n"), *blank]
        return self.parallel(width, height) if d.parallel else self.scatter(width, height)

    def legend(self, entries: Sequence[tuple[str, str]], width: int, height: int) -> list[list[tuple[str, str]]]:
        if not entries or height < 8:  # too low: the plot keeps every line
            return []
        return legend_lines(entries, width, 1 if height < 16 else 3)

    def scatter(self, width: int, height: int) -> list[Segment]:
        d = self.data
        assert d.x is not None
        keep = [i for i, s in enumerate(d.stats) if s is not None]
        series = series_of([d.params[i] for i in keep], d.x, d.differ)
        order = list(dict.fromkeys(series))
        entries = [(s, COLORS[k % len(COLORS)]) for k, s in enumerate(order)] if len(order) > 1 else []
        legend = self.legend(entries, width, height)
        body = max(2, height - 2 - len(legend))
        stats = [d.stats[i] for i in keep]
        y = metric_axis([s for s in stats if s is not None], count=max(2, min(8, body // 2)))
        tick_rows = {cell(1 - p, body): s for p, s in y.ticks if 0 <= p <= 1}
        gutter = max((len(s) for s in tick_rows.values()), default=0) + 1
        cols = max(4, width - gutter)
        x = param_axis([d.params[i].get(d.x) for i in keep], log=d.log, count=max(2, min(10, cols // 10)))
        xs = [x.pos(d.params[i].get(d.x)) for i in keep]
        at = sorted({cell(p, cols) for p in xs if p is not None})
        room = min((b - a for a, b in pairwise(at)), default=cols)
        canvas = Canvas(body, cols)
        for k, (i, px, (mean, std)) in enumerate(zip(keep, xs, stats)):  # type: ignore[misc]
            if px is None:
                continue
            s = order.index(series[k])
            c = max(0, min(cols - 1, cell(px, cols) + dodge(s, len(order), room - 1)))
            style = Style(color=COLORS[s % len(COLORS)])
            top, mid, bottom = (cell(1 - y.pos(v), body) for v in (mean + std, mean, mean - std))  # type: ignore[operator]
            for r in range(top, bottom + 1):
                canvas.put(r, c, "┬" if r == top else "┴" if r == bottom else "│", style)
            best = d.names[i] == d.best
            canvas.put(mid, c, "★" if best else "●", style + BEST if best else style)
        out: list[Segment] = []
        for r, line in zip(range(body), _split(canvas.segments())):
            label = tick_rows.get(r)
            out.append(Segment(label.rjust(gutter - 1) + "┤" if label else " " * (gutter - 1) + "│", AXIS))
            out += line
        out += self.x_axis(x, cols, gutter, width)
        for ln in legend:
            used = 0
            for k, (item, color) in enumerate(ln):
                text = ("  " if k else "") + item
                out.append(Segment(text, Style.parse(color)))  # ("dim" for the +N)
                used += len(text)
            out.append(Segment(" " * max(0, width - used) + "\n"))
        return out

    def x_axis(self, x: Axis, cols: int, gutter: int, width: int) -> list[Segment]:
        """The axis line with ┬ at each tick and the ticks' labels under it; a category's label is
        cut to its slot."""
        line = ["─"] * cols
        labels = [" "] * width
        free = 0
        slot = max(1, cols // max(1, len(x.ticks)) - 1) if x.kind == "category" else width
        for p, label in x.ticks:
            if not 0 <= p <= 1:
                continue
            c = cell(p, cols)
            line[c] = "┬"
            label = label if len(label) <= slot else label[:max(1, slot - 1)] + "…"
            start = max(0, min(width - len(label), gutter + c - len(label) // 2))
            if start >= free:
                labels[start:start + len(label)] = label
                free = start + len(label) + 1
        return [Segment(" " * (gutter - 1) + "└" + "".join(line), AXIS), Segment("\n"),
                Segment("".join(labels), AXIS), Segment("\n")]

    def parallel(self, width: int, height: int) -> list[Segment]:
        d = self.data
        keep = [i for i, s in enumerate(d.stats) if s is not None]
        means = [d.stats[i][0] for i in keep]  # type: ignore[index]
        axes, lines = parallel([d.params[i] for i in keep], d.differ, means, count=max(2, min(5, height // 5)))
        entries = [("★ " if d.names[i] == d.best else "") + d.names[i] for i in keep]
        legend = self.legend([(n, COLORS[k % len(COLORS)]) for k, n in enumerate(entries)], width, height)
        body = max(2, height - 1 - len(legend))
        names = [*d.differ, d.metric]
        # room right of the last axis for its labels and, where it fits, the metric's name
        right = max(max((len(s) for _, s in axes[-1].ticks), default=0) + 2, min(len(d.metric) + 1, width // 4))
        span = max(1, width - right - 1)
        at = [round(k * span / max(1, len(axes) - 1)) for k in range(len(axes))]
        canvas = Canvas(body, width)
        best_k = next((k for k, i in enumerate(keep) if d.names[i] == d.best), None)
        for k, pos in sorted(enumerate(lines), key=lambda e: e[0] == best_k):  # the best drawn last, on top
            style = BEST if k == best_k else Style(color=COLORS[k % len(COLORS)], dim=best_k is not None)
            pts = [(at[a] * 2, round((1 - p) * (body * 4 - 1))) for a, p in enumerate(pos) if p is not None]
            for (x0, y0), (x1, y1) in pairwise(pts):
                canvas.line(x0, y0, x1, y1, style)
        for a, axis in enumerate(axes):
            for r in range(body):
                canvas.put(r, at[a], "│", AXIS)
            room = (at[a + 1] - at[a] - 2) if a + 1 < len(axes) else width - at[a] - 2
            for p, label in axis.ticks:
                if 0 <= p <= 1:
                    r = cell(1 - p, body)
                    canvas.put(r, at[a], "├", AXIS)
                    canvas.text(r, at[a] + 1, label, AXIS, max(0, room))
        head = [" "] * width
        for a, name in enumerate(names):
            room = (at[a + 1] - at[a] - 1) if a + 1 < len(at) else width - at[a]
            name = name if len(name) <= room else name[:max(1, room - 1)] + "…"
            head[at[a]:at[a] + len(name)] = name
        out = [Segment("".join(head)[:width], Style(bold=True)), Segment("\n"), *canvas.segments()]
        for ln in legend:
            used = 0
            for k, (item, color) in enumerate(ln):
                text = ("  " if k else "") + item
                out.append(Segment(text, BEST if item.startswith("■ ★") else Style.parse(color)))
                used += len(text)
            out.append(Segment(" " * max(0, width - used) + "\n"))
        return out


def _split(segments: list[Segment]) -> list[list[Segment]]:
    """Segments per line, each ending with its newline."""
    out: list[list[Segment]] = [[]]
    for seg in segments:
        if "\n" in seg.text:
            parts = seg.text.split("\n")
            for k, part in enumerate(parts):
                if part:
                    out[-1].append(Segment(part, seg.style))
                if k < len(parts) - 1:
                    out[-1].append(Segment("\n"))
                    out.append([])
        else:
            out[-1].append(seg)
    return [ln for ln in out if ln]


class ParamChart(Widget):
    """The widget: `show(data)` redraws it."""

    DEFAULT_CSS = "ParamChart { height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data = PlotData()

    def show(self, data: PlotData) -> None:
        self.data = data
        self.refresh()

    def render(self) -> ParamPlot:
        return ParamPlot(self.data, self.size.height)
