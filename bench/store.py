"""Store benchmarks: figures and ratios against a plain sqlite3 baseline measured in the same run.

    .venv/bin/python bench/store.py [--points 1000000] [--batch 1000]

Targets (issue #2): ingest >= 0.5x the baseline; comparison of 1,000 runs <= 30 ms and of
10,000 runs <= 300 ms (10 params, 5 metrics each); a 100,000-point history read <= 0.2 s.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fbtui.store import Store


def best_of(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_ingest(folder: Path, points: int, batch: int) -> None:
    rows = [("train/loss" if i % 2 else "train/acc", i // 2, random.random(), 1.7e9 + i) for i in range(points)]
    # Baseline: plain sqlite3, same schema (the store's own, with its index), executemany per batch.
    base_path = folder / "baseline.db"
    Store(base_path).close()
    conn = sqlite3.connect(base_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("INSERT INTO runs (id, project, status, config) VALUES (1, 'p', 'running', '{}')")
    t0 = time.perf_counter()
    for start in range(0, points, batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO metrics (run_id, stage, key, step, value, t) VALUES (1, 'train', ?, ?, ?, ?)",
                         rows[start:start + batch])
        conn.execute("COMMIT")
    baseline = points / (time.perf_counter() - t0)
    conn.close()

    with Store(folder / "store.db") as store:
        rid = store.create_run("p", config="{}", params={}, stages=["train"])
        t0 = time.perf_counter()
        for start in range(0, points, batch):
            store.add_metrics(rid, rows[start:start + batch], stage="train")
        ours = points / (time.perf_counter() - t0)
        assert store.metric_count(rid) == points
    print(f"metric ingest, {points:,} points in batches of {batch:,}:")
    print(f"  Store.add_metrics   {ours:>12,.0f} points/s")
    print(f"  plain sqlite3       {baseline:>12,.0f} points/s")
    print(f"  ratio               {ours / baseline:>12.2f}x   (target >= 0.5x; MLflow log_batch ~4,900/s here)")


def bench_compare(folder: Path, runs: int) -> tuple[float, float]:
    with Store(folder / f"compare{runs}.db") as store:
        for i in range(runs):
            params = {f"p{j}": (i + j) % 5 for j in range(10)}
            rid = store.create_run("proj", config="{}", params=params, stages=["train"], ablation="sweep",
                                   variant=f"v{i}", seed=i % 3)
            store.add_metrics(rid, [(f"m{k}", 100, random.random(), 0.0) for k in range(5)])
        store.compare("proj", "sweep")  # warm the page cache as a second look would
        params, metrics = [f"p{j}" for j in range(10)], [f"m{k}" for k in range(5)]
        known = best_of(lambda: store.compare("proj", "sweep", params=params, metrics=metrics))
        detected = best_of(lambda: store.compare("proj", "sweep"))
        table = store.compare("proj", "sweep")
        assert len(table.rows) == runs and len(table.params) == 10 and len(table.metrics) == 5
    return known, detected


def bench_history(folder: Path, points: int = 100_000) -> float:
    with Store(folder / "history.db") as store:
        rid = store.create_run("p", config="{}", params={}, stages=["train"])
        other = store.create_run("p", config="{}", params={}, stages=["train"])
        for r in (rid, other):
            rows = [(k, i, random.random(), 0.0) for i in range(points) for k in ("loss", "acc")]
            for start in range(0, len(rows), 10_000):
                store.add_metrics(r, rows[start:start + 10_000])
        seconds = best_of(lambda: store.metric_history(rid, "loss"))
        assert len(store.metric_history(rid, "loss")) == points
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1_000)
    args = ap.parse_args()
    random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bench_ingest(folder, args.points, args.batch)
        print("comparison query (runs x 10 params x 5 final metrics), the ablation's keys given / "
              "the differing params found by the query:")
        for runs, target in ((1_000, 0.030), (10_000, 0.300)):
            known, detected = bench_compare(folder, runs)
            print(f"  {runs:>6,} runs   {known * 1000:>7.1f} ms / {detected * 1000:>7.1f} ms   "
                  f"(target <= {target * 1000:.0f} ms: {known / target:.2f} / {detected / target:.2f} of it)")
        h = bench_history(folder)
        print(f"100,000-point metric history read: {h * 1000:.1f} ms   (target <= 200 ms: {h / 0.2:.2f} of it; "
              "MLflow 4.7 s, Aim 0.67 s here)")


if __name__ == "__main__":
    main()
