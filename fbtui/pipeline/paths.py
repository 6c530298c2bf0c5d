"""Where a lab keeps its runs' files and its supervisor's lock."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fbtui.lab import Lab


def run_folder(lab: Lab, run_id: int) -> Path:
    return lab.root / ".fb" / "runs" / str(run_id)


def lock_path(lab: Lab) -> Path:
    return lab.root / ".fb" / "supervisor.lock"
