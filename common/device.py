"""Device and precision from config: `auto` picks CUDA when present; an absent device is an error."""

from __future__ import annotations

import math
import os
from contextlib import AbstractContextManager, nullcontext

import torch

from common.errors import StageError


def resolve_device(spec: str) -> torch.device:
    spec = (spec or "auto").strip()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise StageError(f"train.device: {spec} was requested but no CUDA device is available "
                             "(use device: auto or cpu, or give the stage a GPU)")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise StageError(f"train.device: {spec} was requested but only {torch.cuda.device_count()} "
                             f"CUDA device(s) are visible (cuda:0..cuda:{torch.cuda.device_count() - 1})")
        return dev
    raise StageError(f"train.device: unknown device {spec!r} (auto, cpu, cuda, cuda:N)")


def resolve_precision(spec: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    spec = (spec or "auto").strip()
    if spec == "fp32":
        return None
    if spec == "auto":
        if device.type != "cuda":
            return None  # CPU autocast is slower than fp32 for these models, and would break bit-exactness
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if spec == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise StageError("train.precision: bf16 was requested but this GPU does not support it (use fp16 or auto)")
        return torch.bfloat16
    if spec == "fp16":
        if device.type != "cuda":
            raise StageError("train.precision: fp16 needs a CUDA device (use fp32 or bf16 on CPU)")
        return torch.float16
    raise StageError(f"train.precision: unknown precision {spec!r} (auto, fp32, bf16, fp16)")


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota (a
    container started with cpus: 2 on a 64-core host must not run 64 threads)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, -(-quota[0] // quota[1])))
    return max(1, n)


def _cgroup_quota() -> tuple[int, int] | None:
    """(quota, period) of this cgroup's CPU limit, v2 or v1; None when unlimited or unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:  # cgroup v2
            quota, period = f.read().split()[:2]
        return None if quota == "max" else (int(quota), int(period))
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:  # cgroup v1
            q = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            p = int(f.read())
        return (q, p) if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def stage_cpus() -> int:
    """The CPUs this stage asked for: fbtui sets FB_CPUS (and OMP_NUM_THREADS) to the stage's
    request; outside fbtui, the CPUs available."""
    for name in ("FB_CPUS", "OMP_NUM_THREADS"):
        try:
            value = float(os.environ.get(name, ""))
        except ValueError:
            continue
        if value > 0:
            return max(1, math.ceil(value - 1e-9))
    return available_cpus()


def configure_threads(threads: int) -> int:
    """torch intra-op threads: `threads`, or (0) the stage's CPU request. Oversubscribed threads
    spin against each other and can make small models several times slower."""
    # the processes of one stage (torchrun) share its CPUs
    n = threads if threads > 0 else max(1, stage_cpus() // int(os.environ.get("WORLD_SIZE", "1") or 1))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
