"""Pipelines against a real engine: stages in containers, the supervisor, failures, reattach, cache."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.pipeline.supervisor import lock_path, run_folder
from fbtui.store import Store
from tests.labs import end_lab, project_lab

pytestmark = [pytest.mark.slow, pytest.mark.engine]

# A tiny three-stage pipeline: plain Python in the project image, seconds per run.
TINY = textwrap.dedent("""
    environment: torch-cpu
    config:
      tiny: {points: 50, sleep: 0.0, fail: 0, alloc_mb: 0, skip_artifact: false, stage_sleep: 0.0}
    pipeline:
      - name: prepare
        command: [python3, /fb/project/tiny.py, prepare]
        artifacts: [data.txt]
        reads: [tiny]
      - name: train
        command: [python3, /fb/project/tiny.py, train]
        artifacts: [model.txt]
        env: [FB_TEST_SECRET]
      - name: evaluate
        command: [python3, /fb/project/tiny.py, evaluate]
        artifacts: [eval.json]
""")
TINY_PY = textwrap.dedent('''
    import json, os, sys, time
    import yaml
    stage = sys.argv[1]
    cfg = yaml.safe_load(open("/fb/config.yaml"))["tiny"]
    print(f"{stage} start {time.time():.3f}", flush=True)
    time.sleep(cfg["stage_sleep"])
    out = "/fb/out"
    if stage == "prepare":
        open(f"{out}/data.txt", "w").write("1 2 3\\n")
    elif stage == "train":
        assert open("/fb/in/prepare/data.txt").read() == "1 2 3\\n"
        path = "/run/secrets/FB_TEST_SECRET"  # secrets are files by default
        secret = open(path).read() if os.path.exists(path) else os.environ.get("FB_TEST_SECRET")
        print("secret is set:", secret == "hunter2-value", flush=True)
        if cfg["alloc_mb"]:
            block = bytearray(cfg["alloc_mb"] * 2**20)
            for i in range(0, len(block), 4096):
                block[i] = 1
        with open(f"{out}/metrics.jsonl", "a") as m:
            for step in range(cfg["points"]):
                point = {"step": step, "key": "train/loss", "value": 1.0 / (step + 1), "t": time.time()}
                m.write(json.dumps(point) + "\\n")
                m.flush()
                if cfg["sleep"]:
                    time.sleep(cfg["sleep"])
        for i in range(5):
            print(f"log line {i}", flush=True)
        if cfg["fail"]:
            print("Traceback: something broke", file=sys.stderr, flush=True)
            sys.exit(cfg["fail"])
        if not cfg["skip_artifact"]:
            open(f"{out}/model.txt", "w").write("weights\\n")
    else:
        report = {"suite": "tiny", "fingerprint": "fp-tiny", "results": {"accuracy": 0.5}}
        json.dump(report, open(f"{out}/eval.json", "w"))
        with open(f"{out}/metrics.jsonl", "a") as m:
            m.write(json.dumps({"step": 0, "key": "eval/accuracy", "value": 0.5, "t": time.time()}) + "\\n")
    print(f"{stage} end {time.time():.3f}", flush=True)
''')


@pytest.fixture
def plab(tmp_path: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FB_TEST_SECRET", "hunter2-value")
    root = project_lab(tmp_path / "plab", "tiny", {"project.yaml": TINY, "tiny.py": TINY_PY})
    yield root
    end_lab(root, docker_host)


def wait_for(store: Store, run_id: int, timeout: float = 120) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.run(run_id)
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s: {store.run(run_id)}")


def test_three_stages_succeed_with_metrics_artifacts_and_logs(plab, fbtui):  # type: ignore[no-untyped-def]
    proc = fbtui("run", "tiny", cwd=plab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run #1 stage train: succeeded" in proc.stdout and "  | log line 4" in proc.stdout
    lab = Lab(plab)
    with Store(lab.store_path) as s:
        run = s.run(1)
        assert run["status"] == "succeeded" and run["host"] == "local" and run["image"].startswith("fb/proj-tiny:")
        assert [st["status"] for st in s.stages(1)] == ["succeeded"] * 3
        assert s.metric_count(1) == 51
        assert s.final_metrics(1) == {"train/loss": 1.0 / 50, "eval/accuracy": 0.5}
        assert s.query("SELECT fingerprint FROM evaluations WHERE run_id = 1")[0]["fingerprint"] == "fp-tiny"
        arts = {(a["stage"], a["path"]) for a in s.query("SELECT stage, path FROM artifacts WHERE run_id = 1")}
        assert {("prepare", "data.txt"), ("train", "model.txt"), ("evaluate", "eval.json")} <= arts
    logs = fbtui("logs", "1", "--stage", "train", cwd=plab).stdout
    assert "secret is set: True" in logs and "log line 4" in logs
    # Containers are gone; the spooled log stays. The secret's value is nowhere in the store or the logs.
    assert "hunter2-value" not in lab.store_path.read_bytes().decode("latin-1")
    assert all("hunter2-value" not in p.read_text(errors="replace") for p in run_folder(lab, 1).rglob("*.log"))


def test_failure_stops_the_run_with_exit_code_and_log_tail(plab, fbtui):  # type: ignore[no-untyped-def]
    proc = fbtui("run", "tiny", "-o", "tiny.fail=3", cwd=plab)
    assert proc.returncode == 1
    with Store(Lab(plab).store_path) as s:
        stages = {st["name"]: st for st in s.stages(1)}
        assert stages["train"]["status"] == "failed" and stages["train"]["exit_code"] == 3
        assert stages["train"]["reason"].startswith("exit code 3; last lines:")
        assert "Traceback: something broke" in stages["train"]["reason"]
        assert stages["evaluate"]["status"] == "skipped"
        assert s.run(1)["status"] == "failed" and "stage train: exit code 3" in s.run(1)["reason"]


def test_oom_missing_artifact_and_gpu_requests_are_named(plab, fbtui, write):  # type: ignore[no-untyped-def]
    y = plab / "projects/tiny/project.yaml"
    y.write_text(y.read_text().replace("    env: [FB_TEST_SECRET]\n",
                                       "    env: [FB_TEST_SECRET]\n    resources: {memory: 64m}\n"))
    assert "memory: 64m" in y.read_text()
    assert fbtui("run", "tiny", "-o", "tiny.alloc_mb=400", cwd=plab).returncode == 1
    assert fbtui("run", "tiny", "-o", "tiny.skip_artifact=true", cwd=plab).returncode == 1
    with Store(Lab(plab).store_path) as s:
        assert s.stage(1, "train")["reason"] == "killed: out of memory (memory limit 64 MiB)"
        assert s.stage(2, "train")["reason"] == "declared artifact not written: model.txt"
        assert s.stage(2, "evaluate")["status"] == "skipped"
    y.write_text(y.read_text().replace("resources: {memory: 64m}", "resources: {gpus: 1}"))
    proc = fbtui("run", "tiny", cwd=plab)
    assert proc.returncode == 1
    assert "stage train asks for 1 GPU, but host local has no GPU runtime" in proc.stderr
    with Store(Lab(plab).store_path) as s:
        assert len(s.runs()) == 2  # refused before anything was recorded or started


def test_a_missing_secret_stops_the_launch(plab, fbtui, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("FB_TEST_SECRET")
    proc = fbtui("run", "tiny", cwd=plab)
    assert proc.returncode == 2 and "stage train needs FB_TEST_SECRET in the environment" in proc.stderr


def test_device_requests_are_built_from_the_config():  # type: ignore[no-untyped-def]
    from fbtui.pipeline.containers import device_requests

    (count,) = device_requests(2)
    assert count["Count"] == 2 and count["Capabilities"] == [["gpu", "compute", "utility"]]
    (ids,) = device_requests([0, 3])
    assert ids["DeviceIDs"] == ["0", "3"] and not ids.get("Count")
    assert device_requests(0) == []


def test_cancel_stops_a_running_stage(plab, fbtui):  # type: ignore[no-untyped-def]
    proc = fbtui("run", "tiny", "-o", "tiny.points=600", "-o", "tiny.sleep=0.05", "--detach", cwd=plab)
    assert proc.returncode == 0, proc.stderr
    lab = Lab(plab)
    with Store(lab.store_path) as s:
        deadline = time.monotonic() + 60
        while s.stage(1, "train")["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        out = fbtui("cancel", "1", cwd=plab)  # cancel waits for the run to end (at most a minute)
        assert out.returncode == 0 and "run #1: cancelled" in out.stdout
        assert s.stage(1, "train")["status"] == "cancelled" and s.stage(1, "evaluate")["status"] == "cancelled"


def test_supervisor_killed_mid_stage_loses_and_doubles_nothing(plab, fbtui):  # type: ignore[no-untyped-def]
    points = 400
    proc = fbtui("run", "tiny", "-o", f"tiny.points={points}", "-o", "tiny.sleep=0.01", "--detach", cwd=plab)
    assert proc.returncode == 0, proc.stderr
    lab = Lab(plab)
    with Store(lab.store_path) as s:
        deadline = time.monotonic() + 60
        while s.metric_count(1) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.stage(1, "train")["status"] == "running"
        pid = int(lock_path(lab).read_text())
        os.kill(pid, signal.SIGKILL)  # mid-ingest, mid-log
        time.sleep(1.0)
        assert fbtui("ps", cwd=plab).returncode == 0  # any command reattaches
        run = wait_for(s, 1)
        assert run["status"] == "succeeded"
        steps = [step for step, _, _ in s.metric_history(1, "train/loss")]
        assert steps == list(range(points))  # every point once
    lines = fbtui("logs", "1", "--stage", "train", cwd=plab).stdout.splitlines()
    assert [x for x in lines if x.startswith("log line")] == [f"log line {i}" for i in range(5)]


def test_rerun_of_unchanged_stages_is_a_cache_hit(plab, fbtui):  # type: ignore[no-untyped-def]
    assert fbtui("run", "tiny", cwd=plab).returncode == 0
    assert fbtui("run", "tiny", cwd=plab).returncode == 0
    assert fbtui("run", "tiny", "-o", "tiny.points=7", cwd=plab).returncode == 0
    assert fbtui("run", "tiny", "--no-cache", cwd=plab).returncode == 0
    with Store(Lab(plab).store_path) as s:
        status = {rid: [st["status"] for st in s.stages(rid)] for rid in (2, 3, 4)}
        assert status[2] == ["cached", "cached", "cached"]
        # prepare reads only `tiny`: a changed tiny.points is a new prepare too, here
        assert status[3] == ["succeeded", "succeeded", "succeeded"]
        assert status[4] == ["succeeded", "succeeded", "succeeded"]
        assert s.final_metrics(2) == s.final_metrics(1)  # a cached stage brings its results along
        assert s.stage(2, "train")["reason"] == "same inputs as run 1"


# ------------------------------------------------------------------ remote hosts


def add_host(root: Path, name: str, url: str, slots: int = 2, extra: str = "") -> None:
    y = root / "lab.yaml"
    text = y.read_text().replace("    slots: 2\n", f"    slots: {slots}\n", 1)
    y.write_text(text.replace("hosts:\n", f"hosts:\n  {name}:\n    url: {url}\n    slots: {slots}\n{extra}", 1))


def overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    best = now = 0
    for _, d in events:
        now += d
        best = max(best, now)
    return best


def stage_intervals(lab: Lab, store: Store, run_ids: list[int]) -> dict[str, list[tuple[float, float]]]:
    """When each stage really ran, from its own log lines (`<stage> start t` / `<stage> end t`)."""
    from fbtui.pipeline.logs import read_spool

    per_host: dict[str, list[tuple[float, float]]] = {}
    for rid in run_ids:
        host = store.run(rid)["host"]
        for st in store.stages(rid):
            if st["status"] != "succeeded":
                continue
            lines, _ = read_spool(run_folder(lab, rid) / f"{st['name']}.log")
            t = {w[1]: float(w[2]) for w in (x.split() for x in lines) if len(w) == 3 and w[1] in ("start", "end")}
            per_host.setdefault(host, []).append((t["start"], t["end"]))
    return per_host


def test_remote_tcp_host_runs_and_brings_artifacts_back(plab, fbtui, remote_daemon):  # type: ignore[no-untyped-def]
    add_host(plab, "remote", remote_daemon.url, extra="    insecure: true\n")
    proc = fbtui("run", "tiny", "--host", "remote", cwd=plab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lab = Lab(plab)
    with Store(lab.store_path) as s:
        assert s.run(1)["host"] == "remote" and {st["host"] for st in s.stages(1)} == {"remote"}
        assert s.metric_count(1) == 51  # ingested through the remote engine
        assert s.query("SELECT fingerprint FROM evaluations WHERE run_id = 1")[0]["fingerprint"] == "fp-tiny"
    back = run_folder(lab, 1) / "evaluate" / "out" / "eval.json"
    assert json.loads(back.read_text())["fingerprint"] == "fp-tiny"  # small declared artifacts come back
    assert "log line 4" in fbtui("logs", "1", "--stage", "train", cwd=plab).stdout
    import docker

    remote = docker.DockerClient(base_url=remote_daemon.url)
    vols = [v.name for v in remote.volumes.list()]
    assert any(v.endswith("-r1-train") for v in vols)  # the outputs stay there, in volumes
    from fbtui.pipeline.containers import lab_instance

    # the session's second engine also holds other tests' kept failed stages, whose run ids restart too
    mine = ["fb.run=1", f"fb.checkout={lab_instance(plab)}"]
    assert not remote.containers.list(all=True, filters={"label": mine})


def test_ablation_on_two_hosts_never_exceeds_their_slots(plab, fbtui, remote_daemon):  # type: ignore[no-untyped-def]
    add_host(plab, "remote", remote_daemon.url, extra="    insecure: true\n")
    y = plab / "projects/tiny/project.yaml"
    y.write_text(y.read_text() + "ablations:\n  six:\n    grid:\n      tiny.points: [20, 21, 22, 23, 24, 25]\n")
    proc = fbtui("run", "tiny", "--ablation", "six", "--host", "local,remote", "-o", "tiny.stage_sleep=2.0",
                 cwd=plab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 of 6 runs succeeded" in proc.stdout
    lab = Lab(plab)
    with Store(lab.store_path) as s:
        ids = [r["id"] for r in s.runs()]
        assert len(ids) == 6 and all(s.run(i)["status"] == "succeeded" for i in ids)
        per_host = stage_intervals(lab, s, ids)
    # remote (nobody else's engine) took work; local may have been full of other checkouts' stages
    assert "remote" in per_host and set(per_host) <= {"local", "remote"}
    assert all(overlap(iv) <= 2 for iv in per_host.values())
    assert overlap([x for iv in per_host.values() for x in iv]) <= 4


def test_ssh_host_through_one_tunnel(plab, fbtui, remote_daemon, sshd):  # type: ignore[no-untyped-def]
    opts = json.dumps(sshd.options)
    add_host(plab, "sshbox", f"ssh://root@127.0.0.1:{sshd.port}",
             extra=f"    socket: {remote_daemon.sock}\n    ssh_options: {opts}\n")
    proc = fbtui("run", "tiny", "--host", "sshbox", cwd=plab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lab = Lab(plab)
    with Store(lab.store_path) as s:
        assert s.run(1)["host"] == "sshbox" and s.metric_count(1) == 51
    assert (run_folder(lab, 1) / "evaluate" / "out" / "eval.json").exists()
    shown = fbtui("images", "--host", "sshbox", cwd=plab)
    assert shown.returncode == 0 and "fb/proj-tiny:" in shown.stdout
    # One tunnel per host per process (this one and the supervisor), not an ssh process per request.
    import subprocess

    tunnels = subprocess.run(["pgrep", "-f", f"^ssh .*-L {plab}/.fb/tunnels/sshbox-[0-9]+.sock:"],
                             capture_output=True, text=True).stdout.split()
    assert 1 <= len(tunnels) <= 2


def test_eval_brings_an_old_run_up_to_the_current_suite(plab, fbtui):  # type: ignore[no-untyped-def]
    assert fbtui("run", "tiny", cwd=plab).returncode == 0
    script = plab / "projects/tiny/tiny.py"  # the evaluation code changes: a new fingerprint
    script.write_text(script.read_text().replace('"fingerprint": "fp-tiny"', '"fingerprint": "fp-tiny-2"'))
    proc = fbtui("eval", "1", cwd=plab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run #1: evaluating again under today's suite (re-evaluation #2)" in proc.stdout
    with Store(Lab(plab).store_path) as s:
        assert [st["status"] for st in s.stages(2)] == ["cached", "cached", "succeeded"]
        fps = [r["fingerprint"] for r in s.query("SELECT fingerprint FROM evaluations WHERE run_id = 1 ORDER BY id")]
        assert fps == ["fp-tiny", "fp-tiny-2"]
        assert s.run(2)["eval_of"] == 1


def test_timeout_and_a_stage_that_ended_while_nobody_watched(plab, fbtui):  # type: ignore[no-untyped-def]
    y = plab / "projects/tiny/project.yaml"
    # the first stage times out: every stage sleeps stage_sleep, and one timed out ends the run
    y.write_text(y.read_text().replace("    reads: [tiny]\n", "    reads: [tiny]\n    timeout: 3s\n"))
    assert fbtui("run", "tiny", "-o", "tiny.stage_sleep=30", cwd=plab).returncode == 1
    lab = Lab(plab)
    with Store(lab.store_path) as s:
        assert s.stage(1, "prepare")["reason"].startswith("timed out after 3 s")
    y.write_text(y.read_text().replace("    timeout: 3s\n", ""))
    # The supervisor dies; the stage finishes with nobody watching; the next command catches up.
    assert fbtui("run", "tiny", "-o", "tiny.points=300", "-o", "tiny.sleep=0.005", "--detach",
                 cwd=plab).returncode == 0
    import docker

    with Store(lab.store_path) as s:
        deadline = time.monotonic() + 60
        while s.stage(2, "train")["status"] != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(int(lock_path(lab).read_text()), signal.SIGKILL)
        cid = s.stage(2, "train")["container_id"]
        docker.from_env().containers.get(cid).wait(timeout=60)  # ended, unwatched
        assert fbtui("ps", cwd=plab).returncode == 0
        assert wait_for(s, 2)["status"] == "succeeded"
        assert [step for step, _, _ in s.metric_history(2, "train/loss")] == list(range(300))
    assert "log line 4" in fbtui("logs", "2", "--stage", "train", cwd=plab).stdout


def test_a_new_supervisor_sweeps_containers_of_closed_stages(plab, fbtui, docker_client):  # type: ignore[no-untyped-def]
    from fbtui.pipeline.containers import container_name, lab_instance

    assert fbtui("run", "tiny", cwd=plab).returncode == 0
    lab = Lab(plab)
    with Store(lab.store_path) as s:
        image = s.run(1)["image"]
    # What a supervisor killed between recording the result and removing the container leaves.
    name = container_name(lab.config.name, lab_instance(lab.root), 1, "train")
    left = docker_client.containers.create(image, ["true"], name=name,
                                           labels={"fb.lab": lab.config.name, "fb.run": "1", "fb.stage": "train"})
    other = docker_client.containers.create(image, ["true"], name=f"fb-someone-else-{time.time_ns()}",
                                            labels={"fb.lab": lab.config.name, "fb.run": "1", "fb.stage": "train"})
    for c in (left, other):
        c.start()
        c.wait(timeout=30)
    from fbtui.pipeline.supervisor import supervisor_alive

    deadline = time.monotonic() + 30
    while supervisor_alive(lab) and time.monotonic() < deadline:  # the next run starts a new one
        time.sleep(0.2)
    try:
        assert fbtui("run", "tiny", "--no-cache", cwd=plab).returncode == 0
        names = {c.name for c in docker_client.containers.list(all=True)}
        assert left.name not in names  # ours, closed: swept
        assert other.name in names  # another checkout's: left alone
    finally:
        other.remove(force=True)
