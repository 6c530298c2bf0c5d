"""A Slurm host as `fbtui hosts` and the app's hosts screen show it (the same row as a Docker host's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fbtui.backends import slurm_backend

if TYPE_CHECKING:
    from fbtui.config.models import HostConfig


def slurm_status(hosts: dict[str, HostConfig], name: str) -> dict[str, Any]:
    """A slurm host in the same shape as a Docker host's row: the cluster's totals, fb's jobs as stages."""
    h = hosts[name]
    assert h.slurm is not None
    b = slurm_backend(hosts, name)
    row: dict[str, Any] = {"host": name, "url": f"slurm ({h.slurm.login})", "kind": "slurm", "reachable": False,
                           "version": None, "api": "-", "runtimes": [h.slurm.runtime], "gpus": [], "gpus_in_use": [],
                           "slots": h.slots, "in_use": 0, "cpus": None, "cpus_in_use": 0.0, "memory": None,
                           "memory_in_use": 0, "containers": [], "error": None}
    try:
        s = b.summary()
    except Exception as e:
        row["error"] = getattr(e, "message", None) or f"{type(e).__name__}: {str(e)[:200]}"
        return row
    jobs = [{"run": None, "stage": j["name"], "foreign": False, "text": f"job {j['job']} {j['state'].lower()}"
             + (f" ({j['reason']})" if j["state"] == "PENDING" else "")} for j in s["jobs"]]
    row.update(reachable=True, version=s["version"], cpus=float(s["cpus"]), cpus_in_use=float(s["cpus_in_use"]),
               memory=s["memory"], in_use=len(jobs), containers=jobs)
    return row
