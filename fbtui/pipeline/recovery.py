"""What the supervisor does when a host stops answering, and when it answers again.

Lost is not final: a stage whose host stays silent past its grace period becomes `lost`, its
container untouched. When the host answers, the container is looked up by its name (which its
labels also carry): still running, the stage is `running` again and followed from where its log
spool and metrics offset end; exited, a watcher concludes it from its exit code, log and outputs as
if it had been watched all along. Every interruption is kept on the stage (from, to).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from fbtui.backends import is_slurm
from fbtui.pipeline import containers as ct
from fbtui.pipeline.health import describe, unreachable

if TYPE_CHECKING:
    from fbtui.config.models import StageSpec
    from fbtui.pipeline.supervisor import Supervisor

def mark_lost(sup: Supervisor, run_id: int, stage: str, host: str) -> None:
    """Past the grace period: the stage is lost (not failed), the run goes on waiting for it."""
    reason = (f"host lost: {sup.health.reason(host)}; its container is looked for again when the host answers "
              f"(fbtui cancel {run_id} gives up on it)")
    with sup._lock:
        if sup.store.stage(run_id, stage)["status"] == "running":
            sup.store.set_stage_status(run_id, stage, "lost", reason, lost_at=time.time())
            sup.store.update_run(run_id, reason=f"stage {stage}: {reason}")
    print(f"run {run_id}: stage {stage}: {reason}", flush=True)


def refind(sup: Supervisor, run: dict[str, Any], st: dict[str, Any], spec: StageSpec) -> None:
    """A lost stage: give up on it when the run is cancelled, look for its container when its host
    answers again, and otherwise wait (the host's probe runs off this loop)."""
    run_id, name, host = run["id"], st["name"], st["host"]
    if run["cancel_requested"]:
        sup.store.set_stage_status(run_id, name, "cancelled", "cancelled while its host was lost (its container is "
                                   "removed when the host answers)")
        return
    if host not in sup.lab.config.hosts:
        return  # lab.yaml no longer names it: the reason on the run says so (supervisor reload)
    if sup.health.down_for(host) is not None:
        sup.health.probe(host)
        return
    if is_slurm(sup.lab.config.hosts, host):  # the job is asked for by its id again: its watcher does that
        _interrupted(sup, run_id, name, st)
        sup.store.set_stage_status(run_id, name, "running", f"found again after host {host} answered",
                                   lost_at=None, started_at=st["started_at"])
        sup.store.update_run(run_id, reason="")
        sup.start_worker(sup.store.run(run_id), sup.store.stage(run_id, name), spec)
        return
    handle = st["container_id"] or ct.container_name(sup.lab.config.name, sup.instance, run_id, name)
    try:
        state = sup.backend(host).states([handle])[handle]
    except Exception as e:
        if unreachable(e):
            sup.hosts.forget(host)
            sup.health.failed(host, e)
            return
        print(f"run {run_id}: stage {name}: looking for its container: {describe(e)}", flush=True)
        return
    if state.phase == "gone":
        _interrupted(sup, run_id, name, st)
        sup.finish_stage(run_id, name, "failed", f"its container is gone: removed while {host} was lost")
        return
    was = "running" if state.phase == "running" else f"exited ({state.exit_code})"
    _interrupted(sup, run_id, name, st)
    sup.store.set_stage_status(run_id, name, "running", f"found again after host {host} answered: {was}",
                               lost_at=None, started_at=st["started_at"])  # its timeout counts from its start
    sup.store.update_run(run_id, reason="")
    print(f"run {run_id}: stage {name}: found again on {host}, {was}", flush=True)
    sup.start_worker(sup.store.run(run_id), sup.store.stage(run_id, name), spec)


def _interrupted(sup: Supervisor, run_id: int, name: str, st: dict[str, Any]) -> None:
    spans = json.loads(st.get("interruptions") or "[]")
    spans.append([st.get("lost_at") or time.time(), time.time()])
    sup.store.update_stage(run_id, name, interruptions=json.dumps(spans))


def requeue_if_lost(sup: Supervisor, run: dict[str, Any]) -> bool:
    """A queued run bound to a host past its grace period (a cache hit bound it; no container has
    run) goes back to the queue when another host may take it. Returns whether it did."""
    host = run["host"]
    if run["status"] != "queued" or not host or not sup.health.lost(host):
        return False
    others = [h for h in sup.requested(run) if h != host and not sup.health.lost(h)]
    if not others:
        return False
    reason = f"back in the queue: {sup.health.reason(host)}"
    sup.store.unbind_run(run["id"], reason)
    run["host"] = None
    print(f"run {run['id']}: {reason}", flush=True)
    return True


def ping(sup: Supervisor, host: str) -> None:
    """One cheap call that succeeds only when the host answers (the health probe's question)."""
    try:
        sup.backend(host).ping()
    except Exception:
        sup.hosts.forget(host)
        raise
