"""What Python packages an image holds: `pip freeze --all`'s list, read in a throwaway container of it.

Tags are content hashes of a layer's inputs, but a `pip install numpy` resolves at build time, so two
builds of one tag can hold different versions. The freeze, stored with the image's record, says what
a tag really holds. The container has no network, no capabilities, a unique name and fb labels (the
engine may be shared), and is removed whatever happens.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

    from fbtui.store import Store

FREEZE_TIMEOUT_S = 120
# `pip freeze --all`'s lines from the installed distributions' metadata: the same list (name==version,
# `name @ URL` for a direct URL install, `-e URL` for an editable one; pip, setuptools and wheel
# included) in about 0.1 s instead of pip's 1.3 s start, and in images that have Python but no pip.
FREEZE = """
import importlib.metadata as m, json, re
seen = {}
for d in m.distributions():
    name = d.metadata["Name"]
    key = re.sub(r"[-_.]+", "-", (name or "").lower())
    if not name or key in seen:
        continue  # the first on sys.path is the one imported, as pip says
    line = f"{name}=={d.version}"
    url = json.loads(d.read_text("direct_url.json") or "{}")
    if url.get("dir_info", {}).get("editable"):
        line = f"-e {url['url']}"
    elif "vcs_info" in url:
        v = url["vcs_info"]
        line = f"{name} @ {v.get('vcs', 'git')}+{url['url']}@{v.get('commit_id', '')}"
    elif url.get("url"):
        line = f"{name} @ {url['url']}"
    seen[key] = line
print("\\n".join(seen.values()))
"""
COMMAND = ["python3", "-c", FREEZE]


class FreezeFailed(Exception):
    """pip freeze could not run in the image (no python3 or pip there, or the engine failed)."""


def pip_freeze(client: docker.DockerClient, image: str, *, lab: str) -> list[str]:
    """The image's `pip freeze --all` lines (name==version, or name @ URL), sorted case-insensitively."""
    api = client.api
    name = f"fb-freeze-{uuid.uuid4().hex[:12]}"
    host_config = api.create_host_config(network_mode="none", cap_drop=["ALL"],
                                         security_opt=["no-new-privileges"])
    try:
        # entrypoint, not command: an upstream image's ENTRYPOINT must not wrap the freeze
        cid = api.create_container(image, entrypoint=COMMAND, command=[], name=name, host_config=host_config,
                                   network_disabled=True, labels={"fb.lab": lab, "fb.role": "freeze"},
                                   environment={"PIP_NO_INPUT": "1"})["Id"]
    except Exception as e:
        raise FreezeFailed(_short(e)) from e
    try:
        api.start(cid)
        status = api.wait(cid, timeout=FREEZE_TIMEOUT_S)
        out = api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
        if int(status.get("StatusCode", 1)) != 0:
            err = api.logs(cid, stdout=False, stderr=True).decode(errors="replace").strip().splitlines()
            raise FreezeFailed(f"exit {status.get('StatusCode')}: {err[-1] if err else 'no output'}"[:300])
    except FreezeFailed:
        raise
    except Exception as e:
        raise FreezeFailed(_short(e)) from e
    finally:
        try:
            api.remove_container(cid, force=True)
        except Exception:  # already gone: nothing to clean
            pass
    return sorted((x.strip() for x in out.splitlines() if x.strip() and not x.startswith("#")), key=str.lower)


def _short(e: BaseException) -> str:
    msg = getattr(e, "explanation", None) or str(e)
    return (msg.splitlines() or [type(e).__name__])[0][:300]


def timed_freeze(client: docker.DockerClient, image: str, *, lab: str) -> tuple[list[str] | None, float, str]:
    """(lines or None, seconds, why it failed): a failed freeze never fails a build."""
    t0 = time.monotonic()
    try:
        return pip_freeze(client, image, lab=lab), time.monotonic() - t0, ""
    except FreezeFailed as e:
        return None, time.monotonic() - t0, str(e)


def recorded_packages(store: Store, *, tag: str | None = None, digest: str | None = None,
                      host: str | None = None) -> list[str] | None:
    """The freeze stored for an image (by tag, optionally on a host, or by image ID), if any."""
    where, params = [], []
    for col, val in (("tag", tag), ("digest", digest), ("host", host)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    try:
        rows = store.query(f"SELECT packages FROM images WHERE packages IS NOT NULL AND {' AND '.join(where)} "
                           "ORDER BY built_at DESC LIMIT 1", params)
    except sqlite3.Error:  # a store older than v7 opened read-only: nothing recorded
        return None
    return parse(rows[0]["packages"]) if rows else None


def layer_packages(store: Store, tag: str | None, image: str | None) -> list[str] | None:
    """A run's layer's freeze: by its image ID (the exact image), else by its tag."""
    if image:
        return recorded_packages(store, digest=image)
    return recorded_packages(store, tag=tag) if tag else None


def parse(text: str | None) -> list[str] | None:
    if not text:
        return None
    try:
        value: Any = json.loads(text)
    except ValueError:
        return None
    return [str(x) for x in value] if isinstance(value, list) else None
