"""A real Docker engine: the one scripts/engine provides (never a mock)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.conftest import REPO

TORCH_IMAGE = "fb/torch-stand-in:2.13.0"
pytestmark = [pytest.mark.slow, pytest.mark.engine]


def test_torch_image_runs_and_reports_its_version(docker_client):  # type: ignore[no-untyped-def]
    out = docker_client.containers.run(
        TORCH_IMAGE, ["python3", "-c", "import torch; print(torch.__version__)"],
        remove=True, network_mode="none", init=True,
    )
    assert out.decode().strip() == "2.13.0+cpu"


def test_containers_get_no_network_and_labels_find_them(docker_client):  # type: ignore[no-untyped-def]
    label = f"fb.test={time.time_ns()}"
    c = docker_client.containers.run(
        TORCH_IMAGE, ["python3", "-c", "import socket; print(len(socket.if_nameindex()))"],
        detach=True, network_mode="none", labels=dict([label.split("=")]),
    )
    try:
        c.wait(timeout=60)
        assert c.logs().decode().strip() == "1"  # loopback only
        found = docker_client.containers.list(all=True, filters={"label": label})
        assert [x.id for x in found] == [c.id]
    finally:
        c.remove(force=True)


def test_engine_script_is_idempotent(docker_host):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    proc = subprocess.run([str(REPO / "scripts/engine")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == docker_host
    assert "present" in proc.stderr and "debootstrap" not in proc.stderr
    assert time.monotonic() - start < 30  # reuses engine and images: no rebuild


def test_doctor_sees_the_engine_and_base_image(fbtui, docker_host):  # type: ignore[no-untyped-def]
    proc = fbtui("doctor", "--json", env={"DOCKER_HOST": docker_host})
    checks = json.loads(proc.stdout)
    engine = next(c for c in checks if c["name"] == "engine")
    assert engine["status"] == "ok" and "API 1." in engine["detail"]
    base = [c for c in checks if c["name"] == "base image" and TORCH_IMAGE in c["detail"]]
    assert base and base[0]["status"] == "ok"
    assert proc.returncode == 0, proc.stdout


def test_doctor_says_how_to_start_an_engine_when_none_answers(fbtui, tmp_path):  # type: ignore[no-untyped-def]
    proc = fbtui("doctor", "--json", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    engine = next(c for c in json.loads(proc.stdout) if c["name"] == "engine")
    assert engine["status"] == "fail" and "scripts/engine" in engine["fix"]
    assert proc.returncode == 1
