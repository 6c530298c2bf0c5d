"""Registered optimizers and learning-rate schedules (stepped once per optimizer step)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from common.registry import register

Params = Iterable[torch.nn.Parameter]


@register("optimizer", "adam")
def adam(params: Params, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=float(cfg["lr"]), weight_decay=float(cfg.get("weight_decay", 0.0)))


@register("optimizer", "adamw")
def adamw(params: Params, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=float(cfg["lr"]), weight_decay=float(cfg.get("weight_decay", 0.0)))


@register("optimizer", "sgd")
def sgd(params: Params, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    # optim.momentum is not in common/defaults.yaml (the optim section's keys are fixed there); a
    # project that selects sgd sets it in its project.yaml.
    return torch.optim.SGD(params, lr=float(cfg["lr"]), momentum=float(cfg.get("momentum", 0.9)),
                           weight_decay=float(cfg.get("weight_decay", 0.0)))


def _warmup(step: int, warmup: int) -> float:
    return (step + 1) / warmup if warmup > 0 and step < warmup else 1.0


class NoSchedule:
    """A constant learning rate. Not an LRScheduler on purpose: those wrap optimizer.step with
    bookkeeping that costs more per step than a small model's update."""

    def __init__(self) -> None:
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_epoch = int(state["last_epoch"])


# Schedules are LambdaLR over the step index, so resuming restores them from `last_epoch` alone.
@register("scheduler", "none")
def constant(opt: torch.optim.Optimizer, cfg: dict[str, Any], total_steps: int) -> LRScheduler | NoSchedule:
    warmup = int(cfg.get("warmup_steps", 0))
    if warmup <= 0:
        return NoSchedule()
    return LambdaLR(opt, lambda s: _warmup(s, warmup))


@register("scheduler", "cosine")
def cosine(opt: torch.optim.Optimizer, cfg: dict[str, Any], total_steps: int) -> LRScheduler:
    warmup = int(cfg.get("warmup_steps", 0))
    floor = float(cfg.get("min_lr_ratio", 0.0))

    def f(s: int) -> float:
        if s < warmup:
            return _warmup(s, warmup)
        progress = min(1.0, (s - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(opt, f)


@register("scheduler", "step")
def step_decay(opt: torch.optim.Optimizer, cfg: dict[str, Any], total_steps: int) -> LRScheduler:
    warmup = int(cfg.get("warmup_steps", 0))
    size, gamma = max(1, int(cfg.get("step_size", 1000))), float(cfg.get("gamma", 0.1))
    return LambdaLR(opt, lambda s: _warmup(s, warmup) * gamma ** (s // size))
