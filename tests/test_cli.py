"""The CLI as a user meets it: --version, --help, exit codes, --json, doctor, light start-up."""

from __future__ import annotations

import json
import subprocess
import sys


def test_version_and_help(fbtui_process):  # type: ignore[no-untyped-def]
    proc = fbtui_process("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("fbtui ")
    helptext = fbtui_process("--help").stdout
    for word in ("ls", "config", "variants", "doctor", "examples:", "Exit codes"):
        assert word in helptext


def test_usage_errors_exit_2(fbtui):  # type: ignore[no-untyped-def]
    assert fbtui("frobnicate").returncode == 2
    assert fbtui("config").returncode == 2  # PROJECT is required
    proc = fbtui("config", "digits-mlp", "--ablation", "sweep")
    assert proc.returncode == 2 and "--ablation needs --variant" in proc.stderr


def test_version_imports_nothing_heavy():  # type: ignore[no-untyped-def]
    code = (
        "import sys; from fbtui.cli import main\n"
        "try: main(['--version'])\nexcept SystemExit: pass\n"
        "heavy = [m for m in ('yaml', 'pydantic', 'sqlite_utils', 'docker', 'git', 'textual', 'torch') "
        "if m in sys.modules]\nprint('heavy=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "heavy="


def test_core_never_imports_textual():  # type: ignore[no-untyped-def]
    code = (
        "import sys, pkgutil, importlib, fbtui\n"
        "for m in pkgutil.walk_packages(fbtui.__path__, 'fbtui.'):\n"
        "    if not m.name.startswith(('fbtui.tui', 'fbtui.__main__')): importlib.import_module(m.name)\n"
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_ls_json_and_table(fbtui):  # type: ignore[no-untyped-def]
    data = json.loads(fbtui("ls", "--json").stdout)
    assert {p["project"] for p in data["projects"]} == {"digits-cnn", "digits-mlp"}
    text = fbtui("ls").stdout
    assert "digits-mlp" in text and "never run" in text


def test_ls_shows_the_last_run_from_the_store(fbtui, lab_dir):  # type: ignore[no-untyped-def]
    from fbtui.lab import Lab
    from fbtui.store import Store

    with Store(Lab(lab_dir).store_path) as s:
        rid = s.create_run("digits-mlp", config="{}", params={}, stages=["train"])
        s.set_run_status(rid, "running")
    rows = {p["project"]: p for p in json.loads(fbtui("ls", "--json").stdout)["projects"]}
    assert rows["digits-mlp"]["last_status"] == "running" and rows["digits-mlp"]["active"] == 1
    assert f"#{rid} running" in fbtui("ls").stdout


def test_doctor_outside_a_lab_fails_with_how_to(fbtui, tmp_path):  # type: ignore[no-untyped-def]
    proc = fbtui("doctor", "--json", cwd=tmp_path)
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert proc.returncode == 1
    assert checks["lab"]["status"] == "fail" and "lab.yaml" in checks["lab"]["fix"]


def test_doctor_names_a_bad_project(fbtui, write):  # type: ignore[no-untyped-def]
    write("projects/bad/project.yaml", "config: {model: {hidden: wide}}\n")
    proc = fbtui("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert checks["config"]["status"] == "fail"
    assert "projects/bad/project.yaml:1: model.hidden: expected an integer, got 'wide'" in checks["config"]["detail"]
    assert proc.returncode == 1
