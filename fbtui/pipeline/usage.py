"""What running stages use now (#14, item 7): CPU %, memory against its limit and processes, from
each engine's stats API. A `one_shot` read costs ~10 ms (a streamed one waits ~2 s for its second
sample), so CPU % is the change between two polls of one poller: the first poll of a container
has memory and processes but no CPU % yet. GPU use is not in the engine's stats; it is shown where
a host reports it, never guessed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fbtui.output import size_text

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


def running_stages(store: Store) -> list[dict[str, Any]]:
    return store.query(
        "SELECT s.run_id, s.name, s.host, s.container_id, r.project FROM stages s JOIN runs r ON r.id = s.run_id "
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
        self._lock = threading.Lock()

    def poll(self, stages: list[dict[str, Any]]) -> list[StageUsage]:
        """One reading per running stage, read in parallel (8 stages cost about one call)."""
        if not stages:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(stages))) as pool:
            return list(pool.map(self._one, stages))

    def _one(self, st: dict[str, Any]) -> StageUsage:
        u = StageUsage(st["run_id"], st["project"], st["name"], st["host"], st["container_id"])
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
        return u

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
    return " · ".join(x for x in (cpu, mem, f"{u.pids} pids" if u.pids is not None else "") if x)
