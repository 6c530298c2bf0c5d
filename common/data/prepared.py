"""Deterministic splits and the prepared-data artifact (data.npz) that later stages reuse."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common import registry
from common.errors import StageError

SPLITS = ("train", "val", "test")


@dataclass
class Prepared:
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x["train"].shape[1:])

    def digest(self, split: str) -> str:
        """sha256 of one split's bytes (dtype and shape included)."""
        h = hashlib.sha256()
        for a in (self.x[split], self.y[split]):
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(json.dumps(self.class_names).encode())
        return h.hexdigest()


def split(x: np.ndarray, y: np.ndarray, test_fraction: float, val_fraction: float, seed: int
          ) -> dict[str, np.ndarray]:
    """Stratified index splits, the same for the same seed on every machine."""
    from sklearn.model_selection import train_test_split  # lazy: 1.5 s of import the other stages skip

    idx = np.arange(len(y))
    strat = y if np.bincount(y).min() >= 2 else None
    rest, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=strat)
    parts = {"test": np.sort(test)}
    if val_fraction > 0:
        rel = val_fraction / (1.0 - test_fraction)
        train, val = train_test_split(rest, test_size=rel, random_state=seed,
                                      stratify=y[rest] if strat is not None else None)
        parts["train"], parts["val"] = np.sort(train), np.sort(val)
    else:
        parts["train"], parts["val"] = np.sort(rest), np.array([], dtype=np.int64)
    return parts


def prepare(data_cfg: dict[str, Any], project_dir: Path | None) -> Prepared:
    x, y, class_names = registry.get("dataset", str(data_cfg["name"]))(data_cfg, project_dir)
    test_fraction = float(data_cfg.get("test_fraction", 0.2))
    val_fraction = float(data_cfg.get("val_fraction", 0.1))
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 - test_fraction:
        raise StageError("data.test_fraction / data.val_fraction: need 0 < test < 1 and 0 <= val < 1 - test")
    parts = split(x, y, test_fraction, val_fraction, int(data_cfg.get("split_seed", 0)))
    transform = registry.get("transform", str(data_cfg.get("transform", "none")))()
    transform.fit(x[parts["train"]])
    return Prepared({s: transform(x[i]) for s, i in parts.items()},
                    {s: y[i] for s, i in parts.items()}, class_names)


def save(p: Prepared, path: Path) -> None:
    arrays: dict[str, Any] = {}
    for s in SPLITS:
        arrays[f"x_{s}"], arrays[f"y_{s}"] = p.x[s], p.y[s]
    arrays["class_names"] = np.array(p.class_names)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)  # uncompressed: small, and byte-stable for fingerprints
    tmp.replace(path)


def load(path: Path) -> Prepared:
    with np.load(path, allow_pickle=False) as z:
        return Prepared({s: z[f"x_{s}"] for s in SPLITS}, {s: z[f"y_{s}"] for s in SPLITS},
                        [str(c) for c in z["class_names"]])
