"""Registered transforms: fitted on the train split only, then applied to every split."""

from __future__ import annotations

import numpy as np

from common.registry import register


class Transform:
    def fit(self, x: np.ndarray) -> Transform:
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x


register("transform", "none")(Transform)


@register("transform", "standardize")
class Standardize(Transform):
    """Zero mean, unit variance per feature; constant features are only centred."""

    def fit(self, x: np.ndarray) -> Standardize:
        self.mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        std = x.std(axis=0, dtype=np.float64)
        self.std = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


@register("transform", "minmax")
class MinMax(Transform):
    """Scale to 0..1 by the train split's global range."""

    def fit(self, x: np.ndarray) -> MinMax:
        self.lo, hi = float(x.min()), float(x.max())
        self.scale = (hi - self.lo) or 1.0
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.lo) / self.scale).astype(np.float32)
