"""The bundled examples really train, in containers, through the stage entrypoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.conftest import make_git_lab

pytestmark = [pytest.mark.slow, pytest.mark.engine]


@pytest.fixture
def elab(tmp_path: Path, docker_host: str) -> Path:
    return make_git_lab(tmp_path / "elab")


def test_digits_mlp_reaches_95_percent(elab, fbtui):  # type: ignore[no-untyped-def]
    # How long it takes is bench/train.py's and bench/ablation.py's business: a shared, loaded
    # machine once took 293 s, and a test must not fail for that.
    proc = fbtui("run", "digits-mlp", cwd=elab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Store(Lab(elab).store_path) as s:
        run = s.run(1)
        final = s.final_metrics(1)
        assert final["eval/accuracy"] >= 0.95, final
        assert run["status"] == "succeeded"
        (ev,) = s.query("SELECT fingerprint, results FROM evaluations WHERE run_id = 1")
        assert len(ev["fingerprint"]) == 64 and json.loads(ev["results"])["accuracy"] == final["eval/accuracy"]
        assert s.metric_count(1) > 50  # per-step training curves, not only final numbers
