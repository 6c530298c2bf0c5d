"""Starting what waits: Docker hosts through fbtui's placement, Slurm hosts by submitting what the
Docker hosts cannot start now (Slurm queues and places it; fbtui does not second-guess it)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from fbtui.backends import is_slurm
from fbtui.errors import FBError
from fbtui.pipeline import slurm_stage
from fbtui.pipeline.health import unreachable
from fbtui.pipeline.ingest import store_fault
from fbtui.pipeline.placement import Waiting, place

if TYPE_CHECKING:
    from fbtui.config.models import StageSpec
    from fbtui.pipeline.supervisor import Supervisor


def start_waiting(sup: Supervisor, waiting: list[tuple[Waiting, dict[str, Any], StageSpec]]) -> None:
    """Place the waiting stages (first come, first served, by run) and start those that fit. A
    Slurm host takes what the Docker hosts cannot start now: Slurm queues and places it."""
    hosts = sup.lab.config.hosts
    engines = {h for w, _, _ in waiting for h in w.hosts if not is_slurm(hosts, h)}
    views, down = sup.views.read(engines) if engines else ({}, {})
    queue, clusters = [], {}
    for w, run, spec in waiting:
        for h in w.hosts:  # a controller that does not answer is probed off this loop, not asked again here
            if is_slurm(hosts, h) and sup.health.down_for(h) is not None:
                down[h] = sup.health.reason(h)
                sup.health.probe(h)
        clusters[(run["id"], spec.name)] = [h for h in w.hosts if is_slurm(hosts, h) and h not in down]
        up = [h for h in w.hosts if h in views]
        if not up and not clusters[(run["id"], spec.name)]:
            sup._wait(run, spec.name, "waiting: " + "; ".join(down.get(h, f"{h}: unknown") for h in w.hosts))
            continue
        w.hosts = up
        queue.append((w, run, spec))
    placed = iter(place([w for w, _, _ in queue if w.hosts], views))
    for w, run, spec in queue:
        d = next(placed) if w.hosts else None
        if d is None or d.host is None:
            cluster = slurm_stage.cluster_with_room(sup, clusters[(run["id"], spec.name)])
            if cluster is not None:
                slurm_stage.submit_or_wait(sup, run, spec, cluster, w.request)
            elif d is not None:
                sup._wait(run, spec.name, d.reason)
            else:
                sup._wait(run, spec.name, "waiting: " + slurm_stage.full_reason(sup, clusters[
                    (run["id"], spec.name)]))
            continue
        try:
            sup.start_stage(run, sup.store.stage(run["id"], spec.name), spec, d.host, d.gpus, w.request)
        except Exception as e:
            if unreachable(e):  # the host stopped answering between reading and starting: it waits
                sup.hosts.forget(d.host)
                sup.health.failed(d.host, e)
                sup._wait(run, spec.name, f"waiting: {sup.health.reason(d.host)}")
            elif isinstance(e, FBError) and store_fault(e, sup.store.path) is None:
                sup.fail_run(run["id"], e.message)
            else:  # the store or something unforeseen: retried next tick
                sup.hosts.forget(d.host)
                print(f"run {run['id']}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)

