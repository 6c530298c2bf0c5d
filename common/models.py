"""Registered models, and building one from the model config section."""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from common import registry
from common.errors import StageError
from common.registry import register


@register("model", "mlp")
class MLP(nn.Module):
    """depth hidden layers of width `hidden` (ReLU, dropout), on the flattened input."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 128, depth: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("model", "linear")
class Linear(nn.Module):
    """Multinomial logistic regression: a baseline every project can select."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def model_kwargs(factory: Any, model_cfg: dict[str, Any]) -> dict[str, Any]:
    """The model config keys the factory accepts (all of them if it takes **kwargs).

    Projects inherit keys they may not use (a CNN inherits `hidden`); those are dropped here
    rather than making every model accept everything.
    """
    params = inspect.signature(factory).parameters
    cfg = {k: v for k, v in model_cfg.items() if k != "name"}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cfg
    return {k: v for k, v in cfg.items() if k in params}


def build_model(model_cfg: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    name = str(model_cfg.get("name", "mlp"))
    factory = registry.get("model", name)
    kwargs = model_kwargs(factory, model_cfg)
    try:
        return factory(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise StageError(f"model.name: {name}: cannot build from model config {kwargs}: {e}") from None


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
