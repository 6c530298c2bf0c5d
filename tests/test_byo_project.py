"""Bring your own code (#13) on a real engine, store and git: an argparse training script that
knows nothing of fbtui (tests/byo/train_digits.py: loss lines on stdout, TensorBoard event files
through tensorboardX) becomes a project with `fbtui new --from-script` and project.yaml alone;
and a native project extends the inherited pipeline with a stage of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from fbtui.lab import Lab
from fbtui.pipeline.supervisor import lock_path
from fbtui.store import Store
from tests.labs import end_lab, make_git_lab
from tests.test_eval_service import _cli

pytestmark = [pytest.mark.slow, pytest.mark.engine]
SCRIPT = Path(__file__).parent / "byo" / "train_digits.py"
Cli = Callable[..., subprocess.CompletedProcess[str]]


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.email=t@e", "-c", "user.name=t", *args], check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, docker_host: str) -> Iterator[tuple[Path, Cli]]:
    root = make_git_lab(tmp_path_factory.mktemp("byo") / "lab")
    cli = _cli(root)
    proc = cli("new", "byo", "--from-script", str(SCRIPT))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spec = yaml.safe_load((root / "projects/byo/project.yaml").read_text())
    # the scaffold as written, plus an ablation over two of the script's flags
    spec["ablations"]["two"] = {"variants": {"small": {"train.hidden_size": 16, "train.lr": 0.02},
                                             "wide": {"train.hidden_size": 64, "train.lr": 0.005}}}
    (root / "projects/byo/project.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "byo")
    yield root, cli
    end_lab(root, docker_host)


def points(store: Store, run_id: int, key: str) -> list[int]:
    return [r["step"] for r in store.query("SELECT step FROM metrics WHERE run_id = ? AND key = ? ORDER BY step",
                                           (run_id, key))]


def test_the_scaffold_reads_the_scripts_parser(lab: tuple[Path, Cli]) -> None:
    root, _ = lab
    spec = yaml.safe_load((root / "projects/byo/project.yaml").read_text())
    assert spec["inherit"] is False
    assert spec["config"]["train"]["hidden_size"] == 32 and spec["config"]["seed"] == 0
    train = spec["pipeline"][0]
    assert "{flags:train}" in train["command"] and "--seed {seed}" in train["command"]
    assert train["metrics"]["tensorboard"] and train["metrics"]["stdout"]
    assert "tensorboardX" in (root / "projects/byo/requirements.txt").read_text()


def test_flags_reach_the_script_and_both_sources_land_once_with_the_supervisor_killed(
        lab: tuple[Path, Cli]) -> None:
    root, cli = lab
    steps, every = 240, 20
    proc = cli("run", "byo", "-o", f"train.steps={steps}", "-o", f"train.log_every={every}", "-o",
               "train.hidden_size=48", "-o", "train.delay=0.03", "--detach")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = int(proc.stdout.split("queued #")[1].split()[0])
    with Store(Lab(root).store_path) as s:
        deadline = time.monotonic() + 180
        while len(points(s, run_id, "Loss/train")) < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.stage(run_id, "train")["status"] == "running", s.stage(run_id, "train")
        os.kill(int(lock_path(Lab(root)).read_text()), signal.SIGKILL)  # mid-stage, mid-ingest of both
        time.sleep(1.0)
        assert cli("ps").returncode == 0  # any command brings a supervisor back
        while s.run(run_id)["status"] not in ("succeeded", "failed") and time.monotonic() < deadline + 120:
            time.sleep(0.2)
        assert s.run(run_id)["status"] == "succeeded", s.run(run_id)
        assert points(s, run_id, "Loss/train") == list(range(1, steps + 1))  # event files, each step once
        assert points(s, run_id, "Accuracy/val") == list(range(every, steps + 1, every))
        assert points(s, run_id, "train/loss") == list(range(every, steps + 1, every))  # stdout, each once
        assert points(s, run_id, "train/val") == list(range(every, steps + 1, every))
        params = s.params(run_id)
    assert set(params) == {"seed", *(f"train.{k}" for k in yaml.safe_load(
        (root / "projects/byo/project.yaml").read_text())["config"]["train"])}  # only its own keys
    log = cli("logs", str(run_id), "--stage", "train").stdout
    assert "'hidden_size': 48" in log and "'steps': 240" in log  # the config reached the flags
    shown = cli("show", str(run_id)).stdout
    assert "--hidden-size 48" in shown and "--delay 0.03" in shown  # the command as it ran


def test_an_ablation_over_two_flags_compares(lab: tuple[Path, Cli]) -> None:
    _, cli = lab
    proc = cli("run", "byo", "--ablation", "two", "-o", "train.steps=150", "-o", "train.log_every=50")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = json.loads(cli("compare", "byo", "--ablation", "two", "--json").stdout)
    rows = {r["variant"]: r for r in table["rows"]}
    assert set(rows) == {"small", "wide"}
    assert {p for p in table["params"]} >= {"train.hidden_size", "train.lr"}
    for r in rows.values():
        assert r["metrics"]["train/loss"]["mean"] > 0 and r["metrics"]["Accuracy/val"]["mean"] > 0.5


def test_a_wrong_type_of_its_own_config_is_refused_at_launch(lab: tuple[Path, Cli]) -> None:
    _, cli = lab
    proc = cli("run", "byo", "-o", "train.steps=many")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "-o train.steps=many: train.steps: expected an integer, got 'many'" in proc.stderr
    proc = cli("run", "byo", "-o", "model.hidden=3")  # common's keys are not its keys
    assert proc.returncode == 1 and "model.hidden: unknown config key" in proc.stderr


def test_extends_adds_an_export_stage_and_the_inherited_ones_still_run(lab: tuple[Path, Cli]) -> None:
    root, cli = lab
    folder = root / "projects" / "digits-export"
    folder.mkdir()
    (folder / "project.yaml").write_text(
        "environment: torch-cpu\n"
        "config:\n  train: {epochs: 1}\n"
        "pipeline:\n  extends: common\n  stages:\n"
        "    - name: export\n      after: evaluate\n      needs: [train]\n"
        "      command: python3 -c \"import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2])\" "
        "{in.train} {out}/model\n"
        "      artifacts: [model/]\n      resources: {cpus: 1, memory: 1g}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "export")
    proc = cli("run", "digits-export")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = int(proc.stdout.split("queued #")[1].split()[0])
    with Store(Lab(root).store_path) as s:
        assert [(st["name"], st["status"]) for st in s.stages(run_id)] == [
            ("prepare", "succeeded"), ("train", "succeeded"), ("evaluate", "succeeded"), ("export", "succeeded")]
        exported = {a["path"] for a in s.query("SELECT path FROM artifacts WHERE run_id = ? AND stage = 'export'",
                                               (run_id,))}
        assert "model/model.pt" in exported
        assert s.query("SELECT COUNT(*) AS n FROM evaluations WHERE run_id = ?", (run_id,))[0]["n"] == 1


def test_a_stage_with_two_processes_runs_under_torchrun_in_its_container(lab: tuple[Path, Cli]) -> None:
    """#15 item 4 through the real engine: processes: 2 on common's train stage (DDP over gloo)."""
    root, cli = lab
    folder = root / "projects" / "digits-ddp"
    folder.mkdir()
    (folder / "project.yaml").write_text(
        "environment: torch-cpu\nconfig:\n  train: {epochs: 6, log_every: 5}\n"
        "pipeline:\n  extends: common\n  stages:\n    - name: train\n      processes: 2\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "ddp")
    proc = cli("run", "digits-ddp")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "x 2 processes" in proc.stdout
    run_id = int(proc.stdout.split("queued #")[1].split()[0])
    with Store(Lab(root).store_path) as s:
        train = s.stage(run_id, "train")
        assert json.loads(train["command"])[:5] == ["python3", "-m", "torch.distributed.run", "--standalone",
                                                    "--nproc_per_node=2"]
        steps = [r["step"] for r in s.query("SELECT step FROM metrics WHERE run_id = ? AND key = 'train/loss' "
                                            "ORDER BY step", (run_id,))]
        assert steps == list(range(5, 61, 5))  # 10 batches per rank and epoch, each step once
        assert s.final_metrics(run_id)["eval/accuracy"] > 0.85
