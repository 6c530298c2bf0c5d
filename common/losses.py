"""Registered training losses (evaluation always reports plain cross-entropy, for comparability)."""

from __future__ import annotations

from typing import Any

from torch import nn

from common.registry import register


@register("loss", "cross_entropy")
def cross_entropy(cfg: dict[str, Any]) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=float(cfg.get("label_smoothing", 0.0)))
