"""An 8-run ablation of the digits example on the local host, against the same 8 runs one after
another (each alone, with all the host's CPUs), both measured in this run.

    .venv/bin/python bench/ablation.py [--epochs 10]

Prints each mode's wall time, their ratio (target on a 2-core machine: ablation <= 0.75x the
sequential wall) and training samples/s per run in both modes. The ablation uses the project as
the lab ships it (placement by CPU request: train asks for 1 CPU, threads follow); the sequential
baseline is a copy of the project whose train stage asks for every CPU the engine has.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.labs import make_git_lab  # noqa: E402

EIGHT = """
  eight:
    description: 2 widths x 2 learning rates x 2 seeds
    grid:
      model.hidden: [64, 256]
      optim.lr: [1.0e-3, 3.0e-3]
    seeds: [0, 1]
"""


def fbtui(root: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "fbtui", *args], cwd=root, capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"fbtui {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def wait(root: Path, ids: list[int]) -> None:
    from fbtui.lab import Lab
    from fbtui.store import Store

    with Store(Lab(root).store_path) as s:
        while any(s.run(i)["status"] not in ("succeeded", "failed", "cancelled") for i in ids):
            time.sleep(0.5)
        bad = [i for i in ids if s.run(i)["status"] != "succeeded"]
        if bad:
            raise SystemExit(f"runs {bad} did not succeed: {[s.run(i)['reason'] for i in bad]}")


def samples_per_s(root: Path, ids: list[int]) -> list[float]:
    from fbtui.lab import Lab
    from fbtui.store import Store

    with Store(Lab(root).store_path) as s:
        out = []
        for i in ids:
            hist = [v for _, v, _ in s.metric_history(i, "train/samples_per_s") if v]
            out.append(statistics.median(hist) if hist else float("nan"))
        return out


def engine_cpus() -> int:
    from fbtui.config.models import HostConfig
    from fbtui.engine import client

    return int(client(HostConfig()).info().get("NCPU") or 1)  # the engine `local` means, as fbtui finds it


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fb-bench-ablation-"))
    root = make_git_lab(tmp / "lab")
    try:
        proj = root / "projects/digits-mlp/project.yaml"
        proj.write_text(proj.read_text().replace("ablations:\n", "ablations:" + EIGHT, 1))
        cpus = engine_cpus()
        alone = root / "projects/alone"
        alone.mkdir()
        pipeline = (root / "common/pipeline.yaml").read_text()
        train_line = next(x for x in pipeline.splitlines() if "shm_size" in x)
        solo = pipeline.replace(train_line, f"    resources: {{cpus: {cpus}, memory: 4g, shm_size: 1g}}")
        (alone / "project.yaml").write_text(proj.read_text() + "\n" + solo.split("pipeline:", 1)[0] + "pipeline:"
                                            + solo.split("pipeline:", 1)[1])
        subprocess.run(["git", "-C", str(root), "-c", "user.email=b@e", "-c", "user.name=b", "commit", "-qam",
                        "bench"], check=True)
        subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(root), "-c", "user.email=b@e", "-c", "user.name=b", "commit", "-qm",
                        "alone"], check=True)
        o = ["-o", f"train.epochs={args.epochs}"]
        for project in ("digits-mlp", "alone"):  # images and the shared prepare made before timing
            fbtui(root, "build", project)
        print(f"engine: {cpus} CPUs; 8 runs of digits-mlp, {args.epochs} epochs each", flush=True)

        t0 = time.perf_counter()
        seq_ids = []
        for v in json.loads(fbtui(root, "variants", "digits-mlp", "--ablation", "eight", "--json")):
            for seed in v["seeds"]:
                out = fbtui(root, "run", "alone", "--variant", v["variant"], "--in-ablation", "eight", "--seed",
                            str(seed), "--no-cache", "--json", *o)
                ids = json.loads(out)["runs"]
                wait(root, ids)
                seq_ids += ids
        sequential = time.perf_counter() - t0

        t0 = time.perf_counter()
        ab_ids = json.loads(fbtui(root, "run", "digits-mlp", "--ablation", "eight", "--no-cache", "--json", *o))["runs"]
        wait(root, ab_ids)
        ablation = time.perf_counter() - t0

        seq_rate, ab_rate = samples_per_s(root, seq_ids), samples_per_s(root, ab_ids)
        print(f"sequential, each run alone with {cpus} CPUs: {sequential:6.1f} s wall")
        print(f"ablation, placed by CPU request:          {ablation:6.1f} s wall")
        print(f"ratio ablation / sequential: {ablation / sequential:.2f}   (target <= 0.75)")
        print("train samples/s per run (median over the run):")
        print("  sequential: " + ", ".join(f"{x:,.0f}" for x in seq_rate))
        print("  ablation:   " + ", ".join(f"{x:,.0f}" for x in ab_rate))
    finally:
        try:
            from fbtui.lab import Lab
            from fbtui.pipeline.supervisor import lock_path

            pid = int(lock_path(Lab(root)).read_text() or 0)
            if pid:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, ImportError):
            pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
