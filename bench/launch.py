"""Stage launch to its first log line, against `docker run` of the same image and command.

    .venv/bin/python bench/launch.py [--repeat 10] [--slurm]

Target (issue #5): fbtui's launch <= 1.2x `docker run`. Both measured here, in one run.
--slurm (issue #15): a stage as a Slurm job on the one-node cluster of scripts/slurm (sbatch, the
scheduler, the job script starting the container through the node's engine) from submit to the
first line in its log on the shared path, against `docker run` in the same run. No target: the
figure says what Slurm adds (its scheduling pass, the job's start, the CLI calls of the script).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fbtui.config.models import HostConfig, StageSpec  # noqa: E402
from fbtui.engine import client as engine_client  # noqa: E402
from fbtui.engine import local_url  # noqa: E402
from fbtui.images.service import ensure_project_image  # noqa: E402
from fbtui.lab import Lab  # noqa: E402
from fbtui.pipeline import containers as ct  # noqa: E402

COMMAND = ["sh", "-c", "echo first line; sleep 2"]


def first_line_via_fbtui(client, image: str, out: Path, i: int) -> float:  # type: ignore[no-untyped-def]
    spec = ct.StageSpecOnHost(lab="bench", run_id=900000 + i, project="bench",
                              stage=StageSpec(name="launch", command=COMMAND), image=image, host_name="local",
                              host=HostConfig(), config_yaml="{}\n", out=str(out / str(i)))
    t0 = time.perf_counter()
    cid = ct.create_and_start(client, spec, {})
    stream = client.api.logs(cid, stream=True, follow=True)
    for _ in stream:
        break
    elapsed = time.perf_counter() - t0
    client.api.remove_container(cid, force=True)
    return elapsed


def first_line_via_docker_run(image: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(["docker", "-H", local_url(), "run", "--rm", "--init", "--network", "none", image,
                             *COMMAND], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.kill()
    proc.wait()
    return elapsed


def first_line_via_slurm(conf: str, image: str, out: Path, i: int) -> float:
    import os

    from fbtui.backends.base import Submission
    from fbtui.backends.slurm import SlurmBackend
    from fbtui.backends.slurm_job import NodeJob, script
    from fbtui.config.slurm_settings import SlurmSettings

    b = SlurmBackend("bench", SlurmSettings(shared=str(out), conf=conf,
                                            node_env={"DOCKER_HOST": os.environ.get("DOCKER_HOST", local_url())}))
    folder = out / f"s{i}"
    (folder / "out").mkdir(parents=True)
    (folder / "config.yaml").write_text("{}\n")
    job = NodeJob(900000 + i, "bench", "launch", f"fb-bench-launch-{os.getpid()}-{i}", folder, image, COMMAND,
                  node_env=b.s.node_env)
    t0 = time.perf_counter()
    handle = b.submit(Submission(job.name, folder, script(job), cpus=1))
    log = folder / "log"
    while not (log.exists() and b"\n" in log.read_bytes()):
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    b.cancel(handle)
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--slurm", action="store_true", help="Slurm submit -> first log line vs docker run")
    args = ap.parse_args()
    if args.slurm:
        slurm_main(args.repeat)
        return
    lab = Lab.find(str(ROOT))
    image = ensure_project_image(lab, "digits-mlp").tag
    client = engine_client(HostConfig())
    out = Path(tempfile.mkdtemp(prefix="fb-launch-"))
    try:
        ours, theirs = [], []
        for i in range(args.repeat):  # interleaved, so drift hits both alike
            ours.append(first_line_via_fbtui(client, image, out, i))
            theirs.append(first_line_via_docker_run(image))
        # `docker run` leaves the killed container to --rm; wait until it is gone.
        time.sleep(2.5)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"launch to first log line, median of {args.repeat} ({image}):")
    print(f"  fbtui stage (create, config in, start, follow)  {a * 1000:7.0f} ms")
    print(f"  docker run                                      {b * 1000:7.0f} ms")
    print(f"  ratio                                           {a / b:7.2f}x   (target <= 1.2x)")


def slurm_main(repeat: int) -> None:
    conf = subprocess.run([str(ROOT / "scripts/slurm")], capture_output=True, text=True, check=True).stdout.split()[-1]
    lab = Lab.find(str(ROOT))
    image = ensure_project_image(lab, "digits-mlp").tag
    out = Path(tempfile.mkdtemp(prefix="fb-launch-slurm-"))
    try:
        ours, theirs = [], []
        for i in range(repeat):
            ours.append(first_line_via_slurm(conf, image, out, i))
            theirs.append(first_line_via_docker_run(image))
        time.sleep(3)  # the cancelled jobs stop their containers
    finally:
        shutil.rmtree(out, ignore_errors=True)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"launch to first log line, median of {repeat} ({image}):")
    print(f"  Slurm job (sbatch, schedule, job script, container)  {a * 1000:7.0f} ms")
    print(f"  docker run                                           {b * 1000:7.0f} ms")
    print(f"  ratio                                                {a / b:7.2f}x")


if __name__ == "__main__":
    main()
