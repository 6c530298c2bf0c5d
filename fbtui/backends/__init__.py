"""Kinds of host behind one interface (base.py): Slurm here; Docker engines in fbtui/pipeline/."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fbtui.backends.slurm import SlurmBackend
    from fbtui.config.models import HostConfig


def is_slurm(hosts: dict[str, HostConfig], name: str | None) -> bool:
    h = hosts.get(name or "")
    return h is not None and h.kind == "slurm"


def slurm_backend(hosts: dict[str, HostConfig], name: str) -> SlurmBackend:
    from fbtui.backends.slurm import SlurmBackend

    h = hosts[name]
    assert h.slurm is not None
    return SlurmBackend(name, h.slurm, h.ssh_options)


def image_host(hosts: dict[str, HostConfig], name: str) -> str:
    """The Docker host whose engine holds images for `name`: itself, or a Slurm host's `engine`."""
    h = hosts.get(name)
    return h.slurm.engine if h is not None and h.slurm is not None else name
