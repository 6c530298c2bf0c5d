"""pipeline.launch.validate: what the CLI's `run` and the app's launcher check before anything is
built or recorded, against the bundled lab's real configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from fbtui.errors import FBError
from fbtui.lab import Lab
from fbtui.pipeline.launch import select_variants, validate


def check(lab_dir: Path, *, ablation: str | None = None, overrides: tuple[str, ...] = (),
          hosts: tuple[str, ...] = ("local",), stages: list[str] | None = None) -> int:
    lab = Lab.find(str(lab_dir))
    variants = select_variants(lab, "digits-mlp", None, ablation, None)
    return len(validate(lab, "digits-mlp", variants=variants, overrides=list(overrides), hosts=list(hosts),
                        stages=stages))


def test_a_whole_ablation_resolves(lab_dir: Path) -> None:
    assert check(lab_dir, ablation="sweep") == 16  # 2 x 2 x 2 grid x 2 seeds
    assert check(lab_dir, overrides=("train.epochs=2",), stages=["prepare", "train"]) == 1


@pytest.mark.parametrize(("kw", "message"), [
    ({"overrides": ("model.hidden=wide",)}, "-o model.hidden=wide: model.hidden: expected an integer, got 'wide'"),
    ({"overrides": ("model.hiden=3",)}, "model.hidden"),  # did you mean
    ({"overrides": ("epochs",)}, "-o epochs: expected key=value"),
    ({"hosts": ("gpu-box",)}, "unknown host 'gpu-box' (hosts in lab.yaml: local"),
    ({"hosts": ()}, "no host to run on"),
    ({"stages": ["train", "deploy"]}, "unknown stage deploy (stages of digits-mlp: prepare, train, evaluate)"),
    ({"stages": []}, "pick at least one stage"),
])
def test_each_problem_is_named(lab_dir: Path, kw: dict[str, object], message: str) -> None:
    with pytest.raises(FBError) as e:
        check(lab_dir, **kw)  # type: ignore[arg-type]
    assert message in str(e.value)


def test_a_missing_secret_is_named(lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    y = lab_dir / "projects/digits-mlp/project.yaml"
    y.write_text(y.read_text() + "pipeline:\n  - name: train\n    env: [FB_TEST_TOKEN]\n")
    monkeypatch.delenv("FB_TEST_TOKEN", raising=False)
    with pytest.raises(FBError, match="stage train needs FB_TEST_TOKEN in the environment"):
        check(lab_dir)
    monkeypatch.setenv("FB_TEST_TOKEN", "x")
    assert check(lab_dir) == 1


@pytest.mark.parametrize(("variant", "ablation", "seed", "expected"), [
    ("hidden=64,lr=1e-3,dropout=0.0", None, 1, [1]),  # one of the variant's seeds
    ("hidden=64,lr=1e-3,dropout=0.0", None, 5, [5]),  # a seed the ablation does not list: still that seed
    ("shallow", None, 7, [7]),  # a variant of an ablation without seeds
    ("hidden=64,lr=1e-3,dropout=0.0", None, None, [0, 1]),
    (None, "sweep", 1, [1] * 8),
    (None, "sweep", 9, [9] * 8),  # every variant once, at seed 9
])
def test_the_seed_asked_for_is_the_seed_run(lab_dir: Path, variant: str | None, ablation: str | None,
                                             seed: int | None, expected: list[int]) -> None:
    lab = Lab.find(str(lab_dir))
    variants = select_variants(lab, "digits-mlp", variant, ablation, seed)
    resolved = validate(lab, "digits-mlp", variants=variants, overrides=[], hosts=["local"], seed=seed)
    assert [r.config["seed"] for _, r in resolved] == expected
    if seed == 5:
        assert resolved[0][1].origins["seed"] == "--seed 5"


def test_a_lab_yaml_broken_since_it_was_read_stops_the_launch(lab_dir: Path) -> None:
    """The app read lab.yaml at start; the supervisor a launch starts reads it afresh."""
    lab = Lab.find(str(lab_dir))
    (lab_dir / "lab.yaml").write_text("hosts:\n  local:\n    slots: many\n")
    variants = select_variants(lab, "digits-mlp", None, None, None)
    with pytest.raises(FBError) as e:
        validate(lab, "digits-mlp", variants=variants, overrides=[], hosts=["local"])
    assert str(e.value) == "lab.yaml:3: hosts.local.slots: expected an integer, got 'many'"
