"""digits-cnn's one override: a small convolutional network over the 8x8 digit images.

Everything else (data, optimizer, training loop, evaluation) is inherited from `common`.
"""

from __future__ import annotations

import torch
from torch import nn

from common.registry import register


@register("model", "digits-cnn")
class DigitsCNN(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, channels: int = 16,
                 dropout: float = 0.1) -> None:
        super().__init__()
        in_ch, h, w = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(in_ch, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(2 * channels * (h // 2) * (w // 2), num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
