"""DataLoaders over in-memory splits, configured by the data section.

Batches are gathered by index from whole tensors (one indexing op per batch instead of one
Python call per sample): the framework must cost nothing next to a hand-written loop. The
shuffle order is a pure function of (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

ON_DEVICE_MAX_BYTES = 1 << 30


class TensorBatches(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return self.x[idx], self.y[idx]


class EpochBatchSampler(Sampler[torch.Tensor]):
    """Batches of indices; shuffled by (seed, epoch); can start part-way through an epoch. With
    `world` > 1 (one run across processes) every rank shuffles alike and takes every world-th
    sample of the order: equal shards (the remainder of n / world is left out of that epoch), so
    every rank takes the same number of steps."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0, drop_last: bool = False,
                 rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.rank, self.world = rank, world
        self.shard = n // world if world > 1 else n
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start = epoch, start_batch

    def __len__(self) -> int:
        return self.shard // self.batch_size if self.drop_last else -(-self.shard // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.arange(self.n)
        if self.world > 1:
            order = order[:self.shard * self.world][self.rank::self.world]
        for b in range(self.start, len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size]


class InProcessLoader:
    """The DataLoader interface for num_workers: 0, without its per-batch machinery (profiler
    scopes, fetchers), which costs more than gathering a batch from in-memory tensors."""

    def __init__(self, dataset: TensorBatches, sampler: EpochBatchSampler, pin_memory: bool) -> None:
        self.dataset, self.sampler, self.pin_memory = dataset, sampler, pin_memory
        self.num_workers, self.persistent_workers = 0, False

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.sampler:
            xb, yb = self.dataset[idx]
            yield (xb.pin_memory(), yb.pin_memory()) if self.pin_memory else (xb, yb)


def make_loader(x: np.ndarray, y: np.ndarray, data_cfg: dict[str, Any], *, shuffle: bool, seed: int,
                device: torch.device, batch_size: int | None = None, rank: int = 0,
                world: int = 1) -> DataLoader[Any] | InProcessLoader:
    workers = int(data_cfg.get("num_workers", 0))
    sampler = EpochBatchSampler(len(y), int(batch_size or data_cfg.get("batch_size", 64)), shuffle, seed,
                                rank=rank, world=world)
    pin = bool(data_cfg.get("pin_memory", False)) and device.type == "cuda"
    if workers == 0:
        dataset = TensorBatches(x, y)
        if device.type == "cuda" and x.nbytes + y.nbytes <= ON_DEVICE_MAX_BYTES:
            # A split this small lives on the GPU for the whole run: batches are gathered there,
            # with no per-batch host-to-device copy (and nothing to pin).
            dataset.x, dataset.y = dataset.x.to(device), dataset.y.to(device)
            pin = False
        return InProcessLoader(dataset, sampler, pin)
    return DataLoader(
        TensorBatches(x, y),
        sampler=sampler,
        batch_size=None,  # the sampler yields whole batches
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=bool(data_cfg.get("persistent_workers", False)),
        # A private generator: creating an iterator must not consume the global RNG (dropout's),
        # or a resumed run would diverge from an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
    )
