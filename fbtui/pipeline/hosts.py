"""Clients for the lab's hosts, one per host per process. An ssh:// host is reached through one
`ssh -N -L` tunnel to its engine socket (measured: 1.5 ms per call, versus 530 ms for an ssh
process per request and 200 ms per new connection with paramiko)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fbtui.engine import EngineError, client

if TYPE_CHECKING:
    import docker

    from fbtui.config.models import HostConfig


# Runs between the process that opened a tunnel and its ssh: when that process dies in any way
# (SIGKILL included) the pipe on our stdin reaches EOF and ssh is ended; ssh also gets
# PR_SET_PDEATHSIG, so killing this guard takes ssh with it. Safe here: this process has one thread.
GUARD = r"""
import ctypes, os, select, signal, subprocess, sys
me = os.getpid()
def pdeath():
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except Exception:
        pass
    if os.getppid() != me:
        os._exit(1)
def stop(*_):
    raise SystemExit(0)
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, preexec_fn=pdeath)
signal.signal(signal.SIGTERM, stop)
try:
    while p.poll() is None:
        r, _, _ = select.select([0], [], [], 1.0)
        if r and not os.read(0, 64):
            break
finally:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
sys.exit(p.wait())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Tunnel:
    """One `ssh -N -L` to a host's engine socket, owned by this process: its socket and log carry
    this pid (two processes of a lab never share or unlink each other's), and it dies with us."""

    def __init__(self, name: str, host: HostConfig, folder: Path) -> None:
        self.name, self.host = name, host
        folder.mkdir(parents=True, exist_ok=True)
        self.sock = folder / f"{name}-{os.getpid()}.sock"
        self.log = self.sock.with_suffix(".err")
        self.proc: subprocess.Popen[bytes] | None = None
        self._clear_stale(folder)

    def _clear_stale(self, folder: Path) -> None:
        """Sockets and logs of dead processes' tunnels (a SIGKILL leaves the files, not the ssh)."""
        for p in [*folder.glob(f"{self.name}-*.sock"), *folder.glob(f"{self.name}-*.err")]:
            owner, _, pid = p.stem.rpartition("-")
            if owner == self.name and pid.isdigit() and not _alive(int(pid)):
                p.unlink(missing_ok=True)

    def open(self, timeout: float = 20) -> str:
        if self.proc and self.proc.poll() is None and self.sock.exists():
            return f"unix://{self.sock}"
        self.close()  # a dead tunnel or a lost socket: never leave the old ssh behind
        if not shutil.which("ssh"):
            raise EngineError(f"host {self.name}: ssh is not installed here", hint="apt-get install openssh-client")
        target = self.host.url.removeprefix("ssh://")
        port = None
        if ":" in target.rsplit("@", 1)[-1]:
            target, port = target.rsplit(":", 1)
        cmd = ["ssh", "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=5",
               "-o", "ServerAliveCountMax=3", "-o", "StreamLocalBindUnlink=yes",
               "-L", f"{self.sock}:{self.host.socket}", target]
        if port:
            cmd[1:1] = ["-p", port]
        cmd[1:1] = [str(Path(o).expanduser()) if o.startswith("~") else o for o in self.host.ssh_options]
        with self.log.open("wb") as err:  # a file, not a pipe: a chatty ssh must never block on it
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", GUARD, *cmd], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sock.exists():
                return f"unix://{self.sock}"
            if self.proc.poll() is not None:
                err_text = self.log.read_bytes()[-2000:].decode(errors="replace").strip()
                self.close()
                raise EngineError(f"host {self.name}: ssh tunnel to {self.host.url} failed: {err_text[-300:]}",
                                  hint="check that key-based ssh works: ssh -o BatchMode=yes " + target)
            time.sleep(0.05)
        self.close()
        raise EngineError(f"host {self.name}: ssh tunnel to {self.host.url} did not open in {timeout:.0f} s")

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.stdin is not None:
                try:
                    proc.stdin.close()  # EOF: the guard ends ssh and exits
                except OSError:
                    pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.sock.unlink(missing_ok=True)
        self.log.unlink(missing_ok=True)


class Hosts:
    """Clients for the lab's hosts, made on first use and remade after a failure."""

    def __init__(self, hosts: dict[str, HostConfig], tunnel_dir: Path, timeout: int = 60) -> None:
        self.config = hosts
        self.timeout = timeout  # of each call of a client this makes (the supervisor's are short)
        self.tunnel_dir = tunnel_dir
        self._clients: dict[str, docker.DockerClient] = {}
        self._tunnels: dict[str, Tunnel] = {}
        self._lock = threading.Lock()  # guards the dicts only, never a connection
        self._host_locks: dict[str, threading.Lock] = {}

    def _host_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(name, threading.Lock())

    def client(self, name: str, timeout: int | None = None) -> docker.DockerClient:
        """The host's client, connecting on first use. One lock per host: a host that hangs while
        connecting holds up only the callers that want that host."""
        with self._lock:
            c = self._clients.get(name)
        if c is not None:
            return c
        with self._host_lock(name):
            with self._lock:
                c = self._clients.get(name)
            if c is not None:
                return c
            host = self.config[name]
            timeout = timeout or self.timeout
            if host.url.startswith("ssh://"):
                with self._lock:
                    tunnel = self._tunnels.setdefault(name, Tunnel(name, host, self.tunnel_dir))
                url = tunnel.open()
                c = client(host.model_copy(update={"url": url}), timeout=timeout)
            else:
                c = client(host, timeout=timeout)
            with self._lock:
                self._clients[name] = c
            return c

    def forget(self, name: str) -> None:
        """Drop a client after a connection failure, so the next call reconnects."""
        with self._lock:
            c = self._clients.pop(name, None)
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass

    def close(self) -> None:
        for name in list(self._clients):
            self.forget(name)
        with self._lock:
            tunnels, self._tunnels = list(self._tunnels.values()), {}
        for t in tunnels:
            t.close()

    def reconfigure(self, hosts: dict[str, HostConfig]) -> list[str]:
        """lab.yaml changed: hosts that went or changed lose their client and tunnel (the next call
        connects with the new settings); new ones are usable at once. Returns the names dropped."""
        dropped = [n for n, h in self.config.items() if hosts.get(n) != h]
        self.config = hosts
        for name in dropped:
            self.forget(name)
            with self._lock:
                tunnel = self._tunnels.pop(name, None)
            if tunnel is not None:
                tunnel.close()
        return dropped


_shared: dict[str, Hosts] = {}


def shared_hosts(lab_root: Path, hosts: dict[str, HostConfig]) -> Hosts:
    """One Hosts per lab per process (tunnels included), closed when the process exits."""
    key = str(lab_root)
    if key not in _shared:
        import atexit

        _shared[key] = Hosts(hosts, lab_root / ".fb" / "tunnels")
        atexit.register(_shared[key].close)
    elif _shared[key].config != hosts:  # a long-lived process (the app) after lab.yaml changed
        _shared[key].reconfigure(hosts)
    return _shared[key]


def host_status(lab_root: Path, lab_name: str, hosts: dict[str, HostConfig], name: str) -> dict[str, object]:
    """Reachability, engine version, capacity in use (CPUs, memory, GPUs, slots) and every fb stage
    container of one host: this checkout's, and other checkouts' marked foreign with their owner."""
    from fbtui.pipeline.capacity import capped, engine_size, holder_of, stage_containers
    from fbtui.pipeline.containers import lab_instance

    host = hosts[name]
    if host.kind == "slurm":
        from fbtui.backends.slurm_status import slurm_status

        return slurm_status(hosts, name)
    row: dict[str, object] = {"host": name, "url": host.url, "reachable": False, "version": None, "api": None,
                              "runtimes": [], "gpus": host.gpus, "gpus_in_use": [], "slots": host.slots,
                              "in_use": 0, "cpus": None, "cpus_in_use": 0.0, "memory": None, "memory_in_use": 0,
                              "containers": [], "error": None}
    try:
        c = shared_hosts(lab_root, hosts).client(name, timeout=10)
        v = c.version()
        info = c.info()
        cpus, memory = capped(host, engine_size(c))
        found = stage_containers(c)
    except Exception as e:
        shared_hosts(lab_root, hosts).forget(name)
        row["error"] = getattr(e, "message", None) or f"{type(e).__name__}: {str(e)[:200]}"
        return row
    mine = lab_instance(lab_root)
    containers = []
    for x in found:
        labels = x.get("Labels") or {}
        h = holder_of(x, mine)
        containers.append({"run": labels.get("fb.run"), "stage": labels.get("fb.stage"),
                           "project": labels.get("fb.project"), "lab": labels.get("fb.lab"),
                           "state": x.get("State"), "id": x["Id"][:12], "cpus": h.request.cpus,
                           "memory": h.request.memory, "gpus": list(h.gpu_ids), "foreign": h.foreign,
                           "owner": h.owner or None, "text": h.text()})
    row.update(reachable=True, version=v.get("Version"), api=v.get("ApiVersion"),
               runtimes=sorted((info.get("Runtimes") or {}).keys()),
               gpus_in_use=sorted(g for x in containers for g in x["gpus"]), in_use=len(containers),
               cpus=cpus, cpus_in_use=sum(x["cpus"] for x in containers), memory=memory,
               memory_in_use=sum(x["memory"] for x in containers), containers=containers)
    return row
