"""Metrics API: `report(step, **{"train/loss": 0.31})` appends JSON lines to <out>/metrics.jsonl.

One line per key: {"step": 10, "key": "train/loss", "value": 0.31, "t": 1732600000.1}. All lines
of one call go out in a single unbuffered O_APPEND write, so an ingester reading by byte offset
never sees half a line.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

_path: Path | None = None


def configure(out_dir: str | os.PathLike[str]) -> Path:
    """Direct reports to `out_dir`/metrics.jsonl (the stage runner calls this)."""
    global _path
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    _path = Path(out_dir) / "metrics.jsonl"
    return _path


def metrics_path() -> Path:
    if _path is None:
        return configure(os.environ.get("FB_OUT", "/fb/out"))
    return _path


def _number(value: Any) -> float | int:
    if hasattr(value, "item"):  # torch / numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    value = float(value)
    # JSON has no NaN/inf; null keeps the line parseable and the gap visible.
    return value if math.isfinite(value) else None  # type: ignore[return-value]


def _main_rank() -> bool:
    """Under torchrun only rank 0 writes: each step once, whatever the number of processes."""
    return os.environ.get("RANK", "0") in ("", "0")


def report(step: int, **metrics: Any) -> None:
    if not metrics or not _main_rank():
        return
    t = time.time()
    lines = "".join(
        json.dumps({"step": int(step), "key": k, "value": _number(v), "t": t}, separators=(",", ":")) + "\n"
        for k, v in metrics.items()
    ).encode()
    path = metrics_path()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, lines)
        while written < len(lines):  # short writes are rare on regular files, but not impossible
            written += os.write(fd, lines[written:])
    finally:
        os.close(fd)


def size() -> int:
    """Current byte size of the metrics file (recorded in checkpoints)."""
    p = metrics_path()
    return p.stat().st_size if p.exists() else 0


def truncate(nbytes: int) -> None:
    """Drop lines written after a checkpoint, so a resumed run writes each step exactly once."""
    p = metrics_path()
    if _main_rank() and p.exists() and p.stat().st_size > nbytes:
        os.truncate(p, nbytes)


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]
