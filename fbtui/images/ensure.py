"""Make a layer's image present on a host, building or shipping only what that host lacks.

Local host: build each missing layer bottom-up. Remote host: base and environment images are
shipped from the local engine (save -> load, no registry) and project layers are built there from
their small context (measured: 0.5 s to rebuild remotely versus 28 s to ship a project image).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError
from fbtui.images.builders import buildkit_build, classic_build
from fbtui.images.context import context_entries, make_tar
from fbtui.images.credentials import serving
from fbtui.images.events import BuildEvent, EventSink, ignore
from fbtui.images.plan import Layer, index_credentials

if TYPE_CHECKING:
    import docker

    from fbtui.lab import Lab
    from fbtui.store import Store


@dataclass
class LayerResult:
    layer: str
    tag: str
    image_id: str
    action: str  # present | built | shipped
    seconds: float = 0.0


@dataclass
class EnsureResult:
    tag: str
    image_id: str
    layers: list[LayerResult] = field(default_factory=list)

    @property
    def built(self) -> list[LayerResult]:
        return [r for r in self.layers if r.action != "present"]


def image_id(client: docker.DockerClient, ref: str) -> str | None:
    import docker as _docker

    try:
        return str(client.api.inspect_image(ref)["Id"])
    except _docker.errors.ImageNotFound:
        return None
    except _docker.errors.NotFound:
        return None


def choose_builder(client: docker.DockerClient, setting: str) -> str:
    """'buildkit' or 'classic'. auto: what the engine builds with by default (Engine 23+: BuildKit)."""
    if setting != "auto":
        return setting
    try:
        response = client.api._get(client.api._url("/_ping"))
        return "buildkit" if response.headers.get("Builder-Version") == "2" else "classic"
    except Exception:
        return "classic"


class Ensurer:
    def __init__(self, lab: Lab, client: docker.DockerClient, *, host: str = "local",
                 local: docker.DockerClient | None = None, store: Store | None = None,
                 emit: EventSink = ignore, commit: str | None = None, commit_id: int | None = None,
                 builder: str | None = None) -> None:
        self.lab, self.client, self.host = lab, client, host
        self.local = local  # the local engine, when `client` is a remote host
        self.store, self.emit, self.commit, self.commit_id = store, emit, commit, commit_id
        self.builder = choose_builder(client, builder or lab.config.build.builder)

    def ensure(self, layer: Layer) -> EnsureResult:
        top = image_id(self.client, layer.tag)
        if top is not None:  # the no-op path: one lookup
            self.emit(BuildEvent(layer.repo, "cached", layer.tag, tag=layer.tag))
            return EnsureResult(layer.tag, top, [LayerResult(layer.repo, layer.tag, top, "present")])
        results: list[LayerResult] = []
        parent_id: str | None = None
        for item in layer.chain:
            have = image_id(self.client, item.tag)
            if have is not None:
                self.emit(BuildEvent(item.repo, "cached", item.tag, tag=item.tag))
                results.append(LayerResult(item.repo, item.tag, have, "present"))
                parent_id = have
                continue
            for note in item.notes:
                self.emit(BuildEvent(item.repo, "skipped-file", note))
            t0 = time.monotonic()
            if self.local is not None and item.kind in ("base", "env"):
                have = self._ship(item)
                action = "shipped"
            else:
                have = self._build(item, parent_id if self.builder == "classic" else results[-1].tag
                                   if results else None)
                action = "built"
            seconds = time.monotonic() - t0
            results.append(LayerResult(item.repo, item.tag, have, action, seconds))
            self._record(item, have, seconds)
            parent_id = have
        return EnsureResult(layer.tag, results[-1].image_id, results)

    # ------------------------------------------------------------ building

    def _build(self, layer: Layer, parent: str | None) -> str:
        """`parent`: the parent's image ID for the classic builder (FROM by ID, never by a movable
        name); BuildKit reads FROM as a registry reference, so it gets the parent's content tag."""
        entries = context_entries(layer)
        context = make_tar(entries)
        args = dict(layer.build_args)
        if parent:
            args["FB_PARENT"] = parent
        self.emit(BuildEvent(layer.repo, "start", f"{self.builder} build of {layer.tag} on {self.host}",
                             bytes=len(context), tag=layer.tag))
        network = {"host": "host", "none": "none", "default": None}[self.lab.config.build.network]
        build = buildkit_build if self.builder == "buildkit" else classic_build
        t0 = time.monotonic()
        with serving(index_credentials(self.lab), lambda text: self.emit(BuildEvent(layer.repo, "log", text))):
            new_id = build(self.client, context, repo=layer.repo, tag=layer.tag, buildargs=args,
                           labels=layer.labels(self.commit), network_mode=network, emit=self.emit)
        if layer.kind == "proj" and self.commit:
            self.client.api.tag(new_id, layer.repo, f"git-{self.commit}")
        self.emit(BuildEvent(layer.repo, "done", layer.tag, seconds=time.monotonic() - t0, tag=layer.tag))
        return new_id

    # ------------------------------------------------------------ shipping

    def _ship(self, layer: Layer) -> str:
        """Save from the local engine, load into the host, streaming; builds locally first if needed."""
        assert self.local is not None
        local = Ensurer(self.lab, self.local, store=self.store, emit=self.emit, commit=self.commit,
                        commit_id=self.commit_id, builder=self.builder)
        local.ensure(layer)
        size = int(self.local.api.inspect_image(layer.tag).get("Size") or 0)
        self.emit(BuildEvent(layer.repo, "start", f"shipping {layer.tag} to {self.host} ({size / 1e6:.0f} MB)",
                             bytes=0, total=size, tag=layer.tag))
        sent = 0
        t0 = time.monotonic()
        last = 0.0

        def chunks() -> Any:
            nonlocal sent, last
            for chunk in self.local.api.get_image(layer.tag, chunk_size=1 << 20):  # type: ignore[union-attr]
                sent += len(chunk)
                now = time.monotonic()
                if now - last > 0.5:
                    last = now
                    rate = sent / max(now - t0, 1e-6) / 1e6
                    self.emit(BuildEvent(layer.repo, "transfer", f"{rate:.1f} MB/s", bytes=sent, total=size))
                yield chunk

        for msg in self.client.api.load_image(chunks()) or []:
            if isinstance(msg, dict) and ("error" in msg or "errorDetail" in msg):
                raise FBError(f"loading {layer.tag} into {self.host} failed: {msg.get('error') or msg}")
        new_id = image_id(self.client, layer.tag)
        if new_id is None:
            raise FBError(f"{layer.tag} did not arrive on {self.host}")
        seconds = time.monotonic() - t0
        self.emit(BuildEvent(layer.repo, "done", f"shipped {sent / 1e6:.0f} MB in {seconds:.1f} s "
                             f"({sent / 1e6 / max(seconds, 1e-6):.1f} MB/s)", seconds=seconds, bytes=sent,
                             tag=layer.tag))
        return new_id

    # ------------------------------------------------------------ records

    def _record(self, layer: Layer, new_id: str, seconds: float) -> None:
        if self.store is None:
            return
        self.store.record_image(
            tag=layer.tag, digest=new_id, layer=layer.kind, name=layer.name, inputs_hash=layer.inputs_hash,
            parent=layer.parent.tag if layer.parent else None, host=self.host, lab=layer.lab,
            commit_id=self.commit_id, build_seconds=round(seconds, 3),
        )
