"""The interface between the supervisor and a kind of host (DESIGN.md "Backends"; the calls are
listed in docs/scale-out.md 1.1): a Docker engine (docker.py) and a Slurm cluster (slurm.py). A
backend whose scheduler places stages itself (Slurm, Kubernetes) says so with `places = False`: the
supervisor then submits a stage as soon as its predecessors are done, and shows the scheduler's wait
reason instead of placing it. What only one kind has stays with it: a Docker stage's log is
streamed from the engine, a Slurm stage's is read from the shared path.

Handles are strings the store keeps in `stages.container_id` (a Slurm job id), so a supervisor that
was killed finds its stages again from the store alone; `find` looks a stage up by its name when
the store has no handle yet (killed between the submit and its record)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from fbtui.pipeline.containers import StageSpecOnHost

Phase = Literal["pending", "running", "done", "gone"]


@dataclass
class JobState:
    phase: Phase
    state: str = ""  # the scheduler's own word: PENDING, RUNNING, COMPLETED, OUT_OF_MEMORY, ...
    reason: str = ""  # pending: why it waits (Resources, Priority); done: how the scheduler ended it
    exit_code: int | None = None  # the job's (a container's: its command's)
    oom: bool = False  # killed for going over its memory limit
    signal: int | None = None
    node: str = ""
    detail: dict[str, str] = field(default_factory=dict)  # every field the scheduler gave


@dataclass
class Submission:
    """One stage as a batch job: the script and what the scheduler needs to know of it."""

    name: str  # fb-<lab>-<instance>-r<run>-<stage>: unique per checkout, found again by it
    folder: Path  # the stage's folder on the shared path: job.sh, log, outcome.json, out/
    script: str
    cpus: float | None = None
    memory: int | None = None  # bytes
    gpus: int = 0
    timeout: float | None = None  # seconds; the scheduler's own limit, a backstop to fbtui's timer
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # values the job gets from the submitter (secrets)


class Backend(Protocol):
    kind: str
    places: bool  # True: fbtui places stages on it (a Docker engine); False: its scheduler does

    def ping(self) -> None:
        """Returns when the host answers; raises otherwise (the health clock's probe)."""

    def start(self, spec: StageSpecOnHost, secrets: dict[str, str]) -> str:
        """Start the stage (or hand it to the scheduler); returns its handle."""

    def states(self, handles: list[str]) -> dict[str, JobState]:
        """The state of each handle, in one call where the host allows; `gone` for an unknown one."""

    def cancel(self, handle: str) -> None:
        """Stop it with a grace period (`fbtui cancel`)."""

    def kill(self, handle: str) -> None:
        """Stop it now (its timeout, an unsafe output)."""

    def find(self, name: str) -> str | None:
        """The handle of a live job with this name, if any."""

    def problems(self) -> list[tuple[str, str]]:
        """What stops this host from working, each with its fix (`fbtui doctor`)."""
