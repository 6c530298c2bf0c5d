"""The Slurm backend (#15) against a real one-node cluster (scripts/slurm: Debian's slurm-wlm and
munge, slurmctld and slurmd on loopback ports) whose node runs stages through this machine's
engine: runs and ablations on the cluster, an ablation across local Docker and Slurm, a supervisor
SIGKILLed mid-job, a job cancelled from outside, a job over its memory, slurmd stopped mid-job,
and Slurm's pending reason as a queued stage's wait reason."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.pipeline.paths import lock_path
from fbtui.store import Store
from tests.labs import REPO, end_lab, project_lab
from tests.test_lost_hosts import _until
from tests.test_pipeline import TINY, TINY_PY, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.engine]

# TINY (three stages: inputs, a secret as a file, metrics, artifacts, an evaluation) with a memory
# limit on train and an ablation of two variants x two seeds
PROJECT = TINY.replace("    env: [FB_TEST_SECRET]\n",
                       "    env: [FB_TEST_SECRET]\n    resources: {cpus: 1, memory: 256m}\n") + """
ablations:
  pts:
    variants: {few: {tiny.points: 20}, more: {tiny.points: 30}}
    seeds: [0, 1]
"""


@pytest.fixture(scope="session")
def slurm_conf() -> str:
    proc = subprocess.run([str(REPO / "scripts/slurm")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture
def slab(tmp_path: Path, docker_host: str, slurm_conf: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FB_TEST_SECRET", "hunter2-value")
    root = project_lab(tmp_path / "slab", "tiny", {"project.yaml": PROJECT, "tiny.py": TINY_PY})
    shared = tmp_path / "shared"
    shared.mkdir()
    y = root / "lab.yaml"
    y.write_text(y.read_text().replace("hosts:\n", (
        "hosts:\n  cluster:\n    kind: slurm\n    slurm:\n"
        f"      shared: {shared}\n      conf: {slurm_conf}\n      node_env: {{DOCKER_HOST: {docker_host}}}\n"), 1))
    yield root
    end_lab(root, docker_host)
    from fbtui.pipeline.containers import container_name, lab_instance

    prefix = container_name(Lab(root).config.name, lab_instance(root), 0, "")[:-3]
    for line in slurm(slurm_conf, "squeue", "-h", "-o", "%i %j").splitlines():  # no job of this lab stays queued
        if line.split()[-1].startswith(prefix):
            slurm(slurm_conf, "scancel", line.split()[0])
    import docker

    engine = docker.DockerClient(base_url=docker_host)
    for x in engine.containers.list(all=True, filters={"label": "fb.host=cluster"}, ignore_removed=True):
        if x.name.startswith(prefix):  # a node that failed leaves its container to run out: not here
            x.remove(force=True)


def slurm(conf: str, *args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, env={**os.environ, "SLURM_CONF": conf},
                          timeout=30).stdout


def wait_until(check, timeout: float = 180, every: float = 0.2):  # type: ignore[no-untyped-def]
    return _until(check, timeout, every)


def run_json(fbtui, root: Path, *args: str) -> list[int]:  # type: ignore[no-untyped-def]
    proc = fbtui("run", *args, "--json", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["runs"]


def test_a_run_and_an_ablation_on_the_cluster(slab, fbtui):  # type: ignore[no-untyped-def]
    (rid,) = run_json(fbtui, slab, "tiny", "--host", "cluster")
    with Store(Lab(slab).store_path) as s:
        assert wait_for(s, rid, timeout=240)["status"] == "succeeded", s.stages(rid)
        assert [st["host"] for st in s.stages(rid)] == ["cluster"] * 3
        assert all(st["container_id"].isdigit() for st in s.stages(rid))  # the Slurm job ids
        assert [step for step, _, _ in s.metric_history(rid, "train/loss")] == list(range(50))
        assert s.final_metrics(rid)["eval/accuracy"] == 0.5
        arts = s.query("SELECT path FROM artifacts WHERE run_id = ?", (rid,))
        assert {a["path"] for a in arts} == {"data.txt", "model.txt", "eval.json"}
    logs = fbtui("logs", str(rid), "--stage", "train", cwd=slab).stdout.splitlines()
    assert "secret is set: True" in logs  # a secret as a file, never on the shared path
    assert [x for x in logs if x.startswith("log line")] == [f"log line {i}" for i in range(5)]
    shared = next((slab.parent / "shared").iterdir())
    assert not any("hunter2" in p.read_text(errors="replace") for p in shared.rglob("*") if p.is_file())

    ids = run_json(fbtui, slab, "tiny", "--ablation", "pts", "--host", "cluster")
    with Store(Lab(slab).store_path) as s:
        runs = [wait_for(s, r, timeout=400) for r in ids]
        assert [r["status"] for r in runs] == ["succeeded"] * 4, [s.stages(r) for r in ids]
        prepares = sorted(s.stage(r, "prepare")["status"] for r in ids)
        assert prepares == ["cached", "cached", "succeeded", "succeeded"]  # one prepare per variant
        points = {s.run(r)["variant"]: len(s.metric_history(r, "train/loss")) for r in ids}
        assert points == {"few": 20, "more": 30}
    table = fbtui("compare", "tiny", "--ablation", "pts", cwd=slab)
    assert table.returncode == 0 and "few" in table.stdout and "more" in table.stdout, table.stdout


def test_an_ablation_across_local_docker_and_the_cluster(slab, fbtui, docker_host):  # type: ignore[no-untyped-def]
    import docker

    from fbtui.pipeline.capacity import stage_containers

    y = slab / "lab.yaml"  # local takes one train at a time: the rest goes to Slurm
    y.write_text(re.sub(r"(?m)^(  local:\n(?:    .*\n)*?)    slots: \d+", r"\1    slots: 1", y.read_text(), count=1))
    assert Lab(slab).config.hosts["local"].slots == 1
    # One job at a time on the cluster too: a first placement that finds local unreadable (its view
    # timing out under CI load) sends that run to Slurm, and the next ones wait for room on either.
    head = "  cluster:\n    kind: slurm\n"
    y.write_text(y.read_text().replace(head, head + "    slots: 1\n", 1))
    assert Lab(slab).config.hosts["cluster"].slots == 1
    # The other test worker's stages share this engine and count against local's CPUs (as another
    # checkout's would), and with local full every run rightly goes to Slurm (CI saw {'cluster'}):
    # small requests, and a start once no stage holds the engine.
    p = slab / "projects" / "tiny" / "project.yaml"
    p.write_text(p.read_text().replace("resources: {cpus: 1,", "resources: {cpus: 0.25,"))
    assert "cpus: 0.25" in p.read_text()
    engine = docker.DockerClient(base_url=docker_host)
    wait_until(lambda: not stage_containers(engine), timeout=300, every=0.5)
    ids = run_json(fbtui, slab, "tiny", "--ablation", "pts", "--host", "local,cluster", "-o", "tiny.stage_sleep=2")
    with Store(Lab(slab).store_path) as s:
        runs = [wait_for(s, r, timeout=400) for r in ids]
        assert [r["status"] for r in runs] == ["succeeded"] * 4, [s.stages(r) for r in ids]
        hosts = {r["host"] for r in runs}
        assert hosts == {"local", "cluster"}, hosts
        for r in ids:  # a run's stages stay where its outputs are
            assert {st["host"] for st in s.stages(r)} == {s.run(r)["host"]}
            assert len(s.metric_history(r, "train/loss")) == {"few": 20, "more": 30}[s.run(r)["variant"]]


def test_supervisor_sigkilled_mid_job_loses_and_doubles_nothing(slab, fbtui):  # type: ignore[no-untyped-def]
    points = 300
    (rid,) = run_json(fbtui, slab, "tiny", "--host", "cluster", "--detach", "-o", f"tiny.points={points}",
                      "-o", "tiny.sleep=0.02")
    lab = Lab(slab)
    with Store(lab.store_path) as s:
        wait_until(lambda: s.metric_count(rid) >= 40, timeout=240, every=0.05)
        assert s.stage(rid, "train")["status"] == "running"
        os.kill(int(lock_path(lab).read_text()), signal.SIGKILL)  # mid-ingest, mid-log
        time.sleep(1.0)
        assert fbtui("ps", cwd=slab).returncode == 0  # any command starts a supervisor: it finds the job
        assert wait_for(s, rid, timeout=240)["status"] == "succeeded"
        assert [step for step, _, _ in s.metric_history(rid, "train/loss")] == list(range(points))
    lines = fbtui("logs", str(rid), "--stage", "train", cwd=slab).stdout.splitlines()
    assert [x for x in lines if x.startswith("log line")] == [f"log line {i}" for i in range(5)]


def test_scancel_from_outside_is_named_and_leaves_no_container(slab, fbtui, slurm_conf, docker_client):  # type: ignore[no-untyped-def]
    (rid,) = run_json(fbtui, slab, "tiny", "--host", "cluster", "--detach", "-o", "tiny.stage_sleep=120")
    with Store(Lab(slab).store_path) as s:
        wait_until(lambda: s.stage(rid, "prepare")["status"] == "running")
        time.sleep(2)  # its container is up
        job = s.stage(rid, "prepare")["container_id"]
        slurm(slurm_conf, "scancel", job)
        run = wait_for(s, rid, timeout=120)
        st = s.stage(rid, "prepare")
    assert run["status"] == "failed" and st["status"] == "failed"
    assert f"Slurm job {job}" in st["reason"] and "cancelled outside fbtui" in st["reason"], st["reason"]
    assert "CANCELLED" in st["reason"]
    from fbtui.pipeline.containers import container_name, lab_instance

    name = container_name(Lab(slab).config.name, lab_instance(slab), rid, "prepare")
    wait_until(lambda: not [x for x in docker_client.containers.list(all=True, filters={"name": name})
                            if x.name == name], 90)  # the job stopped and removed it


def test_a_job_over_its_memory_and_a_failing_command_are_named(slab, fbtui):  # type: ignore[no-untyped-def]
    (oom,) = run_json(fbtui, slab, "tiny", "--host", "cluster", "-o", "tiny.alloc_mb=600")
    (bad,) = run_json(fbtui, slab, "tiny", "--host", "cluster", "-o", "tiny.fail=3")
    with Store(Lab(slab).store_path) as s:
        assert wait_for(s, oom, timeout=240)["status"] == "failed"
        assert wait_for(s, bad, timeout=240)["status"] == "failed"
        st, failed = s.stage(oom, "train"), s.stage(bad, "train")
    assert st["status"] == "failed" and st["reason"].startswith("killed: out of memory (memory limit 256 MiB)"), st
    assert failed["reason"].startswith("exit code 3; last lines:"), failed["reason"]
    assert "Traceback: something broke" in failed["reason"] and failed["exit_code"] == 3  # the log's tail


def test_a_queued_stage_shows_slurms_pending_reason(slab, fbtui):  # type: ignore[no-untyped-def]
    first = run_json(fbtui, slab, "tiny", "--host", "cluster", "--detach", "-o", "tiny.stage_sleep=30")[0]
    with Store(Lab(slab).store_path) as s:
        wait_until(lambda: s.stage(first, "prepare")["status"] == "running")
        # every CPU of the node for one stage: it waits behind the first
        y = slab / "projects/tiny/project.yaml"
        y.write_text(y.read_text().replace("    reads: [tiny]\n",
                                           f"    reads: [tiny]\n    resources: {{cpus: {os.cpu_count()}}}\n"))
        second = run_json(fbtui, slab, "tiny", "--host", "cluster", "--detach", "-o", "tiny.points=3")[0]
        reason = wait_until(lambda: "Resources" in (s.run(second)["reason"] or "") and s.run(second)["reason"])
        assert reason.startswith("waiting in Slurm's queue: Resources (job "), reason
        assert s.run(second)["status"] == "queued" and s.stage(second, "prepare")["status"] == "pending"
        assert fbtui("cancel", str(second), cwd=slab).returncode == 0
        assert wait_for(s, second, timeout=60)["status"] == "cancelled"
        job = s.stage(second, "prepare")["container_id"]
        fbtui("cancel", str(first), cwd=slab)
        wait_for(s, first, timeout=120)
    assert job not in slurm_queue(slab)


def slurm_queue(slab: Path) -> str:
    conf = Lab(slab).config.hosts["cluster"].slurm.conf  # type: ignore[union-attr]
    return slurm(conf, "squeue", "-h", "-o", "%i")


def test_slurmd_stopped_mid_job_is_named_node_fail(slab, fbtui, slurm_conf):  # type: ignore[no-untyped-def]
    """slurmctld sets the node DOWN SlurmdTimeout (30 s in scripts/slurm) after its last answer and
    ends its jobs as NODE_FAIL; fbtui names it on its next poll (0.5 s): about 30-60 s in all."""
    pid_file = Path(slurm_conf).parent / "slurmd.pid"
    (rid,) = run_json(fbtui, slab, "tiny", "--host", "cluster", "--detach", "-o", "tiny.stage_sleep=150")
    try:
        with Store(Lab(slab).store_path) as s:
            wait_until(lambda: s.stage(rid, "prepare")["status"] == "running")
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            stopped = time.monotonic()
            run = wait_for(s, rid, timeout=240)
            named_after = time.monotonic() - stopped
            st = s.stage(rid, "prepare")
        assert run["status"] == "failed" and "NODE_FAIL" in st["reason"], st["reason"]
        print(f"slurmd stopped: the stage was named failed (NODE_FAIL) {named_after:.0f} s later")
    finally:
        subprocess.run([str(REPO / "scripts/slurm")], capture_output=True, timeout=300)


def test_a_controller_that_does_not_answer_is_named_and_the_run_waits(slab, fbtui, slurm_conf, tmp_path):  # type: ignore[no-untyped-def]
    dead = tmp_path / "dead.conf"  # the same cluster, asked on a port where no controller listens
    dead.write_text(re.sub(r"(?m)^SlurmctldPort=\d+", "SlurmctldPort=6999", Path(slurm_conf).read_text()))
    y = slab / "lab.yaml"
    good = y.read_text()
    y.write_text(good.replace(f"conf: {slurm_conf}", f"conf: {dead}"))
    doctor = fbtui("doctor", cwd=slab)
    line = next(x for x in doctor.stdout.splitlines() if "host cluster" in x)
    assert "controller" in line or "did not answer" in line, doctor.stdout
    assert "scripts/slurm" in doctor.stdout  # the fix
    (rid,) = run_json(fbtui, slab, "tiny", "--host", "cluster")
    with Store(Lab(slab).store_path) as s:
        reason = wait_until(lambda: "has not answered" in (s.run(rid)["reason"] or "") and s.run(rid)["reason"], 120)
        assert reason.startswith("waiting: cluster has not answered for "), reason
        assert s.run(rid)["status"] == "queued"
        y.write_text(good)  # the controller answers again (the supervisor reloads lab.yaml): nothing was lost
        assert wait_for(s, rid, timeout=300)["status"] == "succeeded", s.stages(rid)
        assert len(s.metric_history(rid, "train/loss")) == 50


@pytest.fixture(scope="session")
def registry() -> str:
    proc = subprocess.run([str(REPO / "scripts/registry")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_nodes_run_the_image_pushed_to_the_lab_registry(slab, fbtui, registry):  # type: ignore[no-untyped-def]
    y = slab / "lab.yaml"
    y.write_text(f"registry: {registry}\n" + y.read_text())
    (rid,) = run_json(fbtui, slab, "tiny", "--host", "cluster", "-o", "tiny.points=5")
    with Store(Lab(slab).store_path) as s:
        assert wait_for(s, rid, timeout=300)["status"] == "succeeded", s.stages(rid)
        image = s.run(rid)["image"]
        ref = s.query("SELECT registry_ref FROM images WHERE tag = ? AND host = 'cluster'", (image,))[0]["registry_ref"]
    assert ref and ref.startswith(f"{registry}/"), ref
    job = next((slab.parent / "shared").rglob("train/job.sh")).read_text()
    assert f"pull -q {ref} " in job and f" {ref} python3 /fb/project/tiny.py train" in job, job  # pulled, then run
