"""Build contexts as tar streams holding exactly a layer's inputs (never the whole lab)."""

from __future__ import annotations

import io
import tarfile

from fbtui.images.plan import SETTINGS_DIR, ContextEntry, Layer

DOCKERFILE = f"{SETTINGS_DIR}/Dockerfile"


def context_entries(layer: Layer) -> list[ContextEntry]:
    """The layer's files plus its Dockerfile, kept out of the image by .dockerignore."""
    ignore = f"{DOCKERFILE}\n.dockerignore\n"
    return [
        *layer.entries,
        ContextEntry(DOCKERFILE, data=layer.dockerfile.encode()),
        ContextEntry(".dockerignore", data=ignore.encode()),
    ]


def make_tar(entries: list[ContextEntry]) -> bytes:
    """GNU tar with integer zero mtimes and root ownership: the bytes depend on the inputs only
    (BuildKit over the raw API needs GNU format and integer mtimes too)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs: set[str] = set()
        for entry in sorted(entries, key=lambda e: e.arcname):
            parts = entry.arcname.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                    tar.addfile(info)
            data = entry.data if entry.data is not None else entry.source.read_bytes()  # type: ignore[union-attr]
            info = tarfile.TarInfo(entry.arcname)
            info.size, info.mode, info.mtime = len(data), entry.mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
