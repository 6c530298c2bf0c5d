"""The comparison table's cost: grouping runs into rows (config, code state, suite; one sample per
seed; names; partial rows) on top of the store's comparison query, measured in the same run.

    .venv/bin/python bench/records.py

Each ablation has variants x 2 seeds; a third of the cells were run twice (repeats), a tenth of
the runs carry an -o override, and half the runs are of an older commit (set apart). The target
for the app is the whole comparison on screen in <= 1 s at 10,000 runs (issue #6); this prints
what the rows add to the query that was there before.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fbtui.gitstate import GitState
from fbtui.records.export import export
from fbtui.records.identity import config_hash
from fbtui.records.rows import ablation_table
from fbtui.store import Store


def median_of(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fill(store: Store, runs: int, project: str = "p", covers: str | None = None) -> None:
    old = store.record_commit(GitState(is_repo=True, sha="a" * 40, branch="main"))
    new = store.record_commit(GitState(is_repo=True, sha="b" * 40, branch="main"))
    with store.write() as c:
        for i in range(runs):
            cell = i // 3 if i % 3 == 2 else i  # every third run repeats the cell before it
            v, seed = (cell // 2) % (runs // 8 or 1), cell % 2
            extra = i % 10 == 0
            cfg = {"model": {"hidden": 64 + v, "depth": 2}, "optim": {"lr": 1e-3 * (1 + v % 7)},
                   "train": {"epochs": 100 if extra else 10}, "seed": seed}
            rid = c.execute(
                "INSERT INTO runs (project, ablation, variant, seed, config, origins, commit_id, status, created_at, "
                "started_at, finished_at, config_hash, overrides) VALUES (?, 'big', ?, ?, ?, '{}', ?, 'succeeded', "
                "?, ?, ?, ?, ?)",
                (project, f"v{v}", seed, json.dumps(cfg), new if i >= runs // 2 else old, i, i, i + 1, config_hash(cfg),
                 json.dumps(["train.epochs=100"] if extra else []))).lastrowid
            c.executemany("INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)",
                          [(rid, "model.hidden", json.dumps(64 + v)), (rid, "model.depth", "2"),
                           (rid, "optim.lr", json.dumps(1e-3 * (1 + v % 7))), (rid, "seed", json.dumps(seed)),
                           (rid, "train.epochs", json.dumps(100 if extra else 10))])
            c.executemany("INSERT INTO run_metrics (run_id, key, step, value, t) VALUES (?, ?, 0, ?, 0)",
                          [(rid, "eval/accuracy", 0.9 + (v % 97) / 1000 + seed / 1e4),
                           (rid, "eval/loss", 0.3 - (v % 89) / 1000)])
            c.execute("INSERT INTO evaluations (run_id, stage, fingerprint, results, created_at, covers) "
                      "VALUES (?, 'evaluate', 'f', '{}', 0, ?)", (rid, covers))


def todays_covers(lab: Path) -> str:
    """An evaluation's covers as common's evaluate writes it, for today's files of this lab."""
    import hashlib

    from fbtui.config.resolve import resolve
    from fbtui.lab import Lab

    config = resolve(Lab(lab), Lab(lab).project("digits-mlp")).config

    def sha(path: str) -> str:
        return hashlib.sha256((lab / path).read_bytes()).hexdigest()

    made = {"code": {p: sha(p) for p in ("common/stages/prepare.py", "common/data/prepared.py",
                                         "common/data/datasets.py", "common/data/transforms.py")},
            "config": {"data": config["data"]}}
    return json.dumps({"code": {p: sha(p) for p in ("common/evaluation.py", "common/metrics.py")},
                       "config": {"eval": config["eval"]}, "data": {"digest": "d", "split": "test", "made_by": made}},
                      sort_keys=True)


def todays_suite(tmp: str, runs: int) -> None:
    """The same table with today's suite checked against a lab's working tree (every evaluation
    itemised): what computing the suite costs over the voted one."""
    from fbtui.lab import Lab
    from tests.labs import LAB_CODE, copy_lab

    lab = copy_lab(Path(tmp) / f"lab{runs}", LAB_CODE)
    with Store(Path(tmp) / f"s{runs}.db") as store:
        fill(store, runs, "digits-mlp", todays_covers(lab))
        store.compare("digits-mlp", "big")
        voted = median_of(lambda: ablation_table(store, "digits-mlp", "big"))
        today = median_of(lambda: ablation_table(store, "digits-mlp", "big", lab=Lab(lab)))
        t = ablation_table(store, "digits-mlp", "big", lab=Lab(lab))
        assert t.suite_how == "today" and not t.stale, (t.suite_how, t.stale[:5])
        print(f"{runs:>6,} runs, today's suite checked against the working tree: {today * 1000:.0f} ms "
              f"(voted, no lab: {voted * 1000:.0f} ms; {today / voted:.2f}x)")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for runs in (1_000, 10_000):
            with Store(Path(tmp) / f"r{runs}.db") as store:
                fill(store, runs)
                store.compare("p", "big")  # warm the page cache, as a second look would
                query = median_of(lambda: store.compare("p", "big"))
                table = median_of(lambda: ablation_table(store, "p", "big"))
                t = ablation_table(store, "p", "big")
                every = median_of(lambda: ablation_table(store, "p", "big", all_code=True), repeat=3)
                md = median_of(lambda t=t: export(t, "markdown"), repeat=3)
                print(f"{runs:>6,} runs -> {len(t.rows):,} rows ({t.repeats} repeats, {len(t.set_apart)} set apart): "
                      f"query {query * 1000:.0f} ms, whole table {table * 1000:.0f} ms "
                      f"({table / query:.2f}x the query), --all-code {every * 1000:.0f} ms, "
                      f"markdown export {md * 1000:.0f} ms")
            todays_suite(tmp, runs)


if __name__ == "__main__":
    main()
