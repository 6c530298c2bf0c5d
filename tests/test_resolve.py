"""Resolution order, merging, grids, seeds, variant names and origins, on the real example lab."""

from __future__ import annotations

import json

import pytest
import yaml

from fbtui.config.resolve import expand, find_variant, format_value, resolve
from fbtui.errors import UsageError
from fbtui.lab import Lab


def test_resolution_order_defaults_project_variant_override(lab_dir):  # type: ignore[no-untyped-def]
    lab = Lab(lab_dir)
    project = lab.project("digits-mlp")
    variant = find_variant(lab, project, "hidden=64,lr=1e-3,dropout=0.2")[1]
    r = resolve(lab, project, variant, ["optim.lr=5e-4"])
    c = r.config
    assert c["data"]["batch_size"] == 64  # common/defaults.yaml
    assert c["train"]["epochs"] == 30  # the project
    assert c["model"]["hidden"] == 64 and c["model"]["dropout"] == 0.2  # the variant
    assert c["optim"]["lr"] == 5e-4  # the override beats the variant
    assert c["seed"] == 1  # the variant's second seed
    assert r.origins["data.batch_size"] == "common/defaults.yaml:9"
    assert r.origins["train.epochs"] == "projects/digits-mlp/project.yaml:11"
    assert r.origins["model.hidden"].startswith("projects/digits-mlp/project.yaml:17 (ablation sweep")
    assert r.origins["optim.lr"] == "-o optim.lr=5e-4"
    assert r.origins["seed"].startswith("projects/digits-mlp/project.yaml:20")
    # Every leaf has an origin, and no origin names a key that is not a leaf.
    assert set(r.origins) == set(r.flat())


def test_mappings_merge_lists_and_scalars_replace(write, lab_dir):  # type: ignore[no-untyped-def]
    write("common/defaults.yaml", """
        seed: 0
        model: {name: mlp, hidden: 8, layers: [1, 2, 3], extra: {a: 1, b: 2}}
    """)
    write("common/limits.yaml", "{}\n")  # the bundled limits name keys these defaults lack
    write("projects/p/project.yaml", """
        config:
          model:
            layers: [9]
            extra: {b: 5}
          new_key: {x: 1}
    """)
    lab = Lab(lab_dir)
    r = resolve(lab, lab.project("p"), None, ["model.extra={c: 3}"])
    assert r.config["model"] == {"name": "mlp", "hidden": 8, "layers": [9], "extra": {"a": 1, "b": 5, "c": 3}}
    assert r.config["new_key"] == {"x": 1}  # config: is free-form: keys the defaults lack are fine
    assert r.origins["model.extra.c"] == "-o model.extra={c: 3}"
    assert r.origins["model.layers"] == "projects/p/project.yaml:3"


def test_dotted_keys_in_project_config(write, lab_dir):  # type: ignore[no-untyped-def]
    write("projects/p/project.yaml", "config:\n  model.hidden: 32\n")
    lab = Lab(lab_dir)
    r = resolve(lab, lab.project("p"))
    assert r.config["model"]["hidden"] == 32
    assert r.config["model"]["name"] == "mlp"


def test_grid_is_a_cartesian_product_repeated_per_seed(lab_dir):  # type: ignore[no-untyped-def]
    lab = Lab(lab_dir)
    runs = expand(lab, lab.project("digits-mlp"), "sweep")
    assert len(runs) == 2 * 2 * 2 * 2
    names = [v.name for v in runs]
    assert names[0] == "hidden=64,lr=1e-3,dropout=0.0"
    assert names[-1] == "hidden=256,lr=3e-3,dropout=0.2"
    assert [v.seed for v in runs[:4]] == [0, 1, 0, 1]
    assert len(set(names)) == 8
    assert runs[0].overrides == {"model.hidden": 64, "optim.lr": 1e-3, "model.dropout": 0.0}


def test_named_variants_and_grid_together(write, lab_dir):  # type: ignore[no-untyped-def]
    write("projects/p/project.yaml", """
        ablations:
          mix:
            variants:
              wide: {model.hidden: 512}
            grid:
              model.depth: [1, 3]
              data.batch_size: [32]
    """)
    lab = Lab(lab_dir)
    assert [v.label for v in expand(lab, lab.project("p"), "mix")] == ["wide", "depth=1,batch_size=32",
                                                                         "depth=3,batch_size=32"]


def test_variant_names_are_stable_and_readable(write, lab_dir):  # type: ignore[no-untyped-def]
    write("projects/p/project.yaml", """
        ablations:
          a:
            grid:
              model.dropout: [0.1]
              train.grad_clip: [1.0]
              optim.lr: [3.0e-4, 0.5, 1.0e-5]
    """)
    lab = Lab(lab_dir)
    names = [v.name for v in expand(lab, lab.project("p"), "a")]
    assert names == ["dropout=0.1,grad_clip=1.0,lr=3e-4", "dropout=0.1,grad_clip=1.0,lr=0.5",
                     "dropout=0.1,grad_clip=1.0,lr=1e-5"]
    # Same last component in two keys: the full dotted key keeps the names apart.
    write("projects/q/project.yaml", """
        config: {data: {dropout: 0.0}}
        ablations:
          a:
            grid: {model.dropout: [0.1], data.dropout: [0.2]}
    """)
    assert [v.name for v in expand(Lab(lab_dir), Lab(lab_dir).project("q"), "a")] == [
        "model.dropout=0.1,data.dropout=0.2"]


@pytest.mark.parametrize(("value", "text"), [(3e-4, "3e-4"), (1e-3, "1e-3"), (0.5, "0.5"), (256, "256"),
                                             (0.0, "0.0"), (True, "true"), (1234.5, "1234.5"), ("adam", "adam")])
def test_format_value(value, text):  # type: ignore[no-untyped-def]
    assert format_value(value) == text


def test_yaml_floats_without_a_dot_are_numbers(write, lab_dir):  # type: ignore[no-untyped-def]
    write("projects/p/project.yaml", "config:\n  optim: {lr: 3e-4}\n")
    lab = Lab(lab_dir)
    assert resolve(lab, lab.project("p"), None, ["optim.weight_decay=1e-5"]).config["optim"] == {
        "name": "adam", "lr": 3e-4, "weight_decay": 1e-5}


def test_unknown_and_ambiguous_variants(write, lab_dir):  # type: ignore[no-untyped-def]
    write("projects/p/project.yaml", """
        ablations:
          one: {variants: {wide: {model.hidden: 512}}}
          two: {variants: {wide: {model.hidden: 1024}}}
    """)
    lab = Lab(lab_dir)
    project = lab.project("p")
    with pytest.raises(UsageError, match="in several ablations"):
        find_variant(lab, project, "wide")
    assert find_variant(lab, project, "wide", "two")[0].overrides == {"model.hidden": 1024}
    with pytest.raises(UsageError, match="did you mean 'wide'"):
        find_variant(lab, project, "wid")


def test_cli_config_prints_yaml_with_origins_that_round_trips(fbtui):  # type: ignore[no-untyped-def]
    proc = fbtui("config", "digits-mlp", "-o", "model.hidden=512")
    assert proc.returncode == 0, proc.stderr
    assert "hidden: 512" in proc.stdout and "# -o model.hidden=512" in proc.stdout
    as_json = json.loads(fbtui("config", "digits-mlp", "-o", "model.hidden=512", "--json").stdout)
    assert yaml.safe_load(proc.stdout) == as_json["config"]
    assert as_json["origins"]["model.hidden"] == "-o model.hidden=512"


def test_cli_variants_lists_every_run(fbtui):  # type: ignore[no-untyped-def]
    proc = fbtui("variants", "digits-mlp", "--ablation", "sweep", "--json")
    rows = json.loads(proc.stdout)
    assert len(rows) == 8 and all(r["seeds"] == [0, 1] for r in rows)
    assert "10 variants, 18 runs" in fbtui("variants", "digits-mlp").stdout
