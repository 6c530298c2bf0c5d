"""What running stages use (#14, item 7): CPU %, memory and processes from the engine's stats."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fbtui.config.models import HostConfig
from fbtui.pipeline.hosts import Hosts
from fbtui.pipeline.usage import UsagePoller, running_stages, usage_text
from fbtui.store import Store

pytestmark = [pytest.mark.engine]
BURN = "import time\nt = time.time()\nx = bytearray(64 * 2**20)\nwhile time.time() - t < 30: pass"


def test_a_busy_stage_reads_cpu_memory_and_pids(tmp_path: Path, docker_client) -> None:  # type: ignore[no-untyped-def]
    c = docker_client.containers.run("fb/torch-stand-in:2.13.0", ["python3", "-c", BURN], detach=True,
                                     labels={"fb.test": "usage"}, mem_limit=512 * 2**20, nano_cpus=10**9)
    try:
        with Store(tmp_path / "fb.db") as s:
            rid = s.create_run("p", config="{}", params={}, stages=["train", "gone"])
            s.set_stage_status(rid, "train", "running", container_id=c.id, host="local")
            s.set_stage_status(rid, "gone", "running", container_id="0" * 64, host="local")
            stages = running_stages(s)
            assert [st["name"] for st in stages] == ["train", "gone"]
            poller = UsagePoller(Hosts({"local": HostConfig(url="local")}, tmp_path))
            first = poller.poll(stages)
            assert first[0].cpu_percent is None and "cpu …" in usage_text(first[0])  # one sample: no CPU % yet
            time.sleep(1.5)
            train, gone = poller.poll(stages)
            assert train.cpu_percent is not None and 30 < train.cpu_percent <= 110  # one CPU, busy
            assert train.memory is not None and train.memory > 60 * 2**20
            assert train.memory_limit == 512 * 2**20 and train.pids and train.pids >= 1
            assert "/ 512.0 MiB" in usage_text(train)
            assert gone.problem and "no reading" in usage_text(gone)  # said, never raised
    finally:
        c.remove(force=True)


def test_top_without_runs_says_so(fbtui) -> None:  # type: ignore[no-untyped-def]
    assert fbtui("top", "--once").stdout.strip() == "no runs yet"
    proc = fbtui("top", "--every", "0")
    assert proc.returncode == 2 and "--every: expected seconds" in proc.stderr
