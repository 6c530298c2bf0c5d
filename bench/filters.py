"""Filter expressions over 10,000 runs (#14): `fbtui ps --where`, `compare --where` and the app's
filter bar, against the plain listing query they start from, measured in the same run.

    .venv/bin/python bench/filters.py [RUNS]

Each run has 30 params (5 of the sweep, 25 more as a real config has) and two final metrics;
one in ten is tagged. Target: a filter expression over 10,000 runs in <= 100 ms, whole (parse,
name resolution, the reads it needs, the predicate over every run).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.records import fill, median_of
from fbtui.records.filters import select
from fbtui.store import Store

TARGET_S = 0.100
EXPRESSIONS = ("lr<0.002 and eval/accuracy>0.95", "status=failed or (tag=baseline and hidden>=100)",
               "not archived and train.epochs=100", "note~diverged or eval/loss<0.25")


def extend(store: Store) -> None:
    ids = [r["id"] for r in store.query("SELECT id FROM runs")]
    with store.write() as c:
        c.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                      [(rid, f"extra.section{k % 5}.key{k}", json.dumps(k * 0.5)) for rid in ids for k in range(25)])
        c.executemany("INSERT INTO run_tags (run_id, tag) VALUES (?, 'baseline')", [(rid,) for rid in ids[::10]])


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "fb.db") as store:
        fill(store, runs)
        extend(store)
        listing = median_of(lambda: store.query(
            "SELECT * FROM runs WHERE eval_of IS NULL AND archived_at IS NULL ORDER BY id DESC"))
        print(f"{runs} runs x 30 params x 2 metrics, median of 5")
        print(f"baseline: the plain listing query (every run's row)        {listing * 1000:7.1f} ms")
        worst = 0.0
        for text in EXPRESSIONS:
            n = len(select(store, text))
            t = median_of(lambda text=text: select(store, text))  # type: ignore[misc]
            worst = max(worst, t)
            print(f"filter {text!r:52} {t * 1000:7.1f} ms  ({n} match, +{(t - listing) * 1000:.1f} ms)")
        verdict = "ok" if worst <= TARGET_S else "OVER"
        print(f"filter expression over {runs:,} runs: worst {worst * 1000:.1f} ms, target <= "
              f"{TARGET_S * 1000:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
