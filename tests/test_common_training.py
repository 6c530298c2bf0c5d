"""Training: determinism, resume after a kill, and the loop's options, through the train stage."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from common import checkpoint
from tests.common_helpers import (
    REPO,
    comparable,
    metric_lines,
    process_env,
    resolved,
    run_stage,
    stage_args,
    write_config,
)


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    cfg = write_config(root / "c.yaml", resolved("digits-mlp"))
    assert run_stage("prepare", cfg, root / "prepare") == 0
    return root / "prepare"


def train(tmp: Path, name: str, prepared_dir: Path, *overrides: str, project: str = "digits-mlp",
          seed: int | None = None) -> Path:
    cfg = write_config(tmp / f"{name}.yaml", resolved(project, *overrides, seed=seed))
    out = tmp / name
    assert run_stage("train", cfg, out, {"prepare": prepared_dir}, project) == 0
    return out


FAST = ("train.epochs=3", "train.log_every=3", "train.checkpoint_every=7")


def test_same_seed_is_bit_identical_and_another_seed_is_not(tmp_path: Path, prepared_dir: Path) -> None:
    a = train(tmp_path, "a", prepared_dir, *FAST)
    b = train(tmp_path, "b", prepared_dir, *FAST)
    c = train(tmp_path, "c", prepared_dir, *FAST, seed=1)
    assert comparable(a) == comparable(b)
    wa, wb = torch.load(a / "model.pt")["model"], torch.load(b / "model.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    steps = {(s, k) for s, k, _ in comparable(a)}
    assert steps == {(s, k) for s, k, _ in comparable(c)}  # same schedule of metrics ...
    assert comparable(a) != comparable(c)  # ... different values


def test_resume_continues_exactly_and_writes_each_step_once(tmp_path: Path, prepared_dir: Path) -> None:
    """The state a kill leaves behind: a checkpoint part-way through an epoch, and metric lines
    (and newer checkpoints' absence) past it. Resuming must end exactly as the full run did."""
    full = train(tmp_path, "full", prepared_dir, *FAST, "train.keep_checkpoints=0", "model.dropout=0.2")
    steps = [s for s, _ in checkpoint.list_checkpoints(full)]
    assert steps[:3] == [7, 14, 21] and steps[-1] == 60  # 20 steps an epoch; the final one
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    shutil.copy2(full / "checkpoints" / "step-00000021.pt", killed / "checkpoints")  # mid-epoch 2
    # Lines up to step 30 were written after that checkpoint: the resumed run writes them again.
    lines = (full / "metrics.jsonl").read_text().splitlines(keepends=True)
    (killed / "metrics.jsonl").write_text("".join(m for m in lines if json.loads(m)["step"] <= 30))
    resumed = train(tmp_path, "killed", prepared_dir, *FAST, "train.keep_checkpoints=0", "model.dropout=0.2")
    assert resumed == killed
    assert comparable(killed) == comparable(full)
    wf, wk = torch.load(full / "model.pt")["model"], torch.load(killed / "model.pt")["model"]
    assert all(torch.equal(wf[k], wk[k]) for k in wf)


def test_a_finished_run_resumes_to_the_same_result(tmp_path: Path, prepared_dir: Path) -> None:
    out = train(tmp_path, "run", prepared_dir, "train.epochs=1")
    before = comparable(out)
    train(tmp_path, "run", prepared_dir, "train.epochs=1")
    assert comparable(out) == before


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path: Path, prepared_dir: Path) -> None:
    overrides = ("train.epochs=4", "train.log_every=5", "train.checkpoint_every=20", "data.batch_size=16",
                 "model.dropout=0.1")
    cfg = write_config(tmp_path / "c.yaml", resolved("digits-mlp", *overrides))
    args = stage_args(cfg, tmp_path / "killed", {"prepare": prepared_dir}, "digits-mlp")
    cmd = [sys.executable, "-m", "common.stages.train", *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.list_checkpoints(tmp_path / "killed"):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)  # let it write metric lines past the checkpoint, which resume must drop
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "model.pt").exists(), "the run finished before the kill"
    # Restart in its own process, as the runner would, and an uninterrupted reference in this one.
    again = subprocess.run(cmd, cwd=REPO, env=process_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resumed at step" in again.stdout
    reference = train(tmp_path, "reference", prepared_dir, *overrides)
    assert comparable(tmp_path / "killed") == comparable(reference)
    keys = [(m["step"], m["key"]) for m in metric_lines(tmp_path / "killed")]
    assert len(keys) == len(set(keys))  # every step exactly once


def test_accumulation_clipping_schedules_and_early_stopping(tmp_path: Path, prepared_dir: Path) -> None:
    out = train(tmp_path, "opts", prepared_dir, "train.epochs=40", "train.grad_accum=3", "train.grad_clip=1.0",
                "train.early_stop_patience=2", "schedule.name=cosine", "schedule.warmup_steps=5",
                "optim.lr=0.05", "train.log_every=1", "train.checkpoint_every=0")
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["stopped_early"] and summary["epochs"] < 40
    assert summary["step"] == summary["epochs"] * 7  # ceil(20 batches / 3) steps an epoch
    lrs = [m["value"] for m in metric_lines(out) if m["key"] == "train/lr"]
    # Linear warm-up to optim.lr over 5 steps (the lr after step k is reported at k), then cosine decay.
    assert lrs[:4] == pytest.approx([0.05 * (k + 1) / 5 for k in range(1, 5)])
    assert max(lrs) == pytest.approx(0.05) and lrs[-1] < lrs[5] < 0.05
    val = [m["value"] for m in metric_lines(out) if m["key"] == "val/loss"]
    best = min(val)
    final = torch.load(out / "model.pt")
    assert final["summary"]["best_val_loss"] == pytest.approx(best)
    assert [s for s, _ in checkpoint.list_checkpoints(out)] == [summary["step"]]  # only the final one


def test_step_schedule_and_sgd(tmp_path: Path, prepared_dir: Path) -> None:
    out = train(tmp_path, "sgd", prepared_dir, "train.epochs=2", "optim.name=sgd", "optim.lr=0.1",
                "schedule.name=step", "schedule.step_size=10", "schedule.gamma=0.5", "train.log_every=5")
    lrs = {m["step"]: m["value"] for m in metric_lines(out) if m["key"] == "train/lr"}
    assert lrs[5] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.05) and lrs[25] == pytest.approx(0.025)
    components = json.loads((out / "components.json").read_text())
    assert components["optimizer"]["name"] == "sgd" and components["scheduler"]["name"] == "step"
