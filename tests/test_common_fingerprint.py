"""The evaluation fingerprint changes with the suite's code, its config or its data, and only then;
any earlier run's checkpoint can be evaluated again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.common_helpers import REPO, resolved, run_stage, run_stage_process, stage_args, write_config

EPOCHS = "train.epochs=1"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prepared dataset and two trained runs (different seeds) on it."""
    root = tmp_path_factory.mktemp("runs")
    cfg = write_config(root / "c.yaml", resolved("digits-mlp", EPOCHS))
    assert run_stage("prepare", cfg, root / "prepare") == 0
    for seed in (0, 1):
        cfg = write_config(root / f"seed{seed}.yaml", resolved("digits-mlp", EPOCHS, seed=seed))
        assert run_stage("train", cfg, root / f"train{seed}", {"prepare": root / "prepare"}) == 0
    return root


def evaluate(runs: Path, out: Path, *overrides: str, train: str = "train0", prepare: Path | None = None,
             project: str | Path = "digits-mlp") -> dict:
    cfg = write_config(out.with_suffix(".yaml"), resolved("digits-mlp", EPOCHS, *overrides))
    inputs = {"prepare": prepare or runs / "prepare", "train": runs / train}
    assert run_stage("evaluate", cfg, out, inputs, project) == 0
    return json.loads((out / "eval.json").read_text())


def test_fingerprint_follows_eval_config_and_data_only(runs: Path, tmp_path: Path) -> None:
    base = evaluate(runs, tmp_path / "base")
    again = evaluate(runs, tmp_path / "again")
    assert again["fingerprint"] == base["fingerprint"] and again["results"] == base["results"]
    # Another run (seed, weights, training settings): same suite, comparable results.
    other = evaluate(runs, tmp_path / "other", "train.epochs=5", "optim.lr=0.01", "seed=7", train="train1")
    assert other["fingerprint"] == base["fingerprint"] and other["results"] != base["results"]
    # The eval config section.
    assert evaluate(runs, tmp_path / "bins", "eval.ece_bins=10")["fingerprint"] != base["fingerprint"]
    # The evaluation data: another split of the same dataset.
    cfg = write_config(tmp_path / "p1.yaml", resolved("digits-mlp", "data.split_seed=1"))
    assert run_stage("prepare", cfg, tmp_path / "prepare1") == 0
    moved = evaluate(runs, tmp_path / "data", prepare=tmp_path / "prepare1")
    assert moved["fingerprint"] != base["fingerprint"]


def test_a_project_evaluator_is_fingerprinted_by_its_code(runs: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    code = ("from common.evaluation import ClassificationSuite\nfrom common.registry import register\n\n\n"
            "@register('evaluator', 'strict', replace=True)\nclass Strict(ClassificationSuite):\n    pass\n")
    (project / "suite.py").write_text(code)
    first = evaluate(runs, tmp_path / "a", "eval.suite=strict", project=project)
    assert first["evaluator"]["origin"] == "project"
    assert evaluate(runs, tmp_path / "b", "eval.suite=strict", project=project)["fingerprint"] == first["fingerprint"]
    (project / "suite.py").write_text(code + "    # a changed suite\n")
    assert evaluate(runs, tmp_path / "c", "eval.suite=strict", project=project)["fingerprint"] != first["fingerprint"]


def test_reevaluates_an_earlier_runs_checkpoint(runs: Path, tmp_path: Path) -> None:
    """A run that only left checkpoints (interrupted, or from before model.pt) is evaluated from its latest."""
    old = tmp_path / "old-train"
    shutil.copytree(runs / "train0" / "checkpoints", old / "checkpoints")
    cfg = write_config(tmp_path / "e.yaml", resolved("digits-mlp", EPOCHS))
    assert run_stage("evaluate", cfg, tmp_path / "ev", {"prepare": runs / "prepare", "train": old}) == 0
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    base = evaluate(runs, tmp_path / "base")
    assert ev["checkpoint"]["path"].endswith(".pt") and "checkpoints" in ev["checkpoint"]["path"]
    assert ev["fingerprint"] == base["fingerprint"] and ev["results"] == base["results"]


@pytest.mark.slow
def test_fingerprint_follows_the_suites_code_in_common(runs: Path, tmp_path: Path) -> None:
    """A copy of common/ where the evaluation code (or, as a control, the trainer) is edited."""
    cfg = write_config(tmp_path / "e.yaml", resolved("digits-mlp", EPOCHS))

    def fingerprint(edit: str | None, name: str) -> str:
        lab = tmp_path / name
        shutil.copytree(REPO / "common", lab / "common", ignore=shutil.ignore_patterns("__pycache__"))
        if edit:
            with (lab / "common" / edit).open("a") as f:
                f.write("\n# an edit\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FB_")}
        env["PYTHONPATH"] = str(lab)
        args = stage_args(cfg, lab / "out", {"prepare": runs / "prepare", "train": runs / "train0"})
        proc = subprocess.run([sys.executable, "-m", "common.stages.evaluate", *args], cwd=lab, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"{lab}/common/evaluation.py" in (lab / "out/eval.json").read_text()  # really the copy
        return json.loads((lab / "out/eval.json").read_text())["fingerprint"]

    same = fingerprint(None, "same")
    assert fingerprint("trainer.py", "trainer") == same
    assert fingerprint("evaluation.py", "evaluation") != same
    assert fingerprint("metrics.py", "metrics") != same


def test_an_evaluation_itemises_what_its_fingerprint_covers(runs: Path, tmp_path: Path) -> None:
    """covers: the suite's files by lab path with their hashes, its config, and the data's digest
    with what prepared it: what fbtui checks against the working tree."""
    import hashlib

    ev = evaluate(runs, tmp_path / "ev")
    covers = ev["covers"]
    assert set(covers["code"]) == {"common/evaluation.py", "common/metrics.py"}
    for path, sha in covers["code"].items():
        assert sha == hashlib.sha256((REPO / path).read_bytes()).hexdigest()
    assert covers["config"]["eval"]["suite"] == "classification"
    # prepared as in a container (python -m: the stage's module is __main__ there)
    proc = run_stage_process("prepare", write_config(tmp_path / "p.yaml", resolved("digits-mlp", EPOCHS)),
                             tmp_path / "prepare")
    assert proc.returncode == 0, proc.stderr
    info = json.loads((tmp_path / "prepare" / "data.json").read_text())
    ev = evaluate(runs, tmp_path / "ev-p", prepare=tmp_path / "prepare")
    covers = ev["covers"]
    assert covers["data"]["digest"] == info["sha256_test"]
    made = covers["data"]["made_by"]
    assert made == info["made_by"] and made["config"]["data"]["name"] == "digits"
    assert {"common/stages/prepare.py", "common/data/prepared.py", "common/data/datasets.py",
            "common/data/transforms.py"} == set(made["code"])
    # a prepare of before (no made_by): the data is still covered by its digest
    old = tmp_path / "old-prepare"
    shutil.copytree(runs / "prepare", old)
    (old / "data.json").unlink()
    ev = evaluate(runs, tmp_path / "ev2", prepare=old)
    assert ev["covers"]["data"] == {"digest": covers["data"]["digest"], "split": "test"}
