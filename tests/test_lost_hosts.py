"""Runs that survive a flaky lab (#16, parts 1 and 2), against the project's own second dockerd:
a host that stops answering costs no run that was not in its container; a stage whose host stays
silent past the grace period is `lost`, not failed, and is found again by its labels when the host
answers; one hung host delays no other."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.labs import end_lab, project_lab
from tests.test_pipeline import add_host, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.engine]

PROJECT = textwrap.dedent("""
    environment: torch-cpu
    config:
      steady: {points: 40, sleep: 0.0}
    pipeline:
      - name: prepare
        command: [python3, /fb/project/steady.py, prepare]
        reads: [data]
      - name: train
        command: [python3, /fb/project/steady.py, train]
      - name: evaluate
        command: [python3, /fb/project/steady.py, evaluate]
        cache: false
""")
STEADY_PY = textwrap.dedent('''
    import json, sys, time
    import yaml
    stage = sys.argv[1]
    cfg = yaml.safe_load(open("/fb/config.yaml"))["steady"]
    if stage == "train":
        with open("/fb/out/metrics.jsonl", "a") as m:
            for step in range(cfg["points"]):
                print(f"step {step}", flush=True)
                m.write(json.dumps({"step": step, "key": "loss", "value": 1.0 / (step + 1)}) + "\\n")
                m.flush()
                time.sleep(cfg["sleep"])
    print(f"{stage} done", flush=True)
''')


@pytest.fixture
def flab(tmp_path: Path, docker_host: str, remote_daemon) -> Path:  # type: ignore[no-untyped-def]
    root = project_lab(tmp_path / "flab", "steady", {"project.yaml": PROJECT, "steady.py": STEADY_PY})
    add_host(root, "remote", remote_daemon.url, slots=1, extra="    insecure: true\n    grace: 5s\n")
    yield root
    if remote_daemon.proc is not None:
        try:
            os.kill(remote_daemon.proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    if remote_daemon.proc is None or remote_daemon.proc.poll() is not None:
        remote_daemon.start()
    end_lab(root, docker_host)


def _until(what, timeout: float = 120, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not reached in {timeout} s")


def _launch(fbtui, root: Path, *args: str) -> int:  # type: ignore[no-untyped-def]
    proc = fbtui("run", "steady", "--json", *args, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (rid,) = json.loads(proc.stdout)["runs"]
    return int(rid)


def test_a_killed_engine_costs_only_the_stage_in_its_container(flab, fbtui, remote_daemon) -> None:  # type: ignore[no-untyped-def]
    hog = ["-o", "steady.points=600", "-o", "steady.sleep=0.05"]
    with Store(Lab(flab).store_path) as s:
        training = _launch(fbtui, flab, "--host", "remote", *hog)
        _until(lambda: s.stage(training, "train")["status"] == "running", timeout=300)
        # Each below is bound to remote by a cache hit of its prepare (the training run's) and waits:
        placed = _launch(fbtui, flab, "--host", "remote", "-o", "steady.points=50")  # for the one slot
        between = _launch(fbtui, flab, "--host", "remote", *hog)  # for the training run's train (same inputs)
        either = _launch(fbtui, flab, "--host", "remote,local", "-o", "steady.points=7")  # may go elsewhere
        for rid in (placed, between, either):
            _until(lambda rid=rid: s.stage(rid, "prepare")["status"] == "cached" and s.run(rid)["host"] == "remote")
        remote_daemon.kill()
        # past the grace period the stage in the container is lost (not failed) ...
        _until(lambda: s.stage(training, "train")["status"] == "lost", timeout=90)
        lost = s.stage(training, "train")
        assert "host lost: remote has not answered for" in lost["reason"] and lost["lost_at"]
        ps = fbtui("ps", "--json", cwd=flab)
        row = next(r for r in json.loads(ps.stdout) if r["run"] == training)
        assert row["stage"] == "train" and row["stage_status"] == "lost" and "host lost" in row["reason"]
        # ... the run that may go elsewhere goes back to the queue and runs locally ...
        moved = wait_for(s, either, timeout=180)
        assert moved["status"] == "succeeded" and moved["host"] == "local", s.stages(either)
        assert s.metric_count(either) == 7  # what the remote cache hit had copied was taken back
        assert s.stage(either, "prepare")["status"] == "succeeded"  # computed again where it ran
        # ... and the runs bound to the host wait, saying why, instead of failing
        for rid in (training, placed, between):
            assert s.run(rid)["status"] in ("queued", "running"), s.run(rid)
        assert "remote has not answered" in (s.stage(placed, "train")["reason"] or ""), s.stages(placed)
        # a lost stage can be given up on (and the run that waited for its train with it: that train
        # would now run from the start, which the placed run already shows)
        out = fbtui("cancel", str(training), str(between), cwd=flab)
        assert out.returncode == 0 and f"run #{training}: cancelled" in out.stdout, out.stdout + out.stderr
        assert s.stage(training, "train")["status"] == "cancelled"
        remote_daemon.start()
        assert wait_for(s, placed, timeout=180)["status"] == "succeeded", s.stages(placed)
        assert s.metric_count(placed) == 50


def test_a_hung_host_is_found_again_with_every_line_and_point_once(flab, fbtui, remote_daemon) -> None:  # type: ignore[no-untyped-def]
    points = 200  # ~20 s: it may end while the engine is stopped; found again, it is concluded all the same
    remote = _launch(fbtui, flab, "--host", "remote", "-o", f"steady.points={points}", "-o", "steady.sleep=0.1")
    with Store(Lab(flab).store_path) as s:
        _until(lambda: s.metric_count(remote) >= 20)
        pid = remote_daemon.proc.pid
        os.kill(pid, signal.SIGSTOP)  # the engine hangs; its containers run on
        try:
            local = _launch(fbtui, flab, "-o", "steady.points=5")
            done = wait_for(s, local, timeout=120)  # one hung host holds up no other
            assert done["status"] == "succeeded", s.stages(local)
            assert s.run(remote)["status"] == "running"
            _until(lambda: s.stage(remote, "train")["status"] == "lost", timeout=120)
        finally:
            os.kill(pid, signal.SIGCONT)
        run = wait_for(s, remote, timeout=240)
        assert run["status"] == "succeeded", s.stages(remote)
        assert s.metric_count(remote) == points  # every point once: nothing lost, nothing doubled
        train = s.stage(remote, "train")
        assert train["lost_at"] is None and len(json.loads(train["interruptions"])) == 1
    shown = fbtui("show", str(remote), cwd=flab)
    assert shown.returncode == 0 and "train: host remote lost: " in shown.stdout, shown.stdout
    assert json.loads(fbtui("show", str(remote), "--json", cwd=flab).stdout)["stages"][1]["interruptions"]
    log = (flab / ".fb" / "runs" / str(remote) / "train.log").read_text()
    texts = [line.split(" ", 1)[1] for line in log.splitlines() if " " in line]  # "<timestamp> <text>"
    steps = [t for t in texts if t.startswith("step ")]
    assert steps == [f"step {i}" for i in range(points)]  # every log line exactly once, in order
