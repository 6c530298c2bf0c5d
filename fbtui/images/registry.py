"""Images through the lab registry (#15, item 1): the local engine pushes a layer's image, the host
that lacks it pulls it. Only the layers the other side lacks move (a project edit: one thin layer),
where `docker save | load` moves the whole image every time. The engines speak to the registry
themselves, with their own TLS settings and Docker-config credentials: fbtui passes none."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError
from fbtui.images.events import BuildEvent, EventSink

if TYPE_CHECKING:
    import docker

    from fbtui.images.plan import Layer


class RegistryError(FBError):
    """The registry refused or did not answer: what it said, and what to do."""


@dataclass
class Moved:
    ref: str  # registry/repo:tag
    digest: str | None  # the manifest's sha256, as the registry gives it
    bytes: int  # what travelled: layers the other side lacked
    seconds: float


def remote_ref(address: str, layer: Layer) -> tuple[str, str]:
    """(repository, tag) of a layer's image in the registry: ADDRESS/fb/base, its content tag."""
    repo, _, tag = layer.tag.rpartition(":")
    return f"{address}/{repo}", tag


def explain(address: str, what: str, message: str) -> RegistryError:
    text = message.strip().splitlines()[0][:300] if message.strip() else "no reason given"
    low = text.lower()
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        hint = f"log the engine in: docker login {address.split('/')[0]} (fbtui keeps no credentials)"
    elif "no space" in low or "disk full" in low or "quota" in low:
        hint = "free space on the registry's storage, or delete old tags there"
    elif "connection refused" in low or "no such host" in low or "timeout" in low or "i/o timeout" in low:
        hint = "is it up? scripts/registry starts one on loopback for a single machine"
    elif "http response to https" in low or "certificate" in low or "x509" in low:
        hint = "the engine needs the registry's CA certificate (or it on loopback for plain HTTP)"
    else:
        hint = "fbtui doctor checks the registry"
    return RegistryError(f"registry {address}: {what}: {text}", hint=hint)


def _follow(stream: Any, emit: EventSink, repo: str, verb: str, address: str, what: str) -> tuple[int, str | None]:
    """Read a push/pull progress stream: bytes that moved (per layer, the largest total seen) and the
    digest; an error message becomes a RegistryError."""
    sizes: dict[str, int] = {}
    digest = None
    last = 0.0
    for msg in stream:
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise explain(address, what, str(msg.get("error") or detail.get("message") or detail))
        status = str(msg.get("status") or "")
        total = (msg.get("progressDetail") or {}).get("total")
        if status in ("Pushing", "Downloading") and total and msg.get("id"):
            sizes[msg["id"]] = max(sizes.get(msg["id"], 0), int(total))
        aux = msg.get("aux") or {}
        if aux.get("Digest"):
            digest = aux["Digest"]
        if status.startswith("Digest: "):
            digest = status.split(" ", 1)[1]
        now = time.monotonic()
        if now - last > 0.5 and sizes:
            last = now
            emit(BuildEvent(repo, "transfer", f"{verb} {sum(sizes.values()) / 1e6:.0f} MB", bytes=sum(sizes.values())))
    return sum(sizes.values()), digest


def push(local: docker.DockerClient, layer: Layer, address: str, emit: EventSink) -> Moved:
    """Tag the local image for the registry and push it; only layers the registry lacks move."""
    repo, tag = remote_ref(address, layer)
    t0 = time.monotonic()
    emit(BuildEvent(layer.repo, "start", f"pushing {layer.tag} to {address}", tag=layer.tag))
    try:
        local.api.tag(layer.tag, repo, tag)
        stream = local.api.push(repo, tag=tag, stream=True, decode=True)
        moved, digest = _follow(stream, emit, layer.repo, "pushed", address, f"push of {layer.tag} refused")
    except RegistryError:
        raise
    except Exception as e:  # the engine could not reach it at all
        raise explain(address, f"push of {layer.tag} failed", f"{type(e).__name__}: {e}") from None
    seconds = time.monotonic() - t0
    emit(BuildEvent(layer.repo, "done", f"pushed {moved / 1e6:.1f} MB to {address} in {seconds:.1f} s",
                    seconds=seconds, bytes=moved, tag=layer.tag))
    return Moved(f"{repo}:{tag}", digest, moved, seconds)


def pull(client: docker.DockerClient, layer: Layer, address: str, host: str, emit: EventSink) -> Moved:
    """The host pulls the layer's image and names it as fbtui does (its content tag)."""
    repo, tag = remote_ref(address, layer)
    t0 = time.monotonic()
    emit(BuildEvent(layer.repo, "start", f"{host} pulls {layer.tag} from {address}", tag=layer.tag))
    try:
        stream = client.api.pull(repo, tag=tag, stream=True, decode=True)
        moved, digest = _follow(stream, emit, layer.repo, "pulled", address, f"{host} could not pull {layer.tag}")
        local_repo, _, local_tag = layer.tag.rpartition(":")
        client.api.tag(f"{repo}:{tag}", local_repo, local_tag)
    except RegistryError:
        raise
    except Exception as e:
        raise explain(address, f"{host} could not pull {layer.tag}", f"{type(e).__name__}: {e}") from None
    seconds = time.monotonic() - t0
    emit(BuildEvent(layer.repo, "done", f"{host} pulled {moved / 1e6:.1f} MB in {seconds:.1f} s", seconds=seconds,
                    bytes=moved, tag=layer.tag))
    return Moved(f"{repo}:{tag}", digest, moved, seconds)


def reachable(address: str, timeout: float = 5.0) -> str | None:
    """None when the registry answers its v2 API (401 counts: it is there, it wants a login);
    else why not. HTTPS first, then HTTP, as an engine would on loopback."""
    import urllib.error
    import urllib.request

    host = address.split("/")[0]
    why = ""
    for scheme in ("https", "http"):
        try:
            urllib.request.urlopen(f"{scheme}://{host}/v2/", timeout=timeout)
            return None
        except urllib.error.HTTPError as e:
            if e.code == 401:
                return None
            why = f"{scheme}: HTTP {e.code}"
        except Exception as e:
            why = f"{scheme}: {type(e).__name__}: {getattr(e, 'reason', e)}"
    return why
