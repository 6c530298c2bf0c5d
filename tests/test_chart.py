"""Issue 14, plots people read: the braille chart's axes (ticks at nice round numbers, x = step),
log scale, EMA smoothing and legends that fit, as pure rendering checks, and the run view drawing
its axes at 80x24 and 200x60 through Textual's pilot. No timing here: bench/tui.py has the figures."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest
from rich.cells import cell_len

from fbtui.lab import Lab
from fbtui.store import Store
from fbtui.tui.widgets.axes import (
    SMOOTHING,
    columns,
    ema,
    fmt_ticks,
    linear_ticks,
    log_ticks,
    nice_step,
    reduce,
    split,
)
from fbtui.tui.widgets.chart import BrailleChart, Chart, legend_lines
from tests.test_tui import make_app, screen_text, sync, until
from tests.test_tui_data import T0, make_run, populate

BRAILLE = re.compile("[\u2801-\u28ff]")


def draw(series: list[tuple[str, list[tuple[float, float]]]], width: int, height: int, title: str = "loss",
         **kw: object) -> list[str]:
    segs = BrailleChart(title, series, height, **kw).lines(width, height)  # type: ignore[arg-type]
    return "".join(s.text for s in segs).split("\n")[:-1]


def y_labels(lines: list[str]) -> dict[int, str]:
    """Row -> the y label ticked there (`0.5┤`)."""
    return {i: m.group(1) for i, ln in enumerate(lines) if (m := re.match(r"^\s*(\S+)┤", ln))}


def x_labels(lines: list[str]) -> list[str]:
    axis = next(i for i, ln in enumerate(lines) if "└" in ln)
    return lines[axis + 1].split()


# ------------------------------------------------------------------ ticks


def test_ticks_fall_on_nice_round_numbers() -> None:
    assert nice_step(1.0, 5) == 0.2 and nice_step(100_000, 5) == 20_000 and nice_step(0.03, 3) == 0.01
    ticks, step = linear_ticks(0.013, 0.97, 5)
    assert ticks == [0.2, 0.4, 0.6, 0.8] and fmt_ticks(ticks, step) == ["0.2", "0.4", "0.6", "0.8"]
    ticks, step = linear_ticks(0.1, 0.3, 3)  # 0.1 + 0.2 is 0.30000000000000004: not a label
    assert fmt_ticks(ticks, step) == ["0.1", "0.2", "0.3"]
    ticks, step = linear_ticks(0, 99_999, 6, integer=True)
    assert fmt_ticks(ticks, step) == ["0", "20k", "40k", "60k", "80k"]
    assert fmt_ticks(*linear_ticks(0, 2_500_000, 5)) == ["0", "0.5M", "1.0M", "1.5M", "2.0M", "2.5M"]
    assert fmt_ticks(*linear_ticks(2e-6, 9e-5, 4)) == ["2e-5", "4e-5", "6e-5", "8e-5"]
    assert fmt_ticks(*linear_ticks(-3, 7, 5)) == ["-2", "0", "2", "4", "6"]
    ticks, _ = linear_ticks(0.1, 0.9, 2)  # a step that leaves one tick is made smaller
    assert len(ticks) >= 2
    assert linear_ticks(0, 3, 8, integer=True)[0] == [0, 1, 2, 3]  # steps are whole


def test_chart_labels_its_axes_at_nice_numbers() -> None:
    pts = [(float(s), 0.013 + 0.957 * s / 999) for s in range(1000)]
    lines = draw([("train/loss", pts)], 60, 14)
    labels = y_labels(lines)
    assert set(labels.values()) <= {"0.2", "0.4", "0.6", "0.8"} and len(labels) >= 3
    rows = sorted(labels)
    assert [labels[r] for r in rows] == sorted(labels.values(), key=float, reverse=True)  # high values on top
    assert x_labels(lines) == ["0", "200", "400", "600", "800"]
    axis = next(ln for ln in lines if "└" in ln)
    assert axis.count("┬") == 5 and len(axis) == 60
    assert any(BRAILLE.search(ln) for ln in lines)
    assert all(cell_len(ln) == 60 for ln in lines) and len(lines) == 14


# ------------------------------------------------------------------ log scale


def test_log_ticks_are_decades_else_1_2_5() -> None:
    assert log_ticks(-3, 1, 5) == ([0.001, 0.01, 0.1, 1.0, 10.0], None)
    assert fmt_ticks(log_ticks(-3, 1, 5)[0]) == ["0.001", "0.01", "0.1", "1", "10"]
    assert log_ticks(-8, 8, 5)[0] == [1e-8, 1e-4, 1.0, 1e4, 1e8]  # thinned to fit, still decades
    assert log_ticks(math.log10(0.15), math.log10(0.6), 4)[0] == [0.2, 0.5]


def test_log_scale_spaces_decades_evenly() -> None:
    pts = [(float(s), 10 ** (s / 100)) for s in range(301)]  # 1 .. 1000
    lines = draw([("lr", pts)], 50, 23, title="lr", log=True)
    rows = {v: r for r, v in y_labels(lines).items()}
    assert set(rows) == {"1", "10", "100", "1000"}
    gaps = [rows["1"] - rows["10"], rows["10"] - rows["100"], rows["100"] - rows["1000"]]
    assert max(gaps) - min(gaps) <= 1 and min(gaps) >= 5
    assert "log" in lines[0]
    linear = {v: r for r, v in y_labels(draw([("lr", pts)], 50, 23, title="lr")).items()}
    assert "1" not in linear  # linear: 0, 200, 400, ... (1 and 10 share the bottom row)


def test_log_scale_leaves_out_values_at_or_below_zero_and_says_so() -> None:
    pts = [(0.0, -1.0), (1.0, 0.0), (2.0, 0.5), (3.0, 0.05)]
    lines = draw([("a", pts), ("b", [(0.0, 1.0), (3.0, 2.0)])], 60, 10, log=True)
    assert "2 ≤ 0 not shown" in lines[0] and any(BRAILLE.search(ln) for ln in lines)
    none = draw([("a", [(0.0, -1.0), (1.0, 0.0)])], 60, 8, title="a", log=True)
    assert "1" not in none[0] or "2 ≤ 0 not shown" in none[0]
    assert "no value above 0 to draw on a log scale" in none[1]
    assert "no points yet" in draw([("a", [])], 60, 8, title="a")[1]


# ------------------------------------------------------------------ smoothing


def test_ema_is_debiased_as_tensorboard_smooths() -> None:
    f = 0.9
    # s_i = f*s_(i-1) + (1-f)*y_i, shown as s_i / (1 - f**(i+1))
    s1 = 0.1 * 1
    s2 = f * s1 + 0.1 * 2
    s3 = f * s2 + 0.1 * 3
    assert ema([1, 2, 3], f) == pytest.approx([s1 / (1 - f), s2 / (1 - f**2), s3 / (1 - f**3)])
    assert ema([5.0] * 50, 0.99) == pytest.approx([5.0] * 50)  # a flat curve stays flat from the start
    assert ema([1.0, 3.0], 0.0) == [1.0, 3.0] and ema([], 0.9) == []
    random.seed(3)
    ys = [random.gauss(0, 1) for _ in range(5000)]
    slow, last = [], 0.0
    for i, y in enumerate(ys):  # the textbook loop, debiased at every point
        last = 0.99 * last + 0.01 * y
        slow.append(last / (1 - 0.99 ** (i + 1)))
    assert ema(ys, 0.99) == pytest.approx(slow, abs=1e-9)


def test_smoothing_is_shown_and_cycles() -> None:
    chart = Chart()
    assert [chart.cycle_smoothing() for _ in SMOOTHING] == [0.6, 0.9, 0.99, 0.0]
    random.seed(4)
    pts = [(float(s), 1.0 / (s + 1) + random.random() * 0.2) for s in range(500)]
    lines = draw([("train/loss", pts), ("val/loss", pts[::5])], 80, 12, smoothing=0.9)
    assert "ema 0.9" in lines[0]
    segs = BrailleChart("loss", [("a", pts)], 12, smoothing=0.9).lines(80, 12)
    faint = [s for s in segs if s.style and s.style.dim and BRAILLE.search(s.text)]
    bright = [s for s in segs if s.style and not s.style.dim and s.style.color and BRAILLE.search(s.text)]
    assert faint and bright  # the raw curve faint behind the smoothed one
    plain = BrailleChart("loss", [("a", pts)], 12).lines(80, 12)
    assert not [s for s in plain if s.style and s.style.dim and BRAILLE.search(s.text)]


# ------------------------------------------------------------------ legends


NAMES = ["train/loss", "val/loss", "train/loss_ema_of_something_long", "eval/loss", "a", "b", "c", "d"]


@pytest.mark.parametrize("width", [30, 80, 200])
def test_legend_fits_the_width(width: int) -> None:
    series = [(n, [(0.0, float(i)), (10.0, float(i) + 1)]) for i, n in enumerate(NAMES)]
    lines = draw(series, width, 14, title="loss (m: metric, space: select rows)")
    assert all(cell_len(ln) == width for ln in lines) and len(lines) == 14  # never overflowing
    legend = " ".join(lines[:3])
    if width == 200:  # all of it beside the title
        assert all(f"■ {n}" in lines[0] for n in NAMES)
    elif width == 80:  # folded under the title, every name whole
        assert "■" not in lines[0] and all(f"■ {n}" in legend for n in NAMES)
    else:  # cut: what does not fit is counted
        assert re.search(r"\+\d+", legend) and "■ train/loss" in legend
    for ln in lines:
        assert "■" not in ln or ln.index("■") < width


def test_legend_lines_fold_cut_and_count() -> None:
    entries = [(n, "cyan") for n in NAMES]
    assert legend_lines(entries[:2], 40, 1) == [[("■ train/loss", "cyan"), ("■ val/loss", "cyan")]]
    two = legend_lines(entries, 40, 2)
    assert len(two) == 2 and two[-1][-1][0].startswith("+")
    assert sum(len(t) for t, _ in two[0]) + 2 * (len(two[0]) - 1) <= 40
    cut = legend_lines([("x" * 50, "cyan")], 20, 1)
    assert cut == [[("■ " + "x" * 17 + "…", "cyan")]]


def test_one_series_named_as_the_title_has_no_legend() -> None:
    lines = draw([("lr", [(0.0, 1.0), (5.0, 2.0)])], 40, 8, title="lr")
    assert "■" not in "".join(lines)


# ------------------------------------------------------------------ many points


def test_100k_points_are_reduced_to_what_a_width_draws() -> None:
    random.seed(5)
    pts = [(float(s), math.sin(s / 5000) + random.random()) for s in range(100_000)]
    xs, ys = split(pts)
    rx, ry = reduce(pts, ys)
    assert len(rx) <= 4 * 1024 and min(ry) == min(ys) and max(ry) == max(ys) and rx == sorted(rx)
    # Each pixel column is drawn from its lowest to its highest point as from all the points, to a
    # pixel (a bucket across a column's edge lends its extremes to the column of its middle).
    full = columns(xs, ys, xs[0], xs[-1], 200)
    fast = columns(rx, ry, xs[0], xs[-1], 200)
    assert [c[0] for c in full] == [c[0] for c in fast]
    ky = (80 - 1) / (max(ys) - min(ys))  # 20 rows of 4 dots
    for a, b in zip(full, fast):
        assert abs(round(a[1] * ky) - round(b[1] * ky)) <= 1 and abs(round(a[2] * ky) - round(b[2] * ky)) <= 1
    lines = draw([("a", pts)], 100, 20)
    assert all(cell_len(ln) == 100 for ln in lines)


def test_unsorted_and_nan_points_draw_like_the_clean_curve() -> None:
    clean = [(float(s), 1.0 / (s + 1)) for s in range(50)]
    messy = [*reversed(clean), (60.0, float("nan")), (float("inf"), 1.0)]
    assert split(messy) == split(clean)
    assert draw([("a", messy)], 60, 10) == draw([("a", clean)], 60, 10)


def test_a_redraw_reuses_the_prepared_points_until_they_change() -> None:
    pts = [(float(s), 1.0 / (s + 1)) for s in range(100)]
    cache: dict = {}
    BrailleChart("loss", [("a", pts)], 10, cache=cache).lines(60, 10)
    first = cache[0][3]
    BrailleChart("loss", [("a", pts)], 10, cache=cache, log=True).lines(90, 10)
    assert cache[0][3] is first  # log scale and width are drawn from the same reduction
    pts.append((100.0, 0.001))
    BrailleChart("loss", [("a", pts)], 10, cache=cache).lines(60, 10)
    assert cache[0][3] is not first and cache[0][1] == 101


# ------------------------------------------------------------------ the run view


@pytest.fixture
def lab(lab_dir: Path) -> Lab:
    return populate(lab_dir)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
@sync
async def test_run_view_charts_have_axes_and_follow_the_width(lab: Lab, size: tuple[int, int]) -> None:
    from fbtui.tui.screens.run import RunScreen

    with Store(lab.store_path) as store:
        rid = make_run(store, lab, status="failed", curve=0, offset=700)
        store.add_metrics(rid, [(k, s, (2.0 if k == "train/loss" else 1.0) / (s + 1), T0 + s) for s in range(400)
                                for k in ("train/loss", "val/loss")], "train")

    def chart() -> Chart | None:
        found = app.screen.query("#chart-loss") if isinstance(app.screen, RunScreen) else []
        c = found[0] if found else None  # (before compose the screen has no charts)
        return c if isinstance(c, Chart) and c.series and c.display else None

    app = make_app(lab, restore=False)
    async with app.run_test(size=size) as pilot:
        app.open_run(rid)
        await until(pilot, lambda: chart() is not None and "└" in screen_text(app))
        text = screen_text(app)
        assert "┤" in text and "┬" in text and "■ train/loss" in text and "■ val/loss" in text
        assert " 0 " in text and "200" in text  # x: steps
        c = chart()
        assert c is not None
        if size[0] == 200:
            assert c.size.width >= 70  # not 46 columns at 200 wide
        await pilot.press("l")
        await until(pilot, lambda: "loss  log" in screen_text(app))
        await pilot.press("o", "o")
        await until(pilot, lambda: "ema 0.9" in screen_text(app))
        assert all(ch.smoothing == 0.9 and ch.log_scale for ch in app.screen.query(Chart))


def test_odd_inputs_never_overflow_the_box() -> None:
    rnd = random.Random(0)
    odd = [0.0, -1.0, 1e-300, 1e300, float("nan"), float("inf"), -float("inf"), 1e-9, -1e9]
    for _ in range(300):
        series = [(rnd.choice(["a", "loss/train", "x" * rnd.randint(1, 90)]),
                   [(rnd.choice([float(rnd.randint(0, 50)), 0.0, rnd.random() * 1e6]),
                     rnd.choice(odd) if rnd.random() < 0.3 else rnd.gauss(0, 10))
                    for _ in range(rnd.choice([0, 1, 2, 10, 300]))]) for _ in range(rnd.randint(0, 4))]
        width, height = rnd.randint(1, 120), rnd.randint(1, 30)
        lines = draw(series, width, height, title=rnd.choice(["loss", "", "t" * 100]), log=rnd.random() < 0.5,
                     smoothing=rnd.choice(SMOOTHING))
        assert len(lines) == height and all(cell_len(ln) == width for ln in lines), (width, height)
