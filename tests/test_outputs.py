"""Hostile stage outputs on a real engine: links, FIFOs and link folders where outputs go are
refused with a named reason, never followed, never waited on."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.pipeline.outputs import UnsafeOutput, hash_output, output_kind, read_output
from fbtui.store import Store
from tests.conftest import make_git_lab
from tests.labs import end_lab
from tests.test_pipeline import wait_for

PROJECT = textwrap.dedent("""
    environment: torch-cpu
    config:
      evil: {how: none}
    pipeline:
      - name: work
        command: [python3, /fb/project/evil.py]
        artifacts: [model.pt, eval.json]
        cache: false
""")
EVIL_PY = textwrap.dedent('''
    import json, os, time
    import yaml
    how = yaml.safe_load(open("/fb/config.yaml"))["evil"]["how"]
    out = "/fb/out"
    json.dump({"fingerprint": "fp", "results": {"accuracy": 0.5}}, open(f"{out}/eval.json", "w"))
    open(f"{out}/model.pt", "w").write("weights")
    if how == "metrics_link":
        os.symlink("/etc/passwd", f"{out}/metrics.jsonl")
    elif how == "metrics_fifo":
        os.mkfifo(f"{out}/metrics.jsonl")
        time.sleep(2)
    elif how == "eval_link":
        os.remove(f"{out}/eval.json")
        os.symlink("/etc/hostname", f"{out}/eval.json")
    elif how == "ignore_term":  # a stage that will not stop when asked
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        while True:
            time.sleep(1)
    elif how == "artifact_link":
        os.remove(f"{out}/model.pt")
        os.symlink("/etc/passwd", f"{out}/model.pt")
    print("done", how, flush=True)
''')


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.parametrize(("how", "reason"), [
    ("metrics_link", "metrics.jsonl is a symbolic link"),
    ("metrics_fifo", "metrics.jsonl is a FIFO"),
    ("eval_link", "eval.json is a symbolic link"),
    ("artifact_link", "model.pt is a symbolic link"),
])
def test_links_and_fifos_where_outputs_go_fail_the_stage(tmp_path, docker_host, fbtui, how, reason):  # type: ignore[no-untyped-def]
    root = make_git_lab(tmp_path / "olab")
    (root / "projects/evil").mkdir()
    (root / "projects/evil/project.yaml").write_text(PROJECT)
    (root / "projects/evil/evil.py").write_text(EVIL_PY)
    try:
        proc = fbtui("run", "evil", "-o", f"evil.how={how}", "--json", cwd=root)
        assert proc.returncode == 0, proc.stderr
        (rid,) = json.loads(proc.stdout)["runs"]
        with Store(Lab(root).store_path) as s:
            run = wait_for(s, rid, timeout=120)  # a FIFO is refused, not waited on (that would never end)
            assert run["status"] == "failed" and reason in run["reason"], run["reason"]
            assert s.metric_count(rid) == 0  # nothing of a host file was ingested
            assert not s.query("SELECT 1 FROM evaluations WHERE run_id = ?", (rid,))
            hashes = [a["sha256"] for a in s.query("SELECT sha256 FROM artifacts WHERE run_id = ?", (rid,))]
            assert hash_output(Path("/etc"), "passwd")[0] not in hashes  # type: ignore[index]
    finally:
        end_lab(root, docker_host)


def test_outputs_are_read_without_following_links(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub/ok.txt").write_text("data")
    (tmp_path / "secret").write_text("host secret")
    (out / "link").symlink_to(tmp_path / "secret")
    (out / "dirlink").symlink_to(tmp_path)
    os.mkfifo(out / "fifo")
    assert read_output(out, "sub/ok.txt", cap=2) == b"da" and output_kind(out, "sub") == "folder"
    assert output_kind(out, "nope") is None and read_output(out, "nope/x", cap=1) is None
    for rel, kind in (("link", "a symbolic link"), ("fifo", "a FIFO"), ("dirlink/secret", "a symbolic link")):
        with pytest.raises(UnsafeOutput, match=kind):
            read_output(out, rel, cap=100)
    for rel in ("../secret", "/etc/passwd"):
        with pytest.raises(UnsafeOutput, match="relative and inside"):
            output_kind(out, rel)


@pytest.mark.slow
@pytest.mark.engine
def test_cancel_ends_a_stage_that_ignores_sigterm(tmp_path, docker_host, fbtui):  # type: ignore[no-untyped-def]
    import docker

    root = make_git_lab(tmp_path / "tlab")
    (root / "projects/evil").mkdir()
    (root / "projects/evil/project.yaml").write_text(PROJECT)
    (root / "projects/evil/evil.py").write_text(EVIL_PY)
    try:
        proc = fbtui("run", "evil", "-o", "evil.how=ignore_term", "--json", cwd=root)
        assert proc.returncode == 0, proc.stderr
        (rid,) = json.loads(proc.stdout)["runs"]
        with Store(Lab(root).store_path) as s:
            deadline = time.monotonic() + 120
            while "ignoring SIGTERM" not in fbtui("logs", str(rid), cwd=root).stdout:
                assert time.monotonic() < deadline, s.run(rid)
                time.sleep(0.5)
            out = fbtui("cancel", str(rid), cwd=root)
            assert out.returncode == 0 and f"run #{rid}: cancelled" in out.stdout, out.stdout + out.stderr
            run = wait_for(s, rid, timeout=120)
            assert run["status"] == "cancelled" and s.stage(rid, "work")["status"] == "cancelled"
        client = docker.DockerClient(base_url=docker_host)
        left = client.containers.list(all=True, filters={"label": ["fb.stage", f"fb.run={rid}"]})
        assert not [c for c in left if str(root) in json.dumps(c.attrs.get("Mounts", []))]
    finally:
        end_lab(root, docker_host)
