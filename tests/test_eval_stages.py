"""Any evaluation stage (#17, part 3): a stage that declares `evaluates:` is the one `fbtui eval`
runs again, whatever its name, in a project with its own pipeline; what it reads must be in the
run's record."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.labs import end_lab, project_lab

PROJECT = textwrap.dedent("""
    environment: torch-cpu
    config:
      job: {quality: 0.5}
    pipeline:
      - name: make
        command: [python3, /fb/project/job.py, make]
        artifacts: [model.txt]
      - name: score
        command: [python3, /fb/project/job.py, score]
        evaluates: {results: report.json, reads: [make/model.txt]}
""")
JOB_PY = textwrap.dedent('''
    import json, sys
    import yaml
    SUITE = "suite-1"
    cfg = yaml.safe_load(open("/fb/config.yaml"))["job"]
    if sys.argv[1] == "make":
        open("/fb/out/model.txt", "w").write(str(cfg["quality"]))
    else:
        quality = float(open("/fb/in/make/model.txt").read())
        json.dump({"fingerprint": SUITE, "results": {"score": quality}}, open("/fb/out/report.json", "w"))
''')


@pytest.fixture
def elab(tmp_path: Path, docker_host: str) -> Path:
    root = project_lab(tmp_path / "elab", "job", {"project.yaml": PROJECT, "job.py": JOB_PY})
    yield root
    end_lab(root, docker_host)


@pytest.mark.slow
@pytest.mark.engine
def test_a_stage_that_declares_evaluates_is_evaluated_again(elab: Path, fbtui) -> None:  # type: ignore[no-untyped-def]
    assert fbtui("run", "job", cwd=elab).returncode == 0
    with Store(Lab(elab).store_path) as s:
        assert s.run(1)["status"] == "succeeded", s.stages(1)
        (first,) = s.query("SELECT stage, fingerprint, results FROM evaluations WHERE run_id = 1")
        assert first["stage"] == "score" and first["fingerprint"] == "suite-1"
        assert json.loads(first["results"]) == {"score": 0.5}
    script = elab / "projects/job/job.py"  # the suite changes: a new fingerprint
    script.write_text(script.read_text().replace('SUITE = "suite-1"', 'SUITE = "suite-2"'))
    proc = fbtui("eval", "1", cwd=elab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run #1: evaluating again under today's suite (re-evaluation #2)" in proc.stdout
    with Store(Lab(elab).store_path) as s:
        assert [st["status"] for st in s.stages(2)] == ["cached", "succeeded"]
        fps = [r["fingerprint"] for r in s.query("SELECT fingerprint FROM evaluations WHERE run_id = 1 ORDER BY id")]
        assert fps == ["suite-1", "suite-2"]
    proc = fbtui("eval", "1", "--stage", "nope", cwd=elab)
    assert proc.returncode == 2 and "run 1 has no stage 'nope' (stages: make, score)" in proc.stderr


@pytest.mark.slow
@pytest.mark.engine
def test_an_evaluation_with_nothing_to_read_is_refused(elab: Path, fbtui) -> None:  # type: ignore[no-untyped-def]
    y = elab / "projects/job/project.yaml"
    y.write_text(y.read_text().replace("reads: [make/model.txt]", "reads: [make/weights.bin]"))
    assert fbtui("run", "job", cwd=elab).returncode == 0
    proc = fbtui("eval", "1", cwd=elab)
    assert proc.returncode == 1
    assert "run 1 has no artifact make/weights.bin (its make stage did not record it)" in proc.stderr
    with Store(Lab(elab).store_path) as s:
        assert len(s.query("SELECT id FROM runs")) == 1  # nothing was queued (no re-evaluation either)


def test_evaluates_is_checked_with_file_and_line(write, fbtui) -> None:  # type: ignore[no-untyped-def]
    write("projects/p/project.yaml", PROJECT.replace("reads: [make/model.txt]", "reads: [trian/model.txt]"))
    proc = fbtui("config", "p")
    assert proc.returncode == 1
    assert "projects/p/project.yaml:" in proc.stderr and "no earlier stage 'trian'" in proc.stderr
    write("projects/p/project.yaml", PROJECT.replace("results: report.json", "results: ../report.json"))
    proc = fbtui("config", "p")
    assert proc.returncode == 1 and "results are file paths relative to /fb/out" in proc.stderr
    write("projects/p/project.yaml", PROJECT.replace("reads: [make/model.txt]", "reads: [model.txt]"))
    proc = fbtui("config", "p")
    assert proc.returncode == 1 and "expected STAGE/PATH" in proc.stderr
