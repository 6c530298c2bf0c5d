"""A stage's declared artifacts, recorded file by file with size and sha256 (#13).

An entry of `artifacts:` (a path relative to /fb/out) is
- a plain path (`model.pt`): one file; a folder found there counts as a declared folder;
- a folder (`ckpt/`): every regular file under it, at any depth (`ckpt/a.pt`, `ckpt/sub/b.pt`);
- a glob (`ckpt/*.pt`, `runs/**/*.tfevents.*`, `**/*.json`): fnmatch per path component (`*`, `?`
  and `[...]` stay within a folder) and `**`, a whole component, for any number of folders.
Nothing is followed through a symbolic link: a link, FIFO, device or socket inside a declared folder,
matched by a glob, or named by one on the way to its files fails the stage with its path (a link that
only a `**` walks past is neither followed nor refused). A folder or glob of more than MAX_FILES files
fails too, rather than hashing for hours. A local stage's files are walked and hashed on disk with
outputs.py's no-follow reads; a remote stage's come through ONE tar stream per entry (the folder it
starts in), hashed as they pass and copied back when at most the supervisor's copy_back_limit."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError
from fbtui.pipeline.outputs import CHUNK, UnsafeOutput, _kind, hash_output, output_kind

if TYPE_CHECKING:
    import docker

MAX_FILES = 10_000  # files per declared folder or glob
GLOB_CHARS = "*?["


class TooManyFiles(FBError):
    """A declared folder or glob holds more files than are recorded one by one."""


@dataclass
class Collected:
    """What a stage's declared artifacts came to."""

    root: Path  # where the files are read again (a remote stage's: the small ones copied back)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # rel -> (sha256, size), declared order
    missing: list[str] = field(default_factory=list)  # entries that found nothing, as the reason names them


def is_glob(entry: str) -> bool:
    return any(c in entry for c in GLOB_CHARS)


def pattern(entry: str) -> list[str]:
    """An entry's path components; a folder is its path and `**`."""
    comps = [c for c in entry.split("/") if c not in ("", ".")]
    return [*comps, "**"] if entry.endswith("/") else comps


def _closure(pat: list[str], states: set[int]) -> frozenset[int]:
    """`**` matches no folder too: a state before one is also the state after it."""
    out, todo = set(states), list(states)
    while todo:
        i = todo.pop()
        if i < len(pat) and pat[i] == "**" and i + 1 not in out:
            out.add(i + 1)
            todo.append(i + 1)
    return frozenset(out)


def start(pat: list[str]) -> frozenset[int]:
    return _closure(pat, {0})


def step(pat: list[str], states: frozenset[int], name: str) -> tuple[frozenset[int], bool]:
    """The states after one more path component, and whether a component other than `**` matched it
    (the glob names it: a link there is refused, not skipped)."""
    nxt: set[int] = set()
    named = False
    for i in states:
        if i >= len(pat):
            continue
        if pat[i] == "**":
            nxt.add(i)
        elif fnmatchcase(name, pat[i]):
            nxt.add(i + 1)
            named = True
    return _closure(pat, nxt), named


def matches(entry: str, rel: str) -> bool:
    """Whether the file at rel (relative to /fb/out) is one of entry's."""
    pat, states = pattern(entry), start(pattern(entry))
    for name in rel.split("/"):
        states, _ = step(pat, states, name)
    return len(pat) in states


def _refused(rel: str, kind: str, entry: str) -> UnsafeOutput:
    how = "in the declared folder" if entry.endswith("/") else "matched by"
    return UnsafeOutput(f"{rel} is {kind} ({how} {entry}): a stage's outputs must be regular files and folders")


def _too_many(entry: str) -> TooManyFiles:
    return TooManyFiles(f"declared artifact {entry} holds more than {MAX_FILES:,} files: a folder or glob is "
                        f"recorded file by file, up to {MAX_FILES:,}",
                        hint="declare fewer files (a narrower glob), or pack them into one archive")


def _not_written(entry: str, folder_exists: bool) -> str:
    if entry.endswith("/") and not folder_exists:
        return entry
    return f"{entry} ({'no file in it' if entry.endswith('/') else 'no file matches'})"


# ------------------------------------------------------------------ local stages


def local_files(root: Path, entry: str) -> list[str]:
    """The regular files of a folder or glob entry under root, sorted; no link followed."""
    pat = pattern(entry)
    found: list[str] = []
    todo = [(os.open(root, os.O_RDONLY | os.O_DIRECTORY), "", start(pat))]
    try:
        while todo:
            dfd, rel, states = todo.pop()
            try:
                with os.scandir(dfd) as it:
                    names = sorted(e.name for e in it)
                for name in names:
                    nxt, named = step(pat, states, name)
                    if not nxt:
                        continue
                    path = f"{rel}/{name}" if rel else name
                    mode = os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode
                    if stat.S_ISDIR(mode):
                        if any(i < len(pat) for i in nxt):
                            try:
                                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
                            except OSError:  # replaced by a link since: never followed
                                raise _refused(path, "not a folder any more", entry) from None
                            todo.append((sub, path, nxt))
                    elif stat.S_ISREG(mode):
                        if len(pat) in nxt:
                            found.append(path)
                            if len(found) > MAX_FILES:
                                raise _too_many(entry)
                    elif len(pat) in nxt or named:
                        raise _refused(path, _kind(mode), entry)
            finally:
                os.close(dfd)
    finally:
        for dfd, _, _ in todo:
            os.close(dfd)
    return sorted(found)


def collect_local(root: Path, entries: list[str]) -> Collected:
    """Every declared entry listed first (a missing one fails the stage before anything is hashed),
    then each file hashed, streamed."""
    got = Collected(root)
    listed: list[str] = []
    for entry in entries:
        plain = entry.rstrip("/") if not is_glob(entry) else None
        kind = output_kind(root, plain) if plain else "glob"  # a link at a plain path raises
        if kind is None:
            got.missing.append(entry)
        elif kind == "file" and not entry.endswith("/"):
            listed.append(os.path.normpath(entry))
        elif kind == "file":
            got.missing.append(f"{entry} (a file, not a folder)")
        else:
            declared = f"{plain}/" if kind == "folder" else entry
            files = local_files(root, declared)
            listed += files
            if not files:
                got.missing.append(_not_written(declared, kind == "folder"))
    if got.missing:
        return got
    for rel in dict.fromkeys(listed):
        hashed = hash_output(root, rel)
        if hashed is None:  # gone since it was listed
            got.missing.append(rel)
        else:
            got.files[rel] = hashed
    return got


# ------------------------------------------------------------------ remote stages


class ChunkReader(io.RawIOBase):
    """The engine's chunk iterator as a file, for tarfile's streaming mode (no copy of the rest of a
    chunk per read)."""

    def __init__(self, chunks: Any) -> None:
        self.chunks, self.buf, self.pos = iter(chunks), b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self.pos >= len(self.buf):
            try:
                self.buf, self.pos = next(self.chunks), 0
            except StopIteration:
                return 0
        n = min(len(b), len(self.buf) - self.pos)
        b[:n] = memoryview(self.buf)[self.pos:self.pos + n]
        self.pos += n
        return n


def _member_kind(m: Any) -> str:
    if m.issym():
        return "a symbolic link"
    if m.islnk():
        return "a hard link"
    if m.isfifo():
        return "a FIFO"
    if m.ischr() or m.isblk():
        return "a device"
    return "not a regular file"


def _base(pat: list[str]) -> list[str]:
    """The folder an entry's files are all under (its components before the first wildcard)."""
    out = []
    for c in pat[:-1]:
        if c == "**" or is_glob(c):
            break
        out.append(c)
    return out


def collect_remote(client: docker.DockerClient, cid: str, entries: list[str], mirror: Path,
                   limit: int) -> Collected:
    """A remote stage's artifacts, from its (stopped) container: one tar stream per entry."""
    got = Collected(mirror)
    for entry in entries:
        files = _remote_entry(client, cid, entry, mirror, limit)
        if files is None:
            got.missing.append(entry)
        elif isinstance(files, str):
            got.missing.append(files)
        else:
            got.files.update(files)
    return got


def _remote_entry(client: docker.DockerClient, cid: str, entry: str, mirror: Path,
                  limit: int) -> dict[str, tuple[str, int]] | str | None:
    """rel -> (sha256, size) of an entry's files; None when its path is absent; a missing-reason
    text when it matched no file."""
    import tarfile

    import docker

    plain = not is_glob(entry) and not entry.endswith("/")
    pat = pattern(entry)
    base = pat if plain else _base(pat)
    try:
        stream, _ = client.api.get_archive(cid, "/".join(["/fb/out", *base]), chunk_size=CHUNK)
    except docker.errors.NotFound:
        return None if plain or entry.endswith("/") else _not_written(entry, False)
    found: dict[str, tuple[str, int]] = {}
    declared = entry  # as failures name it: a folder found at a plain path gets its slash
    try:
        with tarfile.open(fileobj=io.BufferedReader(ChunkReader(stream), CHUNK), mode="r|") as tar:
            for m in tar:
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                if not parts or ".." in parts:
                    continue  # never written outside the mirror
                rel_parts = base + parts[1:]
                rel = "/".join(rel_parts)
                if len(parts) == 1 and m.isdir():
                    if plain:  # a folder at a plain path: every file under it
                        pat, declared = [*base, "**"], f"{entry}/"
                    continue
                if len(parts) == 1 and m.isfile() and entry.endswith("/"):
                    return f"{entry} (a file, not a folder)"
                if len(parts) == 1 and plain and not m.isfile():
                    raise UnsafeOutput(f"{rel} is {_member_kind(m)}: a stage's outputs must be regular files")
                states, named = start(pat), False
                for name in rel_parts:
                    states, named = step(pat, states, name)
                full = len(pat) in states
                if m.isfile() and full:
                    if len(found) >= MAX_FILES:
                        raise _too_many(declared)
                    found[rel] = _hash_member(tar, m, mirror.joinpath(*rel_parts) if m.size <= limit else None)
                elif not m.isfile() and not m.isdir() and (full or named):
                    raise _refused(rel, _member_kind(m), declared)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:  # a stream left half read: its connection goes, not back to the pool
            close()
    return found or _not_written(declared, True)


def _hash_member(tar: Any, m: Any, dest: Path | None) -> tuple[str, int]:
    """(sha256, size) of a tar member as it streams past, written to dest too when given."""
    f = tar.extractfile(m)
    h, size = hashlib.sha256(), 0
    out = None
    if dest is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = dest.open("wb")
    try:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return h.hexdigest(), size
