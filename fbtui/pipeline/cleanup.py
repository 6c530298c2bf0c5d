"""What a lab leaves on its hosts, and when it goes.

A stage's container goes once its outcome is recorded; a remote stage's volume (its /fb/out) goes
once no run that is still going uses it (its own later stages, or another run's cache hit) and every
artifact it holds has a copy under .fb/runs. A failed stage's container and a failed run's volumes
stay for the host's `keep_failed` (1 day by default) for a post-mortem; `fbtui gc` lists and removes
them. Nothing is ever removed for a stage that is pending, running or lost: its outcome is not known.

The supervisor's janitor (a thread: a hung host never holds up the loop) sweeps only the hosts that
have work, so no tunnel is opened for cleaning alone; `fbtui gc --host H` sweeps any host.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fbtui.pipeline import containers as ct
from fbtui.pipeline.paths import run_folder

if TYPE_CHECKING:
    import docker

    from fbtui.lab import Lab
    from fbtui.pipeline.supervisor import Supervisor
    from fbtui.store import Store

SWEEP_EVERY = 15.0  # seconds between the janitor's passes over the hosts with work
CLAIM_FOR = 600.0  # a volume a cache hit just chose is not swept for this long (its run records it meanwhile)
UNDECIDED = ("pending", "running", "lost")
ACTIVE_RUNS = ("queued", "running")
DEFAULT_KEEP_FAILED = 86400.0


@dataclass
class Leftover:
    kind: str  # container | volume
    name: str
    host: str
    run_id: int
    stage: str
    remove: bool  # False: kept, `why` says until when or what for
    why: str
    ref: str = ""  # the container id or the volume name

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "ref"}


def _prefix(lab: Lab, instance: str) -> str:
    return ct.container_name(lab.config.name, instance, 0, "")[:-2]  # "fb-<lab>-<instance>-r"


def _parse(name: str, prefix: str) -> tuple[int, str] | None:
    m = re.match(r"^(\d+)-(.+)$", name[len(prefix):]) if name.startswith(prefix) else None
    return (int(m.group(1)), m.group(2)) if m else None


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _keep_failed(lab: Lab, host: str) -> float:
    config = lab.config.hosts.get(host)
    return config.keep_failed if config is not None else DEFAULT_KEEP_FAILED


def _stage(store: Store, run_id: int, stage: str) -> dict[str, Any] | None:
    rows = store.query("SELECT * FROM stages WHERE run_id = ? AND name = ?", (run_id, stage))
    return rows[0] if rows else None


def _failed_until(lab: Lab, store: Store, host: str, row: dict[str, Any], now: float) -> float | None:
    """Until when a failed stage (or a stage of a failed run) is kept; None when it is not failed."""
    run = store.query("SELECT status, finished_at FROM runs WHERE id = ?", (row["run_id"],))
    run_failed = bool(run) and run[0]["status"] == "failed"
    if row["status"] != "failed" and not run_failed:
        return None
    ended = row["finished_at"] or (run[0]["finished_at"] if run else None) or now
    return float(ended) + _keep_failed(lab, host)


def _only_here(lab: Lab, store: Store, row: dict[str, Any]) -> str | None:
    """An artifact of a remote stage with no copy under .fb/runs (too large to copy back): the
    volume is its only copy, so the volume stays."""
    local = run_folder(lab, row["run_id"]) / row["name"] / "out"
    for a in store.query("SELECT path, size FROM artifacts WHERE run_id = ? AND stage = ?",
                         (row["run_id"], row["name"])):
        p = local / a["path"]
        if not p.is_file() or (a["size"] is not None and p.stat().st_size != a["size"]):
            size = f" ({a['size'] / 2**20:.0f} MiB)" if a["size"] else ""
            return f"holds {a['path']}{size}, which has no copy under .fb/runs: its only copy"
    return None


def leftovers(lab: Lab, store: Store, client: docker.DockerClient, host: str, instance: str,
              claimed: set[str] | None = None, now: float | None = None) -> list[Leftover]:
    """This checkout's containers and volumes on one host whose stage has an outcome, each with
    whether it may go now and why (or why not)."""
    now = time.time() if now is None else now
    prefix = _prefix(lab, instance)
    found: list[Leftover] = []
    for x in client.api.containers(all=True, filters={"label": f"fb.lab={lab.config.name}"}):
        name = next((n.lstrip("/") for n in x.get("Names") or [] if n.lstrip("/").startswith(prefix)), None)
        key = _parse(name, prefix) if name else None
        row = _stage(store, *key) if key else None
        if name is None or key is None or row is None or row["status"] in UNDECIDED:
            continue  # another checkout's, unknown to this store, or its outcome is not recorded
        until = _failed_until(lab, store, host, row, now) if row["status"] == "failed" else None
        keep = until is not None and now < until
        why = (f"failed stage, kept until {_when(until)} (keep_failed of host {host})" if keep and until
               else f"stage {row['status']}")
        found.append(Leftover("container", name, host, key[0], key[1], not keep, why, x["Id"]))
    for v in client.api.volumes(filters={"name": prefix}).get("Volumes") or []:
        name = v.get("Name") or ""
        key = _parse(name, prefix)
        row = _stage(store, *key) if key else None
        if key is None or row is None or row["status"] in UNDECIDED:
            continue
        users = store.query(f"SELECT s.run_id FROM stages s JOIN runs r ON r.id = s.run_id WHERE s.out = ? AND "
                            f"r.status IN {ACTIVE_RUNS!r} LIMIT 1", (name,))
        until = _failed_until(lab, store, host, row, now)
        if users:
            why: str | None = f"run #{users[0]['run_id']} still uses it"
        elif claimed is not None and name in claimed:
            why = "a run just reused it (cache hit)"
        elif until is not None and now < until:
            why = f"failed run, kept until {_when(until)} (keep_failed of host {host})"
        elif until is None:
            why = _only_here(lab, store, row)
        else:
            why = None
        found.append(Leftover("volume", name, host, key[0], key[1], why is None,
                              why or f"stage {row['status']}, outputs recorded", name))
    return found


def remove(client: docker.DockerClient, items: list[Leftover]) -> list[str]:
    """Remove what may go, containers first (they hold their volumes). Returns what failed."""
    import docker

    errors: list[str] = []
    for x in sorted((x for x in items if x.remove), key=lambda x: x.kind != "container"):
        try:
            if x.kind == "container":
                client.api.remove_container(x.ref, force=True)
            else:
                client.api.remove_volume(x.ref)
        except docker.errors.NotFound:
            pass  # gone meanwhile: what we wanted
        except docker.errors.APIError as e:
            if e.response is not None and e.response.status_code == 409:
                x.remove, x.why = False, "in use by a container that is kept"
                continue
            errors.append(f"{x.kind} {x.name} on {x.host}: {str(e)[:200]}")
    return errors


def hosts_with_work(sup: Supervisor) -> set[str]:
    """Hosts that runs still going are bound to or ask for (and local, which needs no tunnel)."""
    names = {"local"}
    for r in sup.store.query(f"SELECT host, requested_host FROM runs WHERE status IN {ACTIVE_RUNS!r}"):
        names.update([r["host"]] if r["host"] else (r["requested_host"] or sup.lab.config.defaults.host).split(","))
    return {n for n in names if n in sup.hosts.config and sup.hosts.config[n].kind == "docker"}


class Janitor:
    """The supervisor's sweeps, on their own thread, and the claims that keep a volume a cache hit
    has just chosen from being swept under it."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._claims: dict[str, float] = {}  # volume -> when a cache hit chose it
        self._removing: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.touched: set[str] = set()  # hosts that had work while this supervisor ran
        self._errors: dict[str, str] = {}  # host -> the last error printed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sweep()
            self._stop.wait(SWEEP_EVERY)

    def claim(self, host: str, volume: str) -> bool:
        """A cache hit wants this volume: True (and it is not swept for a while) if it still exists."""
        import docker

        with self._lock:
            if volume in self._removing:
                return False
            self._claims[volume] = time.monotonic()
        try:
            self.sup.hosts.client(host).api.inspect_volume(volume)
            return True
        except docker.errors.NotFound:
            return False

    def sweep(self) -> int:
        """One pass over the hosts with work (and those that had some while this supervisor ran:
        their last run's leftovers); returns how many things went."""
        self.touched |= hosts_with_work(self.sup)
        self.touched &= {n for n, h in self.sup.hosts.config.items() if h.kind == "docker"}
        removed = 0
        for host in sorted(self.touched):
            try:
                removed += self.sweep_host(host)
                self._errors.pop(host, None)
            except Exception as e:  # a host that does not answer is the health clock's business
                text = f"{type(e).__name__}: {str(e)[:200]}"
                if self._errors.get(host) != text:
                    self._errors[host] = text
                    print(f"cleanup on {host} waits: {text}", flush=True)
        return removed

    def sweep_host(self, host: str) -> int:
        sup = self.sup
        client = sup.hosts.client(host)
        with self._lock:
            cutoff = time.monotonic() - CLAIM_FOR
            self._claims = {v: t for v, t in self._claims.items() if t > cutoff}
            claimed = set(self._claims)
        items = leftovers(sup.lab, sup.store, client, host, sup.instance, claimed=claimed)  # the host may be slow
        with self._lock:  # a cache hit that claimed a volume meanwhile keeps it
            for x in items:
                if x.kind == "volume" and x.remove and x.name in self._claims:
                    x.remove, x.why = False, "a run just reused it (cache hit)"
            going = {x.name for x in items if x.remove and x.kind == "volume"}
            self._removing |= going
        try:
            errors = remove(client, items)
        finally:
            with self._lock:
                self._removing -= going
        for e in errors:
            print(f"cleanup: could not remove {e}", flush=True)
        return sum(1 for x in items if x.remove) - len(errors)



def collect_leftovers(lab: Lab, store: Store | None, host: str, *, delete: bool = False,
                      failed_too: bool = False) -> tuple[list[Leftover], list[str]]:
    """For `fbtui gc`: this checkout's containers and volumes on `host` whose stage is recorded,
    removed when `delete` (failed ones kept for keep_failed unless `failed_too`). While a supervisor
    runs, volumes are its janitor's: a cache hit may be choosing one right now."""
    from fbtui.images.service import host_client
    from fbtui.pipeline.supervisor import supervisor_alive

    if store is None:
        return [], []
    client = host_client(lab, host)
    items = leftovers(lab, store, client, host, ct.lab_instance(lab.root),
                      now=float("inf") if failed_too else None)
    if supervisor_alive(lab):
        for x in items:
            if x.kind == "volume" and x.remove:
                x.remove, x.why = False, "left to the running supervisor, which removes it when no run needs it"
    return items, remove(client, items) if delete else []
