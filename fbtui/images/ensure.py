"""Make a layer's image present on a host, building or shipping only what that host lacks.

Local host: build each missing layer bottom-up. Remote host with a lab registry (lab.yaml
`registry:`): every missing layer is made locally, pushed, and pulled by the host, so only the
layers it lacks travel (registry.py). Without one: base and environment images are shipped from the
local engine (save -> load) and project layers are built there from their small context (measured:
0.5 s to rebuild remotely versus 28 s to ship a project image).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError
from fbtui.images.builders import buildkit_build, classic_build
from fbtui.images.context import context_entries, make_tar
from fbtui.images.credentials import serving
from fbtui.images.events import BuildEvent, EventSink, ignore
from fbtui.images.freeze import recorded_packages, timed_freeze
from fbtui.images.pin import check_base, engine_id
from fbtui.images.plan import Layer, index_credentials
from fbtui.images.registry import Moved, pull, push

if TYPE_CHECKING:
    import docker

    from fbtui.lab import Lab
    from fbtui.store import Store

LOAD_TIMEOUT = 1800  # seconds for a shipped image to be sent and unpacked on the host


@dataclass
class LayerResult:
    layer: str
    tag: str
    image_id: str
    action: str  # present | built | shipped
    seconds: float = 0.0
    packages: int | None = None  # how many `pip freeze --all` lines were recorded (None: not taken)
    freeze_seconds: float = 0.0  # what the freeze added to the build


@dataclass
class BaseSeen:
    ref: str  # build.base_image (or an environment's base_image)
    id: str | None  # the engine's ID for it
    pinned: bool  # build.base_image_id pins it (and the build checked it)


@dataclass
class EnsureResult:
    tag: str
    image_id: str
    layers: list[LayerResult] = field(default_factory=list)
    base: BaseSeen | None = None  # the image the base layer was built on, when it was built now

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
        self.base_seen: BaseSeen | None = None

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
            moved = None
            if self.local is not None and self.lab.config.registry is not None:
                have, moved = self._via_registry(item)  # every layer: only what the host lacks travels
                action = "pulled"
            elif self.local is not None and item.kind in ("base", "env"):
                have = self._ship(item)
                action = "shipped"
            else:
                have = self._build(item, parent_id if self.builder == "classic" else results[-1].tag
                                   if results else None)
                action = "built"
            seconds = time.monotonic() - t0
            packages, freeze_seconds = self._packages(item, have, action, parent_id)
            results.append(LayerResult(item.repo, item.tag, have, action, seconds,
                                       None if packages is None else len(packages), freeze_seconds))
            self._record(item, have, seconds, packages, moved)
            parent_id = have
        return EnsureResult(layer.tag, results[-1].image_id, results, self.base_seen)

    # ------------------------------------------------------------ building

    def _build(self, layer: Layer, parent: str | None) -> str:
        """`parent`: the parent's image ID for the classic builder (FROM by ID, never by a movable
        name); BuildKit reads FROM as a registry reference, so it gets the parent's content tag."""
        entries = context_entries(layer)
        context = make_tar(entries)
        args = dict(layer.build_args)
        if parent:
            args["FB_PARENT"] = parent
        pin = check_base(self.client, self.lab, layer, self.host) if layer.kind == "base" else None
        if pin and self.builder == "classic":
            args["BASE_IMAGE"] = pin  # FROM the pinned ID: a name moved since the check changes nothing
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
        if layer.kind == "base":
            ref = layer.build_args["BASE_IMAGE"]
            self.base_seen = BaseSeen(ref, pin or engine_id(self.client, ref), pin is not None)
        self.emit(BuildEvent(layer.repo, "done", layer.tag, seconds=time.monotonic() - t0, tag=layer.tag))
        return new_id

    # ------------------------------------------------------------ shipping

    def _ship(self, layer: Layer) -> str:
        """Save from the local engine, load into the host, streaming; builds locally first if needed."""
        assert self.local is not None
        local = Ensurer(self.lab, self.local, store=self.store, emit=self.emit, commit=self.commit,
                        commit_id=self.commit_id, builder=self.builder)
        local.ensure(layer)
        self.base_seen = self.base_seen or local.base_seen
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

        # The engine answers only once it has unpacked every layer: on a busy host that takes minutes
        # for a base image, far past the client's per-call timeout (load_image has no timeout of its own).
        api = self.client.api
        res = api._post(api._url("/images/load"), data=chunks(), stream=True, timeout=LOAD_TIMEOUT)
        api._raise_for_status(res)
        for msg in api._stream_helper(res, decode=True):
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

    def _via_registry(self, layer: Layer) -> tuple[str, Moved]:
        """Make the layer's image locally (built if missing), push it, and have the host pull it."""
        assert self.local is not None and self.lab.config.registry is not None
        address = self.lab.config.registry.address
        local = Ensurer(self.lab, self.local, store=self.store, emit=self.emit, commit=self.commit,
                        commit_id=self.commit_id, builder=self.builder)
        local.ensure(layer)
        self.base_seen = self.base_seen or local.base_seen
        pushed = push(self.local, layer, address, self.emit)
        pulled = pull(self.client, layer, address, self.host, self.emit)
        new_id = image_id(self.client, layer.tag)
        if new_id is None:
            raise FBError(f"{layer.tag} did not arrive on {self.host} from {address}")
        return new_id, Moved(pushed.ref, pushed.digest or pulled.digest, pushed.bytes + pulled.bytes,
                             pushed.seconds + pulled.seconds)

    # ------------------------------------------------------------ records

    def _packages(self, layer: Layer, new_id: str, action: str, parent: str | None) -> tuple[list[str] | None, float]:
        """The new image's `pip freeze --all` (a shipped image has the ID, so the freeze, of the local one;
        a project layer that installs nothing holds its parent's packages: the thin rebuild stays thin)."""
        if action in ("shipped", "pulled") and self.store is not None:
            return recorded_packages(self.store, digest=new_id), 0.0
        if layer.kind == "proj" and "pip install" not in layer.dockerfile and parent and self.store is not None:
            inherited = recorded_packages(self.store, digest=parent)
            if inherited is not None:
                return inherited, 0.0
        packages, seconds, why = timed_freeze(self.client, new_id, lab=layer.lab)
        if packages is None:
            self.emit(BuildEvent(layer.repo, "skipped-file", f"packages not recorded (pip freeze failed: {why})"))
        else:
            self.emit(BuildEvent(layer.repo, "log", f"recorded {len(packages)} packages (pip freeze, {seconds:.1f} s)"))
        return packages, seconds

    def _record(self, layer: Layer, new_id: str, seconds: float, packages: list[str] | None = None,
                moved: Moved | None = None) -> None:
        if self.store is None:
            return
        self.store.record_image(
            tag=layer.tag, digest=new_id, layer=layer.kind, name=layer.name, inputs_hash=layer.inputs_hash,
            parent=layer.parent.tag if layer.parent else None, host=self.host, lab=layer.lab,
            commit_id=self.commit_id, build_seconds=round(seconds, 3),
            packages=None if packages is None else json.dumps(packages),
            registry_ref=moved.ref if moved else None, registry_digest=moved.digest if moved else None,
        )
