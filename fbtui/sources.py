"""Which files of a lab folder go into a build: git-tracked files (their working-tree content), plus
untracked files that git does not ignore and that are small (new source files). Large untracked
files -- checkpoints, data -- are never sent, nor are untracked files that look like credentials
(.env, keys, .netrc ...); both are reported so a person can see why. A tracked credential is the
user's choice: it is sent, with a warning."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_UNTRACKED = 1024 * 1024
SKIP_DIRS = {".git", "__pycache__", ".fb", ".venv", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
# File names that usually hold a secret. Keys (id_rsa, id_ed25519 ...) have no suffix; a Python
# module named credentials*.py is code, not a secret.
SECRET_PATTERNS = (".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", ".netrc", ".pypirc", ".git-credentials",
                   "credentials*", "id_*")


def looks_secret(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    if name.endswith(".py") or (name.startswith("id_") and "." in name):
        return False
    return any(fnmatch.fnmatchcase(name, p) for p in SECRET_PATTERNS)


@dataclass(frozen=True)
class SourceFile:
    rel: str  # path relative to the lab root, with /
    path: Path
    size: int
    executable: bool
    tracked: bool
    link: bool = False  # a symbolic link: never sent (it could lead out of the lab), always said

    @property
    def mode(self) -> int:
        return 0o755 if self.executable else 0o644

    @property
    def secret(self) -> bool:
        return looks_secret(self.rel)

    def note(self) -> str:
        """Why a build warns about this file (skipped, or a tracked credential that is sent)."""
        if self.link:
            return f"{self.rel}: a symbolic link: not sent (an image gets no links; copy the file in instead)"
        if self.secret and not self.tracked:
            return f"{self.rel}: looks like a credential and is untracked: not sent (git add it to send it)"
        if self.secret:
            return (f"{self.rel}: looks like a credential and git tracks it: it is in the image "
                    "(git rm --cached it and ignore it to keep it out)")
        return f"{self.rel} ({self.size / 1e6:.1f} MB, untracked): not sent; git add it to include it"

    def sha256(self) -> str:
        return file_sha256(self.path)


@dataclass
class FileSet:
    files: list[SourceFile] = field(default_factory=list)
    skipped: list[SourceFile] = field(default_factory=list)  # untracked and too large, or credentials
    sent_secrets: list[SourceFile] = field(default_factory=list)  # tracked files that look like credentials


_hash_cache: dict[tuple[str, int, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime, inode) for the life of the process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _hash_cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = _hash_cache[key] = h.hexdigest()
    return digest


def _git_listing(root: Path, paths: list[str]) -> list[tuple[str, bool]] | None:
    """(path, tracked) for every file git would keep under `paths`; None when not a git repository."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "-t", "--cached", "--others", "--exclude-standard",
             "--", *paths],
            capture_output=True, check=True,
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    entries = []
    seen: set[str] = set()
    for item in out.decode("utf-8", "surrogateescape").split("\0"):
        if not item:
            continue
        tag, rel = item[0], item[2:]
        if rel in seen:  # an unmerged file is listed once per stage
            continue
        seen.add(rel)
        entries.append((rel, tag != "?"))
    return entries


def _walk(root: Path, paths: list[str]) -> list[tuple[str, bool]]:
    """Without git every file counts as untracked (so the size limit applies)."""
    out = []
    for p in paths:
        top = root / p
        if top.is_file():
            out.append((p, False))
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in files:
                if not name.endswith((".pyc", ".pyo")):
                    out.append(((Path(folder) / name).relative_to(root).as_posix(), False))
    return out


def build_files(root: Path, paths: list[str], max_untracked: int = DEFAULT_MAX_UNTRACKED) -> FileSet:
    """The files under `paths` (relative to the lab root) that a build context holds, sorted."""
    listing = _git_listing(root, paths)
    if listing is None:
        listing = _walk(root, paths)
    result = FileSet()
    for rel, tracked in sorted(listing):
        path = root / rel
        try:
            st = path.lstat()
        except FileNotFoundError:  # deleted in the working tree, still in the index
            continue
        if path.is_symlink():  # a file the stage imports would be missing in the image: said at the build
            result.skipped.append(SourceFile(rel, path, 0, False, tracked, link=True))
            continue
        if not path.is_file():
            continue
        f = SourceFile(rel, path, st.st_size, bool(st.st_mode & 0o111), tracked)
        if not tracked and (st.st_size > max_untracked or f.secret):
            result.skipped.append(f)
        else:
            result.files.append(f)
            if f.secret:
                result.sent_secrets.append(f)
    return result
