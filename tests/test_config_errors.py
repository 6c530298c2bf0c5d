"""Bad input gets file:line: key: what was expected -- never a traceback (run through the real CLI)."""

from __future__ import annotations

import pytest

PROJECT = "projects/p/project.yaml"

CASES = [
    pytest.param(
        {PROJECT: "environment: torch-cpu\nconfig:\n  model: {hidden: [1, 2}\n"},
        ["config", "p"],
        "projects/p/project.yaml:3: invalid YAML: expected ',' or ']', but got '}'",
        id="invalid-yaml",
    ),
    pytest.param(
        {PROJECT: "environment: torch-cpu\nconfig:\n  model:\n    hidden: [1, 2\n\n  optim:\n    lr: 0.1\n"},
        ["config", "p"],
        "projects/p/project.yaml:6: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 4)",
        id="unclosed-bracket-names-where-it-opened",
    ),
    pytest.param(
        {"lab.yaml": "hosts:\n  local:\n    slots: 99999999999999999999999\n"},
        ["ls"],
        "lab.yaml:3: hosts.local.slots: input should be less than or equal to 4096, got 99999999999999999999999",
        id="slots-beyond-any-engine",
    ),
    pytest.param(
        {PROJECT: "enviroment: torch-cpu\n"},
        ["config", "p"],
        "projects/p/project.yaml:1: enviroment: unknown key; did you mean 'environment'? "
        "(expected one of: description, environment, pipeline, inherit, config, ablations)",
        id="unknown-key-typo",
    ),
    pytest.param(
        {PROJECT: "environment: torch-cpu\nconfig:\n  model:\n    hidden: wide\n"},
        ["config", "p"],
        "projects/p/project.yaml:4: model.hidden: expected an integer, got 'wide'",
        id="config-type-against-defaults",
    ),
    pytest.param(
        {PROJECT: "description: x\nenvironment: torch-gpu\n"},
        ["config", "p"],
        "projects/p/project.yaml:2: environment: unknown environment 'torch-gpu' (known: torch-cpu, torch-cuda)",
        id="unknown-environment",
    ),
    pytest.param(
        {PROJECT: """\
            pipeline:
              - name: a
                needs: [b]
              - name: b
                needs: [a]
            """},
        ["config", "p"],
        "projects/p/project.yaml:5: pipeline[1].needs: stages form a cycle: a -> b -> a",
        id="stage-cycle",
    ),
    pytest.param(
        {PROJECT: """\
            ablations:
              sweep:
                grid:
                  model.hidden: []
            """},
        ["config", "p"],
        "projects/p/project.yaml:4: model.hidden: empty grid: give at least one value",
        id="empty-grid",
    ),
    pytest.param(
        {PROJECT: "config:\n  seed: 1\n  seed: 2\n"},
        ["config", "p"],
        "projects/p/project.yaml:3: config.seed: duplicate key (first defined on line 2)",
        id="duplicate-key",
    ),
    pytest.param(
        {PROJECT: """\
            pipeline:
              - name: prepare
              - name: train
                needs: [prep]
            """},
        ["config", "p"],
        "projects/p/project.yaml:4: pipeline[1].needs[0]: unknown stage 'prep' (stages: prepare, train)",
        id="unknown-stage-in-needs",
    ),
    pytest.param(
        {PROJECT: """\
            pipeline:
              - name: train
                resources:
                  memory: lots
            """},
        ["config", "p"],
        "projects/p/project.yaml:4: pipeline[0].resources.memory: expected a size such as 512m or 4g, got 'lots'",
        id="bad-memory-size",
    ),
    pytest.param(
        {PROJECT: """\
            pipeline:
              - name: train
                resources: {gpus: all}
            """},
        ["config", "p"],
        "projects/p/project.yaml:3: pipeline[0].resources.gpus: expected a GPU count (0, 1, ...) "
        "or a list of device ids, got 'all'",
        id="bad-gpus",
    ),
    pytest.param(
        {PROJECT: """\
            ablations:
              sweep:
                grid:
                  model.hiden: [64, 128]
            """},
        ["config", "p"],
        "projects/p/project.yaml:4: model.hiden: unknown config key; did you mean 'model.hidden'?",
        id="unknown-grid-key",
    ),
    pytest.param(
        {PROJECT: """\
            ablations:
              sweep:
                grid:
                  optim.lr: [1.0e-3, fast]
            """},
        ["config", "p"],
        "projects/p/project.yaml:4: optim.lr: expected a number, got 'fast'",
        id="grid-value-type",
    ),
    pytest.param(
        {PROJECT: """\
            ablations:
              sweep:
                variants:
                  wide: {model.hidden: 512}
                seeds: []
            """},
        ["config", "p"],
        "projects/p/project.yaml:5: ablations.sweep.seeds: empty list of seeds: leave seeds out or give at least one",
        id="empty-seeds",
    ),
    pytest.param(
        {PROJECT: """\
            ablations:
              sweep:
                variants:
                  wide: {model.hidden: 512}
                baseline: narrow
            """},
        ["config", "p"],
        "projects/p/project.yaml:5: ablations.sweep.baseline: no variant named 'narrow' in this ablation",
        id="unknown-baseline",
    ),
    pytest.param(
        {PROJECT: "ablations:\n  sweep:\n    description: nothing to vary\n"},
        ["config", "p"],
        "projects/p/project.yaml:2: ablations.sweep: the ablation has no variants: give it a grid: or variants:",
        id="ablation-without-variants",
    ),
    pytest.param(
        {PROJECT: "- environment: torch-cpu\n"},
        ["config", "p"],
        "projects/p/project.yaml:1: expected a mapping at the top, got a list",
        id="top-level-list",
    ),
    pytest.param(
        {PROJECT: "environment: torch-cpu\n"},
        ["config", "p", "-o", "model.hidden=wide"],
        "-o model.hidden=wide: model.hidden: expected an integer, got 'wide'",
        id="override-type",
    ),
    pytest.param(
        {PROJECT: "environment: torch-cpu\n"},
        ["config", "p", "-o", "model.hiden=3"],
        "-o model.hiden=3: model.hiden: unknown config key; did you mean 'model.hidden'?",
        id="override-unknown-key",
    ),
    pytest.param(
        {"lab.yaml": "name: l\nhosts:\n  gpu:\n    url: http://gpu-box\n"},
        ["ls"],
        "lab.yaml:4: hosts.gpu.url: expected 'local', unix:///path.sock, ssh://user@host[:port] or "
        "tcp://host:port, got 'http://gpu-box'",
        id="lab-bad-host-url",
    ),
    pytest.param(
        {"lab.yaml": "name: l\nhosts:\n  ws:\n    url: tcp://127.0.0.1:2376\n"},
        ["ls"],
        "lab.yaml:3: hosts.ws: a tcp:// host needs tls: {ca, cert, key} (or insecure: true to allow plain TCP)",
        id="lab-tcp-without-tls",
    ),
    pytest.param(
        {"lab.yaml": "name: l\nbuild:\n  builder: fast\n"},
        ["ls"],
        "lab.yaml:3: build.builder: expected one of 'auto', 'buildkit' or 'classic', got 'fast'",
        id="lab-bad-literal",
    ),
    pytest.param(
        {"environments/torch-cpu/environment.yaml": "description: x\npackages: [curl]\n"},
        ["doctor"],
        "environments/torch-cpu/environment.yaml:2: packages: unknown key",
        id="environment-unknown-key",
    ),
    pytest.param(
        {PROJECT: """\
            pipeline:
              - name: train
              - name: train
            """},
        ["config", "p"],
        "projects/p/project.yaml:3: pipeline[1].name: duplicate stage name 'train'",
        id="duplicate-stage",
    ),
    pytest.param(
        {PROJECT: "config:\n  train:\n    epochs: 3\n  model: 5\n"},
        ["config", "p"],
        "projects/p/project.yaml:4: model: expected a mapping, got 5",
        id="scalar-over-mapping",
    ),
    pytest.param(
        {PROJECT: "config:\n  train:\n    epochs: 0\n"},
        ["config", "p"],
        "projects/p/project.yaml:3: train.epochs: must be at least 1, got 0",
        id="limit-in-project",
    ),
    pytest.param(
        {PROJECT: "ablations:\n  a:\n    variants:\n      ok: {model.dropout: 0.5}\n      bad: {model.dropout: 1.5}\n"},
        ["config", "p", "--variant", "bad"],
        "projects/p/project.yaml:5 (ablation a, variant bad): model.dropout: must be less than 1, got 1.5",
        id="limit-in-variant",
    ),
    pytest.param(
        {PROJECT: "environment: torch-cpu\n"},
        ["config", "p", "-o", "train.precision=fp64"],
        "-o train.precision=fp64: train.precision: expected one of auto, fp32, bf16, fp16, got 'fp64'",
        id="limit-choices-override",
    ),
    pytest.param(
        {PROJECT: "environment: torch-cpu\n", "common/limits.yaml": "seed: {min: 0}\ntrain.epoch: {min: 1}\n"},
        ["config", "p"],
        "common/limits.yaml:2: train.epoch: not a key of common/defaults.yaml; did you mean 'train.epochs'?",
        id="limits-file-unknown-key",
    ),
    pytest.param(
        {PROJECT: "environment: torch-cpu\n", "common/limits.yaml": "train.epochs: {minimum: 1}\n"},
        ["config", "p"],
        "common/limits.yaml:1: train.epochs.minimum: unknown limit (min, max, above, below, choices, finite); "
        "did you mean 'min'?",
        id="limits-file-unknown-limit",
    ),
]


@pytest.mark.parametrize(("files", "args", "expected"), CASES)
def test_bad_config_names_file_line_and_key(write, fbtui, files, args, expected):  # type: ignore[no-untyped-def]
    for rel, text in files.items():
        write(rel, text)
    proc = fbtui(*args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    assert expected in output, output


def test_missing_project_file_lists_known_projects(fbtui):  # type: ignore[no-untyped-def]
    proc = fbtui("config", "nope")
    assert proc.returncode == 1
    assert "unknown project 'nope' (projects: digits-cnn, digits-mlp)" in proc.stderr


def test_outside_a_lab_says_how_to_make_one(fbtui, tmp_path):  # type: ignore[no-untyped-def]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = fbtui("ls", cwd=outside)
    assert proc.returncode == 1
    assert f"not inside a lab: no lab.yaml in {outside}" in proc.stderr
    assert "--lab PATH or FB_LAB=PATH" in proc.stderr


def test_lab_says_what_is_wrong_with_the_path_it_was_given(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from fbtui.errors import LabNotFound
    from fbtui.lab import find_lab_root
    from tests.labs import copy_lab

    lab = copy_lab(tmp_path / "lab")
    assert find_lab_root(explicit=str(lab / "lab.yaml")) == lab  # the file itself: its folder
    for given, what in ((tmp_path / "nope", "which does not exist"), (lab / "common/defaults.yaml", "which is not a "
                        "folder"), (tmp_path, "which has no lab.yaml")):
        with pytest.raises(LabNotFound) as e:
            find_lab_root(explicit=str(given))
        assert e.value.message == f"--lab points at {given}, {what}"
        assert len(e.value.hint or "") <= 160  # two lines at 80 columns
    monkeypatch.setenv("FB_LAB", str(tmp_path / "nope"))
    with pytest.raises(LabNotFound, match=r"FB_LAB points at .*, which does not exist"):
        find_lab_root()


def test_bad_override_syntax_is_a_usage_error(fbtui):  # type: ignore[no-untyped-def]
    proc = fbtui("config", "digits-mlp", "-o", "model.hidden")
    assert proc.returncode == 2
    assert "-o model.hidden: expected key=value" in proc.stderr
