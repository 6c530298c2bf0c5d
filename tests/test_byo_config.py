"""Bring your own code, the config side (#13): command and env templates, typed project config,
inheriting only some of common/defaults.yaml, pipelines that extend, component names checked."""

from __future__ import annotations

import json

import pytest

from fbtui.config.templates import TemplateError, pattern_problem, render_command, render_env

PROJECT = "projects/p/project.yaml"
CONFIG = {"seed": 3, "train": {"lr": 0.001, "n_embd": 64, "compile": False, "fast": True, "tags": ["a", "b"],
                               "skip": None}, "model": {"hidden": 256}}


def test_flags_expand_a_section_with_each_modifier() -> None:
    render = lambda word: render_command([word], CONFIG, ["prepare"])  # noqa: E731
    assert render("{flags:train}") == ["--lr", "0.001", "--n-embd", "64", "--fast", "--tags", "a", "b"]
    assert render("{flags:train:underscore}")[2] == "--n_embd"
    assert render("{flags:train:repeat}")[-4:] == ["--tags", "a", "--tags", "b"]
    assert render("{flags:train:comma,underscore}")[-2:] == ["--tags", "a,b"]
    cmd = render_command(["python3", "t.py", "--seed={seed}", "--out", "{out}", "--data", "{in.prepare}",
                          "--h", "{model.hidden}", "{{literal}}"], CONFIG, ["prepare"])
    assert cmd == ["python3", "t.py", "--seed=3", "--out", "/fb/out", "--data", "/fb/in/prepare", "--h", "256",
                   "{literal}"]
    assert render_env({"OMP_NUM_THREADS": "1", "H": "{model.hidden}"}, CONFIG, []) == {"OMP_NUM_THREADS": "1",
                                                                                       "H": "256"}


@pytest.mark.parametrize(("word", "says"), [
    ("{model.hiden}", "{model.hiden}: no such key in the run's config; did you mean {model.hidden}?"),
    ("{in.train}", "this stage does not read stage 'train'"),
    ("{flags:train:sorted}", "unknown modifier 'sorted'"),
    ("--x={flags:train}", "must be a command word of its own"),
    ("{flags:seed}", "seed is not a section"),
    ("{train.skip}", "is null in the run's config"),
    ("{model", "a lone '{'"),
])
def test_a_template_that_cannot_render_says_why(word: str, says: str) -> None:
    with pytest.raises(TemplateError) as e:
        render_command([word], CONFIG, ["prepare"])
    assert says in str(e.value)


@pytest.mark.parametrize(("pattern", "says"), [
    (r"step (\d+) loss (?P<loss>[0-9.]+)", "needs a (?P<step>...) group"),
    (r"step (?P<step>\d+) loss (?P<loss>[0-9.]+", "not a valid regular expression"),
    (r"(?P<step>\d+) (?P<name>\w+)", "needs a (?P<value>...) group"),
    (r"step (?P<step>\d+)", "a named group per metric"),
])
def test_bad_stdout_patterns_are_refused(pattern: str, says: str) -> None:
    assert says in (pattern_problem(pattern) or "")


FOREIGN = """\
description: a script that knows nothing of fbtui
inherit: false
config:
  seed: 0
  train:
    lr: 0.001
    n_embd: 64
    fast: false
pipeline:
  - name: train
    command: python3 /fb/project/train.py {flags:train} --seed {seed}
    env: {OMP_NUM_THREADS: 1, WIDTH: "{train.n_embd}"}
    metrics:
      jsonl: false
      stdout:
        - pattern: 'step (?P<step>\\d+) \\| loss (?P<loss>[0-9.]+)'
          prefix: train/
      tensorboard: "**/events.out.tfevents.*"
ablations:
  lr:
    grid:
      train.lr: [0.001, 0.01]
"""


def test_a_foreign_project_records_only_its_own_keys_and_renders_its_command(write, fbtui) -> None:  # type: ignore[no-untyped-def]
    write(PROJECT, FOREIGN)
    proc = fbtui("config", "p", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["config"] == {"seed": 0, "train": {"lr": 0.001, "n_embd": 64, "fast": False}}
    train = out["pipeline"][0]
    assert train["command"] == ["python3", "/fb/project/train.py", "--lr", "0.001", "--n-embd", "64", "--seed", "0"]
    assert train["env"] == {"OMP_NUM_THREADS": "1", "WIDTH": "64"}
    assert train["metrics"]["tensorboard"] == ["**/events.out.tfevents.*"]
    text = fbtui("config", "p", "-o", "train.fast=true").stdout
    assert "train: python3 /fb/project/train.py --lr 0.001 --n-embd 64 --fast --seed 0" in text
    assert "metrics from stdout /step" in text and "tensorboard **/events.out.tfevents.*" in text


@pytest.mark.parametrize(("files", "args", "expected"), [
    ({PROJECT: FOREIGN}, ["config", "p", "-o", "train.n_embd=wide"],
     "-o train.n_embd=wide: train.n_embd: expected an integer, got 'wide'"),
    ({PROJECT: FOREIGN}, ["config", "p", "-o", "model.hidden=3"], "model.hidden: unknown config key"),
    ({PROJECT: FOREIGN.replace("      train.lr: [0.001, 0.01]", "      train.lr: [0.001, fast]")}, ["config", "p"],
     "projects/p/project.yaml:22: train.lr: expected a number, got 'fast'"),
    ({PROJECT: FOREIGN.replace("{flags:train}", "{flags:train} --w {train.n_embed}")}, ["config", "p"],
     "projects/p/project.yaml:11: train.command: {train.n_embed}: no such key in the run's config; "
     "did you mean {train.n_embd}?"),
    ({PROJECT: FOREIGN, "projects/p/defaults.yaml": "train:\n  n_embd: 32\n  layers: 2\n"},
     ["config", "p", "-o", "train.layers=2.5"], "train.layers: expected an integer, got 2.5"),
    ({PROJECT: FOREIGN, "projects/p/limits.yaml": "train.lr: {above: 0}\n"},
     ["config", "p", "-o", "train.lr=-1"], "-o train.lr=-1: train.lr: must be more than 0, got -1"),
    ({PROJECT: FOREIGN, "projects/p/limits.yaml": "train.lrr: {above: 0}\n"},
     ["config", "p"], "projects/p/limits.yaml:1: train.lrr: not a key of the project's config; did you mean"),
    ({PROJECT: FOREIGN.replace("inherit: false", "inherit: [seed, dat]")}, ["config", "p"],
     "projects/p/project.yaml:2: inherit: common/defaults.yaml has no section 'dat'; did you mean 'data'?"),
    ({PROJECT: "config:\n  model:\n    name: mlpp\n",
      "common/models.py": "@register('model', 'mlp')\ndef mlp(): ...\n"}, ["config", "p"],
     "projects/p/project.yaml:3: model.name: no model registered as 'mlpp'; did you mean 'mlp'?"),
    ({PROJECT: "pipeline:\n  extends: common\n  stages:\n    - name: export\n      after: evaluat\n"},
     ["config", "p"], "projects/p/project.yaml:5: pipeline.stages[0].after: no stage 'evaluat' to go after"),
    ({PROJECT: FOREIGN.replace('tensorboard: "**/events.out.tfevents.*"', 'tensorboard: "../logs/*"')},
     ["config", "p"], "projects/p/project.yaml:18: pipeline[0].metrics.tensorboard: tensorboard event files are "
     "file paths relative to /fb/out"),
    ({PROJECT: FOREIGN.replace("  - name: train\n", "  - name: train\n    artifacts: [/abs/*.pt]\n")},
     ["config", "p"], "pipeline[0].artifacts: artifacts are file paths relative to /fb/out"),
    ({PROJECT: FOREIGN.replace("prefix: train/", "prefix: train/\n          keys: {loss: 3}")}, ["config", "p"],
     "pipeline[0].metrics.stdout[0].keys.loss: expected a string, got 3"),
    ({PROJECT: FOREIGN.replace("(?P<step>\\d+)", "(\\d+)")}, ["config", "p"],
     "projects/p/project.yaml:16: pipeline[0].metrics.stdout[0].pattern: a pattern needs a (?P<step>...) group"),
    ({PROJECT: FOREIGN.replace("env: {OMP_NUM_THREADS: 1,", "env: {OMP_NUM_THREADS: null,")}, ["config", "p"],
     "pipeline[0].env: env: OMP_NUM_THREADS: expected a value such as 1 or 'text' (a secret from the launching "
     "shell goes under secrets: instead)"),
    ({PROJECT: "pipeline:\n  - name: export\n    after: evaluate\n"}, ["config", "p"],
     "projects/p/project.yaml:3: pipeline[0].after: after: places a stage added to an inherited pipeline"),
])
def test_bad_byo_config_names_file_line_and_key(write, fbtui, files, args, expected) -> None:  # type: ignore[no-untyped-def]
    for rel, text in files.items():
        write(rel, text)
    proc = fbtui(*args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    assert expected in output, output


def test_inherit_some_sections_and_project_defaults(write, fbtui) -> None:  # type: ignore[no-untyped-def]
    write(PROJECT, FOREIGN.replace("inherit: false", "inherit: [data]"))
    write("projects/p/defaults.yaml", "train:\n  layers: 2\n")
    out = json.loads(fbtui("config", "p", "--json").stdout)
    assert sorted(out["config"]) == ["data", "seed", "train"]
    assert out["config"]["train"] == {"layers": 2, "lr": 0.001, "n_embd": 64, "fast": False}
    assert out["origins"]["train.layers"] == "projects/p/defaults.yaml:2"
    assert out["origins"]["data.name"].startswith("common/defaults.yaml:")


def test_extends_adds_a_stage_and_changes_an_inherited_one(write, fbtui) -> None:  # type: ignore[no-untyped-def]
    write(PROJECT, """\
pipeline:
  extends: common
  stages:
    - name: export
      after: evaluate
      command: python3 -c "print('exported')"
      artifacts: [exported/]
    - name: lint
      before: prepare
      command: [python3, -c, "print(1)"]
    - name: train
      timeout: 2h
""")
    out = json.loads(fbtui("config", "p", "--json").stdout)
    stages = {s["name"]: s for s in out["pipeline"]}
    assert list(stages) == ["lint", "prepare", "train", "evaluate", "export"]
    assert stages["train"]["timeout"] == 7200 and stages["train"]["artifacts"] == ["model.pt", "metrics.jsonl",
                                                                                   "components.json"]
    assert stages["export"]["needs"] == ["lint", "prepare", "train", "evaluate"]
    assert stages["evaluate"]["evaluates"]["reads"] == ["train/model.pt"]
    doctor = fbtui("doctor", "--json").stdout
    assert "p: lint -> prepare -> train -> evaluate -> export" in doctor
