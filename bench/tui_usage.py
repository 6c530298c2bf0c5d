"""Resource polling of 8 running stages in the app (#14: "without raising keypress p95"): the hosts
screen with 8 stages backed by real containers (4 busy, 4 asleep; from fb/torch-stand-in:2.13.0,
labelled with this run's own label and removed after), keypresses timed with its usage poller
running and with it switched off, in the same run. Called from bench/tui.py; alone:

    DOCKER_HOST=$(scripts/engine) .venv/bin/python bench/tui_usage.py [--seconds 10]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

IMAGE = "fb/torch-stand-in:2.13.0"
BUSY = "import time\nt = time.time()\nwhile time.time() - t < 900: pass"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def start_containers(n: int, label: str) -> list[Any]:
    import docker

    client = docker.from_env(version="auto")
    out = []
    for i in range(n):
        cmd = ["python3", "-c", BUSY] if i % 2 == 0 else ["sleep", "900"]
        # a tenth of a CPU each: the machine is shared, and the engine's stats cost the same
        out.append(client.containers.run(IMAGE, cmd, detach=True, labels={"fb.bench": label},
                                         nano_cpus=10**8, mem_limit=128 * 2**20))
    return out


def remove_containers(label: str) -> None:
    import docker

    client = docker.from_env(version="auto")
    for c in client.containers.list(all=True, filters={"label": f"fb.bench={label}"}):
        c.remove(force=True)


async def keypresses(lab_root: Path, seconds: float, polling: bool) -> dict[str, float]:
    """Keypress p50/p95 (from the key to its action having run) and event-loop lag on the hosts
    screen, its usage poll on (every 2 s, as in the app) or off; and what a poll of 8 stages costs."""
    from fbtui.lab import Lab
    from fbtui.pipeline.usage import UsagePoller
    from fbtui.tui.app import FBApp
    from fbtui.tui.screens import hosts
    from fbtui.tui.screens.hosts import HostsScreen
    from fbtui.tui.widgets.table import FastTable

    polls: list[float] = []
    poll = UsagePoller.poll

    def timed(self: UsagePoller, stages: list[dict[str, Any]]) -> list[Any]:
        t = time.perf_counter()
        try:
            return poll(self, stages)
        finally:
            polls.append(time.perf_counter() - t)

    every = hosts.USAGE_S
    UsagePoller.poll = timed  # type: ignore[method-assign]
    if not polling:
        hosts.USAGE_S = 1e9  # the first reading fills the table (the same rows to draw), then no more
    keys: list[float] = []
    lags: list[float] = []
    try:
        app = FBApp(Lab.find(str(lab_root)), check_engine=False, restore=False)
        async with app.run_test(size=(120, 40)) as pilot:
            app.open_hosts()
            while not (isinstance(app.screen, HostsScreen) and app.screen.query("#host-usage")):
                await pilot.pause(0.01)
            table = app.screen.query_one("#host-usage", FastTable)
            while len(table.rows) < 8:
                await pilot.pause(0.05)
            table.focus()
            polls.clear()
            end = time.perf_counter() + seconds
            n = 0
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append((time.perf_counter() - t0 - 0.01) * 1000)
                n += 1
                if n % 10 == 0:  # a keypress: s sorts the table by its next column (a repaint)
                    before = table.sort_column
                    t1 = time.perf_counter()
                    app.simulate_key("s")
                    while table.sort_column == before and time.perf_counter() - t1 < 5:
                        await asyncio.sleep(0.0005)
                    keys.append((time.perf_counter() - t1) * 1000)
            rows = len(table.rows)
    finally:
        UsagePoller.poll = poll  # type: ignore[method-assign]
        hosts.USAGE_S = every
    return {"key_p50_ms": statistics.median(keys), "key_p95_ms": pct(keys, 95), "keys": len(keys),
            "lag_p95_ms": pct(lags, 95), "polls": len(polls), "rows": rows,
            "poll_ms": statistics.median(polls) * 1000 if polls else 0.0}


def usage_polling(lab_root: Path, seconds: float) -> dict[str, dict[str, float]]:
    """8 runs, each with its train stage running in a real container; the same screen and keys
    with the usage poller off, then on."""
    from fbtui.lab import Lab
    from fbtui.store import Store
    from tests.test_tui_data import make_run

    label = f"tui-usage-{uuid.uuid4().hex[:8]}"
    try:
        containers = start_containers(8, label)
        lab = Lab.find(str(lab_root))
        with Store(lab.store_path) as store:
            for i, c in enumerate(containers):
                rid = make_run(store, lab, status="running", offset=1000 + i)
                store.set_stage_status(rid, "train", "running", container_id=c.id, host="local")
        off = asyncio.run(keypresses(lab_root, seconds, polling=False))
        on = asyncio.run(keypresses(lab_root, seconds, polling=True))
    finally:
        remove_containers(label)
    return {"off": off, "on": on}


def report(u: dict[str, dict[str, float]]) -> str:
    off, on = u["off"], u["on"]
    return (f"resource polling of {on['rows']:.0f} running stages (hosts screen, every 2 s; a poll "
            f"{on['poll_ms']:.0f} ms median, {on['polls']:.0f} polls): keypress p95 {on['key_p95_ms']:.1f} ms "
            f"(p50 {on['key_p50_ms']:.1f}) vs {off['key_p95_ms']:.1f} ms (p50 {off['key_p50_ms']:.1f}) without; "
            f"event-loop lag p95 {on['lag_p95_ms']:.1f} vs {off['lag_p95_ms']:.1f} ms")


def main() -> None:
    import argparse
    import shutil
    import signal
    import tempfile

    from tests.labs import copy_lab

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # (a timeout's kill still removes the containers)
    tmp = Path(tempfile.mkdtemp(prefix="fb-bench-usage-"))
    try:
        print(report(usage_polling(copy_lab(tmp / "lab"), args.seconds)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
