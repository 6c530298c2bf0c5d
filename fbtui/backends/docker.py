"""A Docker engine (local, tcp or ssh) behind the backend interface (base.py): fbtui places stages
on it; each stage is one container with the contract of pipeline/containers.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fbtui.backends.base import JobState

if TYPE_CHECKING:
    import docker

    from fbtui.pipeline.containers import StageSpecOnHost
    from fbtui.pipeline.hosts import Hosts

STOP_GRACE = 5  # seconds a cancelled stage has to end before it is killed


class DockerBackend:
    kind = "docker"
    places = True

    def __init__(self, name: str, hosts: Hosts) -> None:
        self.name, self.hosts = name, hosts

    @property
    def client(self) -> docker.DockerClient:
        """The process's client (made again after `hosts.forget`, when a call found the host gone)."""
        return self.hosts.client(self.name)

    def ping(self) -> None:
        self.client.ping()

    def start(self, spec: StageSpecOnHost, secrets: dict[str, str]) -> str:
        from fbtui.pipeline.containers import create_and_start

        return create_and_start(self.client, spec, secrets)

    def states(self, handles: list[str]) -> dict[str, JobState]:
        """Each container's state (one inspect each: the engine has no batch call). A host that does
        not answer raises, as every call does: the health clock decides."""
        import docker

        found: dict[str, JobState] = {}
        for h in handles:
            try:
                state = self.client.api.inspect_container(h)["State"]
            except docker.errors.NotFound:
                found[h] = JobState("gone")
                continue
            running = bool(state.get("Running"))
            found[h] = JobState("running" if running else "done", str(state.get("Status") or ""),
                                exit_code=None if running else int(state.get("ExitCode", -1)),
                                oom=bool(state.get("OOMKilled")))
        return found

    def cancel(self, handle: str) -> None:
        self.client.api.stop(handle, timeout=STOP_GRACE)

    def kill(self, handle: str) -> None:
        self.client.api.kill(handle)

    def find(self, name: str) -> str | None:
        import docker

        try:
            return str(self.client.api.inspect_container(name)["Id"])
        except docker.errors.NotFound:
            return None

    def problems(self) -> list[tuple[str, str]]:
        try:
            self.ping()
        except Exception as e:
            return [(f"host {self.name}: {getattr(e, 'message', None) or e}", "check that its engine is up")]
        return []
