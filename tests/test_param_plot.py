"""The params-vs-metric view of a comparison: its axes' arithmetic, its drawing, and the screen
driven through Textual's pilot at 80x24 against a real store with an ablation over two params."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from fbtui.tui.widgets.param_axes import (
    category_order,
    cell,
    dodge,
    metric_axis,
    numeric,
    parallel,
    param_axis,
    series_of,
    wants_log,
)
from fbtui.tui.widgets.param_chart import ParamPlot, PlotData
from tests.test_tui import make_app, screen_text, sync, until
from tests.test_tui_data import make_run

LRS = (0.001, 0.01, 0.1)
OPTS = ("adam", "sgd")


def test_numeric_params_get_a_linear_axis_and_a_log_one_over_two_decades() -> None:
    assert numeric([1, 2.5]) and not numeric([1, "a"]) and not numeric([True, False]) and not numeric([])
    assert wants_log([0.001, 0.1]) and not wants_log([0.001, 0.05]) and not wants_log([0, 1, 1000])
    lin = param_axis([1, 2, 4], pad=0.0)
    assert lin.kind == "linear" and lin.pos(1) == 0 and lin.pos(4) == 1 and lin.pos(2) == pytest.approx(1 / 3)
    assert [s for _, s in lin.ticks] == ["1", "2", "3", "4"]  # integer values: integer ticks
    log = param_axis(list(LRS), pad=0.0)  # auto: three decades
    assert log.kind == "log" and [log.pos(v) for v in LRS] == pytest.approx([0, 0.5, 1])
    assert [s for _, s in log.ticks] == ["0.001", "0.01", "0.1"]
    assert param_axis([1, 2, 4], log=True).kind == "log"  # asked for (the l key)
    forced = param_axis([0, 1, 10], log=True)  # a log axis cannot hold 0: linear, and says why
    assert forced.kind == "linear" and "values > 0" in forced.note
    padded = param_axis([10, 20])  # points are kept off the plot's edges
    assert 0 < padded.pos(10) < padded.pos(20) < 1  # type: ignore[operator]
    one = param_axis([3, 3])  # a single value still gets a span, centred
    assert one.pos(3) == pytest.approx(0.5)
    assert all(0 <= p <= 1 for p, _ in padded.ticks) and padded.pos("x") is None


def test_categorical_params_are_evenly_spaced_in_a_natural_order() -> None:
    assert category_order(["sgd", 10, None, 2, "adam", "sgd"]) == [2, 10, "adam", "sgd", None]
    ax = param_axis(["sgd", "adam", "sgd"])
    assert ax.kind == "category" and [s for _, s in ax.ticks] == ["adam", "sgd"]
    assert ax.pos("adam") == pytest.approx(0.25) and ax.pos("sgd") == pytest.approx(0.75)
    edges = param_axis(["a", "b", "c"], edges=True)  # parallel coordinates: 0 .. 1
    assert [edges.pos(v) for v in "abc"] == [0, 0.5, 1] and edges.pos("z") is None
    mixed = param_axis([1, None, 3])  # a row without the param: its own label, last
    assert mixed.kind == "category" and [s for _, s in mixed.ticks] == ["1", "3", "-"]
    assert param_axis([True, False]).kind == "category"


def test_metric_axis_holds_every_whisker_and_cells_clamp() -> None:
    ax = metric_axis([(0.9, 0.02), (0.8, 0.0), (0.95, 0.01)])
    for m, s in ((0.9, 0.02), (0.8, 0.0), (0.95, 0.01)):
        assert 0 < ax.pos(m - s) <= ax.pos(m + s) < 1  # type: ignore[operator]
    labels = [s for _, s in ax.ticks]
    assert "0.80" in labels and "0.90" in labels
    assert metric_axis([(float("nan"), 0.0)]).kind == "linear"  # nothing finite: a default axis
    assert cell(0, 10) == 0 and cell(1, 10) == 9 and cell(1.5, 10) == 9 and cell(-1, 10) == 0
    assert cell(0.5, 11) == 5


def test_series_and_dodging_put_rows_sharing_an_x_side_by_side() -> None:
    rows = [{"lr": lr, "opt": o} for lr in LRS for o in OPTS]
    assert series_of(rows, "lr", ["lr", "opt"])[:2] == ["opt=adam", "opt=sgd"]
    assert series_of(rows, "lr", ["lr"]) == [""] * 6
    assert [dodge(k, 2, 30) for k in range(2)] == [-1, 1]
    assert [dodge(k, 3, 30) for k in range(3)] == [-2, 0, 2]
    assert [dodge(k, 3, 2) for k in range(3)] == [0, 0, 0]  # no room: on top of each other
    assert dodge(0, 1, 30) == 0


def test_parallel_coordinates_scale_each_param_and_the_metric_to_0_1() -> None:
    rows = [{"lr": lr, "opt": o, "depth": d} for lr, o, d in ((0.001, "adam", 1), (0.1, "sgd", 4), (0.01, "sgd", 2))]
    axes, lines = parallel(rows, ["lr", "opt", "depth"], [0.5, 0.9, None])
    assert [a.kind for a in axes] == ["log", "category", "linear", "linear"]
    assert lines[0] == pytest.approx([0, 0, 0, 0]) and lines[1] == pytest.approx([1, 1, 1, 1])
    assert lines[2][:3] == pytest.approx([0.5, 1, 1 / 3]) and lines[2][3] is None  # no metric: no last point


def _data(**kw: object) -> PlotData:
    names, params, stats = [], [], []
    for lr in LRS:
        for o in OPTS:
            names.append(f"lr{lr}-{o}")
            params.append({"lr": lr, "optimizer": o})
            stats.append((0.9 + 0.02 * math.log10(lr) + (0.01 if o == "adam" else 0), 0.005))
    d = PlotData(names, params, stats, ["lr", "optimizer"], "lr", "eval/accuracy", "lr0.1-adam")  # type: ignore[arg-type]
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def _draw(d: PlotData, width: int, height: int) -> list[str]:
    text = "".join(s.text for s in ParamPlot(d, height).lines(width, height))
    lines = text.split("\n")[:-1]
    assert len(lines) == height and all(len(ln) <= width for ln in lines), lines
    return lines


def test_the_chart_fills_its_box_at_80x24_and_200x60() -> None:
    for width, height in ((78, 19), (198, 55)):
        lines = _draw(_data(), width, height)
        text = "\n".join(lines)
        assert text.count("★") == 1 and text.count("●") == 5  # one point per row, the best marked
        assert all(s in lines[-2] for s in ("0.001", "0.01", "0.1"))  # log x labels
        assert "■ optimizer=adam" in lines[-1]
        assert "┬" in text and "┴" in text  # whiskers
        if height > 40:  # the room is used: whiskers several cells tall
            assert max(ln.count("│") for ln in zip(*lines)) >= 3  # type: ignore[arg-type]
        cat = "\n".join(_draw(_data(x="optimizer"), width, height))
        assert "adam" in cat and "sgd" in cat and "■ lr=0.001" in cat
        par = _draw(_data(parallel=True), width, height)
        assert par[0].startswith("lr") and "optimizer" in par[0] and "eval/accuracy" in par[0]
        assert any("⠀" < ch <= "⣿" for ln in par for ch in ln)  # braille polylines
        assert "★ lr0.1-adam" in "\n".join(par)
    for width in (20, 80):  # low boxes: the plot keeps its lines, the legend goes
        for height in (2, 4, 6, 9):
            for kw in ({}, {"x": "optimizer"}, {"parallel": True}):
                _draw(_data(**kw), width, height)
    assert "no param differs" in _draw(_data(x=None), 80, 5)[0]
    assert "no row has eval/accuracy" in _draw(_data(stats=[None] * 6), 80, 5)[0]


@pytest.fixture
def sweep(lab_dir: Path) -> Lab:
    """An ablation over two params, lr x optimizer, two seeds each, written through the Store API."""
    lab = Lab.find(str(lab_dir))
    with Store(lab.store_path) as store:
        k = 0
        for lr in LRS:
            for opt in OPTS:
                for seed in (0, 1):
                    acc = 0.9 + 0.02 * math.log10(lr) + (0.01 if opt == "adam" else 0) + 0.002 * seed
                    make_run(store, lab, ablation="lr-opt", variant=f"{opt}-{lr}", seed=seed,
                             params={"optim.lr": lr, "optim.name": opt}, acc=acc, offset=10 * k)
                    k += 1
    return lab


@sync
async def test_param_plot_from_the_comparison_at_80x24(sweep: Lab) -> None:
    from fbtui.tui.screens.compare import CompareScreen
    from fbtui.tui.screens.metric_picker import MetricPicker
    from fbtui.tui.screens.param_plot import ParamPlotScreen

    app = make_app(sweep, restore=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_compare("digits-mlp", "lr-opt")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and "adam-0.1" in screen_text(app))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ParamPlotScreen) and "★" in screen_text(app))
        text = screen_text(app)
        assert "eval/accuracy vs optim.lr  (log x)" in text  # the picked param and metric in the title
        assert all(s in text for s in ("0.001", "0.01", "0.1"))  # the x axis' labels
        assert text.count("●") == 5 and "■ optim.name=adam" in text  # a point per row, coloured by the other
        assert "★ best adam-0.1: eval/accuracy 0.8910 ± 0.0014" in text
        await pilot.press("l")  # linear again
        await until(pilot, lambda: "(log x)" not in screen_text(app))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, MetricPicker))
        await pilot.press(*"name", "enter")
        await until(pilot, lambda: "eval/accuracy vs optim.name" in screen_text(app))
        assert "adam" in screen_text(app) and "■ optim.lr=0.001" in screen_text(app)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MetricPicker))
        await pilot.press(*"loss", "enter")
        await until(pilot, lambda: "eval/loss vs optim.name" in screen_text(app))
        await pilot.press("v")  # parallel coordinates: every param, the metric last
        await until(pilot, lambda: "(parallel)" in screen_text(app))
        text = screen_text(app)
        assert "eval/loss across optim.lr, optim.name" in text and "★ adam-0.1" in text  # the best, lowest loss
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))


def test_a_row_without_a_finite_metric_is_left_out_not_drawn() -> None:
    from fbtui.records.rows import Stat
    from fbtui.tui.screens.param_plot import _stat

    assert _stat(Stat(0.5, 0.1, 2)) == (0.5, 0.1) and _stat(Stat(0.5, 0.0, 1)) == (0.5, 0.0)
    assert _stat(Stat(float("nan"), 0.0, 2)) is None and _stat(None) is None
    assert _stat(Stat(0.5, float("nan"), 2)) == (0.5, 0.0)
