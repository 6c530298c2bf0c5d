"""Cancel by group (#16, part 6): a whole ablation, or every queued run, in one command; the
hint printed at launch is a command that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.labs import end_lab

pytestmark = [pytest.mark.slow]  # a real supervisor process ends the runs


def _runs(lab_dir: Path) -> dict[str, int]:
    with Store(Lab(lab_dir).store_path) as s:
        ids = {}
        for name, project, ablation, status in (("a1", "digits-mlp", "sweep", "queued"),
                                                ("a2", "digits-mlp", "sweep", "queued"),
                                                ("done", "digits-mlp", "sweep", "cancelled"),
                                                ("other", "digits-cnn", "sweep", "queued"),
                                                ("depth", "digits-mlp", "depth", "queued"),
                                                ("plain", "digits-mlp", None, "queued")):
            rid = s.create_run(project, config="{}", params={"n": name}, stages=["train"], ablation=ablation)
            s.set_run_status(rid, status)
            ids[name] = rid
    return ids


def _status(lab_dir: Path) -> dict[int, str]:
    with Store(Lab(lab_dir).store_path) as s:
        return {r["id"]: r["status"] for r in s.runs()}


def test_cancel_an_ablation_then_everything_queued(lab_dir: Path, fbtui) -> None:  # type: ignore[no-untyped-def]
    ids = _runs(lab_dir)
    try:
        proc = fbtui("cancel", "--ablation", "sweep", "--project", "digits-mlp")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        st = _status(lab_dir)
        assert st[ids["a1"]] == st[ids["a2"]] == "cancelled"
        assert st[ids["other"]] == st[ids["depth"]] == st[ids["plain"]] == "queued"
        assert f"run #{ids['done']}" not in proc.stdout  # ended already: not touched, not listed

        proc = fbtui("cancel", "--ablation", "nope")
        assert proc.returncode == 2 and "no runs of ablation 'nope' (ablations with runs: depth, sweep)" in proc.stderr
        proc = fbtui("cancel", "--ablation", "sweep", "--project", "digits-mlp")
        assert proc.returncode == 0 and "nothing to cancel: every run of ablation sweep has ended" in proc.stdout
        assert fbtui("cancel").returncode == 2
        assert fbtui("cancel", "--project", "digits-mlp").returncode == 2

        proc = fbtui("cancel", "--all-queued")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert set(_status(lab_dir).values()) == {"cancelled"}
    finally:
        end_lab(lab_dir)
