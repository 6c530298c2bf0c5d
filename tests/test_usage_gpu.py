"""GPU use of running stages (#14, item 7): nvidia-smi's CSV parsed, and read by exec only in the
containers of stages that were given GPUs. The machine has no GPU: the engine test puts a stand-in
`nvidia-smi` (printing a real two-GPU sample) into a container; exec, exit codes, parsing and the
cache are the real ones."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from fbtui.commands.top import _table
from fbtui.config.models import HostConfig
from fbtui.pipeline.hosts import Hosts
from fbtui.pipeline.usage import StageUsage, UsagePoller, parse_nvidia_smi, running_stages, usage_text
from fbtui.store import Store

MiB = 2**20
# `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`
TWO_GPUS = "0, 87, 3174, 24564\n1, 13, 1024, 24564\n"  # two RTX 4090s, one busy
EIGHT_GPUS = "".join(f"{i}, 100, 70123, 81559\n" for i in range(8))  # an H100 box, all busy
MIG = "0, [N/A], 13, 40960\n"  # an A100 in MIG mode: no utilisation for the whole GPU
NOT_SUPPORTED = "0, [Not Supported], [Not Supported], [Not Supported]\n"  # an old GeForce / vGPU
HALF_KNOWN = "0, 50, 2048, 16384\n1, [N/A], [N/A], 16384\n"


def test_several_gpus_average_utilisation_and_sum_memory() -> None:
    g = parse_nvidia_smi(TWO_GPUS)
    assert (g.gpus, g.percent, g.memory, g.memory_total, g.problem) == (2, 50.0, 4198 * MiB, 49128 * MiB, None)
    g = parse_nvidia_smi(EIGHT_GPUS)
    assert (g.gpus, g.percent, g.memory, g.memory_total) == (8, 100.0, 8 * 70123 * MiB, 8 * 81559 * MiB)


def test_na_and_not_supported_are_unknown_never_zero() -> None:
    g = parse_nvidia_smi(MIG)
    assert (g.gpus, g.percent, g.memory, g.memory_total, g.problem) == (1, None, 13 * MiB, 40960 * MiB, None)
    g = parse_nvidia_smi(NOT_SUPPORTED)
    assert (g.gpus, g.percent, g.memory, g.memory_total, g.problem) == (1, None, None, None, None)
    g = parse_nvidia_smi(HALF_KNOWN)  # only the GPU that reports counts
    assert (g.gpus, g.percent, g.memory, g.memory_total) == (2, 50.0, 2048 * MiB, 32768 * MiB)


def test_output_that_is_not_the_query_is_a_problem() -> None:
    assert parse_nvidia_smi("No devices were found\n").problem == "nvidia-smi said: No devices were found"
    assert parse_nvidia_smi("").problem == "nvidia-smi said: no output"
    warned = "WARNING: infoROM is corrupted at gpu 0000:65:00.0\n" + TWO_GPUS  # a warning line is left out
    assert (parse_nvidia_smi(warned).gpus, parse_nvidia_smi(warned).percent) == (2, 50.0)


def test_usage_text_shows_gpus_only_for_stages_with_gpus() -> None:
    base = dict(run=1, project="p", stage="train", host="local", container="c", cpu_percent=97.0,
                memory=312 * MiB, memory_limit=4096 * MiB, pids=12)
    plain = StageUsage(**base)  # type: ignore[arg-type]
    assert usage_text(plain) == "cpu 97% · mem 312.0 MiB / 4.0 GiB · 12 pids"  # as before: no gpu part
    g = parse_nvidia_smi("0, 87, 3174, 24576\n")
    gpu = StageUsage(**base, gpus=g.gpus, gpu_percent=g.percent, gpu_memory=g.memory,  # type: ignore[arg-type]
                     gpu_memory_total=g.memory_total)
    assert usage_text(gpu).endswith(" · 12 pids · gpu 87% · 3.1/24.0 GiB")
    mig = parse_nvidia_smi(MIG)
    assert usage_text(StageUsage(**base, gpus=1, gpu_memory=mig.memory,  # type: ignore[arg-type]
                                 gpu_memory_total=mig.memory_total)).endswith("gpu n/a · 0.0/40.0 GiB")
    assert usage_text(StageUsage(**base, gpus=1)).endswith("· gpu n/a")  # type: ignore[arg-type]
    failed = StageUsage(**base, gpu_problem="no nvidia-smi in the container")  # type: ignore[arg-type]
    assert usage_text(failed).endswith("· gpu: no nvidia-smi in the container")


def _container(client: Any, label: str, smi: str | None) -> Any:
    """A sleeping container; `smi`, where given, is put in as /usr/local/bin/nvidia-smi before it starts."""
    c = client.containers.create("fb/torch-stand-in:2.13.0", ["sleep", "120"], labels={"fb.test": label})
    if smi is not None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = smi.encode()
            info = tarfile.TarInfo("nvidia-smi")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        c.put_archive("/usr/local/bin", buf.getvalue())
    c.start()
    return c


@pytest.mark.engine
def test_only_stages_given_gpus_are_execed_and_their_failures_are_one_line(tmp_path: Path,
                                                                           docker_client) -> None:  # type: ignore[no-untyped-def]
    label = f"usage-gpu-{uuid.uuid4().hex[:8]}"
    since = time.time() - 1
    cs = {
        "cpu": _container(docker_client, label, None),
        "gpu": _container(docker_client, label, "#!/bin/sh\necho 'WARNING: infoROM is corrupted at gpu 0000:65:00.0'"
                                                f" >&2\nprintf '{TWO_GPUS}'\n"),
        "nosmi": _container(docker_client, label, None),
        "broken": _container(docker_client, label, "#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't "
                                                   "communicate with the NVIDIA driver.\" >&2\nexit 9\n"),
    }
    try:
        with Store(tmp_path / "fb.db") as s:
            rid = s.create_run("p", config="{}", params={}, stages=list(cs))
            for name, c in cs.items():
                s.set_stage_status(rid, name, "running", container_id=c.id, host="local",
                                   gpus=None if name == "cpu" else "0,1")
            stages = running_stages(s)
        poller = UsagePoller(Hosts({"local": HostConfig(url="local")}, tmp_path))
        poller.gpu_every = 3600.0  # the second poll below must come from the cache, however slow the machine
        poller.poll(stages)
        cpu, gpu, nosmi, broken = poller.poll(stages)
        assert cpu.problem is None and cpu.gpus is None and cpu.gpu_problem is None
        assert "gpu" not in usage_text(cpu)
        assert (gpu.gpus, gpu.gpu_percent, gpu.gpu_memory, gpu.gpu_memory_total) == (2, 50.0, 4198 * MiB, 49128 * MiB)
        assert usage_text(gpu).endswith("gpu 50% · 4.1/48.0 GiB")
        assert nosmi.gpus is None
        assert nosmi.gpu_problem == "no nvidia-smi in the container (GPU runtime without 'utility'?)"
        assert broken.gpu_problem == ("nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't "
                                      "communicate with the NVIDIA driver.")
        assert "Traceback" not in usage_text(broken) and "\n" not in usage_text(broken)
        execs: dict[str, int] = {}
        for ev in docker_client.events(since=since, until=time.time() + 1, decode=True,
                                       filters={"type": "container", "label": f"fb.test={label}"}):
            if ev.get("Action", "").startswith("exec_create"):
                execs[ev["Actor"]["ID"]] = execs.get(ev["Actor"]["ID"], 0) + 1
        # the stage without GPUs never; each stage with GPUs once over two polls (the cache)
        assert execs == {cs["gpu"].id: 1, cs["nosmi"].id: 1, cs["broken"].id: 1}
        table = _table([cpu, gpu, nosmi, broken])
        assert [c.header for c in table.columns][-2:] == ["GPU", "GPU MEM"]
        assert list(table.columns[-2].cells) == ["-", "50%", "?", "?"]
        assert list(table.columns[-1].cells)[:2] == ["-", "4.1/48.0 GiB"]
        assert "no GPU reading (no nvidia-smi in the container" in str(table.caption)
        assert [c.header for c in _table([cpu]).columns][-1] == "PIDS"  # no GPU columns in a CPU-only table
    finally:
        for c in cs.values():
            c.remove(force=True)
