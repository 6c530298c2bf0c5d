"""Metric curves drawn with braille dots (2x4 per cell): several series overlaid, no dependency."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

COLORS = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white", "bright_cyan")
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] bits of a braille cell

Series = tuple[str, Sequence[tuple[float, float]]]  # name, (x, y) points


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2e}"
    return f"{v:.4g}"


class BrailleChart:
    """A rich renderable: a chart of `series` filling the given width and height."""

    def __init__(self, title: str, series: Sequence[Series], height: int) -> None:
        self.title, self.series, self.height = title, series, height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = max(3, options.height or self.height)
        yield from self.lines(width, height)

    def lines(self, width: int, height: int) -> list[Segment]:
        points = [(x, y) for _, pts in self.series for x, y in pts if math.isfinite(y)]
        out: list[Segment] = []
        title = Text(self.title[: width - 1], style="bold")
        for i, (name, _pts) in enumerate(self.series):
            if len(self.series) > 1 or name != self.title:
                title.append(f"  ■ {name}", style=COLORS[i % len(COLORS)])
        title.truncate(width)
        out += [*title.render(Console(width=width)), Segment("\n")]
        rows = height - 1
        if not points:
            msg = "no points yet"
            out += [Segment(msg.ljust(width), Style(dim=True)), Segment("\n")]
            out += [Segment(" " * width + "\n")] * (rows - 1)
            return out
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        if y1 == y0:
            y0, y1 = y0 - 0.5, y1 + 0.5
        if x1 == x0:
            x1 = x0 + 1
        label_w = max(len(_fmt(y0)), len(_fmt(y1))) + 1
        cols = max(1, width - label_w)
        grid_w, grid_h = cols * 2, rows * 4
        cells: dict[tuple[int, int], int] = {}
        color: dict[tuple[int, int], int] = {}
        for si, (_, pts) in enumerate(self.series):
            prev: tuple[int, int] | None = None
            for x, y in pts:
                if not math.isfinite(y):
                    continue
                gx = round((x - x0) / (x1 - x0) * (grid_w - 1))
                gy = round((y1 - y) / (y1 - y0) * (grid_h - 1))
                # Join consecutive points with a line so sparse series read as curves.
                steps = 1 if prev is None else max(abs(gx - prev[0]), abs(gy - prev[1]), 1)
                for k in range(1, steps + 1):
                    if prev is None:
                        px, py = gx, gy
                    else:
                        px = prev[0] + round((gx - prev[0]) * k / steps)
                        py = prev[1] + round((gy - prev[1]) * k / steps)
                    c = (py // 4, px // 2)
                    cells[c] = cells.get(c, 0) | DOTS[py % 4][px % 2]
                    color[c] = si
                prev = (gx, gy)
        for r in range(rows):
            label = _fmt(y1) if r == 0 else _fmt(y0) if r == rows - 1 else ""
            out.append(Segment(label.rjust(label_w - 1) + "┤" if label else " " * (label_w - 1) + "│",
                               Style(dim=True)))
            for c in range(cols):
                bits = cells.get((r, c))
                if bits:
                    out.append(Segment(chr(0x2800 + bits), Style(color=COLORS[color[(r, c)] % len(COLORS)])))
                else:
                    out.append(Segment(" "))
            out.append(Segment("\n"))
        return out


class Chart(Widget):
    """A widget holding one chart; `set_series` redraws it."""

    DEFAULT_CSS = "Chart { height: 10; }"
    title: reactive[str] = reactive("")

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.series: list[Series] = []

    def set_series(self, title: str, series: Sequence[Series]) -> None:
        self.title = title
        self.series = list(series)
        self.refresh()

    def render(self) -> BrailleChart:
        return BrailleChart(self.title, self.series, self.size.height)
