"""Docker engines: where the local one is, and clients for the hosts in lab.yaml."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fbtui.errors import FBError

if TYPE_CHECKING:
    import docker

    from fbtui.config.models import HostConfig

# Where scripts/engine puts the socket of the private daemon it starts (root / other users).
PRIVATE_SOCKETS = (
    Path("/var/lib/fb-engine/run/docker.sock"),
    Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "fb-engine/run/docker.sock",
)
MIN_API = "1.24"  # the SDK's minimum; the real version is negotiated right after connecting
START_HINT = "start one with scripts/engine (installs Debian's docker.io and a private daemon when needed)"


class EngineError(FBError):
    pass


def local_url() -> str:
    """$DOCKER_HOST, else the default socket, else the private engine's socket."""
    env = os.environ.get("DOCKER_HOST")
    if env:
        return env
    if FB_ENGINE := os.environ.get("FB_ENGINE_HOME"):
        sock = Path(FB_ENGINE) / "run/docker.sock"
        if sock.exists():
            return f"unix://{sock}"
    default = Path("/var/run/docker.sock")
    if default.exists():
        return f"unix://{default}"
    for sock in PRIVATE_SOCKETS:
        if sock.exists():
            return f"unix://{sock}"
    return f"unix://{default}"


def host_url(host: HostConfig) -> str:
    return local_url() if host.url == "local" else host.url


def client(host: HostConfig, timeout: int = 60) -> docker.DockerClient:
    """A Docker SDK client for a lab host. The API version is negotiated, never pinned."""
    import docker
    from docker.tls import TLSConfig

    url = host_url(host)
    kwargs: dict[str, object] = {"timeout": timeout}
    hint = START_HINT if host.url == "local" else f"check that {host.url} is up and reachable from here"
    try:
        if url.startswith("tcp://") and host.tls is not None:
            def expand(p: str | None) -> str | None:
                return str(Path(p).expanduser()) if p else None

            kwargs["tls"] = TLSConfig(
                client_cert=(expand(host.tls.cert), expand(host.tls.key)) if host.tls.cert else None,
                ca_cert=expand(host.tls.ca),
                verify=host.tls.verify if not host.tls.ca else expand(host.tls.ca),
            )
            url = url.replace("tcp://", "https://")
        elif url.startswith("ssh://"):
            kwargs["use_ssh_client"] = True
        # Start from the oldest API the SDK speaks, turn off requests' environment (REQUESTS_CA_BUNDLE
        # and CURL_CA_BUNDLE would silently replace a TLS host's CA: MEASURED.md), then negotiate.
        c = docker.DockerClient(base_url=url, version=MIN_API, **kwargs)  # type: ignore[arg-type]
        c.api.trust_env = False
        c.api._version = c.api._retrieve_server_version()
    except Exception as e:  # the SDK's errors, and requests' own (TLS, connection) that it does not wrap
        raise EngineError(f"cannot reach the Docker engine at {host_url(host)}: {_reason(e)}", hint=hint) from None
    return c


def _reason(e: Exception) -> str:
    text = str(e)
    for marker in ("No such file or directory", "Connection refused", "Permission denied", "timed out"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(e).__name__
