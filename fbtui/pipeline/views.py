"""Placement's view of the hosts (capacity, what runs there), read in parallel with a deadline.

A host that is down is not asked (its health probe runs elsewhere), and one that does not answer in
time holds up nobody: its call finishes, or not, on its own thread, and the host waits.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from fbtui.pipeline.capacity import engine_size, host_view
from fbtui.pipeline.health import describe, unreachable

if TYPE_CHECKING:
    from fbtui.pipeline.placement import Host
    from fbtui.pipeline.supervisor import Supervisor

ENGINE_SIZE_TTL = 60.0  # seconds an engine's CPU and memory figures are trusted
VIEW_DEADLINE = 5.0  # placement waits this long for the hosts' views, then goes on without the slow ones


class HostViews:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.sizes: dict[str, tuple[float, tuple[float, int, bool]]] = {}  # host -> (when, engine_size)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="host-view")
        self._calls: dict[str, Future[Host]] = {}

    def read(self, names: set[str]) -> tuple[dict[str, Host], dict[str, str]]:
        """The views of these hosts, and why the others could not be read."""
        health = self.sup.health
        views: dict[str, Host] = {}
        down: dict[str, str] = {}
        asked: dict[str, Future[Host]] = {}
        for name in sorted(names):
            if health.down_for(name) is not None:
                health.probe(name)
                down[name] = health.reason(name)
                continue
            earlier = self._calls.get(name)
            if earlier is not None and not earlier.done():
                down[name] = f"{name} is still answering an earlier call"
                continue
            asked[name] = self._calls[name] = self._pool.submit(self._view, name)
        if asked:
            wait(list(asked.values()), timeout=VIEW_DEADLINE)
        for name, call in asked.items():
            if not call.done():
                health.failed(name, f"no answer in {VIEW_DEADLINE:g} s")
                down[name] = health.reason(name)
                continue
            try:
                views[name] = call.result()
                health.ok(name)
            except Exception as e:
                self.sup.hosts.forget(name)
                if unreachable(e):
                    health.failed(name, e)
                down[name] = health.reason(name) if unreachable(e) else describe(e)
        return views, down

    def _view(self, name: str) -> Host:
        sup = self.sup
        client = sup.hosts.client(name)
        size = self.sizes.get(name)
        if size is None or time.monotonic() - size[0] > ENGINE_SIZE_TTL:
            size = self.sizes[name] = (time.monotonic(), engine_size(client))  # host_view applies caps
        return host_view(name, sup.lab.config.hosts[name], client, sup.instance, size[1])
