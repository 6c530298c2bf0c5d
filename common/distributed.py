"""One run across several processes (#15, item 4): `processes: N` starts a stage under torchrun,
which sets WORLD_SIZE, RANK and LOCAL_RANK. Every rank trains on its shard of each epoch's batches
with DistributedDataParallel (gloo on CPU, NCCL on GPU); only rank 0 reports metrics and writes
checkpoints and the model, so each metric step is written once. Without torchrun, world() is 1 and
every function here is a no-op."""

from __future__ import annotations

import os
from typing import Any

import torch

from common.errors import StageError


def world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def is_main() -> bool:
    return rank() == 0


def init(device: torch.device) -> torch.device:
    """Join the process group (once); a GPU rank takes the GPU of its local rank."""
    if world() == 1:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model as the ranks train it: DDP averages gradients in backward (rank 0's weights first)."""
    if world() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean(value: float, device: torch.device) -> float:
    """The mean of one number over the ranks (a log window's loss)."""
    if world() == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / world()


def gather(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (RNG states for a checkpoint)."""
    if world() == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if world() > 1:
        import torch.distributed as dist

        dist.barrier()


def check_world(saved: int | None) -> None:
    """A checkpoint is resumed with the world size it was written with (the data shards and every
    rank's random state depend on it)."""
    saved = saved or 1
    if saved != world():
        raise StageError(f"the checkpoint was written by {saved} process{'es' if saved > 1 else ''}, this run has "
                         f"{world()}: resume with processes: {saved}, or start over (fbtui run --no-cache)")


def finish() -> None:
    if world() > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
