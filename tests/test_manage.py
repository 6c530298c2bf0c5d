"""Runs management (#14) through the real CLI over a real SQLite store: notes and tags shown and
filtered, archive hiding runs from ps and compare (and --undo bringing them back), delete removing
rows and folders (never following links), refusing runs in progress and runs whose outputs others
reuse, and never giving a deleted run's number again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fbtui.gitstate import GitState
from fbtui.lab import Lab
from fbtui.store import Store
from fbtui.store.annotations import RUN_TABLES

PROJECT = "digits-mlp"


class Runs:
    """Runs recorded as a launch and the supervisor record them, without containers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = Store(Lab(root).store_path)
        self.commit = self.store.record_commit(GitState(is_repo=True, sha="a" * 40, branch="main"))

    def add(self, lr: float, acc: float, *, status: str = "succeeded", seed: int = 0, eval_of: int | None = None,
            cached_from: int | None = None) -> int:
        s = self.store
        rid = s.create_run(PROJECT, config=f"optim: {{lr: {lr}}}\nseed: {seed}\n", stages=["train", "evaluate"],
                           params={"optim.lr": lr, "seed": seed}, ablation="sweep", variant=f"lr={lr}", seed=seed,
                           commit_id=self.commit)
        folder = self.root / ".fb" / "runs" / str(rid)
        (folder / "train" / "out").mkdir(parents=True)
        (folder / "train.log").write_text("2026-01-01T00:00:00Z hello\n")
        (folder / "train" / "out" / "model.pt").write_bytes(b"weights")
        out = str(folder / "train" / "out")
        if cached_from is not None:  # a cache hit: its outputs are the source stage's folder
            src = s.stage(cached_from, "train")
            s.copy_stage_results(src, rid, "train")
            s.update_stage(rid, "train", status="cached", cached_from=src["id"], out=src["out"])
        else:
            s.update_stage(rid, "train", status="succeeded", out=out, host="local")
            s.add_artifact(rid, "train", "model.pt", 7, "ab" * 32)
        s.update_run(rid, status=status, eval_of=eval_of, folder=f".fb/runs/{rid}")
        if status == "succeeded":
            s.add_metrics(rid, [("eval/accuracy", 0, acc, 0.0)], stage="evaluate")
            s.add_evaluation(rid, "evaluate", "fp1", {"accuracy": acc})
        return rid


@pytest.fixture
def runs(lab_dir: Path) -> Runs:
    r = Runs(lab_dir)
    yield r
    r.store.close()


def ok(proc):  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def ps_ids(fbtui, *args: str) -> list[int]:  # type: ignore[no-untyped-def]
    return [r["run"] for r in json.loads(ok(fbtui("ps", "--all", "--json", *args)).stdout)]


def compared(fbtui, *args: str) -> set[int]:  # type: ignore[no-untyped-def]
    t = json.loads(ok(fbtui("compare", PROJECT, "--ablation", "sweep", "--suite", "fp1", "--json", *args)).stdout)
    return {i for row in t["rows"] for i in row["runs"]} | {x["run"] for x in t["set_apart"]}


def test_note_and_tags_are_shown_and_filterable(runs: Runs, fbtui) -> None:  # type: ignore[no-untyped-def]
    a, b = runs.add(0.001, 0.95), runs.add(0.1, 0.80)
    assert ok(fbtui("note", str(a), "lr", "too", "low?")).stdout.strip() == f"run #{a}: note set"
    assert ok(fbtui("note", str(a))).stdout.strip() == "lr too low?"
    assert "run #1 tags: baseline, paper" in ok(fbtui("tag", str(a), "baseline", "paper")).stdout
    assert json.loads(ok(fbtui("tag", str(a), "paper", "--remove", "--json")).stdout) == {"run": a,
                                                                                         "tags": ["baseline"]}
    shown = ok(fbtui("show", str(a))).stdout
    assert "tags     baseline" in shown and "note     lr too low?" in shown
    rec = json.loads(ok(fbtui("show", str(a), "--json")).stdout)
    assert rec["tags"] == ["baseline"] and rec["note"] == "lr too low?" and rec["archived_at"] is None
    assert ps_ids(fbtui, "--where", "tag=baseline") == [a]
    assert ps_ids(fbtui, "--where", "note~LOW") == [a]
    assert ps_ids(fbtui, "--where", "lr<0.01 and eval/accuracy>0.9") == [a]
    assert ps_ids(fbtui, "--where", "not tag=baseline") == [b]
    assert f"#{a}" in ok(fbtui("ps", "--where", "tag=baseline")).stdout  # the table marks the tag
    assert "[baseline]" in ok(fbtui("ps", "--where", "tag=baseline")).stdout
    assert compared(fbtui, "--where", "tag=baseline") == {a}
    ok(fbtui("note", str(a), ""))
    assert "has no note" in ok(fbtui("note", str(a))).stdout
    bad = fbtui("tag", str(a), "two words")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "a tag is one word" in bad.stderr
    err = fbtui("ps", "--where", "lr<")
    assert err.returncode == 2 and "at column 4" in err.stderr and "Traceback" not in err.stderr
    assert fbtui("note", "99", "x").stderr.startswith("fbtui: error: no run 99")


def test_archive_hides_from_ps_and_compare_and_undo_brings_back(runs: Runs, fbtui) -> None:  # type: ignore[no-untyped-def]
    a, b = runs.add(0.001, 0.95), runs.add(0.1, 0.80)
    again = runs.add(0.1, 0.81, eval_of=b)  # b's hidden re-evaluation follows it
    assert compared(fbtui) == {a, b}
    assert "archived: #2" in ok(fbtui("archive", str(b))).stdout
    assert runs.store.run(again)["archived_at"] is not None
    assert ps_ids(fbtui) == [a] and compared(fbtui) == {a}
    assert [r["id"] for r in runs.store.runs()] == [a]
    assert ps_ids(fbtui, "--archived") == [b, a]
    assert ps_ids(fbtui, "--where", "archived") == [b]
    assert compared(fbtui, "--archived") == {a, b}
    shown = ok(fbtui("show", str(b))).stdout
    assert "archived " in shown and f"fbtui archive {b} --undo" in shown
    assert "already archived: #2" in ok(fbtui("archive", str(b))).stdout
    assert "brought back: #2" in ok(fbtui("archive", str(b), "--undo")).stdout
    assert ps_ids(fbtui) == [b, a] and compared(fbtui) == {a, b} and runs.store.run(again)["archived_at"] is None
    assert json.loads(ok(fbtui("archive", "--where", "lr>0.01", "--json")).stdout)["changed"] == [b]
    running = runs.add(0.5, 0.5, status="running")
    refused = fbtui("archive", str(running))
    assert refused.returncode == 1 and f"cannot archive runs in progress: #{running} (running)" in refused.stderr
    busy = runs.add(0.5, 0.5, status="queued", eval_of=a)  # a's re-evaluation would leave ps while it runs
    refused = fbtui("archive", str(a))
    assert refused.returncode == 1 and f"#{busy} (queued, a re-evaluation of #{a})" in refused.stderr


def test_archived_runs_leave_eval_stale_and_suite_leaderboards(runs: Runs) -> None:
    a, b = runs.add(0.001, 0.95), runs.add(0.1, 0.80)
    for rid in (a, b):
        runs.store.add_evaluation(rid, "evaluate", "fp-suite", {"accuracy": 0.5}, suite="robust")
    runs.store.set_archived([b])
    # what fbtui eval --stale judges (records.suite.stale_runs reads this comparison)
    assert [r["run"] for r in runs.store.compare(PROJECT, params=[], metrics=[]).rows] == [a]
    assert [e["run_id"] for e in runs.store.suite_evaluations("robust")] == [a]
    assert runs.store.suite_counts() == {"robust": 1}
    runs.store.set_archived([b], False)
    assert [e["run_id"] for e in runs.store.suite_evaluations("robust")] == [a, b]


def test_delete_lists_then_removes_rows_and_folder_never_following_links(runs: Runs, fbtui, tmp_path: Path
                                                                          ) -> None:  # type: ignore[no-untyped-def]
    keep, gone = runs.add(0.001, 0.95), runs.add(0.1, 0.80)
    again = runs.add(0.1, 0.81, eval_of=gone)
    runs.store.add_tags(gone, ["x"])
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.bin").write_bytes(b"keep me")
    folder = runs.root / ".fb" / "runs" / str(gone)
    os.symlink(outside, folder / "train" / "out" / "link")  # a stage output that is a link
    listed = fbtui("delete", str(gone))
    assert listed.returncode == 1 and "would delete:" in listed.stdout and str(folder) in listed.stdout
    assert f"re-evaluations #{again}" in listed.stdout and "--yes" in listed.stderr
    assert folder.is_dir() and runs.store.run(gone)  # nothing went
    assert f"deleted #{gone} #{again}" in ok(fbtui("delete", str(gone), "--yes")).stdout
    assert not folder.exists() and not (runs.root / ".fb" / "runs" / str(again)).exists()
    assert (outside / "data.bin").read_bytes() == b"keep me"  # the link went, not what it named
    for table in (*RUN_TABLES, "runs"):
        key = "id" if table == "runs" else "run_id"
        assert runs.store.query(f"SELECT COUNT(*) AS n FROM {table} WHERE {key} IN (?, ?)", (gone, again))[0]["n"] == 0
    assert runs.store.final_metrics(keep) and (runs.root / ".fb" / "runs" / str(keep)).is_dir()
    assert "was deleted on" in fbtui("show", str(gone)).stderr
    # a deleted number is never given again, even the highest
    assert runs.add(0.2, 0.9) == again + 1


def test_delete_refuses_runs_in_progress(runs: Runs, fbtui) -> None:  # type: ignore[no-untyped-def]
    done, busy = runs.add(0.001, 0.95), runs.add(0.1, 0.80, status="running")
    r = fbtui("delete", str(done), str(busy), "--yes")
    assert r.returncode == 1 and f"cannot delete runs in progress: #{busy} (running)" in r.stderr
    assert f"fbtui cancel {busy}" in r.stderr and "Traceback" not in r.stderr
    assert runs.store.run(done) and (runs.root / ".fb" / "runs" / str(done)).is_dir()  # nothing went
    source = runs.add(0.3, 0.9)
    runs.add(0.3, 0.9, status="queued", eval_of=source)  # its re-evaluation is in progress
    r = fbtui("delete", str(source), "--yes")
    assert r.returncode == 1 and f"a re-evaluation of #{source}" in r.stderr


def test_delete_keeps_what_cache_hits_of_other_runs_need(runs: Runs, fbtui) -> None:  # type: ignore[no-untyped-def]
    """Rule: a run whose stage outputs another run reuses is refused (the hit's files live in its
    folder); both together may go, and archiving hides it with nothing broken."""
    source = runs.add(0.001, 0.95)
    hit = runs.add(0.001, 0.95, seed=1, cached_from=source)
    r = fbtui("delete", str(source), "--yes")
    assert r.returncode == 1 and f"run #{source} holds stage outputs that #{hit} reuse" in r.stderr
    assert f"fbtui delete {source} {hit}" in r.stderr and f"fbtui archive {source}" in r.stderr
    model = runs.root / ".fb" / "runs" / str(source) / "train" / "out" / "model.pt"
    assert model.read_bytes() == b"weights" and runs.store.stage(hit, "train")["out"] == str(model.parent)
    ok(fbtui("delete", str(hit), "--yes"))  # the hit alone may go: the source is its own
    assert model.is_file() and runs.store.run(source)
    hit2 = runs.add(0.001, 0.95, seed=2, cached_from=source)
    ok(fbtui("delete", str(source), str(hit2), "--yes"))
    assert not model.exists()


def test_delete_and_archive_take_a_filter(runs: Runs, fbtui) -> None:  # type: ignore[no-untyped-def]
    a, b, c = runs.add(0.001, 0.95), runs.add(0.1, 0.5, status="failed"), runs.add(0.2, 0.6, status="failed")
    assert "archived: #2 #3" in ok(fbtui("archive", "--where", "status=failed")).stdout
    assert ok(fbtui("delete", "--where", "archived and lr>0.15", "--yes")).stdout.startswith(f"deleted #{c}")
    assert ps_ids(fbtui, "--archived") == [b, a]
    none = ok(fbtui("delete", "--where", "tag=nothing", "--yes"))
    assert "no run matches the filter" in none.stdout


def test_every_new_verb_has_help_that_fits_80_columns(fbtui) -> None:  # type: ignore[no-untyped-def]
    for verb in ("note", "tag", "archive", "delete", "ps", "compare"):
        text = ok(fbtui(verb, "--help", env={"COLUMNS": "80"})).stdout
        assert "examples:" in text and max(len(line) for line in text.splitlines()) <= 80, verb
