"""`fbtui logs --grep` (#14, item 11): every run's spooled logs searched, newest run first."""

from __future__ import annotations

import json
from pathlib import Path

from fbtui.lab import Lab
from fbtui.pipeline.paths import run_folder
from fbtui.store import Store


def make_runs(lab_dir: Path) -> None:
    lab = Lab(lab_dir)
    lab.store_path.parent.mkdir(parents=True, exist_ok=True)
    with Store(lab.store_path) as s:
        for project, lines in (("digits-mlp", ["epoch 1 loss 0.5", "CUDA out of memory"]),
                               ("digits-cnn", ["epoch 1 loss nan", "done"]),
                               ("digits-mlp", ["all fine", "Out Of Memory again"])):
            rid = s.create_run(project, config="{}", params={}, stages=["prepare", "train"])
            folder = run_folder(lab, rid)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "prepare.log").write_text("2026-11-27T10:00:00.000000000Z prepared\n")
            (folder / "train.log").write_text("".join(f"2026-11-27T10:00:0{i}.000000000Z {x}\n"
                                                      for i, x in enumerate(lines, 1)))


def test_grep_finds_matches_newest_first_with_run_stage_and_line(lab_dir, fbtui) -> None:  # type: ignore[no-untyped-def]
    make_runs(lab_dir)
    proc = fbtui("logs", "--grep", "out of memory", "-i")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["#3 train:2: Out Of Memory again", "#1 train:2: CUDA out of memory"]
    assert "2 matches in 2 runs" in proc.stderr
    only = json.loads(fbtui("logs", "--grep", "loss", "--project", "digits-cnn", "--json").stdout)
    assert [(m["run"], m["stage"], m["line"], m["text"]) for m in only] == [(2, "train", 1, "epoch 1 loss nan")]
    assert only[0]["t"] == "2026-11-27T10:00:01.000000000Z"
    assert fbtui("logs", "--grep", "prepared", "--limit", "1").stdout.splitlines() == ["#3 prepare:1: prepared"]
    assert fbtui("logs", "1", "--grep", "loss").stdout.splitlines() == ["#1 train:1: epoch 1 loss 0.5"]
    assert fbtui("logs", "--grep", "(", "--fixed").returncode == 1  # plain text: no match, no error


def test_grep_bad_input_is_one_line(lab_dir, fbtui) -> None:  # type: ignore[no-untyped-def]
    make_runs(lab_dir)
    for args, rc, says in ((["--grep", "step ("], 2, "not a valid regular expression"),
                           (["--grep", "x", "--project", "nope"], 1, "unknown project 'nope'"),
                           (["--grep", "x", "-f"], 2, "leave out -f"),
                           (["--grep", "zzz"], 1, "0 matches in 0 runs"),
                           ([], 2, "name a run"),
                           (["1", "-i"], 2, "go with --grep")):
        proc = fbtui("logs", *args)
        assert proc.returncode == rc and says in proc.stderr and "Traceback" not in proc.stderr, (args, proc)
