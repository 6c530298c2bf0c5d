"""The lab's hosts."""

from __future__ import annotations

import argparse
from typing import Any

from fbtui.commands.common import Command, lab_of


def add_parsers(sub: Any, cmd: Command) -> None:
    hs = cmd("hosts", "the lab's hosts: reachable?, engine, CPUs, memory and GPUs in use, every fb stage there")
    hs.add_argument("--json", action="store_true", help="print JSON")



def cmd_hosts(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from fbtui.output import print_json, table
    from fbtui.pipeline.hosts import host_status

    lab = lab_of(args)
    names = list(lab.config.hosts)
    with ThreadPoolExecutor(max_workers=8) as pool:  # a host that does not answer must not hold up the others
        rows = list(pool.map(lambda n: host_status(lab.root, lab.config.name, lab.config.hosts, n), names))
    if args.json:
        print_json(rows)
        return 0
    print(table(["HOST", "URL", "STATE", "ENGINE", "CPUS", "MEMORY", "GPUS", "STAGES"],
                [[r["host"], r["url"], "up" if r["reachable"] else "DOWN",
                  f"{r['version']} (API {r['api']})" if r["reachable"] else (r["error"] or "")[:60],
                  f"{r['cpus_in_use']:g}/{r['cpus']:g}" + (f" ({r['in_use']}/{r['slots']} slots)" if r["slots"] else "")
                  if r["reachable"] else "-",
                  f"{r['memory_in_use'] / 2**30:.1f}/{r['memory'] / 2**30:.1f} GiB" if r["reachable"] else "-",
                  (f"{len(r['gpus_in_use'])}/{len(r['gpus'])} in use" if r["gpus"] else
                   ("nvidia runtime" if "nvidia" in r["runtimes"] else "none")),
                  ", ".join(c["text"] for c in r["containers"]) or "-"] for r in rows]))
    foreign = sum(1 for r in rows for c in r["containers"] if c["foreign"])
    if foreign:
        print(f"{foreign} of the stages are other checkouts' (foreign): counted toward capacity, never touched")
    return 0 if all(r["reachable"] for r in rows) else 1
