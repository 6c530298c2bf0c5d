"""Copies of the bundled example lab for tests and benchmarks (no pytest needed to import this)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_CONFIG = ("lab.yaml", "common/defaults.yaml", "common/limits.yaml", "common/pipeline.yaml", "environments",
              "projects")
LAB_CODE = ("lab.yaml", "Dockerfile.base", "common", "environments", "projects")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def copy_lab(root: Path, parts: tuple[str, ...] = LAB_CONFIG) -> Path:
    """Copy these parts of the bundled lab into `root` (the configuration alone by default)."""
    for part in parts:
        src, dst = REPO / part, root / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=_SKIP)
        else:
            shutil.copy2(src, dst)
    return root


def make_git_lab(root: Path) -> Path:
    """A git repository holding a copy of the whole bundled lab, code included."""
    root.mkdir(parents=True)
    copy_lab(root, LAB_CODE)
    (root / ".gitignore").write_text(".fb/\n*.ignored\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "lab"]):
        subprocess.run(["git", "-C", str(root), "-c", "user.email=t@e", "-c", "user.name=t", *args], check=True,
                       capture_output=True)
    return root


def project_lab(root: Path, project: str, files: dict[str, str]) -> Path:
    """A git lab (make_git_lab) with one more project: its files, by name, under projects/<project>/."""
    make_git_lab(root)
    folder = root / "projects" / project
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return root


def end_lab(root: Path, docker_host: str | None = None) -> None:
    """Leave no supervisor (and, given the engine, no container of this lab's runs) behind."""
    import json
    import os
    import signal

    from fbtui.lab import Lab
    from fbtui.pipeline.paths import lock_path

    try:
        pid = int(lock_path(Lab(root)).read_text() or 0)
        if pid:
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass
    if docker_host is None:
        return
    import docker

    c = docker.DockerClient(base_url=docker_host)
    # other tests remove their containers meanwhile: one gone between list and inspect is fine
    for x in c.containers.list(all=True, filters={"label": f"fb.lab={Lab(root).config.name}"}, ignore_removed=True):
        if str(root) in json.dumps(x.attrs.get("Mounts", [])):
            x.remove(force=True)
