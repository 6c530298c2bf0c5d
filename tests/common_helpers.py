"""Helpers for the tests of `common/`: resolved configs from the real lab, and stage runs in this
process (fast) or as `python -m common.stages.X` processes (as the runner starts them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
STAGES = ("prepare", "train", "evaluate")
NONDETERMINISTIC = {"train/samples_per_s"}  # wall-clock throughput: never the same twice


def resolved(project: str, *overrides: str, seed: int | None = None) -> dict[str, Any]:
    """The project's config as `fbtui config PROJECT --no-origins -o ...` prints it."""
    from unittest import mock

    from fbtui.config.resolve import resolve
    from fbtui.lab import Lab

    lab = Lab(REPO)
    # a component a test's own project folder registers is not one the bundled project knows
    with mock.patch("fbtui.config.stage_checks.check_components"):
        return resolve(lab, lab.project(project), overrides=list(overrides), seed=seed).config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def stage_args(config: Path, out: Path, inputs: dict[str, Path] | None = None,
               project: str | Path | None = None) -> list[str]:
    args = ["--config", str(config), "--out", str(out)]
    for stage, d in (inputs or {}).items():
        args += ["--in", f"{stage}={d}"]
    if project is not None:
        args += ["--project-dir", str(REPO / "projects" / project if isinstance(project, str) else project)]
    return args


def run_stage(stage: str, config: Path, out: Path, inputs: dict[str, Path] | None = None,
              project: str | Path | None = None) -> int:
    """One stage in this process, through the same main() as `python -m common.stages.<stage>`."""
    import importlib

    from common.stages._run import main

    module = importlib.import_module(f"common.stages.{stage}")
    return main(stage, module.run, stage_args(config, out, inputs, project))


def run_stage_process(stage: str, config: Path, out: Path, inputs: dict[str, Path] | None = None,
                      project: str | Path | None = None, env: dict[str, str] | None = None,
                      ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", f"common.stages.{stage}", *stage_args(config, out, inputs, project)],
                          cwd=REPO, env=process_env(env), capture_output=True, text=True, timeout=300)


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FB_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def run_pipeline(root: Path, project: str, config: dict[str, Any], *, in_process: bool = True) -> dict[str, Path]:
    """prepare -> train -> evaluate under root/<stage>; returns the stage folders."""
    cfg_path = write_config(root / "config.yaml", config)
    dirs = {s: root / s for s in STAGES}
    for i, stage in enumerate(STAGES):
        inputs = {s: dirs[s] for s in STAGES[:i]}
        if in_process:
            assert run_stage(stage, cfg_path, dirs[stage], inputs, project) == 0, stage
        else:
            proc = run_stage_process(stage, cfg_path, dirs[stage], inputs, project)
            assert proc.returncode == 0, f"{stage}:\n{proc.stderr[-3000:]}"
    return dirs


def metric_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def comparable(out: Path) -> list[tuple[int, str, Any]]:
    """Every metric line but its time and throughput: what must be bit-identical between runs."""
    return [(m["step"], m["key"], m["value"]) for m in metric_lines(out) if m["key"] not in NONDETERMINISTIC]
