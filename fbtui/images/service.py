"""Image operations the CLI and the app share: ensure a project's image on a host, list, collect."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError, UsageError
from fbtui.images.ensure import Ensurer, EnsureResult
from fbtui.images.events import EventSink, ignore
from fbtui.images.plan import Layer, base_layer, env_layer, project_layer

if TYPE_CHECKING:
    import docker

    from fbtui.lab import Lab
    from fbtui.store import Store


def host_client(lab: Lab, host: str) -> docker.DockerClient:
    """The process's client for a lab host (shared: do not close it; ssh hosts go through a tunnel)."""
    from fbtui.backends import image_host
    from fbtui.pipeline.hosts import shared_hosts

    if host not in lab.config.hosts:
        known = ", ".join(lab.config.hosts)
        raise UsageError(f"unknown host '{host}' (hosts in lab.yaml: {known})")
    return shared_hosts(lab.root, lab.config.hosts).client(image_host(lab.config.hosts, host))


def ensure_project_image(lab: Lab, project: str, *, host: str = "local", store: Store | None = None,
                         emit: EventSink = ignore, builder: str | None = None) -> EnsureResult:
    """Make the project's image present on `host`; returns its tag and what was done per layer. For
    a Slurm host: on its `engine`, and pushed to the lab registry (its nodes pull) where there is one."""
    from fbtui.backends import image_host, is_slurm
    from fbtui.gitstate import capture

    if is_slurm(lab.config.hosts, host):
        result = ensure_project_image(lab, project, host=image_host(lab.config.hosts, host), store=store, emit=emit,
                                      builder=builder)
        if lab.config.registry is not None:
            from fbtui.images.registry import push

            layer = project_layer(lab, project)
            moved = push(host_client(lab, host), layer, lab.config.registry.address, emit)
            if store is not None:  # the Slurm host's image records keep the reference its nodes pull
                record_layers(lab, project, host, store)
                with store.write() as c:
                    c.execute("UPDATE images SET registry_ref = ?, registry_digest = ? WHERE tag = ?",
                              (moved.ref, moved.digest, layer.tag))
        return result

    layer = project_layer(lab, project)
    state = capture(lab.root)
    commit = (state.sha[:10] + ("-dirty" if state.dirty else "")) if state.sha else None
    commit_id = store.record_commit(state) if store is not None else None
    client = host_client(lab, host)
    local = host_client(lab, "local") if host != "local" else None
    return Ensurer(lab, client, host=host, local=local, store=store, emit=emit, commit=commit,
                   commit_id=commit_id, builder=builder).ensure(layer)


def record_layers(lab: Lab, project: str, host: str, store: Store | None = None) -> list[dict[str, Any]]:
    """The project's image layers on `host`, base first: tag, inputs hash and image ID. A layer the
    store has no row for (found present: another checkout built it) gets one now, with its pip freeze
    taken now (about a second, once per image and store), so every run's record names the exact
    images it ran on and what they hold."""
    import json

    from fbtui.images.ensure import image_id
    from fbtui.images.freeze import recorded_packages, timed_freeze

    client = host_client(lab, host)
    out = []
    for layer in project_layer(lab, project).chain:
        digest = image_id(client, layer.tag)
        out.append({"layer": layer.kind, "name": layer.name, "tag": layer.tag, "inputs_hash": layer.inputs_hash,
                    "id": digest, "host": host})
        if store is not None and digest and not store.query(
                "SELECT 1 FROM images WHERE tag = ? AND host = ?", (layer.tag, host)):
            packages = recorded_packages(store, digest=digest) or timed_freeze(client, digest, lab=layer.lab)[0]
            store.record_image(tag=layer.tag, digest=digest, layer=layer.kind, name=layer.name,
                               inputs_hash=layer.inputs_hash, parent=layer.parent.tag if layer.parent else None,
                               host=host, lab=layer.lab, build_seconds=None,
                               packages=None if packages is None else json.dumps(packages))
    return out


def current_layers(lab: Lab) -> dict[str, Layer]:
    """inputs hash -> layer, for every layer the lab's projects and environments need now."""
    out: dict[str, Layer] = {}
    layers: list[Layer] = [base_layer(lab)]
    for env in lab.environment_names():
        try:
            layers.extend(env_layer(lab, env).chain)
        except FBError:
            continue
    for name in lab.project_names():
        try:
            layers.extend(project_layer(lab, name).chain)
        except FBError:
            continue
    for layer in layers:
        out[layer.inputs_hash] = layer
    return out


@dataclass
class ImageRow:
    host: str
    tags: list[str]
    id: str
    layer: str
    name: str
    inputs_hash: str
    created: str
    size: int
    current: bool

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def list_images(lab: Lab, host: str = "local") -> list[ImageRow]:
    client = host_client(lab, host)
    current = current_layers(lab)
    rows = []
    for img in client.api.images(filters={"label": f"fb.lab={lab.config.name}"}):
        labels = img.get("Labels") or {}
        rows.append(ImageRow(
            host=host, tags=sorted(img.get("RepoTags") or []), id=img["Id"], layer=labels.get("fb.layer", ""),
            name=labels.get("fb.name", ""), inputs_hash=labels.get("fb.inputs-hash", ""),
            created=time.strftime("%Y-%m-%d %H:%M", time.localtime(img.get("Created", 0))),
            size=int(img.get("Size") or 0), current=labels.get("fb.inputs-hash") in current,
        ))
    order = {"base": 0, "env": 1, "proj": 2}
    return sorted(rows, key=lambda r: (order.get(r.layer, 3), r.name, not r.current, r.created))


@dataclass
class Skipped:
    image: ImageRow
    why: str


def collect_garbage(lab: Lab, store: Store | None, *, host: str = "local", days: float = 14,
                    delete: bool = False) -> tuple[list[ImageRow], list[str], list[Skipped]]:
    """Stale fb images of this lab (not what it needs now) that this checkout's store built or
    used, that no run used in the last `days` days, that no other store on this machine records and
    that no container uses. Returns (candidates, errors, skipped with why); removes only when `delete`."""
    from fbtui.store.registry import images_recorded, other_stores

    rows = [r for r in list_images(lab, host) if not r.current]
    mine: set[str] = set()
    recent: set[str] = set()
    if store is not None:
        since = time.time() - days * 86400
        recent = {r["image"] for r in store.query("SELECT DISTINCT image FROM runs WHERE created_at >= ? "
                                                  "AND image IS NOT NULL", (since,))}
        mine = images_recorded(store.path)
    others = {str(p): images_recorded(p) for p in other_stores(store.path if store is not None else lab.store_path)}
    client = host_client(lab, host)
    used: dict[str, str] = {}
    for c in client.api.containers(all=True):
        used.setdefault(c.get("ImageID") or "", c.get("Names", ["?"])[0].lstrip("/"))
    candidates: list[ImageRow] = []
    skipped: list[Skipped] = []
    for r in rows:
        refs = {*r.tags, r.id}
        other = next((path for path, seen in others.items() if refs & seen), None)
        if r.id in used:
            skipped.append(Skipped(r, f"container {used[r.id]} uses it"))
        elif other is not None:
            skipped.append(Skipped(r, f"another checkout's store records it ({other})"))
        elif not refs & mine:
            skipped.append(Skipped(r, "this checkout's store neither built nor used it"))
        elif refs & recent:
            skipped.append(Skipped(r, f"a run used it in the last {days:g} days"))
        else:
            candidates.append(r)
    errors: list[str] = []
    if delete and candidates:
        # Children first: an image with a child cannot be removed.
        for r in sorted(candidates, key=lambda r: {"proj": 0, "env": 1, "base": 2}.get(r.layer, 3)):
            try:
                for ref in r.tags or [r.id]:  # untag one by one: never force out a used image
                    client.api.remove_image(ref)
            except Exception as e:  # report and go on: one busy image must not stop the rest
                errors.append(f"{', '.join(r.tags) or r.id[:19]}: {str(e)[:200]}")
    return candidates, errors, skipped


@dataclass
class LayerState:
    kind: str  # base | env | proj
    repo: str
    tag: str
    state: str  # current | stale | unknown


def layer_states(lab: Lab, project: str, host: str = "local") -> tuple[list[LayerState], str | None]:
    """Each layer of the project's image and whether its current tag is on the host's engine (a
    layer whose inputs changed since its last build has a new tag, not there yet: stale), and why
    freshness is unknown when the plan or the engine fails (then states stay 'unknown')."""
    try:
        chain = project_layer(lab, project).chain
    except FBError as e:
        return [], e.message
    rows = [LayerState(x.kind, x.repo, x.tag, "unknown") for x in chain]
    try:
        client = host_client(lab, host)
        for r in rows:
            try:
                client.api.inspect_image(r.tag)
                r.state = "current"
            except Exception as e:
                if type(e).__name__ == "ImageNotFound" or getattr(e, "status_code", None) == 404:
                    r.state = "stale"
                else:
                    raise
    except Exception as e:
        return rows, engine_problem(e)
    return rows, None


def engine_problem(e: BaseException) -> str:
    """An engine failure as one line for a person."""
    msg = getattr(e, "message", None) or str(e)
    return msg.splitlines()[0][:200] if msg else type(e).__name__
