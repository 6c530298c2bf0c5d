"""One run across two processes on the CPU (#15, item 4): common's trainer under torchrun runs
DistributedDataParallel with gloo, shards each epoch's batches, reports and checkpoints from rank 0
only, and resumes after a kill with the same world size."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.common_helpers import REPO, process_env, resolved, run_stage, run_stage_process, stage_args, write_config

pytestmark = [pytest.mark.slow]
pytest.importorskip("torch")


def torchrun(n: int, cfg: Path, out: Path, prepare: Path, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                             "-m", "common.stages.train", *stage_args(cfg, out, {"prepare": prepare}, "digits-mlp")],
                            cwd=REPO, env=process_env({"OMP_NUM_THREADS": "1"}), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)  # type: ignore[call-overload]


def metric_lines(out: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x]


@pytest.fixture(scope="module")
def prepare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prepare stage for the module: it reads only the data config, which no test here changes."""
    root = tmp_path_factory.mktemp("dist")
    assert run_stage("prepare", write_config(root / "c.yaml", resolved("digits-mlp")), root / "prepare") == 0
    return root / "prepare"


def accuracy(root: Path, cfg: Path, prepare: Path, train: Path, name: str) -> float:
    assert run_stage("evaluate", cfg, root / name, {"prepare": prepare, "train": train}, "digits-mlp") == 0
    return float(json.loads((root / name / "eval.json").read_text())["results"]["accuracy"])


def test_two_processes_train_as_well_as_one_and_write_each_step_once(tmp_path: Path, prepare: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", resolved("digits-mlp", "train.epochs=12", "train.log_every=5"))
    proc = torchrun(2, cfg, tmp_path / "two", prepare)  # its start-up (imports, rendezvous) overlaps the run of one
    assert run_stage("train", cfg, tmp_path / "one", {"prepare": prepare}, "digits-mlp") == 0
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "x 2 processes" in out
    lines = metric_lines(tmp_path / "two")
    assert max(Counter((x["key"], x["step"]) for x in lines).values()) == 1  # rank 0 alone reports
    steps_one = max(int(x["step"]) for x in metric_lines(tmp_path / "one"))
    steps_two = max(int(x["step"]) for x in lines)
    assert steps_two == 12 * 10 and steps_one == 12 * 20  # each rank: half of each epoch's batches
    one = accuracy(tmp_path, cfg, prepare, tmp_path / "one", "e1")
    two = accuracy(tmp_path, cfg, prepare, tmp_path / "two", "e2")
    assert two >= 0.9 and abs(one - two) <= 0.04, (one, two)  # within the single-process band


def test_a_killed_two_process_run_resumes_and_writes_each_step_once(tmp_path: Path, prepare: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", resolved("digits-mlp", "train.epochs=30", "train.log_every=5",
                                                     "train.checkpoint_every=20"))
    out = tmp_path / "train"
    proc = torchrun(2, cfg, out, prepare, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list((out / "checkpoints").glob("step-*.pt"))[1:]:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks, mid-epoch
    proc.wait()
    assert not (out / "model.pt").exists(), "killed too late: the run had finished"
    again = torchrun(2, cfg, out, prepare)
    text, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and "resumed at step" in text, text[-3000:]
    lines = metric_lines(out)
    assert max(Counter((x["key"], x["step"]) for x in lines).values()) == 1
    assert [x["step"] for x in lines if x["key"] == "train/loss"] == list(range(5, 301, 5))
    assert accuracy(tmp_path, cfg, prepare, out, "e") >= 0.9
    # another world size cannot take this checkpoint's shards: one clear line
    (out / "model.pt").unlink()
    ck = sorted((out / "checkpoints").glob("step-*.pt"))[-1]
    import torch

    state = torch.load(ck, weights_only=False)
    state["loop"]["done"] = False
    torch.save(state, ck)
    # processes: 1 runs the stage's command as it is, without torchrun (StageSpec.run_command)
    one = run_stage_process("train", cfg, out, {"prepare": prepare}, "digits-mlp", env={"OMP_NUM_THREADS": "1"})
    text = one.stdout + one.stderr
    assert one.returncode != 0 and "the checkpoint was written by 2 processes, this run has 1" in text, text[-3000:]
