"""Placement: which waiting stage starts where, now, and why the others wait.

A host offers CPUs, memory and GPU ids; a stage asks for some of each. A stage starts on a host only
where its request fits beside everything fb runs there: this checkout's stages and every other fb
stage container on that engine, whoever started it. Order is first come, first served (by run, so a
run that has begun goes on before later runs start); a later stage may jump ahead (backfill) only
into what is free beyond what the head of the queue is waiting for, so it never delays the head.
`slots:` in lab.yaml stays an optional cap on the number of stages. Pure logic: the supervisor
feeds it what the engines say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GiB = 2**30


@dataclass(frozen=True)
class Request:
    cpus: float
    memory: int  # bytes; 0: none asked
    gpus: int | tuple[int, ...] = 0  # a count, or exact device ids

    @property
    def gpu_count(self) -> int:
        return len(self.gpus) if isinstance(self.gpus, tuple) else int(self.gpus)

    def text(self) -> str:
        parts = [f"{self.cpus:g} CPU{'s' if self.cpus != 1 else ''}"]
        if self.memory:
            parts.append(f"{self.memory / GiB:g} GiB")
        if self.gpu_count:
            parts.append(f"{self.gpu_count} GPU{'s' if self.gpu_count != 1 else ''}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Holder:
    """One fb stage container holding resources on a host."""

    run: int | None
    stage: str
    request: Request
    gpu_ids: tuple[int, ...] = ()
    foreign: bool = False  # another checkout's (or a user's), counted, never touched
    owner: str = ""  # "alice's checkout 1a2b3c4d" for a foreign one

    def text(self) -> str:
        what = f"#{self.run} {self.stage}" if self.run is not None else self.stage
        return f"{what} of {self.owner or 'another checkout'}" if self.foreign else what


@dataclass
class Host:
    name: str
    cpus: float
    memory: int
    gpu_ids: tuple[int, ...] | None = ()  # None: GPUs the engine allocates itself, not counted here
    slots: int | None = None
    holders: list[Holder] = field(default_factory=list)

    @property
    def used_cpus(self) -> float:
        return sum(h.request.cpus for h in self.holders)

    @property
    def used_memory(self) -> int:
        return sum(h.request.memory for h in self.holders)

    @property
    def held_gpus(self) -> set[int]:
        return {g for h in self.holders for g in h.gpu_ids}

    def free_gpus(self) -> list[int]:
        return [g for g in self.gpu_ids or () if g not in self.held_gpus]

    def never_fits(self, req: Request) -> str | None:
        """Why `req` can never run here, even on an empty host."""
        if req.cpus > self.cpus + 1e-9:
            return f"{req.cpus:g} CPUs asked, {self.name} has {self.cpus:g}"
        if req.memory and self.memory and req.memory > self.memory:
            return f"{req.memory / GiB:.1f} GiB asked, {self.name} has {self.memory / GiB:.1f} GiB"
        if self.gpu_ids is None:
            return None
        if isinstance(req.gpus, tuple):
            missing = [g for g in req.gpus if g not in self.gpu_ids]
            if missing:
                return f"GPU {','.join(map(str, missing))} asked, {self.name} has " + (
                    f"GPUs {','.join(map(str, self.gpu_ids))}" if self.gpu_ids else "no GPUs")
        elif req.gpus and req.gpus > len(self.gpu_ids):
            return f"{req.gpus} GPUs asked, {self.name} has {len(self.gpu_ids) or 'none'}"
        return None

    def shortfall(self, req: Request, reserved: Request | None = None) -> str | None:
        """None when `req` fits now (beside the holders and a reservation); else what it waits for."""
        cpus = self.cpus - self.used_cpus - (reserved.cpus if reserved else 0)
        memory = self.memory - self.used_memory - (reserved.memory if reserved else 0)
        free = self.free_gpus()
        if reserved is not None and reserved.gpu_count:
            free = free[reserved.gpu_count:]
        in_use = ", ".join(h.text() for h in self.holders) or "nothing"
        if self.slots is not None and len(self.holders) >= self.slots:
            return f"a slot on {self.name} ({len(self.holders)} of {self.slots} in use: {in_use})"
        if req.cpus > cpus + 1e-9:
            return (f"{req.cpus:g} CPU{'s' if req.cpus != 1 else ''} on {self.name} "
                    f"({self.used_cpus:g} of {self.cpus:g} in use: {in_use})")
        if req.memory and self.memory and req.memory > memory:
            return (f"{req.memory / GiB:g} GiB of memory on {self.name} "
                    f"({self.used_memory / GiB:.1f} of {self.memory / GiB:.1f} GiB in use: {in_use})")
        if self.gpu_ids is None:
            return None
        if isinstance(req.gpus, tuple):
            busy = [g for g in req.gpus if g not in free]
            if busy:
                return f"GPU {','.join(map(str, busy))} on {self.name} (held by {in_use})"
        elif req.gpus and req.gpus > len(free):
            return f"{req.gpus} free GPU{'s' if req.gpus != 1 else ''} on {self.name} ({len(free)} free)"
        return None

    def pick_gpus(self, req: Request) -> tuple[int, ...]:
        if self.gpu_ids is None and not isinstance(req.gpus, tuple):
            return ()  # the engine picks (a count request)
        if isinstance(req.gpus, tuple):
            return req.gpus
        return tuple(self.free_gpus()[:req.gpus]) if req.gpus else ()


@dataclass
class Waiting:
    """A stage that wants to start: its run, its request and the hosts it may use."""

    run: int
    stage: str
    request: Request
    hosts: list[str]  # in preference order


@dataclass
class Decision:
    waiting: Waiting
    host: str | None  # where it starts now; None: it waits
    gpus: tuple[int, ...] = ()
    reason: str = ""  # why it waits


def place(queue: list[Waiting], hosts: dict[str, Host]) -> list[Decision]:
    """Decide every waiting stage, in queue order. A stage that starts is added to its host's
    holders, so later decisions see it. The first stage that cannot start reserves its request on
    the first of its hosts it could ever fit on; later stages may only use what is left beyond it."""
    out: list[Decision] = []
    heads: dict[str, Waiting] = {}  # host -> the first stage waiting for it
    for w in queue:
        candidates = [hosts[h] for h in w.hosts if h in hosts]
        chosen, why, nevers = None, [], []
        for host in candidates:
            never = host.never_fits(w.request)
            if never:
                nevers.append(never)
                continue
            head = heads.get(host.name)
            short = host.shortfall(w.request, head.request if head else None)
            if short is None:
                chosen = host
                break
            if head is not None and host.shortfall(w.request) is None:
                short = f"its turn on {host.name}: #{head.run} {head.stage} waits ahead of it"
            why.append(short)
        if chosen is not None:
            gpus = chosen.pick_gpus(w.request)
            chosen.holders.append(Holder(w.run, w.stage, w.request, gpus))
            out.append(Decision(w, chosen.name, gpus))
            continue
        for host in candidates:  # the head of the queue keeps its place on the first host it can use
            if host.name not in heads and not host.never_fits(w.request):
                heads[host.name] = w
                break
        if why:
            reason = "waiting for " + "; or ".join(why)
        else:
            reason = ("cannot run on any of its hosts: " + "; ".join(nevers)) if nevers else "no host to run on"
        out.append(Decision(w, None, reason=reason))
    return out
