"""The git state of a lab at run time: commit, branch, dirty flag, diff, untracked files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fbtui.sources import DEFAULT_MAX_UNTRACKED, build_files

# What a build may include: untracked files elsewhere in the lab do not change any image.
BUILD_SCOPE = ("common", "environments", "projects", "Dockerfile.base")


@dataclass
class GitState:
    is_repo: bool
    sha: str | None = None
    branch: str | None = None  # None when detached or not a repository
    dirty: bool = False
    diff: str = ""  # tracked changes against HEAD, staged and not
    untracked: list[dict[str, Any]] = field(default_factory=list)  # path, size, sha256
    error: str | None = None

    @property
    def state_hash(self) -> str:
        """Identifies this exact state: the same code gives the same hash on any machine."""
        h = hashlib.sha256()
        h.update(json.dumps([self.is_repo, self.sha, self.diff, self.untracked], sort_keys=True).encode())
        return h.hexdigest()

    @property
    def short(self) -> str:
        if not self.is_repo:
            return "not a git repository"
        sha = (self.sha or "no commits")[:10]
        return f"{sha}{'-dirty' if self.dirty else ''}" + (f" ({self.branch})" if self.branch else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state_hash": self.state_hash}


def capture(
    lab_root: Path, scope: tuple[str, ...] = BUILD_SCOPE, max_untracked: int = DEFAULT_MAX_UNTRACKED
) -> GitState:
    """Read the git state of the repository holding `lab_root` (the lab may be a subfolder of it)."""
    import git  # gitpython; lazily, it costs 0.2 s to import

    try:
        repo = git.Repo(lab_root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return GitState(is_repo=False)
    except git.GitCommandNotFound:
        return GitState(is_repo=False, error="git is not installed")
    with repo:
        try:
            sha: str | None = repo.head.commit.hexsha
        except ValueError:  # a repository with no commits yet
            sha = None
        branch = None if repo.head.is_detached else repo.active_branch.name
        if sha:
            diff = repo.git.diff("HEAD", "--binary", "--no-color", "--", lab_root.as_posix())
        else:
            diff = repo.git.diff("--cached", "--binary", "--no-color", "--", lab_root.as_posix())
        # The untracked files a build would include (same rule as the images: small, not ignored).
        files = build_files(lab_root, [s for s in scope if (lab_root / s).exists()], max_untracked)
        untracked = [{"path": f.rel, "size": f.size, "sha256": f.sha256()} for f in files.files if not f.tracked]
        dirty = bool(diff) or bool(untracked) or (sha is None and bool(repo.index.entries))
        return GitState(is_repo=True, sha=sha, branch=branch, dirty=dirty, diff=diff, untracked=untracked)
