"""A `kind: slurm` host's settings in lab.yaml (#15): where sbatch runs, the filesystem the login
node, the nodes and fbtui all see, and the container runtime of the nodes."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SlurmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Stage folders (out, inputs, log, job script) live here. fbtui reads logs and metrics from it
    # by offset, so the machine fbtui runs on must see it at this same path (NFS, CephFS, ...).
    shared: str
    login: str = "local"  # where sbatch/squeue/scancel run: local, or ssh://user@login-node[:port]
    runtime: Literal["docker", "podman", "apptainer"] = "docker"  # the nodes' container runtime
    partition: str | None = None
    account: str | None = None
    conf: str | None = None  # SLURM_CONF for the commands (a cluster that is not the machine's default)
    node_env: dict[str, str] = Field(default_factory=dict)  # set in the job before the runtime starts
    sbatch_args: list[str] = Field(default_factory=list)  # e.g. [--qos=short]: passed as given
    # Without a lab registry, the nodes' runtime finds images on this Docker host of lab.yaml (a
    # node sharing that engine, as in the one-machine test cluster). With one, nodes pull from it.
    engine: str = "local"

    @field_validator("shared")
    @classmethod
    def _shared(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"expected an absolute path that every node and this machine see, got {v!r}")
        return v.rstrip("/") or "/"

    @field_validator("login")
    @classmethod
    def _login(cls, v: str) -> str:
        if v == "local" or re.match(r"^ssh://([^@/\s]+@)?[^@/:\s]+(:\d+)?$", v):
            return v
        raise ValueError(f"expected 'local' or ssh://user@host[:port], got {v!r}")
