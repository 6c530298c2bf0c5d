"""No leaks (#16, part 4): tunnels die with their supervisor and open only to hosts with work,
remote volumes and finished containers go once recorded (a failed run's stay for keep_failed and
`fbtui gc` lists them), and the supervisor follows lab.yaml while it runs. Real engines: the
project's second dockerd and loopback sshd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.pipeline.containers import lab_instance, volume_name
from fbtui.pipeline.supervisor import lock_path, supervisor_alive
from fbtui.store import Store
from tests.labs import end_lab, project_lab
from tests.test_pipeline import TINY, TINY_PY, add_host, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.engine]


@pytest.fixture
def ulab(tmp_path: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FB_TEST_SECRET", "hunter2-value")
    root = project_lab(tmp_path / "ulab", "tiny", {"project.yaml": TINY, "tiny.py": TINY_PY})
    yield root
    end_lab(root, docker_host)


def until(cond, timeout: float = 60, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def supervisor_pid(lab: Lab) -> int:
    text = lock_path(lab).read_text().strip()
    return int(text) if text else 0


def tunnels_of(root: Path, pid: int | None = None) -> list[str]:
    """ssh processes forwarding to this lab's tunnel sockets (of one process, given its pid)."""
    sock = f"[a-z]+-{pid}" if pid else "[a-z]+-[0-9]+"
    out = subprocess.run(["pgrep", "-f", f"^ssh .*-L {root}/.fb/tunnels/{sock}.sock:"], capture_output=True, text=True)
    return out.stdout.split()


def volumes_of(client, lab: Lab, run_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    prefix = volume_name(lab.config.name, lab_instance(lab.root), run_id, "")
    return sorted(v.name for v in client.volumes.list() if v.name.startswith(prefix))


def quiet(lab: Lab) -> None:
    until(lambda: not supervisor_alive(lab), 60, "the supervisor ends when idle")


def test_no_ssh_outlives_a_killed_supervisor_and_volumes_go(ulab, fbtui, remote_daemon, sshd):  # type: ignore[no-untyped-def]
    import docker

    add_host(ulab, "sshbox", f"ssh://root@127.0.0.1:{sshd.port}",
             extra=f"    socket: {remote_daemon.sock}\n    ssh_options: {json.dumps(sshd.options)}\n")
    lab = Lab(ulab)
    slow = ["-o", "tiny.points=400", "-o", "tiny.sleep=0.02"]
    assert fbtui("run", "tiny", "--host", "sshbox", "--detach", *slow, cwd=ulab).returncode == 0
    with Store(lab.store_path) as s:
        until(lambda: s.stage(1, "train")["status"] == "running", 120, "train runs")
        pid = supervisor_pid(lab)
        assert tunnels_of(ulab, pid), "the supervisor reaches sshbox through its own tunnel"
        os.kill(pid, signal.SIGKILL)
        until(lambda: not tunnels_of(ulab, pid), 10, "the killed supervisor's ssh ends with it")
        # The next command's supervisor finds the stage again and finishes the run.
        assert fbtui("ps", cwd=ulab).returncode == 0
        run = wait_for(s, 1, timeout=120)
        assert run["status"] == "succeeded", run
        new_pid = supervisor_pid(lab)
        assert new_pid != pid
    quiet(lab)
    assert not tunnels_of(ulab, new_pid)
    remote = docker.DockerClient(base_url=remote_daemon.url)
    try:
        # every artifact of run 1 has its copy under .fb/runs, and no run uses its outputs any more
        assert volumes_of(remote, lab, 1) == [], (ulab / ".fb/supervisor.log").read_text()[-3000:]
        assert (ulab / ".fb/runs/1/train/out/model.txt").read_text() == "weights\n"
        assert not list((ulab / ".fb/tunnels").glob(f"*-{pid}.*")), "the dead supervisor's socket was cleared"
    finally:
        remote.close()


def test_failed_runs_volumes_are_kept_then_collected_and_the_cache_needs_the_volume(  # type: ignore[no-untyped-def]
        ulab, fbtui, remote_daemon):
    import docker

    add_host(ulab, "remote", remote_daemon.url, extra="    insecure: true\n    keep_failed: 2h\n")
    lab = Lab(ulab)
    remote = docker.DockerClient(base_url=remote_daemon.url)
    try:
        assert fbtui("run", "tiny", "--host", "remote", cwd=ulab).returncode == 0
        assert fbtui("run", "tiny", "--host", "remote", "-o", "tiny.fail=3", cwd=ulab).returncode != 0
        quiet(lab)
        assert volumes_of(remote, lab, 1) == []
        kept = volumes_of(remote, lab, 2)  # a failed run's outputs stay for a post-mortem
        assert kept == sorted(volume_name(lab.config.name, lab_instance(lab.root), 2, n) for n in ("prepare", "train"))
        shown = json.loads(fbtui("gc", "--host", "remote", "--json", cwd=ulab).stdout)["leftovers"]
        assert {x["name"] for x in shown if x["kind"] == "volume"} == set(kept)
        assert all(not x["remove"] and "failed run, kept until" in x["why"] for x in shown if x["kind"] == "volume")
        # the failed stage's container stays for a post-mortem too (its name is its volume's)
        assert next(x["why"] for x in shown if x["kind"] == "container").startswith("failed stage, kept until")
        text = fbtui("gc", "--host", "remote", cwd=ulab).stdout
        assert f"kept volume {kept[0]} (run #2 prepare): failed run, kept until" in text
        # prepare of run 1 is gone from the remote: the same inputs run again instead of a hit on nothing
        assert fbtui("run", "tiny", "--host", "remote", cwd=ulab).returncode == 0
        with Store(lab.store_path) as s:
            assert s.stage(3, "prepare")["status"] == "succeeded"
            assert s.stage(3, "prepare")["cached_from"] is None
        quiet(lab)  # while a supervisor runs, volumes are its janitor's
        proc = fbtui("gc", "--host", "remote", "--failed", "--yes", cwd=ulab)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"removed volume {kept[0]}" in proc.stdout
        quiet(lab)
        assert volumes_of(remote, lab, 2) == [] and volumes_of(remote, lab, 3) == []
    finally:
        remote.close()


def test_a_sweep_opens_no_tunnel_to_a_host_without_work(ulab, sshd):  # type: ignore[no-untyped-def]
    from fbtui.pipeline.supervisor import Supervisor

    add_host(ulab, "sshbox", f"ssh://root@127.0.0.1:{sshd.port}",
             extra=f"    socket: /nonexistent.sock\n    ssh_options: {json.dumps(sshd.options)}\n")
    lab = Lab(ulab)
    with Store(lab.store_path) as store:
        sup = Supervisor(lab, store)
        try:
            sup.sweep()
            assert sup.janitor.touched == {"local"} and not sup.hosts._tunnels
            assert not tunnels_of(ulab)
        finally:
            sup.hosts.close()


def test_lab_yaml_is_followed_while_the_supervisor_runs(ulab, fbtui, remote_daemon):  # type: ignore[no-untyped-def]
    lab = Lab(ulab)
    original = (ulab / "lab.yaml").read_text()
    add_host(ulab, "remote", remote_daemon.url, slots=1, extra="    insecure: true\n")
    with_remote = (ulab / "lab.yaml").read_text()
    assert fbtui("build", "tiny", "--host", "remote", cwd=ulab).returncode == 0  # shipping takes its time first
    (ulab / "lab.yaml").write_text(original)
    # run 1 keeps the supervisor busy all along (cancelled at the end)
    assert fbtui("run", "tiny", "--detach", "-o", "tiny.points=4000", "-o", "tiny.sleep=0.02", cwd=ulab).returncode == 0
    with Store(lab.store_path) as s:
        until(lambda: s.stage(1, "train")["status"] == "running", 120, "run 1 trains")
        pid = supervisor_pid(lab)
        # a broken lab.yaml: one line in the supervisor's log, the old one stays
        (ulab / "lab.yaml").write_text(original + "hosts: [\n")
        log = ulab / ".fb/supervisor.log"
        until(lambda: "lab.yaml changed but does not load" in log.read_text(), 20, "the broken lab.yaml is named")
        # a new host is usable at once, by the same supervisor
        (ulab / "lab.yaml").write_text(with_remote)
        slow = ["-o", "tiny.points=1200", "-o", "tiny.sleep=0.01", "-o", "tiny.stage_sleep=0"]
        assert fbtui("run", "tiny", "--host", "remote", "--detach", *slow, cwd=ulab).returncode == 0
        until(lambda: s.stage(2, "train")["status"] == "running", 120, "run 2 trains on the new host")
        assert supervisor_pid(lab) == pid
        assert fbtui("run", "tiny", "--host", "remote", "--detach", "--no-cache", cwd=ulab).returncode == 0
        # the host leaves lab.yaml: the stage running there is followed to its end, the runs say why they wait
        (ulab / "lab.yaml").write_text(original)
        until(lambda: "host remote was removed from lab.yaml" in (s.run(3)["reason"] or ""), 20, "run 3 names it")
        assert "followed to its end" in (s.run(2)["reason"] or "") or s.stage(2, "train")["status"] != "running"
        until(lambda: s.stage(2, "train")["status"] == "succeeded", 120, "run 2's train ends there")
        assert s.metric_count(2) == 1200
        until(lambda: "removed from lab.yaml" in (s.run(2)["reason"] or ""), 20, "run 2 waits, saying why")
        assert s.stage(2, "evaluate")["status"] == "pending" and s.run(3)["status"] in ("queued", "running")
        # back in lab.yaml: both go on
        (ulab / "lab.yaml").write_text(with_remote)
        assert wait_for(s, 2)["status"] == "succeeded" and wait_for(s, 3)["status"] == "succeeded"
        assert supervisor_pid(lab) == pid and s.run(1)["status"] == "running"
        assert fbtui("cancel", "1", cwd=ulab).returncode == 0
        assert wait_for(s, 1)["status"] == "cancelled"
    text = log.read_text()
    assert text.count("lab.yaml changed but does not load") == 1
    assert "lab.yaml reloaded (added: remote" in text and "lab.yaml reloaded (removed: remote" in text
