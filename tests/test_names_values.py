"""Names follow one rule and values must make sense, wherever they enter (#12, part 4): each
refusal is one line naming the file and line (or the argument), and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from fbtui.config.names import grid_size, json_problem, name_problem, seed_problem, suggest_name

PROJECT = "projects/p/project.yaml"


def test_name_rule() -> None:
    for good in ("digits-mlp", "a", "x_1", "0abc"):
        assert name_problem("project", good) is None
    for bad in ("MyNet", "my net", "digits-mlp/", "../projects/x", "/abs/p", ".", "-x", "a" * 65, "a.b", ""):
        assert name_problem("project", bad), bad
    assert "path parts" in (name_problem("project", "../projects/x") or "")
    assert suggest_name("MyNet") == "mynet"
    assert suggest_name("my net") == "my-net"
    assert suggest_name("projects/digits-mlp/") == "digits-mlp"


def test_value_rules() -> None:
    import datetime

    assert seed_problem(0) is None and seed_problem(2**32 - 1) is None
    assert seed_problem(2**32) and seed_problem(-1) and seed_problem(1.5) and seed_problem(True)
    assert json_problem(float("nan")) and json_problem(float("inf")) and json_problem([1, {"a": float("-inf")}])
    assert json_problem(float("nan"), allow_nonfinite=True) is None
    assert "quote it" in (json_problem(datetime.date(2024, 1, 2)) or "")
    assert json_problem(10**30) and json_problem({1: "a"})
    assert json_problem({"a": [1, 2.5, "x", None, True]}) is None
    assert grid_size({"a": [1, 2, 3], "b": [1, 2]}) == (6, "3 × 2")


CASES = [
    # names
    ({}, ["config", "digits-mlp/"], 2, "project name 'digits-mlp/' has path parts", "did you mean 'digits-mlp'?"),
    ({}, ["config", "../projects/digits-mlp"], 2, "has path parts", ""),
    ({}, ["build", "/etc"], 2, "project name '/etc' has path parts", ""),
    ({"projects/MyNet/project.yaml": "description: x\n"}, ["run", "MyNet", "-d"], 1,
     "projects/MyNet: project name 'MyNet' is not allowed", "projects/MyNet -> projects/mynet"),
    ({"projects/my net/project.yaml": "description: x\n"}, ["build", "my net"], 1,
     "project name 'my net' is not allowed", "did you mean 'my-net'?"),
    ({PROJECT: "environment: Torch-CPU\n"}, ["config", "p"], 1,
     f"{PROJECT}:1: environment: environment name 'Torch-CPU' is not allowed", ""),
    ({PROJECT: "ablations:\n  My-Sweep:\n    grid: {model.hidden: [8]}\n"}, ["config", "p"], 1,
     f"{PROJECT}:2: ablations.My-Sweep: ablation name 'My-Sweep' is not allowed", ""),
    ({PROJECT: "ablations:\n  a:\n    variants:\n      ../x: {model.hidden: 8}\n"}, ["config", "p"], 1,
     f"{PROJECT}:4: ablations.a.variants.../x: variant name '../x' has path parts", ""),
    ({"lab.yaml": "name: My Lab\n"}, ["ls"], 1, "lab.yaml:1: name: lab name 'My Lab' is not allowed", ""),
    # values
    ({PROJECT: "config:\n  optim: {lr: .nan}\n"}, ["config", "p"], 1,
     f"{PROJECT}:2: optim.lr: nan is not a finite number", ""),
    ({}, ["config", "digits-mlp", "-o", "optim.lr=.inf"], 1, "-o optim.lr=.inf: optim.lr: inf is not a finite number",
     ""),
    ({PROJECT: "config:\n  optim: {lr: .nan}\n", "common/limits.yaml": "optim.lr: {finite: false}\n"},
     ["config", "p"], 0, "", ""),
    ({PROJECT: "ablations:\n  a:\n    grid: {model.hidden: [8]}\n    seeds: [0, 4294967296]\n"},
     ["config", "p"], 1, f"{PROJECT}:4: ablations.a.seeds[1]: a seed is from 0 to 4294967295", ""),
    ({}, ["config", "digits-mlp", "--seed", "4294967296"], 2, "a seed is from 0 to 4294967295", ""),
    ({}, ["run", "digits-mlp", "--seed", "-1", "-d"], 2, "a seed is from 0 to 4294967295", ""),
    ({}, ["config", "digits-mlp", "-o", "seed=99999999999"], 1, "-o seed=99999999999: seed: a seed is from 0", ""),
    ({PROJECT: "config:\n  data: {name: digits}\n  when: 2024-01-02\n"}, ["config", "p"], 1,
     f"{PROJECT}:3: when: a YAML date (2024-01-02) is not a config value: quote it", ""),
    ({}, ["config", "digits-mlp", "-o", "data.name=2024-01-02"], 1, "a YAML date (2024-01-02)", ""),
    ({PROJECT: "pipeline:\n  - {name: a, timeout: -5}\n"}, ["config", "p"], 1,
     f"{PROJECT}:2: pipeline[0].timeout: expected a duration above 0", ""),
    ({PROJECT: "pipeline:\n  - {name: a, resources: {memory: -5}}\n"}, ["config", "p"], 1,
     "expected a size above 0", ""),
    ({PROJECT: "pipeline:\n  - {name: a, resources: {cpus: .inf}}\n"}, ["config", "p"], 1,
     f"{PROJECT}:2: pipeline[0].resources.cpus:", ""),
    ({PROJECT: "pipeline:\n  - {name: a, artifacts: ['']}\n"}, ["config", "p"], 1,
     "artifacts are file paths relative to /fb/out", ""),
    ({PROJECT: "pipeline:\n  - {name: a, artifacts: ['./']}\n"}, ["config", "p"], 1,
     "artifacts are file paths relative to /fb/out", ""),
    ({}, ["run", "digits-mlp", "--stages", "", "-d"], 2, "expected stage names separated by commas", ""),
    ({}, ["run", "digits-mlp", "--stages", "train,", "-d"], 2, "expected stage names separated by commas", ""),
    ({"lab.yaml": "name: l\nlimits: {ablation_runs: 0}\n"}, ["ls"], 1, "lab.yaml:2: limits.ablation_runs:", ""),
]


@pytest.mark.parametrize(("files", "args", "rc", "expected", "also"), CASES,
                         ids=[f"{i}-{c[1][0]}" for i, c in enumerate(CASES)])
def test_refused_in_one_line_and_nothing_written(write, fbtui, lab_dir: Path, files: dict[str, str],  # type: ignore[no-untyped-def]
                                                 args: list[str], rc: int, expected: str, also: str) -> None:
    for rel, text in files.items():
        write(rel, text)
    proc = fbtui(*args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == rc, out
    assert "Traceback" not in out
    assert expected in out, out
    assert also in out, out
    if rc == 1:
        assert len(proc.stderr.strip().splitlines()) <= 2, out  # the error and its hint
    if rc:
        assert not (lab_dir / ".fb").exists(), "a refused command wrote the store"


def test_a_huge_grid_is_refused_without_expanding_it(write, fbtui, lab_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import tracemalloc

    values = ", ".join(str(i + 1) for i in range(100))
    write(PROJECT, f"""\
        ablations:
          huge:
            grid:
              model.hidden: [{values}]
              train.epochs: [{values}]
              train.batch_size: [{values}]
            seeds: [0, 1, 2]
        """)
    tracemalloc.start()
    proc = fbtui("config", "p")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (f"{PROJECT}:3: ablations.huge.grid: a grid of 100 × 100 × 100 = 1,000,000 points, × 3 seeds = "
            "3,000,000 runs, above the lab's limit of 10,000") in proc.stderr
    assert "limits: {ablation_runs: N} in lab.yaml" in proc.stderr
    assert not (lab_dir / ".fb").exists()
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MB: was the grid expanded?"  # expanded: GBs

    # the limit is the lab's to set
    write(PROJECT, "ablations:\n  small:\n    grid: {model.hidden: [8, 16, 32]}\n    variants: {x: {}}\n")
    write("lab.yaml", (lab_dir / "lab.yaml").read_text() + "limits: {ablation_runs: 3}\n")
    proc = fbtui("variants", "p")
    assert proc.returncode == 1
    assert "ablations.small.grid: a grid of 3 + 1 named variants = 4 runs, above the lab's limit of 3" in proc.stderr


def test_ls_lists_a_badly_named_project_as_broken(write, fbtui) -> None:  # type: ignore[no-untyped-def]
    write("projects/MyNet/project.yaml", "description: x\n")
    proc = fbtui("ls", "--json")
    import json

    rows = {r["project"]: r for r in json.loads(proc.stdout)["projects"]}
    assert "is not allowed" in rows["MyNet"]["error"]
    assert rows["digits-mlp"]["error"] is None
