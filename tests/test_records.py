"""Records on a real engine, store and git: comparison rows that never mix, show, diff, --resume
and rerun of an older code state."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.conftest import make_git_lab
from tests.labs import end_lab
from tests.test_pipeline import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.engine]

PROJECT = textwrap.dedent("""
    environment: torch-cpu
    config:
      tiny: {points: 10, bonus: 0.0}
    pipeline:
      - name: prepare
        command: [python3, /fb/project/tiny.py, prepare]
        artifacts: [data.txt]
        reads: [tiny]
      - name: train
        command: [python3, /fb/project/tiny.py, train]
        artifacts: [model.txt]
      - name: evaluate
        command: [python3, /fb/project/tiny.py, evaluate]
        artifacts: [eval.json]
    ablations:
      ab:
        grid: {tiny.points: [10, 20]}
        seeds: [0, 1]
        baseline: points=10
""")
# Its accuracy depends on config, seed and CODE_BONUS (so a commit can move the numbers); files in
# the host's `flags` data folder make a cell fail or hang (outside the config, as real flakes are).
TINY_PY = textwrap.dedent('''
    import json, os, sys, time
    import yaml
    CODE_BONUS = 0.0
    stage = sys.argv[1]
    c = yaml.safe_load(open("/fb/config.yaml"))
    cfg, seed = c["tiny"], c["seed"]
    cell = f"{cfg['points']}-{seed}"
    out = "/fb/out"
    if stage == "prepare":
        open(f"{out}/data.txt", "w").write("data\\n")
    elif stage == "train":
        if os.path.exists(f"/fb/data/flags/fail-{cell}"):
            print("flaky failure", flush=True)
            sys.exit(3)
        if os.path.exists(f"/fb/data/flags/hang-{cell}"):
            time.sleep(300)
        with open(f"{out}/metrics.jsonl", "a") as m:
            for step in range(5):
                m.write(json.dumps({"step": step, "key": "train/loss", "value": 1.0 / (step + 1 + seed),
                                    "t": time.time()}) + "\\n")
        open(f"{out}/model.txt", "w").write(cell)
    else:
        acc = cfg["points"] / 100 + seed / 1000 + cfg["bonus"] + CODE_BONUS
        json.dump({"fingerprint": "fp-tiny", "results": {"accuracy": acc}}, open(f"{out}/eval.json", "w"))
        with open(f"{out}/metrics.jsonl", "a") as m:
            m.write(json.dumps({"step": 0, "key": "eval/accuracy", "value": acc, "t": time.time()}) + "\\n")
''')


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.email=t@e", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def rlab(tmp_path: Path, docker_host: str) -> Path:
    root = make_git_lab(tmp_path / "rlab")
    flags = tmp_path / "flags"
    flags.mkdir()
    y = root / "lab.yaml"
    y.write_text(y.read_text().replace("    slots: 2\n", f"    slots: 2\n    data: {{flags: {flags}}}\n", 1))
    (root / "projects/tiny").mkdir()
    (root / "projects/tiny/project.yaml").write_text(PROJECT)
    (root / "projects/tiny/tiny.py").write_text(TINY_PY)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tiny")
    yield root
    end_lab(root, docker_host)


def compare(fbtui, root: Path, *args: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    proc = fbtui("compare", "tiny", "--ablation", "ab", "--json", *args, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def launch(fbtui, root: Path, *args: str) -> list[int]:  # type: ignore[no-untyped-def]
    proc = fbtui("run", "tiny", *args, "--json", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = json.loads(proc.stdout)["runs"]
    with Store(Lab(root).store_path) as s:
        for rid in ids:
            wait_for(s, rid, timeout=180)
    return ids


def test_rows_never_mix_reruns_overrides_or_code_states(rlab, fbtui):  # type: ignore[no-untyped-def]
    first = launch(fbtui, rlab, "--ablation", "ab")
    t = compare(fbtui, rlab)
    assert [(r["name"], r["seeds"], r["partial"]) for r in t["rows"]] == [
        ("points=10", [0, 1], False), ("points=20", [0, 1], False)]
    assert t["rows"][1]["metrics"]["eval/accuracy"]["mean"] == pytest.approx(0.2005)

    again = launch(fbtui, rlab, "--ablation", "ab")  # all cache hits: the same seeds, not new samples
    with Store(Lab(rlab).store_path) as s:
        assert [st["status"] for st in s.stages(again[0])] == ["cached"] * 3
    t = compare(fbtui, rlab)
    assert [len(r["runs"]) for r in t["rows"]] == [2, 2] and t["rows"][0]["runs"] == again[:2]
    assert sorted(i for r in t["rows"] for v in r["repeats"].values() for i in v) == first
    assert t["rows"][1]["metrics"]["eval/accuracy"]["std"] == pytest.approx(0.000707, rel=1e-2)

    (extra,) = launch(fbtui, rlab, "--variant", "points=10", "--seed", "0", "-o", "tiny.bonus=0.5")
    t = compare(fbtui, rlab)
    rows = {r["name"]: r for r in t["rows"]}
    assert set(rows) == {"points=10", "points=20", "points=10 + tiny.bonus=0.5"}
    lone = rows["points=10 + tiny.bonus=0.5"]
    assert lone["runs"] == [extra] and lone["partial"] and lone["missing_seeds"] == [1]
    assert rows["points=10"]["params"]["tiny.bonus"] == 0.0 and lone["params"]["tiny.bonus"] == 0.5
    assert t["best"]["eval/accuracy"] == "points=20"  # the partial row has the highest number, unstarred
    text = fbtui("compare", "tiny", "--ablation", "ab", cwd=rlab).stdout
    assert "1/2 †" in text and "† partial" in text and "repeated runs of a seed" in text

    tiny = rlab / "projects/tiny/tiny.py"
    tiny.write_text(tiny.read_text().replace("CODE_BONUS = 0.0", "CODE_BONUS = 0.25"))
    git(rlab, "commit", "-q", "-am", "bonus")
    newer = launch(fbtui, rlab, "--variant", "points=20")
    t = compare(fbtui, rlab)
    assert [(r["name"], r["runs"]) for r in t["rows"]] == [("points=20", newer)]
    assert t["rows"][0]["metrics"]["eval/accuracy"]["mean"] == pytest.approx(0.4505)
    assert {x["run"] for x in t["set_apart"]} == {*first, *again, extra}
    assert any("older code" in n for n in t["notes"])
    every = compare(fbtui, rlab, "--all-code")
    names = [r["name"] for r in every["rows"]]
    old = git(rlab, "rev-parse", "HEAD~1").strip()[:10]
    assert f"points=10 @{old}" in names and "points=20" in names and len(names) == 4

    # diff and show on runs that differ in config, code and image
    d = json.loads(fbtui("diff", str(first[0]), str(newer[0]), "--json", cwd=rlab).stdout)
    assert {c["key"] for c in d["config"]} == {"tiny.points"}
    assert not d["code"]["same"] and "tiny.py" in d["code"]["stat"] and "+CODE_BONUS = 0.25" in d["code"]["patch"]
    assert [i["layer"] for i in d["images"]] == ["proj"] and d["evaluation"]["same"]
    assert [m["key"] for m in d["metrics"]] == ["eval/accuracy"]
    text = fbtui("diff", str(first[0]), str(newer[0]), cwd=rlab).stdout
    assert "tiny.points" in text and "CODE_BONUS" in text and "proj" in text
    rec = json.loads(fbtui("show", str(newer[0]), "--json", cwd=rlab).stdout)
    assert rec["code"]["sha"] == git(rlab, "rev-parse", "HEAD").strip() and rec["code"]["in_repository"]
    assert [x["layer"] for x in rec["images"]] == ["base", "env", "proj"] and all(x["id"] for x in rec["images"])
    # What each layer holds (pip freeze at build, or when this store first met an image built elsewhere)
    assert all(any(p.startswith("torch==") for p in x["packages"]) for x in rec["images"])
    shown = fbtui("show", str(newer[0]), cwd=rlab).stdout
    assert f"{len(rec['images'][0]['packages'])} packages" in shown and "fbtui images --packages TAG" in shown
    assert rec["stages"][1]["command"] == ["python3", "/fb/project/tiny.py", "train"]
    assert rec["artifacts"][0]["sha256"] and rec["evaluations"][0]["fingerprint"] == "fp-tiny"
    assert rec["origins"]["tiny.points"].startswith("projects/tiny/project.yaml:")
    cached = json.loads(fbtui("show", str(again[0]), "--json", cwd=rlab).stdout)
    # from whichever of the first runs computed it (two may have, side by side: CI saw run 2)
    source = cached["stages"][0]["cached_from"]
    assert source["stage"] == "prepare" and source["run"] in first
    text = fbtui("show", str(extra), cwd=rlab).stdout
    assert "-o tiny.bonus=0.5" in text and "bonus: 0.5" in text and "# -o tiny.bonus=0.5" in text


def test_resume_queues_exactly_the_failed_and_cancelled_cells(rlab, fbtui, tmp_path):  # type: ignore[no-untyped-def]
    flags = tmp_path / "flags"
    (flags / "fail-10-1").write_text("")
    (flags / "hang-20-0").write_text("")
    proc = fbtui("run", "tiny", "--ablation", "ab", "--json", cwd=rlab)
    ids = json.loads(proc.stdout)["runs"]
    cells = {}
    with Store(Lab(rlab).store_path) as s:
        for rid in ids:
            run = s.run(rid)
            cells[(run["variant"], run["seed"])] = rid
        hang = cells[("points=20", 0)]
        deadline = time.monotonic() + 120
        while s.stage(hang, "train")["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert fbtui("cancel", str(hang), cwd=rlab).returncode == 0
        final = {rid: wait_for(s, rid, timeout=180)["status"] for rid in ids}
    assert sorted(final.values()) == ["cancelled", "failed", "succeeded", "succeeded"]
    for f in flags.iterdir():
        f.unlink()
    proc = fbtui("run", "tiny", "--ablation", "ab", "--resume", "--json", cwd=rlab)
    assert proc.returncode == 0, proc.stderr
    resumed = json.loads(proc.stdout)["runs"]
    assert f"run  points=10 seed 1: run #{cells[('points=10', 1)]} failed" in proc.stderr
    assert f"run  points=20 seed 0: run #{hang} cancelled" in proc.stderr
    assert f"skip points=10 seed 0: run #{cells[('points=10', 0)]} succeeded" in proc.stderr
    with Store(Lab(rlab).store_path) as s:
        assert sorted((s.run(r)["variant"], s.run(r)["seed"]) for r in resumed) == [("points=10", 1), ("points=20", 0)]
        assert all(wait_for(s, r, timeout=180)["status"] == "succeeded" for r in resumed)
    proc = fbtui("run", "tiny", "--ablation", "ab", "--resume", cwd=rlab)
    assert proc.returncode == 0 and "nothing to run: all 4 cells succeeded" in proc.stdout
    t = compare(fbtui, rlab)
    assert [(r["name"], r["seeds"], r["partial"]) for r in t["rows"]] == [
        ("points=10", [0, 1], False), ("points=20", [0, 1], False)]


def test_bad_input_is_one_line_and_writes_nothing(rlab, fbtui, lab_dir):  # type: ignore[no-untyped-def]
    for args in (["show", "9"], ["diff", "1", "2"], ["rerun", "9"]):
        proc = fbtui(*args, cwd=lab_dir)
        assert proc.returncode == 1 and proc.stderr.count("\n") <= 2 and "no runs in this lab yet" in proc.stderr
        assert not (lab_dir / ".fb").exists()
    proc = fbtui("compare", "digits-mlp", "--format", "docx", cwd=lab_dir)
    assert proc.returncode == 2 and "invalid choice: 'docx'" in proc.stderr and not (lab_dir / ".fb").exists()
    for args in (["show", "99999999999999999999"], ["logs", "x"], ["cancel", "0"], ["eval", "-1"],
                 ["compare", "digits-mlp", "--digits", "-1"]):
        proc = fbtui(*args, cwd=lab_dir)
        assert proc.returncode == 2 and "expected a" in proc.stderr and "Traceback" not in proc.stderr, args
    for args in (["logs", "1"], ["cancel", "1"], ["eval", "1"]):  # read or change runs: never make a store
        assert fbtui(*args, cwd=lab_dir).returncode == 1 and not (lab_dir / ".fb").exists(), args

    (rid,) = launch(fbtui, rlab, "--variant", "points=10", "--seed", "0")
    for args in (["show", "99"], ["diff", str(rid), "99"], ["rerun", "99"]):
        proc = fbtui(*args, cwd=rlab)
        assert proc.returncode == 1 and f"no run 99 in this lab (runs are #1 to #{rid})" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    out = rlab / "tables"
    out.mkdir()
    bad = [(["--output", str(out)], "is a folder"), (["--output", str(rlab / "nope/x.csv")], "does not exist"),
           (["--output", str(out / "x.docx")], "say the format"), (["--metric", "eval/nope"], "no run here has it"),
           (["--sort", "nope"], "not a column here"), (["--baseline", "nope"], "no such row"),
           (["--format", "csv", "--json"], "pick one")]
    for args, message in bad:
        proc = fbtui("compare", "tiny", *args, cwd=rlab)
        assert proc.returncode in (1, 2) and message in proc.stderr and "Traceback" not in proc.stderr, args
    assert not list(out.iterdir())  # nothing written
    assert fbtui("compare", "tiny", "--output", str(out / "t.tex"), cwd=rlab).returncode == 0
    assert (out / "t.tex").read_text().startswith("% needs \\usepackage{booktabs}")
    proc = fbtui("rerun", str(rid), "-o", "tiny.pionts=3", cwd=rlab)
    assert proc.returncode == 1 and "did you mean 'tiny.points'" in proc.stderr
    # The commit the run was made from disappears (amended, then pruned).
    (rlab / "projects/tiny/README").write_text("notes\n")
    git(rlab, "add", "-A")
    git(rlab, "commit", "-q", "--amend", "-m", "tiny, amended")
    git(rlab, "reflog", "expire", "--expire=now", "--all")
    git(rlab, "gc", "-q", "--prune=now")
    with Store(Lab(rlab).store_path) as s:
        n = len(s.runs())
    proc = fbtui("rerun", str(rid), cwd=rlab)
    assert proc.returncode == 1 and "no longer in the repository" in proc.stderr and "--here" in proc.stderr
    assert "Traceback" not in proc.stderr
    with Store(Lab(rlab).store_path) as s:
        assert len(s.runs()) == n  # nothing queued
    show = fbtui("show", str(rid), cwd=rlab)
    assert show.returncode == 0 and "no longer in the repository" in show.stdout
    proc = fbtui("rerun", str(rid), "--here", "--json", cwd=rlab)
    assert proc.returncode == 0, proc.stderr
    here = json.loads(proc.stdout)["run"]
    diff = fbtui("diff", str(rid), str(here), cwd=rlab)  # what can still be said without the commit
    assert diff.returncode == 0 and "no longer in the repository" in diff.stdout, diff.stdout + diff.stderr


def test_rerun_of_an_older_dirty_state_reproduces_its_cpu_metrics_bit_for_bit(tmp_path, docker_host, fbtui):  # type: ignore[no-untyped-def]
    root = make_git_lab(tmp_path / "dlab")
    try:
        # The run's state: a dirty project.yaml (fewer epochs) and an untracked file in the image.
        yml = root / "projects/digits-mlp/project.yaml"
        yml.write_text(yml.read_text().replace("epochs: 30", "epochs: 2"))
        (root / "projects/digits-mlp/notes.py").write_text("NOTE = 'first'\n")
        proc = fbtui("run", "digits-mlp", "--variant", "hidden=64,lr=1e-3,dropout=0.0", "--seed", "0", "--json",
                     cwd=root)
        assert proc.returncode == 0, proc.stderr
        (rid,) = json.loads(proc.stdout)["runs"]
        with Store(Lab(root).store_path) as s:
            assert wait_for(s, rid, timeout=300)["status"] == "succeeded"
            before = s.run(rid)
        # The tree moves on: the diff is committed and the untracked file changes.
        (root / "projects/digits-mlp/notes.py").write_text("NOTE = 'second'\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "later")
        proc = fbtui("rerun", str(rid), "--json", cwd=root)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert "temporary worktree" in out["code"] and out["image"] == before["image"]
        with Store(Lab(root).store_path) as s:
            again = wait_for(s, out["run"], timeout=300)
            assert again["status"] == "succeeded" and again["commit_id"] == before["commit_id"]
            assert again["rerun_of"] == rid and again["config_hash"] == before["config_hash"]
            assert [st["status"] for st in s.stages(out["run"])] == ["succeeded"] * 3  # ran, not cached
            keys = s.metric_keys(rid)
            assert "train/loss" in keys and "eval/accuracy" in keys
            timing = [k for k in keys if any(w in k for w in ("per_s", "seconds", "time"))]
            for key in sorted(set(keys) - set(timing)):  # everything but wall-clock figures
                a = [(step, v) for step, v, _ in s.metric_history(rid, key)]
                b = [(step, v) for step, v, _ in s.metric_history(out["run"], key)]
                assert a == b, key  # bit for bit: exact float equality, every step
            assert len(set(keys) - set(timing)) >= 4, keys
        worktrees = root / ".git/worktrees"
        assert not worktrees.exists() or not any(worktrees.iterdir())  # the temporary checkout is gone
        t = json.loads(fbtui("compare", "digits-mlp", "--json", "--all-code", cwd=root).stdout)
        (row,) = [r for r in t["rows"] if rid in r["runs"] or out["run"] in r["runs"]]
        assert len(row["runs"]) == 1 and row["repeats"] == {"0": [rid]}  # a rerun of the same seed: one sample
    finally:
        end_lab(root, docker_host)
