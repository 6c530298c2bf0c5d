"""Following a container's log into a spool file with no line lost or doubled across reconnects.

Docker's `since` is inclusive and the SDK rounds a float `since` (MEASURED.md). So: stream with
timestamps, keep the last timestamp string and how many lines carried it, and resume by passing
that exact instant and skipping that many lines. The spool file itself holds that state, so a
supervisor that dies resumes where the file ends.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker


def since_param(ts: str) -> str:
    """RFC 3339 with nanoseconds -> the API's `since` ("seconds.nanoseconds"), exactly."""
    base, _, frac = ts.rstrip("Z").partition(".")
    seconds = int(datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())
    return f"{seconds}.{(frac + '000000000')[:9]}"


def spool_state(path: Path) -> tuple[str | None, int]:
    """The last timestamp in a spool file and how many lines at its end carry it."""
    if not path.exists() or path.stat().st_size == 0:
        return None, 0
    with path.open("rb") as f:
        size = f.seek(0, 2)
        chunk = 1 << 16
        data = b""
        while True:
            start = max(0, size - chunk)
            f.seek(start)
            data = f.read(size - start)
            lines = data.split(b"\n")
            if start == 0 or len(lines) > 1000:
                break
            chunk *= 4
    lines = [x for x in data.split(b"\n") if x]
    if start != 0:
        lines = lines[1:]  # the first may be partial
    last = lines[-1].split(b" ", 1)[0].decode()
    count = 0
    for line in reversed(lines):
        if line.split(b" ", 1)[0].decode() != last:
            break
        count += 1
    return last, count


def follow(client: docker.DockerClient, container_id: str, spool: Path, *, follow: bool = True) -> int:
    """Append the container's log lines ("<timestamp> <text>") to `spool`, from where it ends.
    Returns how many lines were added. Returns when the container stops (or at once if not follow)."""
    last, skip = spool_state(spool)
    params: dict[str, object] = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow)}
    if last:
        params["since"] = since_param(last)
    api = client.api
    res = api._get(api._url("/containers/{0}/logs", container_id), params=params, stream=True, timeout=None)
    api._raise_for_status(res)
    added = 0
    spool.parent.mkdir(parents=True, exist_ok=True)
    with spool.open("ab") as out:
        pending = b""
        for payload in _frames(res, api):
            pending += payload
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if skip:
                    ts = line.split(b" ", 1)[0].decode()
                    if ts == last:
                        skip -= 1
                        continue
                    skip = 0
                out.write(line + b"\n")
                added += 1
            out.flush()
        if pending:
            out.write(pending + b"\n")
            added += 1
    return added


def _frames(res: object, api: object):  # type: ignore[no-untyped-def]
    """Payloads of Docker's multiplexed stream: an 8-byte header, then exactly that many bytes.
    Exact-size reads return as soon as the bytes are there, so following stays live."""
    sock = api._get_raw_response_socket(res)  # type: ignore[attr-defined]
    api._disable_socket_timeout(sock)  # type: ignore[attr-defined]
    raw = res.raw  # type: ignore[attr-defined]
    while True:
        header = raw.read(8)
        if len(header) < 8:
            return
        _, size = struct.unpack(">BxxxL", header)
        payload = raw.read(size)
        if not payload:
            return
        yield payload


def read_spool(path: Path, *, timestamps: bool = False, start: int = 0) -> tuple[list[str], int]:
    """Whole lines of a spool file from byte `start`; returns them and the offset after them."""
    if not path.exists():
        return [], start
    with path.open("rb") as f:
        f.seek(start)
        data = f.read()
    end = data.rfind(b"\n") + 1
    lines = []
    for raw in data[:end].split(b"\n")[:-1]:
        text = raw.decode("utf-8", "replace")
        lines.append(text if timestamps else text.split(" ", 1)[1] if " " in text else "")
    return lines, start + end
