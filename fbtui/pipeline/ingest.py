"""Metrics from a stage's metrics.jsonl, ingested by byte offset: whole lines only, each chunk's
rows and its new offset committed together, so an ingest that dies resumes with nothing lost and
nothing doubled."""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError

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


# ------------------------------------------------------------ when the store cannot take them

def store_fault(e: BaseException, path: Path | None = None) -> str | None:
    """Why the store could not take a write, in a few words ("disk full", "store locked by another
    process"), or None when `e` is not the store failing (a bug, an engine that does not answer):
    a store fault is waited out (the points wait in the file past the committed offset), never
    a reason to fail a stage."""
    import sqlite3

    from fbtui.store.opening import StoreError, disk_full, is_locked

    full = path is not None and disk_full(path)
    if isinstance(e, sqlite3.Error):
        name, text = getattr(e, "sqlite_errorname", "") or "", str(e)
        if name.startswith("SQLITE_FULL") or "disk is full" in text or full:
            return "disk full"
        if is_locked(e):
            return "store locked by another process"
        if name.startswith("SQLITE_IOERR") or "I/O error" in text:
            return f"store I/O error ({name or text})"
        if name.startswith("SQLITE_READONLY") or "readonly" in text:
            return "store read-only"
        return None
    if isinstance(e, StoreError):  # the store's one-line errors (a BEGIN that failed) name their cause
        text = e.message
        if "disk is full" in text or full:
            return "disk full"
        if "locked" in text:
            return "store locked by another process"
        if "read-only" in text:
            return "store read-only"
        if "I/O error" in text:
            return "store I/O error"
    return None


WAITING_READ = 16 * 2**20  # counted exactly up to this much; estimated past it


def waiting_points(stage: dict[str, Any]) -> int | None:
    """The metric points a local stage wrote that the store has not recorded yet: whole lines of
    its metrics.jsonl past the committed offset (None: a remote stage, its file is not here)."""
    import os
    import stat

    from fbtui.pipeline.outputs import read_output

    out = stage.get("out")
    if not out or not Path(out).is_absolute():
        return None
    offset = int(stage.get("metrics_offset") or 0)
    try:
        st = os.lstat(Path(out) / "metrics.jsonl")
        if not stat.S_ISREG(st.st_mode) or st.st_size <= offset:
            return 0
        data = read_output(Path(out), "metrics.jsonl", offset=offset, cap=WAITING_READ) or b""
    except (OSError, FBError):
        return None
    n = data.count(b"\n")
    if data and st.st_size - offset > len(data):  # a long backlog: the rest at the same line length
        n = round(n * (st.st_size - offset) / len(data))
    return n


def degraded_note(stage: dict[str, Any], store_full: bool = False) -> str | None:
    """`degraded: disk full — 2,300 points waiting` for a running stage whose points the store
    cannot take now; None when it is fine. The reason is the one its supervisor recorded, else
    (with `store_full`: the store's disk has no room, so nothing can record it) "disk full"."""
    if stage.get("status") != "running":
        return None
    reason = stage.get("degraded") or ("disk full" if store_full else None)
    if not reason:
        return None
    n = waiting_points(stage)
    return f"degraded: {reason}" + (f" — {n:,} point{'s' if n != 1 else ''} waiting" if n else "")


def stage_status(stage: dict[str, Any], store_full: bool = False) -> str:
    """A stage's status as commands show it: `running (degraded: disk full — 2,300 points waiting)`."""
    note = degraded_note(stage, store_full)
    return f"{stage['status']} ({note})" if note else str(stage["status"])


def full_disk_line(path: Path) -> str | None:
    """What a command that reads the store says when the store's disk is full (None: it is not)."""
    from fbtui.store.opening import disk_full, free_bytes

    if not disk_full(path):
        return None
    return (f"fbtui: warning: the disk of the store {path} is full ({free_bytes(path) or 0:,} bytes free): running "
            "stages cannot record their progress now; they keep it and catch up once space is freed")
