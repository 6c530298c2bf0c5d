"""What the engines say about capacity: each host's CPUs, memory and GPU ids, and every fb stage
container holding some of them, whichever checkout or user started it (labels `fb.checkout`,
`fb.user`, `fb.cpus`, `fb.memory`, `fb.gpus`). A container of an fb image started by hand has the
image's labels but no `fb.stage`: it is not a stage and is not counted."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING, Any

from fbtui.pipeline.placement import Holder, Host, Request

if TYPE_CHECKING:
    import docker

    from fbtui.config.models import HostConfig, StageSpec

LIVE = ("running", "created", "restarting", "paused")  # states that hold resources


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (a container with an arbitrary uid)
        return str(os.getuid())


def request_of(spec: StageSpec) -> Request:
    """A stage's request. CPUs default to 1: every stage holds at least one CPU's worth of room."""
    res = spec.resources
    gpus: int | tuple[int, ...] = tuple(res.gpus) if isinstance(res.gpus, list) else int(res.gpus or 0)
    return Request(float(res.cpus or 1), int(res.memory or 0), gpus)


def capacity_labels(req: Request, gpu_ids: tuple[int, ...], checkout: str, user: str) -> dict[str, str]:
    labels = {"fb.checkout": checkout, "fb.user": user, "fb.cpus": f"{req.cpus:g}", "fb.memory": str(req.memory)}
    if gpu_ids:
        labels["fb.gpus"] = ",".join(map(str, gpu_ids))
    elif req.gpu_count:
        labels["fb.gpus"] = f"n{req.gpu_count}"
    return labels


def stage_containers(client: docker.DockerClient) -> list[dict[str, Any]]:
    """Every fb stage container on an engine that holds resources (any lab, any checkout)."""
    found = client.api.containers(all=True, filters={"label": "fb.stage"})
    return [x for x in found if x.get("State") in LIVE]


def holder_of(container: dict[str, Any], checkout: str) -> Holder:
    labels = container.get("Labels") or {}
    gpus_label = labels.get("fb.gpus", "")
    gpu_ids = tuple(int(g) for g in gpus_label.split(",") if g.isdigit()) if not gpus_label.startswith("n") else ()
    try:
        cpus = float(labels.get("fb.cpus") or 1)  # an fb container from before these labels: one CPU
        memory = int(labels.get("fb.memory") or 0)
    except ValueError:
        cpus, memory = 1.0, 0
    theirs = labels.get("fb.checkout")
    foreign = theirs != checkout
    owner = ""
    if foreign:
        who = labels.get("fb.user") or "someone"
        owner = f"{who}'s checkout {theirs[:8]}" if theirs else f"{who}'s other checkout"
    try:
        run: int | None = int(labels.get("fb.run", ""))
    except ValueError:
        run = None
    return Holder(run, labels.get("fb.stage", "?"), Request(cpus, memory, len(gpu_ids) or 0), gpu_ids,
                  foreign, owner)


def host_view(name: str, config: HostConfig, client: docker.DockerClient, checkout: str,
              engine: tuple[float, int, bool] | None = None) -> Host:
    """A host as placement sees it. `engine` (CPUs, memory, NVIDIA runtime) saves the info call."""
    if engine is None:
        engine = engine_size(client)
    cpus, memory = capped(config, engine)
    holders = [holder_of(x, checkout) for x in stage_containers(client)]
    return Host(name, cpus, memory, gpu_ids_of(config, engine), config.slots, holders)


def gpu_ids_of(config: HostConfig, engine: tuple[float, int, bool]) -> tuple[int, ...] | None:
    """The GPU ids placement hands out: lab.yaml's list; None (the engine allocates, uncounted)
    for a host with the NVIDIA runtime but no list; () for a host without GPUs."""
    if config.gpus:
        return tuple(config.gpus)
    return None if engine[2] else ()


def capped(config: HostConfig, engine: tuple[float, int, bool]) -> tuple[float, int]:
    """The engine's CPUs and memory, within the host's cpus:/memory: caps from lab.yaml."""
    cpus, memory = engine[0], engine[1]
    if config.cpus:
        cpus = min(cpus, config.cpus)
    if config.memory:
        memory = min(memory, config.memory) if memory else config.memory
    return cpus, memory


def unfit_stages(lab: Any, project: Any, hosts: list[str], stages: list[str] | None = None) -> None:
    """Refuse, before anything is queued, a stage whose request can never fit on any of `hosts`:
    naming where the request is written, and each host's numbers."""
    from fbtui.errors import ConfigError
    from fbtui.images.service import host_client

    sizes = {}
    for h in hosts:
        config = lab.config.hosts[h]
        engine = engine_size(host_client(lab, h))
        sizes[h] = Host(h, *capped(config, engine), gpu_ids_of(config, engine), config.slots)
    for i, spec in enumerate(project.stages):
        if stages and spec.name not in stages:
            continue
        req = request_of(spec)
        why = [sizes[h].never_fits(req) for h in hosts]
        if all(why):
            from fbtui.config.yamlsrc import dotted

            src, path = project.pipeline.where[spec.name] if project.pipeline else (None, ("pipeline", i))
            raise ConfigError(f"stage {spec.name} asks for {req.text()}, which no host can ever give: "
                              + "; ".join(w for w in why if w), file=src.file if src else None,
                              line=src.line_of((*path, "resources")) if src else None,
                              key=dotted((*path, "resources")))


def engine_size(client: docker.DockerClient) -> tuple[float, int, bool]:
    """CPUs, memory and whether the NVIDIA runtime is there, as the engine reports them."""
    info = client.info()
    return float(info.get("NCPU") or 1), int(info.get("MemTotal") or 0), "nvidia" in (info.get("Runtimes") or {})
