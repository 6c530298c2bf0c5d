"""The stage entrypoints end to end, for both example projects: artifacts, provenance, overrides,
paths from arguments or the environment, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.common_helpers import (
    REPO,
    STAGES,
    metric_lines,
    process_env,
    resolved,
    run_pipeline,
    run_stage,
    run_stage_process,
    write_config,
)

FAST = ("train.epochs=2", "train.log_every=5", "train.checkpoint_every=10")


def declared_artifacts() -> dict[str, list[str]]:
    spec = yaml.safe_load((REPO / "common/pipeline.yaml").read_text())
    return {s["name"]: s["artifacts"] for s in spec["pipeline"]}


def check_pipeline(dirs: dict[str, Path], model_name: str) -> dict[str, dict]:
    for stage, artifacts in declared_artifacts().items():
        for name in artifacts:
            assert (dirs[stage] / name).is_file(), f"{stage} did not write {name}"
    assert list((dirs["train"] / "checkpoints").glob("step-*.pt"))
    components = json.loads((dirs["train"] / "components.json").read_text())
    assert set(components) == {"dataset", "transform", "model", "optimizer", "scheduler", "loss", "trainer",
                               "evaluator"}
    assert components["model"]["name"] == model_name
    assert all(len(c["sha256"]) == 64 and c["module"] for c in components.values())
    ev = json.loads((dirs["evaluate"] / "eval.json").read_text())
    assert ev["suite"] == "classification" and len(ev["fingerprint"]) == 64
    assert {"accuracy", "macro_f1", "loss", "ece", "per_class"} <= set(ev["results"])
    assert set(ev["results"]["per_class"]) == {str(d) for d in range(10)}
    confusion = json.loads((dirs["evaluate"] / "confusion.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == ev["results"]["n"] == 360
    keys = {m["key"] for m in metric_lines(dirs["train"])}
    assert {"train/loss", "train/samples_per_s", "train/lr", "val/loss", "val/accuracy", "model/parameters"} <= keys
    return {"components": components, "eval": ev}


def test_both_projects_in_process(tmp_path: Path) -> None:
    mlp = check_pipeline(run_pipeline(tmp_path / "mlp", "digits-mlp", resolved("digits-mlp", *FAST)), "mlp")
    cnn = check_pipeline(run_pipeline(tmp_path / "cnn", "digits-cnn", resolved("digits-cnn", *FAST)), "digits-cnn")
    # The CNN's own class is used: it comes from the project, with its own parameter count.
    assert mlp["components"]["model"]["origin"] == "common"
    assert cnn["components"]["model"]["origin"] == "project"
    assert cnn["components"]["model"]["file"].endswith("projects/digits-cnn/model.py")
    assert cnn["components"]["model"]["parameters"] != mlp["components"]["model"]["parameters"]
    assert cnn["components"]["optimizer"] == mlp["components"]["optimizer"]  # inherited, identical source
    # Same suite, same config, same data: the two projects' results are comparable.
    assert cnn["eval"]["fingerprint"] == mlp["eval"]["fingerprint"]
    assert mlp["eval"]["results"]["accuracy"] > 0.8 and cnn["eval"]["results"]["accuracy"] > 0.5


@pytest.mark.slow
def test_entrypoints_as_processes(tmp_path: Path) -> None:
    # digits-cnn's entrypoints run as processes in containers (tests/test_suites.py, test_examples.py)
    check_pipeline(run_pipeline(tmp_path, "digits-mlp", resolved("digits-mlp", *FAST), in_process=False), "mlp")


def test_paths_from_the_environment(tmp_path: Path) -> None:
    """FB_CONFIG, FB_OUT, FB_IN (one folder per stage), FB_PROJECT_DIR instead of arguments."""
    from common.stages import prepare, train
    from common.stages._run import main

    cfg = write_config(tmp_path / "c.yaml", resolved("digits-cnn", "train.epochs=1"))
    env = {"FB_CONFIG": str(cfg), "FB_IN": str(tmp_path / "in"), "FB_PROJECT_DIR": str(REPO / "projects/digits-cnn")}
    with pytest.MonkeyPatch.context() as m:
        for k, v in env.items():
            m.setenv(k, v)
        m.setenv("FB_OUT", str(tmp_path / "in" / "prepare"))
        assert main("prepare", prepare.run, []) == 0
        m.setenv("FB_OUT", str(tmp_path / "train"))
        assert main("train", train.run, []) == 0
    components = json.loads((tmp_path / "train" / "components.json").read_text())
    assert components["model"]["origin"] == "project"


def test_bad_input_fails_with_one_actionable_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "ok.yaml", resolved("digits-mlp", "train.epochs=1"))
    assert run_stage("prepare", cfg, tmp_path / "prepare") == 0
    capsys.readouterr()

    def fails(config: dict, stage: str = "train") -> str:
        path = write_config(tmp_path / "bad.yaml", config)
        rc = run_stage(stage, path, tmp_path / f"bad-{stage}", {"prepare": tmp_path / "prepare"})
        err = capsys.readouterr().err
        assert rc != 0 and err.count("\n") == 1, err
        return err.strip()

    if not torch.cuda.is_available():
        assert fails(resolved("digits-mlp", "train.device=cuda")) == (
            "train: error: train.device: cuda was requested but no CUDA device is available "
            "(use device: auto or cpu, or give the stage a GPU)")
    assert "model.name: unknown model 'resnet' (registered: " in fails(resolved("digits-mlp", "model.name=resnet"))
    assert "optim.name: unknown optimizer 'lamb' (registered: adam, adamw, sgd)" in fails(
        resolved("digits-mlp", "optim.name=lamb"))
    assert "train.precision: fp16 needs a CUDA device" in fails(
        resolved("digits-mlp", "train.precision=fp16", "train.device=cpu"))
    assert "input of stage 'train' not found" in fails(resolved("digits-mlp"), "evaluate")
    missing = run_stage("train", tmp_path / "nope.yaml", tmp_path / "x")
    assert missing == 2 and "config file" in capsys.readouterr().err


@pytest.mark.slow
def test_error_exit_code_as_a_process(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", resolved("digits-mlp", "data.name=mnist"))
    proc = run_stage_process("prepare", cfg, tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "prepare: error: data.name: unknown dataset 'mnist' (registered: csv, digits, image-folder, synthetic)"]


def test_common_installs_its_subpackages() -> None:
    """`pip install ./common` must ship every package the stages import."""
    found = sorted(str(p.parent.relative_to(REPO)).replace("/", ".") for p in (REPO / "common").rglob("__init__.py")
                   if not {"build", "dist"} & set(p.relative_to(REPO).parts))
    spec = (REPO / "common/pyproject.toml").read_text()
    for pkg in found:
        assert f'"{pkg}"' in spec, f"{pkg} missing from common/pyproject.toml packages"


@pytest.mark.slow
def test_stage_help_runs_as_module() -> None:
    for stage in STAGES:
        proc = subprocess.run([sys.executable, "-m", f"common.stages.{stage}", "--help"], cwd=REPO,
                              env=process_env(), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "--project-dir" in proc.stdout
