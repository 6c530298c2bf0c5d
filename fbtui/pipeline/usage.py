"""What running stages use now (#14, item 7): CPU %, memory against its limit and processes, from
each engine's stats API. A `one_shot` read costs ~10 ms (a streamed one waits ~2 s for its second
sample), so CPU % is the change between two polls of one poller: the first poll of a container
has memory and processes but no CPU % yet. GPU use is not in the engine's stats: for a stage that
was given GPUs it is read by running nvidia-smi in its container (mounted by the NVIDIA runtime with
the `utility` capability), at most every GPU_EVERY_S per container; a stage without GPUs is never
exec'd into. A failed read says why in one line; a figure nvidia-smi does not give is never guessed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fbtui.output import size_text

GPU_EVERY_S = 5.0  # an exec costs three engine calls and starts a process: not on every 2 s poll
GPU_QUERY = ["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used,memory.total",
             "--format=csv,noheader,nounits"]
MiB = 2**20

if TYPE_CHECKING:
    import docker

    from fbtui.pipeline.hosts import Hosts
    from fbtui.store import Store


@dataclass
class StageUsage:
    run: int
    project: str
    stage: str
    host: str
    container: str
    cpu_percent: float | None = None  # of one CPU: 150 = one and a half CPUs busy
    memory: int | None = None  # bytes in use, page cache left out
    memory_limit: int | None = None
    pids: int | None = None
    problem: str | None = None  # why there is no reading (its host does not answer, it just ended)
    # GPUs (only for a stage given GPUs): utilisation is the mean over its GPUs, memory the sum
    gpus: int | None = None  # how many GPUs nvidia-smi listed in the container
    gpu_percent: float | None = None  # None where no GPU reported it ([N/A], [Not Supported])
    gpu_memory: int | None = None  # bytes, summed over the GPUs that report it
    gpu_memory_total: int | None = None
    gpu_problem: str | None = None  # why a stage given GPUs has no GPU figures


@dataclass(frozen=True)
class GpuReading:
    gpus: int = 0
    percent: float | None = None
    memory: int | None = None
    memory_total: int | None = None
    problem: str | None = None


def _number(text: str) -> float | None:
    """A CSV value of nvidia-smi; `[N/A]`, `[Not Supported]`, `[Unknown Error]` and the like are None."""
    text = text.strip()
    if not text or text.startswith("["):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_nvidia_smi(text: str) -> GpuReading:
    """`index, utilization.gpu, memory.used, memory.total` lines (nounits: %, MiB, MiB), one per GPU.
    Utilisation is averaged and memory summed over the GPUs that report it; a figure no GPU reports
    stays None. Other lines (a driver's warning) are left out; with no GPU line it is a problem."""
    rows = [r for r in (line.split(",") for line in text.splitlines()) if len(r) == 4 and r[0].strip().isdigit()]
    if not rows:
        first = text.strip().splitlines()[0][:80] if text.strip() else "no output"
        return GpuReading(problem=f"nvidia-smi said: {first}")
    util = [v for v in (_number(r[1]) for r in rows) if v is not None]
    used = [v for v in (_number(r[2]) for r in rows) if v is not None]
    total = [v for v in (_number(r[3]) for r in rows) if v is not None]
    return GpuReading(
        gpus=len(rows),
        percent=round(sum(util) / len(util), 1) if util else None,
        memory=int(sum(used) * MiB) if used else None,
        memory_total=int(sum(total) * MiB) if total else None,
    )


def read_gpus(client: docker.DockerClient, container: str) -> GpuReading:
    """nvidia-smi run in the container; every failure is one short reason."""
    try:
        ex = client.api.exec_create(container, GPU_QUERY, stdout=True, stderr=True)
        stdout, stderr = client.api.exec_start(ex["Id"], demux=True)
        code = client.api.exec_inspect(ex["Id"]).get("ExitCode")
    except Exception as e:  # the container just ended, the host went away
        return GpuReading(problem=f"nvidia-smi: {type(e).__name__}: {str(e)[:80]}")
    text = (stdout or b"").decode(errors="replace")
    out = text + (stderr or b"").decode(errors="replace")  # the reason of a failure can be in either
    if code in (126, 127) or "executable file not found" in out:
        return GpuReading(problem="no nvidia-smi in the container (GPU runtime without 'utility'?)")
    if code != 0:
        first = out.strip().splitlines()[0][:80] if out.strip() else "no output"
        return GpuReading(problem=f"nvidia-smi failed (exit {code}): {first}")
    return parse_nvidia_smi(text)


def running_stages(store: Store) -> list[dict[str, Any]]:
    return store.query(
        "SELECT s.run_id, s.name, s.host, s.container_id, s.gpus, r.project "
        "FROM stages s JOIN runs r ON r.id = s.run_id "
        "WHERE s.status = 'running' AND s.container_id IS NOT NULL ORDER BY s.run_id, s.id")


def memory_in_use(mem: dict[str, Any]) -> int | None:
    """Usage less the page cache, as `docker stats` shows it (cgroup v1: cache; v2: inactive_file)."""
    if "usage" not in mem:
        return None
    stats = mem.get("stats") or {}
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0
    return max(0, int(mem["usage"]) - int(cache))


class UsagePoller:
    """Polls stage containers; keep one across polls so CPU % can be computed."""

    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts
        self.prev: dict[str, tuple[float, float]] = {}  # container -> (its CPU ns, the system's CPU ns)
        self.gpu_every = GPU_EVERY_S
        self.gpu_cache: dict[str, tuple[float, GpuReading]] = {}  # container -> (when read, reading)
        self._lock = threading.Lock()

    def poll(self, stages: list[dict[str, Any]]) -> list[StageUsage]:
        """One reading per running stage, read in parallel (8 stages cost about one call)."""
        if not stages:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(stages))) as pool:
            return list(pool.map(self._one, stages))

    def _one(self, st: dict[str, Any]) -> StageUsage:
        u = StageUsage(st["run_id"], st["project"], st["name"], st["host"], st["container_id"])
        config = self.hosts.config.get(st["host"])
        if config is not None and config.kind == "slurm":  # the job's node is Slurm's: no engine to ask here
            u.problem = f"Slurm job {st['container_id']}: use is not read (sstat needs accounting)"
            return u
        try:
            client: docker.DockerClient = self.hosts.client(st["host"])
            s = client.api.stats(st["container_id"], stream=False, one_shot=True)
        except Exception as e:  # a host that does not answer, a container that just ended: said, not raised
            u.problem = f"{type(e).__name__}: {str(e)[:120]}"
            return u
        cpu = s.get("cpu_stats") or {}
        total = float((cpu.get("cpu_usage") or {}).get("total_usage") or 0)
        system = float(cpu.get("system_cpu_usage") or 0)
        online = int(cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1)
        with self._lock:
            before = self.prev.get(u.container)
            self.prev[u.container] = (total, system)
        if before and system > before[1] and total >= before[0]:
            u.cpu_percent = round((total - before[0]) / (system - before[1]) * online * 100, 1)
        mem = s.get("memory_stats") or {}
        u.memory = memory_in_use(mem)
        limit = mem.get("limit")
        u.memory_limit = int(limit) if limit and int(limit) < 2**62 else None  # no limit: the kernel's maximum
        u.pids = (s.get("pids_stats") or {}).get("current")
        if st.get("gpus") and st["gpus"] != "0":  # given GPUs (ids "0,1" or a count): only then an exec
            self._gpus(client, u)
        return u

    def _gpus(self, client: docker.DockerClient, u: StageUsage) -> None:
        now = time.monotonic()
        with self._lock:
            cached = self.gpu_cache.get(u.container)
        if cached and now - cached[0] < self.gpu_every:
            g = cached[1]
        else:
            g = read_gpus(client, u.container)
            with self._lock:
                self.gpu_cache[u.container] = (now, g)
        if g.problem:
            u.gpu_problem = g.problem
        else:
            u.gpus, u.gpu_percent, u.gpu_memory, u.gpu_memory_total = g.gpus, g.percent, g.memory, g.memory_total

    def sample(self, store: Store, gap: float = 1.0) -> list[StageUsage]:
        """Two polls `gap` apart: every reading has its CPU % (for a command run once)."""
        stages = running_stages(store)
        self.poll(stages)
        time.sleep(gap)
        return self.poll(stages)


def usage_text(u: StageUsage) -> str:
    """`cpu 97% · mem 312.0 MiB / 4.0 GiB · 12 pids` (the run view's line)."""
    if u.problem:
        return f"no reading ({u.problem})"
    cpu = "cpu …" if u.cpu_percent is None else f"cpu {u.cpu_percent:.0f}%"
    mem = f"mem {size_text(u.memory)}" + (f" / {size_text(u.memory_limit)}" if u.memory_limit else "")
    return " · ".join(x for x in (cpu, mem, f"{u.pids} pids" if u.pids is not None else "", gpu_text(u)) if x)


def gpu_text(u: StageUsage) -> str:
    """`gpu 87% · 3.1/24.0 GiB` (mean utilisation, memory summed over the stage's GPUs); "" for a
    stage without GPUs; `gpu: <why not>` where its GPUs could not be read."""
    if u.gpu_problem:
        return f"gpu: {u.gpu_problem}"
    if not u.gpus:
        return ""
    pct = "gpu n/a" if u.gpu_percent is None else f"gpu {u.gpu_percent:.0f}%"  # [N/A]: said, not guessed
    if u.gpu_memory is None:
        return pct
    if not u.gpu_memory_total:
        return f"{pct} · {u.gpu_memory / 2**30:.1f} GiB"
    return f"{pct} · {u.gpu_memory / 2**30:.1f}/{u.gpu_memory_total / 2**30:.1f} GiB"
