"""Following runs from the CLI: stage transitions and log lines as plain text, read from the store
and the spool files (the supervisor writes both; following never talks to an engine)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from fbtui.pipeline.ingest import degraded_note
from fbtui.pipeline.logs import read_spool
from fbtui.pipeline.supervisor import ensure_supervisor, run_folder
from fbtui.store.opening import disk_full

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

TERMINAL = ("succeeded", "failed", "cancelled")


def reattach(lab: Lab, store: Store) -> None:
    """Runs in progress and nobody supervising them (a crash, a reboot): start a supervisor."""
    from fbtui.store.opening import writable

    active = store.query("SELECT COUNT(*) AS n FROM runs WHERE status IN ('queued', 'running')")[0]["n"]
    if active and writable(store.path):  # a reader of a store it may not write leaves supervising to others
        ensure_supervisor(lab)


def _duration(st: dict) -> str:  # type: ignore[type-arg]
    if st.get("started_at") and st.get("finished_at"):
        return f" ({st['finished_at'] - st['started_at']:.1f} s)"
    return ""


def follow_runs(lab: Lab, store: Store, run_ids: list[int], out: TextIO | None = None, *, logs: bool = True,
                poll: float = 0.2) -> dict[int, str]:
    """Print until every run has ended; returns run id -> final status."""
    out = out or sys.stdout
    many = len(run_ids) > 1
    seen: dict[tuple[int, str], str] = {}
    offsets: dict[tuple[int, str], int] = {}
    run_seen: dict[int, str] = {}
    degraded: dict[tuple[int, str], str | None] = {}
    last_check = 0.0
    while True:
        finals: dict[int, str] = {}
        full = disk_full(store.path)  # nothing can record progress: every running stage waits
        for rid in run_ids:
            run = store.run(rid)
            # a re-evaluation (or a suite's evaluation) is said as the run it evaluates
            name = f"#{run['eval_of']} ({'suite ' + run['suite'] if run.get('suite') else 'again'})" \
                if run["eval_of"] else f"#{rid}"
            if run_seen.get(rid) != run["status"]:
                run_seen[rid] = run["status"]
                label = f"run {name}" + (f" [{run['variant']}]" if run["variant"] else "")
                where = f" on {run['host']}" if run["host"] and run["status"] == "running" else ""
                print(f"{label}: {run['status']}{where}", file=out, flush=True)
            for st in store.stages(rid):
                key = (rid, st["name"])
                if logs and st["status"] in ("running", *TERMINAL):
                    spool = run_folder(lab, rid) / f"{st['name']}.log"
                    lines, offsets[key] = read_spool(spool, start=offsets.get(key, 0))
                    prefix = f"  [{name} {st['name']}] " if many else "  | "
                    for line in lines:
                        print(prefix + line[:2000], file=out)
                if seen.get(key) != st["status"] and st["status"] != "pending":
                    seen[key] = st["status"]
                    reason = f": {st['reason']}" if st["reason"] and st["status"] != "succeeded" else ""
                    print(f"run {name} stage {st['name']}: {st['status']}{_duration(st)}{reason}", file=out,
                          flush=True)
                why = (st.get("degraded") or ("disk full" if full else None)) if st["status"] == "running" else None
                if why != degraded.get(key):  # the store cannot take its progress (or takes it again)
                    if why or st["status"] == "running":  # an ended stage's line said how it ended
                        note = degraded_note(st, full) if why else "caught up (the store takes its progress again)"
                        print(f"run {name} stage {st['name']}: {note}", file=out, flush=True)
                    degraded[key] = why
            if run["status"] in TERMINAL:
                finals[rid] = run["status"]
        out.flush()
        if len(finals) == len(run_ids):
            return finals
        if time.monotonic() - last_check > 5:  # the supervisor died? start another
            last_check = time.monotonic()
            reattach(lab, store)
        time.sleep(poll)
