"""requirements.lock covers what pyproject.toml asks for: scripts/setup installs only from it, with
--require-hashes, so a dependency added to pyproject.toml without `scripts/lock` would fail setup."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent


def lock_pins() -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, how many hashes)."""
    text = (REPO / "requirements.lock").read_text()
    pins: dict[str, tuple[Version, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = block.split(maxsplit=1)[0] if block.strip() and not block.startswith("#") else ""
        if "==" in head:
            name, version = head.split("==")
            pins[canonicalize_name(name)] = (Version(version), block.count("--hash=sha256:"))
    return pins


def test_every_requirement_is_pinned_with_hashes_and_satisfied():  # type: ignore[no-untyped-def]
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"], *project["project"]["optional-dependencies"]["dev"],
              *project["build-system"]["requires"]]
    pins = lock_pins()
    assert len(pins) > 40 and all(hashes >= 1 for _, hashes in pins.values())
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock: run scripts/lock"
        assert req.specifier.contains(pins[name][0], prereleases=True), f"{text}: the lock pins {pins[name][0]}"


def test_torch_is_the_cpu_build():  # type: ignore[no-untyped-def]
    # An unpinned or registry torch is a multi-GB CUDA build (../shared/ENVIRONMENT.md).
    version, hashes = lock_pins()["torch"]
    assert version.local == "cpu" and hashes == 1
