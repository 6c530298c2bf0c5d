"""The SQLite store against real files: migrations, status moves, metrics, comparison, concurrency."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from fbtui.store import Store
from fbtui.store.migrations import LATEST
from fbtui.store.store import StoreError


def make_run(store: Store, project: str = "p", **params: object) -> int:
    return store.create_run(project, config="{}", params=params or {"a": 1}, stages=["prepare", "train"])


def test_fresh_file_is_migrated_to_latest_in_wal_mode(tmp_path):  # type: ignore[no-untyped-def]
    with Store(tmp_path / "fb.db") as s:
        assert s.schema_version == LATEST
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = set(s.db.table_names())
    assert {"projects", "commits", "images", "runs", "stages", "params", "metrics", "artifacts",
            "evaluations", "run_metrics"} <= tables


@pytest.mark.parametrize("start", range(LATEST))
def test_migrates_from_every_earlier_version_keeping_data(tmp_path, start):  # type: ignore[no-untyped-def]
    path = tmp_path / "fb.db"
    with Store(path, target=start) as old:
        assert old.schema_version == start
        if start >= 1:  # v1 has runs and metrics: data that later versions must keep and index
            with old.write() as c:  # the columns of v1: a run as an old fbtui recorded it
                rid = c.execute("INSERT INTO runs (project, config, origins, status, created_at) VALUES "
                                "('p', 'x: 1\nseed: 3\n', ?, 'succeeded', 0)",
                                ('{"x": "-o x=1", "seed": "defaults.yaml:1"}',)).lastrowid
                c.execute("INSERT INTO params (run_id, key, value) VALUES (?, 'x', '1')", (rid,))
                c.executemany("INSERT INTO metrics (run_id, stage, key, step, value, t) VALUES (?, ?, ?, ?, ?, ?)",
                              [(rid, "train", "loss", s, 1.0 / (s + 1), 0.0) for s in range(50)])
                if start >= 2:  # from v2 on, ingest also keeps the final value
                    c.execute("INSERT INTO run_metrics VALUES (?, 'loss', 49, ?, 0.0)", (rid, 1.0 / 50))
    with Store(path) as new:
        assert new.schema_version == LATEST
        if start >= 1:
            assert new.metric_count(rid) == 50
            assert new.final_metrics(rid) == {"loss": 1.0 / 50}  # backfilled by v2
            assert new.params(rid) == {"x": 1}
            if start < 5:  # v5 backfills the row identity and the overrides from the origins
                from fbtui.records.identity import config_hash

                run = new.run(rid)
                assert run["config_hash"] == config_hash({"x": 1, "seed": 0}) and run["overrides"] == '["x=1"]'


def test_a_newer_schema_is_refused(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "fb.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this fbtui knows") as e:
        Store(path)
    assert "git pull && scripts/setup" in str(e.value.hint)  # a command that works (no fbtui on any index)


def test_v7_images_keep_their_pip_freeze(tmp_path):  # type: ignore[no-untyped-def]
    from fbtui.images.freeze import layer_packages, recorded_packages

    path = tmp_path / "fb.db"
    with Store(path, target=6) as old:  # an image recorded before v7
        old.record_image(tag="fb/base:old", digest="sha256:1", layer="base", name="base", host="local")
    freeze = ["numpy==2.4.6", "torch==2.13.0+cpu"]
    with Store(path) as new:
        assert new.schema_version == LATEST >= 7
        assert new.query("SELECT packages FROM images")[0]["packages"] is None
        assert recorded_packages(new, tag="fb/base:old") is None  # not recorded: None, not an empty list
        new.record_image(tag="fb/base:new", digest="sha256:2", layer="base", name="base", host="local",
                         packages=json.dumps(freeze))
        assert recorded_packages(new, tag="fb/base:new", host="local") == freeze
        assert layer_packages(new, "fb/base:whatever", "sha256:2") == freeze  # by ID first: the exact image
        assert layer_packages(new, "fb/base:new", None) == freeze


def test_run_and_stage_status_moves(tmp_path):  # type: ignore[no-untyped-def]
    with Store(tmp_path / "fb.db") as s:
        rid = make_run(s)
        assert [st["status"] for st in s.stages(rid)] == ["pending", "pending"]
        s.set_run_status(rid, "running")
        s.set_stage_status(rid, "prepare", "running", container_id="abc")
        s.set_stage_status(rid, "prepare", "succeeded", exit_code=0)
        s.set_stage_status(rid, "train", "running")
        s.set_stage_status(rid, "train", "failed", "exit code 3: ValueError", exit_code=3)
        s.set_run_status(rid, "failed", "stage train: exit code 3")
        run = s.run(rid)
        assert run["status"] == "failed" and run["reason"] == "stage train: exit code 3"
        assert run["started_at"] <= run["finished_at"]
        st = s.stages(rid)
        assert st[0]["container_id"] == "abc" and st[1]["exit_code"] == 3
        with pytest.raises(StoreError, match="cannot go from failed to running"):
            s.set_run_status(rid, "running")
        with pytest.raises(StoreError, match="unknown status"):
            s.set_stage_status(rid, "train", "exploded")
        with pytest.raises(StoreError, match="no run 999"):
            s.run(999)


def test_a_wait_reason_ends_with_the_wait(tmp_path):  # type: ignore[no-untyped-def]
    """A run whose stages all came from the cache waited for another run's stage first: succeeded, it
    no longer says "waiting for …" (fbtui show, ps). A reason given with the move is kept."""
    with Store(tmp_path / "fb.db") as s:
        rid = make_run(s)
        s.set_run_status(rid, "queued")
        s.update_run(rid, reason="waiting for train of #1 (same inputs)")
        s.update_stage(rid, "prepare", reason="waiting for prepare of #1 (same inputs)")
        s.set_stage_status(rid, "prepare", "cached", "same inputs as run 1")
        s.update_stage(rid, "train", reason="waiting for a slot on local")
        s.set_stage_status(rid, "train", "running")
        assert [st["reason"] for st in s.stages(rid)] == ["same inputs as run 1", None]
        s.set_run_status(rid, "running")
        s.set_run_status(rid, "succeeded")
        assert s.run(rid)["reason"] is None
        other = make_run(s)
        s.update_run(other, reason="waiting for a slot on local")
        s.set_run_status(other, "cancelled")
        assert s.run(other)["reason"] == "waiting for a slot on local"  # what it was doing when cancelled


def test_metrics_history_and_final_values(tmp_path):  # type: ignore[no-untyped-def]
    with Store(tmp_path / "fb.db") as s:
        rid = make_run(s)
        s.add_metrics(rid, [("train/loss", i, 1.0 / (i + 1), 100.0 + i) for i in range(100)], stage="train")
        s.add_metrics(rid, [("train/loss", 5, 9.9, 1.0)], stage="train")  # a late, earlier step
        s.add_metrics(rid, [("test/acc", 0, 0.97, 200.0)], stage="evaluate")
        hist = s.metric_history(rid, "train/loss")
        assert len(hist) == 101 and hist[0] == (0, 1.0, 100.0) and hist[-1][0] == 99
        assert s.final_metrics(rid) == {"train/loss": 0.01, "test/acc": 0.97}
        assert s.metric_keys(rid) == ["test/acc", "train/loss"]


def test_comparison_shows_params_that_differ_and_final_metrics(tmp_path):  # type: ignore[no-untyped-def]
    with Store(tmp_path / "fb.db") as s:
        ids = []
        for hidden in (64, 256):
            for seed in (0, 1):
                rid = s.create_run("p", config="{}", params={"model.hidden": hidden, "seed": seed, "lr": 0.001},
                                   stages=["train"], ablation="sweep", variant=f"hidden={hidden}", seed=seed)
                s.add_metrics(rid, [("test/acc", 0, 0.9 + hidden / 10000 + seed / 1000, 0.0)])
                ids.append(rid)
        s.add_evaluation(ids[0], "evaluate", "fp1", {"acc": 0.9})
        other = make_run(s, project="q")
        cmp_ = s.compare("p", "sweep")
        assert cmp_.params == ["model.hidden", "seed"]  # lr is the same everywhere
        assert cmp_.metrics == ["test/acc"]
        assert [r["run"] for r in cmp_.rows] == ids and other not in [r["run"] for r in cmp_.rows]
        assert cmp_.rows[3]["params"] == {"model.hidden": 256, "seed": 1}
        assert cmp_.rows[3]["metrics"]["test/acc"] == pytest.approx(0.9 + 0.0256 + 0.001)
        assert cmp_.rows[0]["fingerprint"] == "fp1" and cmp_.rows[1]["fingerprint"] is None
        picked = s.compare("p", run_ids=ids[:2], params=["lr"], metrics=["test/acc"])
        assert [r["params"] for r in picked.rows] == [{"lr": 0.001}] * 2


def test_comparison_uses_a_reevaluated_runs_latest_results(tmp_path):  # type: ignore[no-untyped-def]
    from fbtui.records.rows import ablation_table

    with Store(tmp_path / "fb.db") as s:
        ids = []
        for seed in (0, 1):
            rid = s.create_run("p", config="{}", params={"seed": seed}, stages=["evaluate"], ablation="a",
                               variant="v", seed=seed)
            s.add_metrics(rid, [("eval/accuracy", 0, 0.5 + seed / 10, 0.0)], stage="evaluate")
            s.update_run(rid, status="succeeded")
            s.add_evaluation(rid, "evaluate", "old", {"accuracy": 0.5 + seed / 10})
            ids.append(rid)
        s.add_evaluation(ids[0], "evaluate", "new", {"accuracy": 0.9})  # `fbtui eval` of the first run only
        rows = {r["run"]: r for r in s.compare("p", "a").rows}
        assert rows[ids[0]]["fingerprint"] == "new" and rows[ids[1]]["fingerprint"] == "old"
        assert json.loads(rows[ids[0]]["reevaluated"]) == {"accuracy": 0.9} and rows[ids[1]]["reevaluated"] is None
        t = ablation_table(s, "p", "a")
        # Two suites, one run each: never averaged together; the one compared shows its own numbers.
        assert len(t.rows) == 1 and len(t.set_apart) == 1 and t.rows[0].runs != [x.run for x in t.set_apart]
        s.add_evaluation(ids[1], "evaluate", "new", {"accuracy": 0.7})
        t = ablation_table(s, "p", "a")
        assert t.fingerprint == "new" and not t.set_apart
        assert t.rows[0].metrics["eval/accuracy"].mean == pytest.approx(0.8)  # (0.9 + 0.7) / 2, not the old 0.55


def test_last_run_status_per_project(tmp_path):  # type: ignore[no-untyped-def]
    with Store(tmp_path / "fb.db") as s:
        a = [make_run(s, "p") for _ in range(4)]
        b = make_run(s, "q")
        for rid, status in zip(a, ("succeeded", "running", "queued", "failed")):
            s.update_run(rid, status=status)
        last = s.last_run_status()
        assert set(last) == {"p", "q"}
        assert (last["p"]["id"], last["p"]["status"], last["p"]["active"]) == (a[3], "failed", 2)
        assert (last["q"]["id"], last["q"]["status"], last["q"]["active"]) == (b, "pending", 0)


def test_commits_are_stored_once_per_distinct_state(tmp_path):  # type: ignore[no-untyped-def]
    from fbtui.gitstate import GitState

    with Store(tmp_path / "fb.db") as s:
        a = s.record_commit(GitState(is_repo=True, sha="a" * 40, branch="main"))
        b = s.record_commit(GitState(is_repo=True, sha="a" * 40, branch="main"))
        c = s.record_commit(GitState(is_repo=True, sha="a" * 40, branch="main", dirty=True, diff="+x"))
        d = s.record_commit(GitState(is_repo=False))
        assert a == b and len({a, c, d}) == 3
        assert s.commit(d)["is_repo"] == 0


WRITER = textwrap.dedent("""
    import sys, time
    from fbtui.store import Store
    path, name, total, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with Store(path) as s:  # both processes race to migrate a brand-new file
        rid = s.create_run("p", config="{}", params={"writer": name}, stages=["train"])
        for start in range(0, total, batch):
            s.add_metrics(rid, [("loss", i, float(i), time.time()) for i in range(start, start + batch)])
    print(rid)
""")


@pytest.mark.slow
def test_two_processes_write_metrics_at_once_losing_nothing(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "fb.db"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "100000", "500"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in "ab"]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert "locked" not in err
    with Store(path) as s:
        assert s.metric_count() == 200_000
        for out, _ in results:
            rid = int(out.strip())
            assert s.metric_count(rid) == 100_000
            assert s.final_metrics(rid) == {"loss": 99_999.0}
            steps = [step for step, _, _ in s.metric_history(rid, "loss")]
            assert steps == list(range(100_000))
