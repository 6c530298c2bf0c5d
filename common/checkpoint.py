"""Checkpoint files under <out>/checkpoints/: written atomically, found by step, pruned to the last few."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints"


def list_checkpoints(out: Path) -> list[tuple[int, Path]]:
    d = checkpoint_dir(out)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest(out: Path) -> Path | None:
    found = list_checkpoints(out)
    return found[-1][1] if found else None


def save_atomic(obj: Any, path: Path) -> None:
    """A kill mid-write leaves the previous file, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(out: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    path = checkpoint_dir(out) / f"step-{step:08d}.pt"
    save_atomic(state, path)
    if keep > 0:
        for _, old in list_checkpoints(out)[:-keep]:
            old.unlink(missing_ok=True)
    return path


def load(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    # Our own files, holding RNG states (numpy arrays, tuples): not loadable with weights_only.
    return torch.load(path, map_location=device, weights_only=False)
