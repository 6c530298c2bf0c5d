"""`fbtui top`: what the running stages use now, on every host (#14, item 7)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from fbtui.commands.common import Command, lab_of, read_store


def add_parsers(sub: Any, cmd: Command) -> None:
    top = cmd("top", "what running stages use now: CPU %%, memory, processes, GPUs",
              "What each running stage uses now, on every host, from the engines' stats: CPU % (100 is\n"
              "one CPU busy), memory in use against its limit, processes; for a stage given GPUs, their\n"
              "utilisation (the mean) and memory (summed), from nvidia-smi in its container, read at most\n"
              "every 5 s. It refreshes every 2 s\n"
              "until Ctrl-C; --once prints one reading (two samples a second apart) and exits.\n\n"
              "examples:\n  fbtui top\n  fbtui top --once\n  fbtui top --json")
    top.add_argument("--once", action="store_true", help="one reading, then exit")
    top.add_argument("--json", action="store_true", help="one reading as JSON")
    top.add_argument("--every", type=float, default=2.0, metavar="S", help="seconds between readings (2)")


def _table(readings: list[Any]) -> Any:
    from rich.table import Table

    from fbtui.pipeline.usage import size_text

    # GPU columns only where a stage has GPUs: a CPU-only lab's table stays as wide as it was
    gpu = any(u.gpus or u.gpu_problem for u in readings)
    t = Table(box=None, pad_edge=False, header_style="bold")
    cols = ("RUN", "PROJECT", "STAGE", "HOST", "CPU", "MEMORY", "LIMIT", "PIDS") + (("GPU", "GPU MEM") if gpu else ())
    for col in cols:
        t.add_column(col, justify="left" if col in ("RUN", "PROJECT", "STAGE", "HOST") else "right")
    reasons = []
    for u in readings:
        if u.problem:
            t.add_row(f"#{u.run}", u.project, u.stage, u.host, *["-"] * (len(cols) - 4))
            continue
        row = [f"#{u.run}", u.project, u.stage, u.host, "…" if u.cpu_percent is None else f"{u.cpu_percent:.0f}%",
               size_text(u.memory), size_text(u.memory_limit) if u.memory_limit else "none",
               str(u.pids) if u.pids is not None else "-"]
        if gpu:
            row += _gpu_cells(u)
        if u.gpu_problem:
            reasons.append(f"#{u.run} {u.stage}: no GPU reading ({u.gpu_problem})")
        t.add_row(*row)
    if reasons:
        t.caption, t.caption_justify = "\n".join(reasons), "left"
    return t


def _gpu_cells(u: Any) -> list[str]:
    """Utilisation (mean over the stage's GPUs) and memory (summed): `87%`, `3.1/24.0 GiB`."""
    if u.gpu_problem:
        return ["?", "?"]
    if not u.gpus:
        return ["-", "-"]
    pct = "n/a" if u.gpu_percent is None else f"{u.gpu_percent:.0f}%"
    if u.gpu_memory is None:
        return [pct, "n/a"]
    total = f"/{u.gpu_memory_total / 2**30:.1f}" if u.gpu_memory_total else ""
    return [pct, f"{u.gpu_memory / 2**30:.1f}{total} GiB"]


def cmd_top(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console
    from rich.live import Live

    from fbtui.errors import UsageError
    from fbtui.output import print_json
    from fbtui.pipeline.hosts import shared_hosts
    from fbtui.pipeline.usage import UsagePoller, running_stages

    if not 0.2 <= args.every <= 3600:
        raise UsageError(f"--every: expected seconds between 0.2 and 3600, got {args.every:g}")
    lab = lab_of(args)
    if not lab.store_path.exists():
        print("no runs yet")
        return 0
    poller = UsagePoller(shared_hosts(lab.root, lab.config.hosts))
    with read_store(lab) as store:
        if args.once or args.json:
            readings = poller.sample(store)
            if args.json:
                print_json([asdict(u) for u in readings])
            elif not readings:
                print("no stage is running")
            else:
                Console(width=None).print(_table(readings))
            return 0
        poller.poll(running_stages(store))
        with Live(console=Console(), auto_refresh=False) as live:
            try:
                while True:
                    time.sleep(args.every)
                    readings = poller.poll(running_stages(store))
                    live.update(_table(readings) if readings else "no stage is running (Ctrl-C quits)",
                                refresh=True)
            except KeyboardInterrupt:
                return 0
