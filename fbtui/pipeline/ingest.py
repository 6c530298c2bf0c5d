"""Metrics from a stage's metrics.jsonl, ingested by byte offset: whole lines only, each chunk's
rows and its new offset committed together, so an ingest that dies resumes with nothing lost and
nothing doubled."""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fbtui.store import Store

_POINT = operator.itemgetter("key", "step", "value", "t")


def parse_metric_lines(data: bytes) -> tuple[list[tuple[str, int, float | None, float]], int, int]:
    """Whole JSON lines -> rows; returns (rows, bytes consumed, malformed lines)."""
    end = data.rfind(b"\n") + 1
    if not end:
        return [], 0, 0
    lines = [x for x in data[:end].split(b"\n") if x.strip()]
    try:  # one C call for the whole batch; a bad line sends it down the careful path
        points = json.loads(b"[" + b",".join(lines) + b"]")
        rows = list(map(_POINT, points))  # C-level field picking: the report() format as written
        return rows, end, 0
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    rows, bad = [], 0
    for line in lines:
        try:
            d = json.loads(line)
            value = d["value"]  # null: a NaN or inf that JSON cannot hold; kept as a gap
            rows.append((str(d["key"]), int(d["step"]), None if value is None else float(value),
                         float(d.get("t") or 0.0)))
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
    return rows, end, bad


INGEST_CHUNK = 8 * 2**20


def ingest_bytes(store: Store, run_id: int, stage: str, data: bytes, offset: int) -> int:
    """Ingest whole lines of `data` (which starts at byte `offset` of the file), chunk by chunk,
    each chunk's rows and new offset in one transaction. Returns the points added."""
    added, start = 0, 0
    while start < len(data):
        chunk = data[start:start + INGEST_CHUNK]
        rows, used, _bad = parse_metric_lines(chunk)
        if not used:
            break
        start += used
        added += store.add_metrics(run_id, rows, stage=stage, offset=offset + start)
    return added


INGEST_READ = 64 * 2**20  # read per call: a huge file is ingested over several calls, memory bounded


def ingest_file(store: Store, run_id: int, stage: str, path: Path) -> int:
    """Ingest what a local metrics file holds past the stage's committed offset. It is opened as
    a stage output: a link, FIFO or device raises UnsafeOutput instead of being followed."""
    from fbtui.pipeline.outputs import read_output

    added = 0
    while True:  # a bounded read at a time, each committed before the next
        offset = int(store.stage(run_id, stage)["metrics_offset"] or 0)
        data = read_output(path.parent, path.name, offset=offset, cap=INGEST_READ)
        if not data:
            return added
        added += ingest_bytes(store, run_id, stage, data, offset)
        if int(store.stage(run_id, stage)["metrics_offset"] or 0) == offset:
            return added  # only a partial last line so far: the next call reads it whole
