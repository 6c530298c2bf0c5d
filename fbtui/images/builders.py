"""Two builders with the same events: the Engine API's classic builder (through the Docker SDK)
and BuildKit (the same /build endpoint with version=2, decoding its progress stream)."""

from __future__ import annotations

import json
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError
from fbtui.images.context import DOCKERFILE
from fbtui.images.events import BuildEvent, EventSink

if TYPE_CHECKING:
    import docker

TAIL = 30
STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class BuildFailed(FBError):
    def __init__(self, layer: str, step: str, lines: list[str], message: str) -> None:
        self.layer, self.step, self.lines = layer, step, lines
        super().__init__(f"building {layer} failed at {step or 'the start'}: {message}")


def classic_build(client: docker.DockerClient, context: bytes, *, repo: str, tag: str, buildargs: dict[str, str],
                  labels: dict[str, str], network_mode: str | None, emit: EventSink) -> str:
    """Build with the classic builder; returns the image ID."""
    step_text, step_lines = "", deque[str](maxlen=TAIL)
    image_id = None
    pending = ""  # the daemon splits lines across messages: emit whole lines only
    stream = client.api.build(
        fileobj=context, custom_context=True, dockerfile=DOCKERFILE, tag=tag, buildargs=buildargs,
        labels=labels, network_mode=network_mode, rm=True, forcerm=True, decode=True,
    )

    def line_out(line: str) -> None:
        nonlocal step_text, step_lines
        line = ANSI_RE.sub("", line).rstrip("\r")
        m = STEP_RE.match(line)
        if m:
            step_text, step_lines = m.group(3), deque(maxlen=TAIL)
            if not step_text.startswith("LABEL fb."):  # our own labels: one step each, nothing to show
                emit(BuildEvent(repo, "step", m.group(3), step=int(m.group(1)), total=int(m.group(2))))
        elif line.strip() == "---> Using cache":
            emit(BuildEvent(repo, "log", "(cached)"))
        elif line.startswith((" ---> ", "Successfully ", "Removing intermediate")):
            return
        elif line.strip():
            step_lines.append(line)
            emit(BuildEvent(repo, "log", line))

    for msg in stream:
        if "error" in msg or "errorDetail" in msg:
            if pending:
                line_out(pending)
            message = (msg.get("errorDetail") or {}).get("message") or msg.get("error", "build failed")
            emit(BuildEvent(repo, "error", message.strip(), lines=list(step_lines)))
            raise BuildFailed(repo, step_text, list(step_lines), message.strip())
        if "aux" in msg and isinstance(msg["aux"], dict) and "ID" in msg["aux"]:
            image_id = msg["aux"]["ID"]
        text = msg.get("stream")
        if not text:
            continue
        *lines, pending = (pending + text).split("\n")
        for line in lines:
            line_out(line)
    if pending:
        line_out(pending)
    if image_id is None:
        image_id = client.api.inspect_image(tag)["Id"]
    return image_id


# ------------------------------------------------------------------ BuildKit (raw API, version=2)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """Decode one protobuf message into (field number, wire type, value) triples."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        else:  # groups are not used by BuildKit's status messages
            raise ValueError(f"unsupported protobuf wire type {wt}")
        out.append((num, wt, val))
    return out


def decode_status(raw: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """BuildKit's StatusResponse: vertexes (digest, name, started, completed, cached, error) and
    logs (vertex, msg). Field numbers from moby/buildkit api/services/control/control.proto."""
    vertexes, logs = [], []
    for num, _, val in _fields(raw):
        if num == 1:  # Vertex
            v: dict[str, Any] = {"cached": False, "started": False, "completed": False, "error": ""}
            for n, _, x in _fields(val):
                if n == 1:
                    v["digest"] = x.decode()
                elif n == 3:
                    v["name"] = x.decode(errors="replace")
                elif n == 4:
                    v["cached"] = bool(x)
                elif n == 5:
                    v["started"] = True
                elif n == 6:
                    v["completed"] = True
                elif n == 7:
                    v["error"] = x.decode(errors="replace")
            vertexes.append(v)
        elif num == 3:  # VertexLog
            entry: dict[str, Any] = {}
            for n, _, x in _fields(val):
                if n == 1:
                    entry["vertex"] = x.decode()
                elif n == 4:
                    entry["msg"] = x
            logs.append(entry)
    return vertexes, logs


BK_STEP_RE = re.compile(r"^\[(?:[\w-]+ )?(\d+)/(\d+)\] (.*)$")


def buildkit_build(client: docker.DockerClient, context: bytes, *, repo: str, tag: str, buildargs: dict[str, str],
                   labels: dict[str, str], network_mode: str | None, emit: EventSink) -> str:
    """Build with BuildKit through the Engine API (no CLI plugin needed); returns the image ID."""
    import base64

    api = client.api
    params = {
        "t": tag, "dockerfile": DOCKERFILE, "buildargs": json.dumps(buildargs), "labels": json.dumps(labels),
        "version": "2", "rm": "1", "forcerm": "1",
        # A BuildKit build needs a session id; with the context in the request body it is never used.
        "session": f"fb-{time.time_ns()}",
    }
    if network_mode:
        params["networkmode"] = network_mode
    headers = {"Content-Type": "application/x-tar"}
    response = api._post(api._url("/build"), params=params, data=context, headers=headers, stream=True,
                         timeout=None)
    api._raise_for_status(response)
    names: dict[str, str] = {}
    tails: dict[str, deque[str]] = {}
    partial: dict[str, str] = {}
    announced: set[str] = set()
    image_id = None
    failed: tuple[str, str] | None = None
    for msg in api._stream_helper(response, decode=True):
        if "errorDetail" in msg or "error" in msg:
            message = (msg.get("errorDetail") or {}).get("message") or msg.get("error", "build failed")
            failed = failed or ("", message)
            break
        if msg.get("id") == "moby.image.id":
            image_id = (msg.get("aux") or {}).get("ID")
            continue
        if msg.get("id") != "moby.buildkit.trace" or not msg.get("aux"):
            continue
        vertexes, logs = decode_status(base64.b64decode(msg["aux"]))
        for v in vertexes:
            digest, name = v.get("digest", ""), v.get("name", "")
            if name:
                names[digest] = name
            m = BK_STEP_RE.match(names.get(digest, ""))
            if v["started"] and digest not in announced and m:
                announced.add(digest)
                emit(BuildEvent(repo, "step", m.group(3), step=int(m.group(1)), total=int(m.group(2))))
            if v["cached"] and m:
                emit(BuildEvent(repo, "log", "(cached)"))
            if v["error"] and not failed:
                failed = (names.get(digest, ""), v["error"])
        for entry in logs:
            digest = entry.get("vertex", "")
            text = partial.pop(digest, "") + entry.get("msg", b"").decode(errors="replace")
            *lines, rest = text.split("\n")
            if rest:
                partial[digest] = rest
            tail = tails.setdefault(digest, deque(maxlen=TAIL))
            for line in lines:
                line = line.rstrip("\r")
                if line.strip():
                    tail.append(line)
                    emit(BuildEvent(repo, "log", line))
    if failed:
        step = failed[0] or next(reversed(names.values()), "")
        digest = next((d for d, n in names.items() if n == failed[0]), None)
        lines = list(tails.get(digest or "", []))
        m = BK_STEP_RE.match(step)
        step_text = m.group(3) if m else step
        emit(BuildEvent(repo, "error", failed[1].strip(), lines=lines))
        raise BuildFailed(repo, step_text, lines, failed[1].strip())
    if image_id is None:
        image_id = api.inspect_image(tag)["Id"]
    return image_id
