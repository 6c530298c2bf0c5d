"""The issue #4 GPU check, as one prepared script for a machine with CUDA (no Docker needed).

    python3 bench/gpu_check.py [--out DIR]

1. prepare digits; train digits-mlp on CUDA with precision auto (bf16 where supported), killed
   with SIGKILL after its first checkpoint, then resumed to the end; every step must appear once;
2. evaluate it on CUDA;
3. the same training on CPU for a samples/s comparison;
4. bench/train.py on CUDA (common trainer against a plain loop);
5. with two or more GPUs (#15): the same training under torchrun, one process per GPU (NCCL),
   killed after its first checkpoint and resumed with the same world size: every step once, and
   its samples/s against one GPU's.
Prints one summary; exits non-zero if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch
    import yaml

    from tests.common_helpers import resolved

    assert torch.cuda.is_available(), "no CUDA device"
    root = Path(args.out or tempfile.mkdtemp(prefix="fb-gpu-"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cfg = resolved("digits-mlp", "train.epochs=20", "data.batch_size=32", "train.checkpoint_every=50",
                   "data.pin_memory=true")
    results: dict[str, object] = {"gpu": torch.cuda.get_device_name(0), "bf16": torch.cuda.is_bf16_supported()}

    def stage(name: str, config: dict, out: Path, inputs: dict[str, Path]) -> subprocess.Popen[str]:
        path = out.with_suffix(".yaml")
        path.write_text(yaml.safe_dump(config))
        cmd = [sys.executable, "-m", f"common.stages.{name}", "--config", str(path), "--out", str(out),
               "--project-dir", str(REPO / "projects/digits-mlp")]
        for s, d in inputs.items():
            cmd += ["--in", f"{s}={d}"]
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(p: subprocess.Popen[str]) -> str:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
        return out

    finish(stage("prepare", cfg, root / "prepare", {}))
    inputs = {"prepare": root / "prepare"}
    gpu = {**cfg, "train": {**cfg["train"], "device": "cuda", "precision": "auto"}}
    p = stage("train", gpu, root / "train", inputs)
    while not list((root / "train" / "checkpoints").glob("step-*.pt")):
        assert p.poll() is None, p.communicate()[0]
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = sorted((root / "train" / "checkpoints").glob("step-*.pt"))[-1].name
    log = finish(stage("train", gpu, root / "train", inputs))
    lines = [json.loads(line) for line in (root / "train" / "metrics.jsonl").read_text().splitlines()]
    keys = [(m["step"], m["key"]) for m in lines]
    results["resume"] = {"killed_after": killed_at, "resumed": "resumed at step" in log,
                         "each_step_once": len(keys) == len(set(keys)), "log": log.strip().splitlines()}
    sps = [m["value"] for m in lines if m["key"] == "train/samples_per_s"]
    results["cuda_samples_per_s_median"] = sorted(sps)[len(sps) // 2]
    ev = finish(stage("evaluate", gpu, root / "evaluate", {**inputs, "train": root / "train"}))
    results["evaluate"] = ev.strip()
    cpu = {**cfg, "train": {**cfg["train"], "device": "cpu"}}
    finish(stage("train", cpu, root / "train-cpu", inputs))
    sps = [json.loads(line)["value"] for line in (root / "train-cpu" / "metrics.jsonl").read_text().splitlines()
           if '"train/samples_per_s"' in line]
    results["cpu_samples_per_s_median"] = sorted(sps)[len(sps) // 2]
    bench = subprocess.run([sys.executable, "bench/train.py", "--device", "cuda", "--repeat", "3"], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=300)
    results["bench_cuda"] = bench.stdout.strip().splitlines() or bench.stderr[-2000:]
    n = torch.cuda.device_count()
    if n >= 2:
        results["multi_gpu"] = multi_gpu(n, gpu, root, inputs, env)
    else:
        results["multi_gpu"] = f"skipped: {n} GPU (the multi-GPU path needs two or more)"
    print(json.dumps(results, indent=2))
    ok = results["resume"]["resumed"] and results["resume"]["each_step_once"]  # type: ignore[index]
    if isinstance(results["multi_gpu"], dict):
        ok = ok and results["multi_gpu"]["resumed"] and results["multi_gpu"]["each_step_once"]
    return 0 if ok else 1


def multi_gpu(n: int, cfg: dict, root: Path, inputs: dict[str, Path], env: dict[str, str]) -> dict[str, object]:
    """torchrun --nproc_per_node=N of common's train stage (DDP over NCCL), killed after its first
    checkpoint and resumed with the same world size."""
    import yaml

    out = root / "train-ddp"
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "common.stages.train", "--config", str(path), "--out", str(out),
           "--project-dir", str(REPO / "projects/digits-mlp")]
    for s, d in inputs.items():
        cmd += ["--in", f"{s}={d}"]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)

    p = start()
    while not list((out / "checkpoints").glob("step-*.pt")):
        assert p.poll() is None, p.communicate()[0]
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL)  # torchrun and every rank
    p.wait()
    again = start()
    log, _ = again.communicate(timeout=600)
    assert again.returncode == 0, log
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keys = [(m["step"], m["key"]) for m in lines]
    sps = [m["value"] for m in lines if m["key"] == "train/samples_per_s"]
    return {"gpus": n, "resumed": "resumed at step" in log, "each_step_once": len(keys) == len(set(keys)),
            "samples_per_s_median": sorted(sps)[len(sps) // 2] if sps else None,
            "final": {m["key"]: m["value"] for m in lines if m["key"].startswith("val/")}}


if __name__ == "__main__":
    sys.exit(main())
