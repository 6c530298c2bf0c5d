"""`fbtui new`: a project scaffold from nothing, or from an argparse training script read (never run)."""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

# A training script that knows nothing of fbtui. Importing or running it leaves a marker file:
# the scaffold must do neither.
TRAIN = '''\
import argparse
import pathlib

import numpy as np
import torch
import tqdm
from torch.utils.tensorboard import SummaryWriter

pathlib.Path(__file__).with_name("RAN").write_text("the script ran")


def main():
    p = argparse.ArgumentParser(description="a tiny language model")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    p.add_argument("--n-embd", type=int, default=64, help="embedding width")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-amp", dest="amp", action="store_false")
    p.add_argument("--tags", nargs="+", default=[])
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    writer = SummaryWriter("runs")
    for step in tqdm.trange(1000):
        loss, val = 2.31, 2.40
        if step % 100 == 0:
            print(f"step {step} | loss {loss:.4f} | val {val:.2f}")
            writer.add_scalar("Loss/train", loss, step)


main()
'''


def scaffold(fbtui: Any, tmp_path: Path, name: str, source: str, script: str = "train.py") -> tuple[Any, Path]:
    path = tmp_path / "src" / script
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return fbtui("new", name, "--from-script", str(path)), path


def test_from_script_writes_a_section_a_command_metrics_and_requirements(fbtui, lab_dir, tmp_path):  # type: ignore[no-untyped-def]
    proc, script = scaffold(fbtui, tmp_path, "charlm", TRAIN)
    assert proc.returncode == 0, proc.stderr
    folder = lab_dir / "projects" / "charlm"
    assert not (script.parent / "RAN").exists() and not (folder / "RAN").exists()  # never run nor imported
    assert (folder / "train.py").read_text() == script.read_text()

    spec = yaml.safe_load((folder / "project.yaml").read_text())
    assert spec["environment"] == "torch-cpu" and spec["inherit"] is False
    assert spec["config"]["seed"] == 7  # the script's --seed is the run's seed, not a key of the section
    train = spec["config"]["train"]
    assert train == {"lr": 0.001, "n_embd": 64, "compile": False, "no_amp": False, "tags": [], "optimizer": "adam"}
    assert isinstance(train["lr"], float) and isinstance(train["n_embd"], int)
    assert list(spec["config"]) == ["seed", "train"]

    (stage,) = spec["pipeline"]
    assert stage["name"] == "train" and stage["artifacts"] == []
    assert shlex.split(stage["command"]) == ["python3", "/fb/project/train.py", "{flags:train}", "--seed", "{seed}"]
    (pattern,) = stage["metrics"]["stdout"]
    assert pattern["prefix"] == "train/"
    m = re.search(pattern["pattern"], "step 100 | loss 2.31 | val 2.40")
    assert m and m.groupdict() == {"step": "100", "loss": "2.31", "val": "2.40"}
    assert re.search(pattern["pattern"], "  loss 2.31 | val 2.40") is None  # no step, no match
    assert stage["metrics"]["tensorboard"] == ["**/events.out.tfevents.*"]
    assert spec["ablations"]["example"]["grid"] == {"train.lr": [0.001, 0.0005]}

    reqs = (folder / "requirements.txt").read_text().split()
    assert "tqdm" in reqs and "tensorboard" in reqs  # torch.utils.tensorboard needs the tensorboard package
    assert "torch" not in reqs and "numpy" not in reqs  # the base image has them
    for line in ("wrote projects/charlm/project.yaml", "wrote projects/charlm/requirements.txt",
                 "fbtui config charlm", "fbtui run charlm"):
        assert line in proc.stdout


def test_underscored_options_append_and_what_cannot_be_expressed(fbtui, lab_dir, tmp_path):  # type: ignore[no-untyped-def]
    proc, _ = scaffold(fbtui, tmp_path, "odd", '''\
        import argparse
        import os
        import yaml
        import wandb


        def pair(text):
            return tuple(int(x) for x in text.split(","))


        p = argparse.ArgumentParser()
        p.add_argument("data")
        p.add_argument("--n_embd", type=int, default=64)
        p.add_argument("--batch_size", default="32", type=int)
        p.add_argument("--lr", type=float, default=3)
        p.add_argument("--warmup-steps", type=int, default=100)
        p.add_argument("--layer", action="append", default=["conv"])
        p.add_argument("--pair", type=pair, default="1,2")
        p.add_argument("--out_dir", required=True)
        p.add_argument("-v", "--verbose", action="count", default=0)
        p.add_argument("--workers", type=int, default=os.cpu_count())
        p.add_argument("--debug", type=bool, default=False)
        args = p.parse_args()
        for it in range(10):
            logger.info("iter %d loss %.3f", it, 0.5)
        ''')
    assert proc.returncode == 0, proc.stderr
    folder = lab_dir / "projects" / "odd"
    text = (folder / "project.yaml").read_text()
    spec = yaml.safe_load(text)
    assert spec["config"]["train"] == {"n_embd": 64, "batch_size": 32, "lr": 3.0, "layer": ["conv"], "workers": None}
    assert spec["config"]["train_explicit"] == {"warmup_steps": 100}  # the one spelled with a dash
    assert "seed" not in spec["config"]
    words = shlex.split(spec["pipeline"][0]["command"])
    assert words == ["python3", "/fb/project/train.py", "DATA", "{flags:train:underscore,repeat}", "--pair", "1,2",
                     "--out_dir", "OUT_DIR", "--warmup-steps", "{train_explicit.warmup_steps}"]
    for what in ("positional argument data", "--out_dir is required", "--pair (type=pair)", "--verbose (action=count)",
                 "--debug (type=bool) reads any text but '' as true"):
        assert f"# TODO: {what}" in text and f"TODO: {what}" in proc.stdout
    assert "os.cpu_count()" in text  # a computed default stays null, and says so
    m = re.search(spec["pipeline"][0]["metrics"]["stdout"][0]["pattern"], "INFO iter 30 loss 0.125")
    assert m and m.groupdict() == {"step": "30", "loss": "0.125"}
    assert "tensorboard" not in spec["pipeline"][0]["metrics"]
    assert spec["ablations"]["example"]["grid"] == {"train.lr": [3.0, 1.5]}
    assert (folder / "requirements.txt").read_text().split() == ["wandb"]  # yaml (pyyaml) is in the base


@pytest.mark.parametrize(("line", "sample", "groups"), [
    ('print(f"iter {iter_num}: train loss {losses[\'train\']:.4f}, val loss {losses[\'val\']:.4f}")',
     "iter 200: train loss 1.2345, val loss 1.5000", {"step": "200", "train_loss": "1.2345", "val_loss": "1.5000"}),
    ('print("epoch {} acc={:6.2f}%".format(epoch, acc))', "epoch 3 acc= 91.50%", {"step": "3", "acc": "91.50"}),
    ('print("step %d/%d loss %.3e" % (step, total, loss.item()))', "step 5/100 loss 1.250e-01",
     {"step": "5", "loss": "1.250e-01"}),
])
def test_metric_patterns_follow_the_scripts_log_lines(line, sample, groups):  # type: ignore[no-untyped-def]
    import ast

    from fbtui.scaffold.stdout_patterns import stdout_patterns

    (pattern,) = stdout_patterns(ast.parse(line))
    m = re.search(pattern, sample)
    assert m and m.groupdict() == groups


def test_a_script_without_argparse_gets_an_empty_section_and_an_example_pattern(fbtui, lab_dir, tmp_path):  # type: ignore[no-untyped-def]
    proc, _ = scaffold(fbtui, tmp_path, "plain", 'import json\nprint("hello")\n', script="run.py")
    assert proc.returncode == 0, proc.stderr
    assert "no argparse.ArgumentParser in run.py" in proc.stdout
    folder = lab_dir / "projects" / "plain"
    text = (folder / "project.yaml").read_text()
    spec = yaml.safe_load(text)
    assert spec["config"] == {"train": {}} and "ablations" not in spec
    assert spec["pipeline"][0]["command"] == "python3 /fb/project/run.py {flags:train}"
    assert "metrics" not in spec["pipeline"][0] and "#   stdout:" in text  # a commented example to adapt
    assert not (folder / "requirements.txt").exists()  # json is the standard library's


def test_code_already_in_the_project_folder_is_adopted_where_it_is(fbtui, lab_dir):  # type: ignore[no-untyped-def]
    folder = lab_dir / "projects" / "adopted"
    folder.mkdir()
    (folder / "model.py").write_text("class Net: pass\n")
    (folder / "requirements.txt").write_text("einops==0.8.0\n")
    (folder / "train.py").write_text(textwrap.dedent('''\
        import argparse
        import einops
        from model import Net
        from tensorboardX import SummaryWriter

        p = argparse.ArgumentParser()
        p.add_argument("--log-dir", default="./runs")
        p.add_argument("--epochs", type=int, default=3)
        args = p.parse_args()
        w = SummaryWriter()
        '''))
    proc = fbtui("new", "adopted", "--from-script", "projects/adopted/train.py")
    assert proc.returncode == 0, proc.stderr
    assert "wrote projects/adopted/train.py" not in proc.stdout  # it is where it was
    assert (folder / "requirements.txt").read_text() == "einops==0.8.0\n"  # the folder's own is kept
    assert "requirements.txt is kept as it was; the script also imports: einops, tensorboardX" in proc.stdout
    text = (folder / "project.yaml").read_text()
    spec = yaml.safe_load(text)
    # an output folder goes under /fb/out, where fbtui keeps files and finds event files
    assert spec["config"]["train"] == {"log_dir": "/fb/out/runs", "epochs": 3}
    assert "# TODO: SummaryWriter() on line 10 writes to ./runs" in text and "SummaryWriter() on line 10" in proc.stdout
    assert spec["pipeline"][0]["metrics"]["tensorboard"] == ["**/events.out.tfevents.*"]
    assert spec["ablations"]["example"]["grid"] == {"train.epochs": [3, 6]}
    assert fbtui("new", "adopted", "--from-script", "projects/adopted/train.py").returncode == 2  # now it exists


def test_a_native_project_inherits_commons_pipeline(fbtui, lab_dir):  # type: ignore[no-untyped-def]
    proc = fbtui("new", "wide-mlp")
    assert proc.returncode == 0, proc.stderr
    spec = yaml.safe_load((lab_dir / "projects" / "wide-mlp" / "project.yaml").read_text())
    assert "pipeline" not in spec and "inherit" not in spec
    assert spec["config"] == {"model": {"hidden": 128}}
    assert spec["ablations"]["example"]["grid"] == {"model.hidden": [64, 256]}
    assert fbtui("variants", "wide-mlp").returncode == 0
    cfg = fbtui("config", "wide-mlp")
    assert cfg.returncode == 0 and "hidden: 128" in cfg.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["new", "My Net"], "project name 'My Net' is not allowed"),
    (["new", "../x"], "has path parts"),
    (["new", "digits-mlp"], "projects/digits-mlp already exists"),
    (["new", "x", "--from-script", "missing.py"], "no such script: missing.py"),
    (["new", "x", "--environment", "tpu"], "unknown environment 'tpu'"),
])
def test_refusals_are_one_line_and_exit_2(fbtui, lab_dir, args, message):  # type: ignore[no-untyped-def]
    proc = fbtui(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("fbtui: error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert not (lab_dir / "projects" / "x").exists()


def test_a_script_with_a_syntax_error_is_refused_with_its_line(fbtui, lab_dir, tmp_path):  # type: ignore[no-untyped-def]
    proc, script = scaffold(fbtui, tmp_path, "broken", 'import argparse\n\ndef main(:\n    pass\n')
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{script}:3: syntax error" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (lab_dir / "projects" / "broken").exists()  # nothing half-written


def test_help_teaches_in_80_columns(fbtui):  # type: ignore[no-untyped-def]
    proc = fbtui("new", "--help", env={"COLUMNS": "80"})
    assert proc.returncode == 0
    assert "--from-script PATH" in proc.stdout and "examples:" in proc.stdout and "never run" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


@pytest.mark.slow
def test_the_lab_loads_the_scaffolded_project(fbtui, tmp_path):  # type: ignore[no-untyped-def]
    proc, _ = scaffold(fbtui, tmp_path, "charlm", TRAIN)
    assert proc.returncode == 0, proc.stderr
    cfg = fbtui("config", "charlm", "--json")
    if cfg.returncode != 0 and ("inherit" in cfg.stderr or "metrics" in cfg.stderr):
        pytest.skip("needs #13 config")
    assert cfg.returncode == 0, cfg.stderr
    import json

    config = json.loads(cfg.stdout)["config"]
    assert config == {"seed": 7, "train": {"lr": 0.001, "n_embd": 64, "compile": False, "no_amp": False,
                                           "tags": [], "optimizer": "adam"}}  # only its own keys
    variants = fbtui("variants", "charlm")
    assert variants.returncode == 0 and "lr=0.0005" in variants.stdout
    from fbtui.config.templates import render_command

    words = shlex.split(yaml.safe_load((tmp_path / "lab" / "projects" / "charlm" / "project.yaml").read_text())
                        ["pipeline"][0]["command"])
    config["train"]["compile"] = True
    assert render_command(words, config, []) == ["python3", "/fb/project/train.py", "--lr", "0.001", "--n-embd", "64",
                                                 "--compile", "--optimizer", "adam", "--seed", "7"]
