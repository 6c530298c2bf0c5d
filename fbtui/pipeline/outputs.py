"""A stage's outputs are data, never paths to follow. Everything under a run's out folder is
opened without following links (each folder on the way too), only regular files are read, reads
are size-capped and hashes streamed: a stage cannot make the supervisor read a host file through a
symbolic link, block on a FIFO or read a device until memory runs out."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path, PurePosixPath

from fbtui.errors import FBError

CHUNK = 1 << 20
KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class UnsafeOutput(FBError):
    """A stage left something other than a regular file where an output was expected."""


def _kind(mode: int) -> str:
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def _parts(rel: str) -> tuple[str, ...]:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or ".." in p.parts:
        raise UnsafeOutput(f"output path {rel!r} must be relative and inside the stage's out folder")
    return p.parts


def _walk(root: Path, rel: str) -> tuple[int, str] | None:
    """(fd of the folder holding rel's last part, that part), every folder on the way opened
    without following links; None when one of them does not exist."""
    parts = _parts(rel)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts[:-1]):
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                os.close(fd)
                return None
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafeOutput(f"{'/'.join(parts[:i + 1])} (on the way to {rel}) is {_kind(st.st_mode)}: "
                                   "a stage's outputs must be regular files and folders")
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    return fd, parts[-1]


def output_kind(root: Path, rel: str) -> str | None:
    """'file' or 'folder' for a regular file or folder at root/rel; None when absent; raises
    UnsafeOutput for a link, FIFO, device or socket."""
    found = _walk(root, rel)
    if found is None:
        return None
    fd, name = found
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    raise UnsafeOutput(f"{rel} is {_kind(st.st_mode)}: a stage's outputs must be regular files")


def open_output(root: Path, rel: str) -> int | None:
    """A read-only fd of the regular file root/rel (None when absent), opened without following
    links and without blocking (a FIFO is refused, never waited on)."""
    found = _walk(root, rel)
    if found is None:
        return None
    dirfd, name = found
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
    except FileNotFoundError:
        return None
    except OSError:  # ELOOP: the last part is a link
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        raise UnsafeOutput(f"{rel} is {_kind(st.st_mode)}: a stage's outputs must be regular files") from None
    finally:
        os.close(dirfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeOutput(f"{rel} is {_kind(st.st_mode)}: a stage's outputs must be regular files")
    return fd


def read_output(root: Path, rel: str, *, offset: int = 0, cap: int) -> bytes | None:
    """At most `cap` bytes of root/rel from `offset` (None when absent)."""
    fd = open_output(root, rel)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as f:
        f.seek(offset)
        return f.read(cap)


def hash_output(root: Path, rel: str) -> tuple[str, int] | None:
    """(sha256, size) of root/rel, streamed (None when absent)."""
    fd = open_output(root, rel)
    if fd is None:
        return None
    h, size = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
