"""Scheduling on a real engine: stages placed by CPU request beside everything fb runs there,
threads that follow the request, truthful queued/running states with reasons, first come first
served, and other checkouts' containers counted, marked and never touched.

These run on a second engine on loopback that no other checkout uses (capped to 2 CPUs in
lab.yaml), so the capacity they reason about is exactly known even on a shared machine."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.pipeline.logs import read_spool
from fbtui.pipeline.supervisor import run_folder
from fbtui.store import Store
from tests.conftest import make_git_lab
from tests.labs import end_lab
from tests.test_pipeline import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.engine]

WORK_PY = textwrap.dedent('''
    import os, sys, time
    import yaml
    import torch
    from common.device import configure_threads
    cfg = yaml.safe_load(open("/fb/config.yaml"))["sched"]
    n = configure_threads(0)
    print(f"start {time.time():.3f}", flush=True)
    print(f"threads {os.environ.get('OMP_NUM_THREADS')} {torch.get_num_threads()} {n}", flush=True)
    time.sleep(cfg["sleep"])
    open("/fb/out/done.txt", "w").write("ok")
    print(f"end {time.time():.3f}", flush=True)
''')


def project(cpus: float, seeds: int = 2) -> str:
    return textwrap.dedent(f"""
        environment: torch-cpu
        config:
          sched: {{sleep: 3.0}}
        pipeline:
          - name: work
            command: [python3, /fb/project/work.py]
            artifacts: [done.txt]
            resources: {{cpus: {cpus}, memory: 256m}}
            cache: false
        ablations:
          seeds:
            variants: {{one: {{}}}}
            seeds: {list(range(seeds))}
    """)


@pytest.fixture
def slab(tmp_path: Path, remote_daemon, docker_host: str) -> Path:  # type: ignore[no-untyped-def]
    root = make_git_lab(tmp_path / "slab")
    y = root / "lab.yaml"
    y.write_text(y.read_text().replace("hosts:\n", f"hosts:\n  iso:\n    url: {remote_daemon.url}\n    insecure: true\n"
                                       "    cpus: 2\n", 1))
    for name, cpus, seeds in (("sched", 1, 2), ("big", 2, 1), ("ten", 1, 10)):
        (root / f"projects/{name}").mkdir()
        (root / f"projects/{name}/project.yaml").write_text(project(cpus, seeds))
        (root / f"projects/{name}/work.py").write_text(WORK_PY)
    yield root
    end_lab(root, docker_host)


def run_ids(fbtui, root: Path, *args: str) -> list[int]:  # type: ignore[no-untyped-def]
    proc = fbtui("run", *args, "--host", "iso", "--json", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["runs"]


def log(root: Path, rid: int) -> dict[str, str]:
    lines, _ = read_spool(run_folder(Lab(root), rid) / "work.log")
    return {w[0]: " ".join(w[1:]) for w in (x.split() for x in lines) if w}


def test_stages_share_a_host_by_cpus_and_a_bigger_one_waits_with_its_reason(slab, fbtui):  # type: ignore[no-untyped-def]
    pair = run_ids(fbtui, slab, "sched", "--ablation", "seeds")
    (big,) = run_ids(fbtui, slab, "big", "-o", "sched.sleep=0.5")
    with Store(Lab(slab).store_path) as s:
        deadline = time.monotonic() + 120
        while s.stage(pair[1], "work")["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # a tick or two: the big run has been considered
        run = s.run(big)
        assert run["status"] == "queued" and run["started_at"] is None  # waiting is not running
        ps = {r["run"]: r for r in json.loads(fbtui("ps", "--json", cwd=slab).stdout)}
        why = ps[big]["reason"]
        assert why.startswith("waiting for 2 CPUs on iso (2 of 2 in use: ") and f"#{pair[0]} work" in why, why
        assert ps[big]["seconds"] is None and ps[big]["queued_seconds"] > 0
        for rid in (*pair, big):
            assert wait_for(s, rid, timeout=180)["status"] == "succeeded"
        t = {rid: log(slab, rid) for rid in (*pair, big)}
        starts = {rid: float(t[rid]["start"]) for rid in t}
        ends = {rid: float(t[rid]["end"]) for rid in t}
        assert max(starts[r] for r in pair) < min(ends[r] for r in pair)  # side by side, one CPU each
        assert starts[big] >= max(ends[r] for r in pair) - 0.05  # two CPUs only once both were free
        assert t[pair[0]]["threads"] == "1 1 1" and t[big]["threads"] == "2 2 2"  # threads follow the request
        run = s.run(big)
        assert run["started_at"] >= max(ends[r] for r in pair) - 1  # its time counts from its container
        assert run["started_at"] - run["created_at"] > 2  # the wait is queue time
        assert s.run(pair[0])["host"] == "iso"


def test_first_come_first_served_over_ten_runs(slab, fbtui):  # type: ignore[no-untyped-def]
    ids = run_ids(fbtui, slab, "ten", "--ablation", "seeds", "-o", "sched.sleep=0.5")
    assert len(ids) == 10
    with Store(Lab(slab).store_path) as s:
        for rid in ids:
            assert wait_for(s, rid, timeout=300)["status"] == "succeeded"
        started = {rid: s.stage(rid, "work")["started_at"] for rid in ids}
    assert sorted(ids, key=lambda r: (started[r], r)) == ids


def test_other_checkouts_containers_are_counted_marked_and_never_touched(slab, fbtui, remote_daemon):  # type: ignore[no-untyped-def]
    import docker

    proc = fbtui("build", "sched", "--host", "iso", "--json", cwd=slab)
    assert proc.returncode == 0, proc.stderr
    image = json.loads(proc.stdout)["tag"]
    engine = docker.DockerClient(base_url=remote_daemon.url)
    foreign = engine.containers.run(image, ["sleep", "300"], detach=True, network_mode="none", labels={
        "fb.lab": "other-lab", "fb.stage": "train", "fb.run": "7", "fb.checkout": "0000beef", "fb.user": "alice",
        "fb.cpus": "2", "fb.memory": "0"})
    adhoc = engine.containers.run(image, ["sleep", "300"], detach=True, network_mode="none")  # image labels only
    try:
        (rid,) = run_ids(fbtui, slab, "sched", "--seed", "0")
        with Store(Lab(slab).store_path) as s:
            deadline = time.monotonic() + 60
            while not (s.run(rid)["reason"] or "").startswith("waiting") and time.monotonic() < deadline:
                time.sleep(0.2)
            reason = s.run(rid)["reason"]
            assert s.run(rid)["status"] == "queued"
            assert reason == "waiting for 1 CPU on iso (2 of 2 in use: #7 train of alice's checkout 0000beef)"
            hosts = {r["host"]: r for r in json.loads(fbtui("hosts", "--json", cwd=slab).stdout)}
            (c,) = hosts["iso"]["containers"]  # the ad-hoc `docker run` of an fb image is not a stage
            assert c["foreign"] and c["owner"] == "alice's checkout 0000beef" and c["run"] == "7"
            assert hosts["iso"]["cpus_in_use"] == 2
            text = fbtui("hosts", cwd=slab).stdout
            assert "#7 train of alice's checkout 0000beef" in text and "other checkouts'" in text
            foreign.remove(force=True)
            assert wait_for(s, rid, timeout=120)["status"] == "succeeded"
        adhoc.reload()
        assert adhoc.status == "running"  # never touched
    finally:
        for x in (foreign, adhoc):
            try:
                x.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_requests_no_host_can_serve_are_refused_at_launch(tmp_path, docker_host, fbtui):  # type: ignore[no-untyped-def]
    root = make_git_lab(tmp_path / "blab")
    y = root / "projects/digits-cnn/project.yaml"
    text = y.read_text()
    cases = [("{cpus: 0}", "pipeline[0].resources.cpus: input should be greater than 0, got 0"),
             ("{cpus: 1, memory: -1g}", "pipeline[0].resources.memory: expected a size"),
             ("{cpus: 1, memory: 0}", "pipeline[0].resources.memory: expected a size above 0"),
             ("{cpus: 4096}", "pipeline[0].resources: stage prepare asks for 4096 CPUs, which no host can ever "
                              "give: 4096 CPUs asked, local has "),
             ("{cpus: 1, gpus: 1}", "stage prepare asks for 1 GPU, but host local has no GPU runtime")]
    for resources, message in cases:
        y.write_text(text + f"pipeline:\n  - name: prepare\n    artifacts: [data.npz]\n    resources: {resources}\n")
        proc = fbtui("run", "digits-cnn", cwd=root)
        assert proc.returncode in (1, 2) and message in proc.stderr, (resources, proc.stderr)
        assert proc.stderr.startswith("fbtui: error: projects/digits-cnn/project.yaml:") or "GPU" in message
        assert "Traceback" not in proc.stderr
    if (root / ".fb/fb.db").exists():
        with Store(Lab(root).store_path) as s:
            assert not s.runs()  # nothing queued


def test_gpu_stages_get_free_ids_one_each_and_the_rest_wait(slab, remote_daemon, monkeypatch):  # type: ignore[no-untyped-def]
    """No GPU here: the host lists GPU ids in lab.yaml, and doubles stand in for the NVIDIA runtime
    check and for the container start (which needs a real GPU); placement and the records are real."""
    from fbtui.pipeline import containers as ct
    from fbtui.pipeline import supervisor as sv
    from fbtui.pipeline.placement import Request, Waiting

    y = slab / "lab.yaml"
    y.write_text(y.read_text().replace("    cpus: 2\n", "    cpus: 2\n    gpus: [0, 1]\n", 1))
    started: list[tuple[int, object, dict[str, str]]] = []
    monkeypatch.setattr(ct, "check_gpus", lambda client, host, spec: None)
    monkeypatch.setattr(ct, "create_and_start", lambda client, spec, env: started.append(
        (spec.run_id, spec.gpus, spec.labels)) or f"fake{spec.run_id}")
    lab = Lab(slab)
    work = lab.project("sched").stages[0]
    spec = work.model_copy(update={"resources": work.resources.model_copy(update={"gpus": 1})})
    with Store(lab.store_path) as store:
        ids = [store.create_run("sched", config="sched: {sleep: 0}\n", params={}, stages=["work"], image="img")
               for _ in range(3)]
        for rid in ids:
            store.update_run(rid, requested_host="iso")
            store.set_run_status(rid, "queued")
        sup = sv.Supervisor(lab, store)
        sup.pipelines = {rid: lab.project("sched") for rid in ids}
        waiting = [(Waiting(rid, "work", Request(0.5, 0, 1), ["iso"]), store.run(rid), spec) for rid in ids]
        sup.start_waiting(waiting)
        assert [(rid, gpus) for rid, gpus, _ in started] == [(ids[0], [0]), (ids[1], [1])]
        assert started[0][2]["fb.gpus"] == "0" and started[1][2]["fb.gpus"] == "1"
        assert store.stage(ids[0], "work")["gpus"] == "0" and store.run(ids[0])["status"] == "running"
        third = store.run(ids[2])
        assert third["status"] == "queued" and third["reason"] == "waiting for 1 free GPU on iso (0 free)"
        sup.hosts.close()
