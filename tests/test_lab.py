"""Lab discovery: nearest lab.yaml upward, --lab and FB_LAB overrides, listing."""

from __future__ import annotations

import json

from fbtui.lab import Lab, find_lab_root


def test_found_from_a_nested_folder(lab_dir):  # type: ignore[no-untyped-def]
    deep = lab_dir / "projects" / "digits-mlp" / "sub"
    deep.mkdir()
    assert find_lab_root(deep) == lab_dir.resolve()


def test_lab_flag_and_env_override_the_search(lab_dir, tmp_path, fbtui):  # type: ignore[no-untyped-def]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert fbtui("--lab", str(lab_dir), "ls", cwd=elsewhere).returncode == 0
    assert fbtui("ls", "--lab", str(lab_dir), cwd=elsewhere).returncode == 0
    proc = fbtui("ls", "--json", cwd=elsewhere, env={"FB_LAB": str(lab_dir)})
    assert json.loads(proc.stdout)["lab"] == str(lab_dir.resolve())
    bad = fbtui("ls", cwd=lab_dir, env={"FB_LAB": str(elsewhere)})
    assert bad.returncode == 1 and "FB_LAB points at" in bad.stderr


def test_lists_projects_and_environments(lab_dir, fbtui):  # type: ignore[no-untyped-def]
    lab = Lab(lab_dir)
    assert lab.project_names() == ["digits-cnn", "digits-mlp"]
    assert lab.environment_names() == ["torch-cpu", "torch-cuda"]
    data = json.loads(fbtui("ls", "--json").stdout)
    assert [p["project"] for p in data["projects"]] == ["digits-cnn", "digits-mlp"]
    assert data["projects"][0]["environment"] == "torch-cpu"
    assert data["projects"][0]["last_status"] is None
    assert data["environments"] == ["torch-cpu", "torch-cuda"]


def test_default_pipeline_and_stage_order(lab_dir, write):  # type: ignore[no-untyped-def]
    lab = Lab(lab_dir)
    p = lab.project("digits-mlp")
    assert [s.name for s in p.stages] == ["prepare", "train", "evaluate"]
    assert p.needs["evaluate"] == ["prepare", "train"]
    assert p.stages[1].default_command() == ["python3", "-m", "common.stages.train"]
    assert p.stages[1].resources.memory == 4 * 1024**3
    write("projects/p/project.yaml", """
        pipeline:
          - {name: report, needs: [train]}
          - {name: train, needs: [data], timeout: 30m}
          - {name: data, needs: []}
    """)
    q = Lab(lab_dir).project("p")
    assert [s.name for s in q.stages] == ["data", "train", "report"]
    assert q.stages[1].timeout == 1800


def test_store_path_default_and_absolute(lab_dir, write, tmp_path):  # type: ignore[no-untyped-def]
    assert Lab(lab_dir).store_path == lab_dir / ".fb" / "fb.db"
    write("lab.yaml", f"name: x\nstore: {tmp_path / 'elsewhere.db'}\n")
    assert Lab(lab_dir).store_path == tmp_path / "elsewhere.db"
