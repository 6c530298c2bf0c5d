"""The app under load, headless (Textual's pilot at 120x40). Prints figures, not pass/fail.

1. start to first frame: a fresh process, from interpreter start to the project switcher drawing
   its rows (imports included), against a bare Textual app with one table, interleaved;
2. event-loop lag p50/p95 while a run view tails a log growing by 10,000 lines/s, and how long a
   keypress takes to reach the screen meanwhile;
3. memory while the run view indexes millions of log lines (what hours of a chatty stage leave),
   and what the run view's poll costs for a long run's curves;
4. time to open the comparison table at 100, 1,000 and 10,000 runs (store query + first frame;
   the median and the worst of 5 opens, each in a fresh app: one open swings by 30% here);
5. chart redraw with 4 curves x 100,000 points (target <= 50 ms), against the per-point braille
   chart the app drew before issue 14 and, where it is installed, plotext;
6. keypress p95 with the hosts screen polling 8 running stages' resource use (real containers)
   against the same screen not polling (bench/tui_usage.py).

    .venv/bin/python bench/tui.py [--quick] [--only first-frame,tail,memory,poll,compare,chart,usage]
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.labs import LAB_CODE  # noqa: E402
from tests.labs import copy_lab as make_lab  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


# ------------------------------------------------------------------ 1. first frame


def first_frame_child(lab: str) -> None:
    """Prints when the switcher's first row line is drawn (the compositor asking the table for it),
    and when it is drawn again with every project.yaml read (environment and description shown)."""
    from rich.text import Text

    from fbtui.tui import make_app
    from fbtui.tui.widgets.table import FastTable

    drawn: list[float] = []
    checked: list[float] = []  # [set, drawn]
    render_line, set_data = FastTable.render_line, FastTable.set_data

    def spy(self: FastTable, y: int):  # type: ignore[no-untyped-def]
        if y >= 1 and self.id == "projects" and self.rows:
            if not drawn:
                drawn.append(time.perf_counter())
            if len(checked) == 1:
                checked.append(time.perf_counter())
        return render_line(self, y)

    def spy_data(self: FastTable, columns, rows, **kw):  # type: ignore[no-untyped-def]
        env = rows[0].cells[1] if rows else None
        if self.id == "projects" and rows and not checked and not (isinstance(env, Text) and env.plain == "…"):
            checked.append(time.perf_counter())
        return set_data(self, columns, rows, **kw)

    FastTable.render_line, FastTable.set_data = spy, spy_data  # type: ignore[method-assign]

    async def go() -> None:
        app = make_app(lab, check_engine=False, restore=False)  # as `fbtui` makes it
        async with app.run_test(size=(120, 40)):
            while len(checked) < 2:
                await asyncio.sleep(0.005)  # polls a list: no DOM queries competing with the app
            print(f"{drawn[0] - T_START:.3f} {checked[1] - T_START:.3f}")

    asyncio.run(go())


def bare_frame_child() -> None:
    """The baseline of first_frame: a bare Textual app whose one table gets 12 rows, in a fresh
    process (Textual's own import and start, which no change of ours can cut)."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    drawn: list[float] = []
    render_line = DataTable.render_line

    def spy(self: DataTable, y: int):  # type: ignore[no-untyped-def, type-arg]
        if y >= 1 and self.row_count and not drawn:
            drawn.append(time.perf_counter())
        return render_line(self, y)

    DataTable.render_line = spy  # type: ignore[method-assign]

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("run", "status", "metric")
            table.add_rows([(str(i), "succeeded", f"{i / 10:.4f}") for i in range(12)])

    async def go() -> None:
        async with Bare().run_test(size=(120, 40)):
            while not drawn:
                await asyncio.sleep(0.005)
            print(f"{drawn[0] - T_START:.3f}")

    asyncio.run(go())


def first_frame(lab: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """The app's first frame, its switcher complete, and the bare Textual app's first frame,
    interleaved (this machine's speed swings by a third between minutes: the ratio is what the app adds)."""
    frames: list[float] = []
    complete: list[float] = []
    bare: list[float] = []
    for _ in range(repeat):
        for child in (["--first-frame-child", str(lab)], ["--bare-frame-child"]):
            proc = subprocess.run([sys.executable, __file__, *child], capture_output=True, text=True, timeout=120)
            if proc.returncode or not proc.stdout.strip():
                raise SystemExit(f"bench: {' '.join(child)} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            figures = [float(x) for x in proc.stdout.strip().splitlines()[-1].split()]
            if child[0] == "--bare-frame-child":
                bare.append(figures[0])
            else:
                frames.append(figures[0])
                complete.append(figures[1])
    return frames, complete, bare


# ------------------------------------------------------------------ 2. lag while tailing


async def tail_lag(lab_root: Path, lines_per_s: int, seconds: float) -> dict[str, float]:
    from fbtui.lab import Lab
    from fbtui.store import Store
    from fbtui.tui.app import FBApp
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.logview import LogView
    from tests.test_tui_data import make_run, spool

    lab = Lab.find(str(lab_root))
    with Store(lab.store_path) as store:
        rid = make_run(store, lab, status="running", log=[])
    path = spool(lab, rid, "train", ["start"])
    stop = threading.Event()
    written = [0]

    def writer() -> None:  # what the supervisor does: append timestamped lines, 20 batches a second
        batch = lines_per_s // 20
        with path.open("a") as f:
            t = time.perf_counter()
            while not stop.is_set():
                f.write("".join(f"2025-10-09T08:00:00.{written[0] + i:09d}Z step {written[0] + i} loss 0.123 "
                                f"lr 3e-4 samples/s 1234.5\n" for i in range(batch)))
                f.flush()
                written[0] += batch
                t += 0.05
                time.sleep(max(0.0, t - time.perf_counter()))

    app = FBApp(lab, check_engine=False, restore=False)
    lags: list[float] = []
    keys: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run(rid)
        while not (isinstance(app.screen, RunScreen) and app.screen.query(LogView)):
            await pilot.pause(0.01)
        log = app.screen.query_one(LogView)
        log.focus()
        th = threading.Thread(target=writer, daemon=True)
        th.start()
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - t0 - 0.01) * 1000)
            n += 1
            if n % 25 == 0:  # a keypress: from the key event to its action having run
                before = log.timestamps
                t1 = time.perf_counter()
                app.simulate_key("t")  # toggles the log's timestamps: a repaint of the log
                while log.timestamps == before:
                    await asyncio.sleep(0.0005)
                keys.append((time.perf_counter() - t1) * 1000)
        stop.set()
        th.join()
        await pilot.pause(0.5)
        shown = log.index.count if log.index else 0
    return {"lines_per_s_written": written[0] / seconds, "lines_indexed": shown, "lines_written": written[0] + 1,
            "lag_p50_ms": statistics.median(lags), "lag_p95_ms": pct(lags, 95),
            "key_p50_ms": statistics.median(keys), "key_p95_ms": pct(keys, 95)}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def log_memory(lab_root: Path, lines: int) -> dict[str, float]:
    """The app's memory before and after its run view has indexed `lines` more log lines (what
    hours of a chatty stage leave in the spool), and after paging to the top and back."""
    from fbtui.lab import Lab
    from fbtui.store import Store
    from fbtui.tui.app import FBApp
    from fbtui.tui.screens.run import RunScreen
    from fbtui.tui.widgets.logview import LogView
    from tests.test_tui_data import make_run, spool

    lab = Lab.find(str(lab_root))
    with Store(lab.store_path) as store:
        rid = make_run(store, lab, status="running", log=[])
    path = spool(lab, rid, "train", ["start"])
    app = FBApp(lab, check_engine=False, restore=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.open_run(rid)
        while not (isinstance(app.screen, RunScreen) and app.screen.query(LogView)):
            await pilot.pause(0.01)
        log = app.screen.query_one(LogView)
        await pilot.pause(0.5)
        before = rss_mb()
        writer = ("import sys\nwith open(sys.argv[1], 'a') as f:\n    for s in range(0, int(sys.argv[2]), 100000):\n"
                  "        f.write(''.join(f'2025-10-09T08:00:00.{i:09d}Z step {i} loss 0.123 lr 3e-4 samples/s "
                  "1234.5\\n' for i in range(s, min(int(sys.argv[2]), s + 100000))))\n")
        subprocess.run([sys.executable, "-c", writer, str(path), str(lines)], check=True)  # not in this process's RSS
        t0 = time.perf_counter()
        while log.index is None or log.index.count < lines + 1:
            await pilot.pause(0.05)
        indexed_s = time.perf_counter() - t0
        await pilot.pause(0.3)
        after = rss_mb()
        log.focus()
        await pilot.press("home")
        await pilot.pause(0.2)
        await pilot.press("end")
        await pilot.pause(0.3)
        paged = rss_mb()
        index_bytes = len(log.index.blocks) * log.index.blocks.itemsize
    return {"before": before, "after": after, "paged": paged, "index_bytes": index_bytes,
            "indexed_s": indexed_s, "file_mb": path.stat().st_size / 2**20}


def run_view_poll(lab_root: Path, points: int) -> dict[str, float]:
    """What the run view's one-second poll costs for a run with 4 curves of `points` points each:
    the first poll, a later one after 100 new points, and the baseline of reading every history
    in full as the view did before (median of 5)."""
    from fbtui.lab import Lab
    from fbtui.store import Store
    from fbtui.tui import data
    from tests.test_tui_data import T0, make_run

    lab = Lab.find(str(lab_root))
    keys = ["train/loss", "val/loss", "val/accuracy", "train/accuracy"]
    with Store(lab.store_path) as store:
        rid = make_run(store, lab, status="running", curve=0)
        for k in keys:
            store.add_metrics(rid, [(k, s, 1.0 / (s + 1), T0) for s in range(points)], "train")
        curves = data.Curves()
        t = time.perf_counter()
        data.run_detail(store, rid, curves)
        first = time.perf_counter() - t
        later, full = [], []
        for i in range(5):
            for k in keys:
                store.add_metrics(rid, [(k, points + i * 100 + s, 0.1, T0) for s in range(100)], "train")
            t = time.perf_counter()
            data.run_detail(store, rid, curves)
            later.append(time.perf_counter() - t)
            t = time.perf_counter()
            for k in keys:
                [(float(s), float(v)) for s, v, _ in store.metric_history(rid, k)]
            full.append(time.perf_counter() - t)
    return {"first": first, "later": statistics.median(later), "full": statistics.median(full)}


# ------------------------------------------------------------------ 3. comparison table


def fill_ablation(lab_root: Path, runs: int) -> None:
    """`runs` succeeded runs of one ablation: runs/2 variants x 2 seeds, params and final metrics,
    each evaluated as common's evaluate records it (what it covers: today's files and config, so
    the table judges every run against today's suite, as in a real lab)."""
    import json

    from records import todays_covers  # (bench/ is this script's folder)

    from fbtui.gitstate import GitState
    from fbtui.store import Store

    covers = todays_covers(lab_root)

    with Store(lab_root / ".fb" / "fb.db") as store:
        commit = store.record_commit(GitState(is_repo=True, sha="a" * 40, branch="main"))
    with Store(lab_root / ".fb" / "fb.db") as store, store.write() as c:
        for i in range(runs):
            v, seed = i // 2, i % 2
            cur = c.execute("INSERT INTO runs (project, ablation, variant, seed, config, status, created_at, "
                            "started_at, finished_at, commit_id, config_hash, overrides) VALUES ('digits-mlp', 'big', "
                            "?, ?, '{}', 'succeeded', ?, ?, ?, ?, ?, '[]')",
                            (f"v{v}", seed, 1.0, 1.0, 2.0, commit, f"config-of-v{v}"))
            rid = cur.lastrowid
            c.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                          [(rid, "model.hidden", json.dumps(64 + v)), (rid, "optim.lr", json.dumps(1e-3 * (1 + v % 7))),
                           (rid, "seed", json.dumps(seed))])
            c.executemany("INSERT INTO run_metrics (run_id, key, step, value, t) VALUES (?, ?, 0, ?, 0)",
                          [(rid, "eval/accuracy", 0.9 + (v % 97) / 1000 + seed / 1e4),
                           (rid, "eval/loss", 0.3 - (v % 89) / 1000)])
            c.execute("INSERT INTO evaluations (run_id, stage, fingerprint, results, created_at, covers) "
                      "VALUES (?, 'evaluate', 'f', '{}', 0, ?)", (rid, covers))


async def open_compare(lab_root: Path) -> tuple[float, float, int]:
    """Seconds from the key that opens the comparison to its rows in the table's data, and to the
    first of them drawn (the compositor asking the table for a row line), and how many rows."""
    from fbtui.lab import Lab
    from fbtui.tui.app import FBApp
    from fbtui.tui.widgets.table import FastTable

    drawn: list[float] = []
    loaded: list[float] = []
    render_line, set_data = FastTable.render_line, FastTable.set_data

    def spy(self: FastTable, y: int):  # type: ignore[no-untyped-def]
        if y >= 1 and self.view and not drawn and self.id == "cmp-table":
            drawn.append(time.perf_counter())
        return render_line(self, y)

    def spy_data(self: FastTable, columns, rows, **kw):  # type: ignore[no-untyped-def]
        if rows and not loaded and self.id == "cmp-table":
            loaded.append(time.perf_counter())
        return set_data(self, columns, rows, **kw)

    app = FBApp(Lab.find(str(lab_root)), check_engine=False, restore=False)
    FastTable.render_line = spy  # type: ignore[method-assign]
    FastTable.set_data = spy_data  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            while not app.screen.query(FastTable) or not app.screen.query_one(FastTable).rows:
                await pilot.pause(0.01)  # the app is up, as when someone presses the key
            await pilot.pause(0.2)
            t0 = time.perf_counter()
            app.open_compare("digits-mlp", "big")
            while not drawn:
                await asyncio.sleep(0.005)  # polls a list: no DOM queries competing with the app
            return loaded[0] - t0, drawn[0] - t0, len(app.screen.query_one("#cmp-table", FastTable).rows)
    finally:
        FastTable.render_line, FastTable.set_data = render_line, set_data  # type: ignore[method-assign]


def build_outside(lab_root: Path) -> float:
    """Seconds to build what the comparison shows with no app: the store query, the ablation table,
    its rows and their widths. The baseline of open_compare, measured beside it: this machine's
    speed swings by a third between minutes, and the ratio shows what the app adds."""
    from fbtui.lab import Lab
    from fbtui.records.rows import ablation_table, gc_paused
    from fbtui.store import Store
    from fbtui.tui.screens.compare import table_rows
    from fbtui.tui.widgets.table import measure_columns

    lab = Lab.find(str(lab_root))
    with Store(lab.store_path) as store:
        t0 = time.perf_counter()
        with gc_paused():
            t = ablation_table(store, "digits-mlp", "big", lab=lab)
            cols, rows = table_rows(t, set(list(t.best.values())[:1]))
            measure_columns(cols, rows)
        return time.perf_counter() - t0


# ------------------------------------------------------------------ 5. chart redraw


def old_chart(series: list[tuple[str, list[tuple[float, float]]]], width: int, height: int) -> int:
    """The braille chart's drawing before issue 14 (each point mapped and joined to the one before,
    no reduction): the baseline. Returns the cells drawn."""
    import math

    dots = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
    points = [(x, y) for _, pts in series for x, y in pts if math.isfinite(y)]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    grid_w, grid_h = (width - 6) * 2, (height - 1) * 4
    cells: dict[tuple[int, int], int] = {}
    for _, pts in series:
        prev = None
        for x, y in pts:
            gx, gy = round((x - x0) / (x1 - x0) * (grid_w - 1)), round((y1 - y) / (y1 - y0) * (grid_h - 1))
            steps = 1 if prev is None else max(abs(gx - prev[0]), abs(gy - prev[1]), 1)
            for k in range(1, steps + 1):
                px, py = (gx, gy) if prev is None else (prev[0] + round((gx - prev[0]) * k / steps),
                                                        prev[1] + round((gy - prev[1]) * k / steps))
                cells[(py // 4, px // 2)] = cells.get((py // 4, px // 2), 0) | dots[py % 4][px % 2]
            prev = (gx, gy)
    return len(cells)


def chart_redraw(points: int, width: int = 118, height: int = 20) -> dict[str, float]:
    """Milliseconds to draw 4 noisy curves of `points` points: the first draw (points read and
    reduced), a redraw (a resize, a key, a repaint: median of 5), with log scale and EMA 0.9; the
    old per-point chart and plotext (when installed) on the same data."""
    import math
    import random

    from fbtui.tui.widgets.chart import BrailleChart

    rnd = random.Random(14)
    series = [(f"k{j}", [(float(s), math.exp(-s / (points / 5)) * (1 + 0.3 * rnd.random()) + j * 0.1)
                         for s in range(points)]) for j in range(4)]

    def ms(fn) -> float:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1000

    def chart(cache: dict, **kw: object) -> float:  # type: ignore[type-arg]
        return ms(lambda: BrailleChart("loss", series, height, cache=cache, **kw).lines(width, height))  # type: ignore[arg-type]

    out: dict[str, float] = {}
    for name, kw in (("", {}), ("log ", {"log": True}), ("ema ", {"smoothing": 0.9})):
        cache: dict = {}  # type: ignore[type-arg]  # what the widget keeps between draws
        out[name + "first"] = chart(cache, **kw)
        out[name + "redraw"] = statistics.median(chart(cache, **kw) for _ in range(5))
    out["old"] = ms(lambda: old_chart(series, width, height))
    try:
        import plotext as plt  # judged against the own chart (issue 14); not a dependency

        def plot() -> None:
            plt.clf()
            plt.plotsize(width, height)
            for name, pts in series:
                plt.plot([p[0] for p in pts], [p[1] for p in pts], marker="braille", label=name)
            plt.build()

        out["plotext"] = ms(plot)
    except (ImportError, AttributeError):  # not installed, or 6.x (another API)
        pass
    return out


PARTS = ("first-frame", "tail", "memory", "poll", "compare", "chart", "usage")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter runs, smaller sizes")
    ap.add_argument("--first-frame-child", metavar="LAB")
    ap.add_argument("--bare-frame-child", action="store_true")
    ap.add_argument("--only", metavar="PARTS", help=f"comma-separated, of: {','.join(PARTS)} (default: all)")
    ap.add_argument("--sizes", metavar="N,N", help="comparison sizes in runs (default 100,1000,10000)")
    ap.add_argument("--opens", type=int, default=5, metavar="N",
                    help="comparison: opens per size, each in a fresh app (median and worst shown; default 5)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else set(PARTS)
    if only - set(PARTS):
        ap.error(f"--only: unknown part(s) {', '.join(sorted(only - set(PARTS)))}")
    if args.first_frame_child:
        first_frame_child(args.first_frame_child)
        return
    if args.bare_frame_child:
        bare_frame_child()
        return
    tmp = Path(tempfile.mkdtemp(prefix="fb-bench-tui-"))
    try:
        lab = make_lab(tmp / "lab")
        if "first-frame" in only:
            frames, complete, bare = first_frame(lab, 2 if args.quick else 5)
            ours, theirs = statistics.median(frames), statistics.median(bare)
            print(f"start to first frame (fresh process, imports included; target <= 1 s): median {ours:.3f} s "
                  f"(runs: {', '.join(f'{x:.3f}' for x in frames)}); a bare Textual app with one table, "
                  f"interleaved: {theirs:.3f} s (x{ours / theirs:.2f}); the switcher complete (lab.yaml and "
                  f"every project.yaml validated, drawn): median {statistics.median(complete):.3f} s, "
                  f"worst {max(complete):.3f} s")
        if "tail" in only:
            r = asyncio.run(tail_lag(lab, 10_000, 3 if args.quick else 10))
            print(f"tailing {r['lines_per_s_written']:,.0f} lines/s: event-loop lag p50 {r['lag_p50_ms']:.1f} ms, "
                  f"p95 {r['lag_p95_ms']:.1f} ms; keypress handled p50 {r['key_p50_ms']:.1f} ms, "
                  f"p95 {r['key_p95_ms']:.1f} ms; {r['lines_indexed']:,} of {r['lines_written']:,} lines indexed")
        if "memory" in only:
            n_lines = 200_000 if args.quick else 2_000_000
            m = asyncio.run(log_memory(make_lab(tmp / "lab-mem"), n_lines))
            per_hour = m["index_bytes"] / n_lines * 10_000 * 3600 / 2**20
            print(f"log memory: {n_lines:,} more lines ({m['file_mb']:.0f} MB spooled) indexed in "
                  f"{m['indexed_s']:.1f} s; "
                  f"RSS {m['before']:.0f} -> {m['after']:.0f} MB (+{m['after'] - m['before']:.1f}), after paging "
                  f"top and back {m['paged']:.0f} MB; line index {m['index_bytes'] / 1024:.0f} kB "
                  f"(an hour at 10,000 lines/s: {per_hour:.1f} MB)")
        if "poll" in only:
            pts = 20_000 if args.quick else 100_000
            p = run_view_poll(make_lab(tmp / "lab-poll"), pts)
            print(f"run view poll, 4 curves x {pts:,} points: first {p['first'] * 1000:.0f} ms, then "
                  f"{p['later'] * 1000:.1f} ms per poll vs {p['full'] * 1000:.0f} ms re-reading the histories "
                  f"({p['full'] / p['later']:.0f}x)")
        sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else \
            ([100, 1000] if args.quick else [100, 1000, 10_000])
        for n in sizes if "compare" in only else []:
            root = make_lab(tmp / f"lab{n}", LAB_CODE)  # code too: today's suite is judged from it
            fill_ablation(root, n)
            opens, core = [], []
            for _ in range(max(1, 1 if args.quick else args.opens)):  # interleaved: both see the same machine
                opens.append(asyncio.run(open_compare(root)))
                core.append(build_outside(root))
            loaded = statistics.median(o[0] for o in opens)
            drawn = sorted(o[1] for o in opens)
            base = statistics.median(core)
            print(f"comparison table, {n:,} runs ({opens[0][2]:,} variant rows), {len(opens)} opens: rows loaded "
                  f"in {loaded:.3f} s, on screen in {statistics.median(drawn):.3f} s (median; worst {drawn[-1]:.3f}); "
                  f"the same table built outside the app {base:.3f} s (x{statistics.median(drawn) / base:.2f})")
        if "chart" in only:
            pts = 100_000
            c = chart_redraw(pts)
            print(f"chart, 4 curves x {pts:,} points at 118x20: redraw {c['redraw']:.1f} ms "
                  f"(log {c['log redraw']:.1f}, "
                  f"ema 0.9 {c['ema redraw']:.1f}; target <= 50 ms), first draw {c['first']:.0f} ms (log "
                  f"{c['log first']:.0f}, ema 0.9 {c['ema first']:.0f}); the per-point chart before #14 "
                  f"{c['old']:,.0f} ms" + (f", plotext {c['plotext']:,.0f} ms" if "plotext" in c else ""))
        if "usage" in only:
            try:  # 6. resource polling of 8 running stages (real containers: needs the engine)
                from tui_usage import report, usage_polling  # (bench/ is this script's folder)

                print(report(usage_polling(make_lab(tmp / "lab-usage"), 4 if args.quick else 10)))
            except Exception as e:  # no engine here: the other figures stand
                print(f"resource polling: not measured ({type(e).__name__}: {str(e)[:160]})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
