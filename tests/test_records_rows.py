"""The comparison's grouping rules, one test each, over a real SQLite store: a row is one config
(seed aside), one code state and one evaluation suite; each seed counts once; partial rows say so."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from fbtui.gitstate import GitState
from fbtui.records.export import export
from fbtui.records.rows import ablation_table
from fbtui.store import Store

BASE = {"model": {"hidden": 64, "depth": 2}, "train": {"epochs": 10}}


class Lab:
    """Runs recorded as a launch would record them, without containers."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.state = self.commit("a" * 40)
        self.t = 1000.0

    def commit(self, sha: str, diff: str = "") -> int:
        return self.store.record_commit(GitState(is_repo=True, sha=sha, branch="main", dirty=bool(diff), diff=diff))

    def run(self, variant: str | None = "v", seed: int = 0, acc: float = 0.9, *, fp: str = "fp1",
            status: str = "succeeded", overrides: dict[str, Any] | None = None, config: dict[str, Any] | None = None,
            commit_id: int | None = None, ablation: str | None = "a", eval_of: int | None = None) -> int:
        from fbtui.config.resolve import flatten

        cfg = yaml.safe_load(yaml.safe_dump(config or BASE))
        for k, v in (overrides or {}).items():
            section, key = k.split(".")
            cfg[section][key] = v
        cfg["seed"] = seed
        rid = self.store.create_run("p", config=yaml.safe_dump(cfg), params=flatten(cfg), stages=["evaluate"],
                                    ablation=ablation, variant=variant, seed=seed,
                                    commit_id=commit_id or self.state,
                                    overrides=[f"{k}={v}" for k, v in (overrides or {}).items()])
        self.t += 10
        self.store.update_run(rid, status=status, finished_at=self.t, eval_of=eval_of)
        if status == "succeeded":
            self.store.add_metrics(rid, [("eval/accuracy", 0, acc, self.t)], stage="evaluate")
            self.store.add_evaluation(rid, "evaluate", fp, {"accuracy": acc})
        return rid


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = Lab(tmp_path / "fb.db")
    yield lab
    lab.store.close()


def test_a_seed_run_twice_is_one_sample_the_latest(lab: Lab) -> None:
    first = lab.run(seed=0, acc=0.80)
    second = lab.run(seed=0, acc=0.90)  # a cache copy or --no-cache rerun of the same seed
    t = ablation_table(lab.store, "p", "a")
    (row,) = t.rows
    assert row.runs == [second] and row.seeds == [0] and row.repeats == {"0": [first]}
    assert row.metrics["eval/accuracy"].n == 1 and row.metrics["eval/accuracy"].mean == pytest.approx(0.90)
    assert any("repeated run of a seed" in n and f"#{first}" in n for n in t.notes())


def test_two_seeds_make_mean_and_std(lab: Lab) -> None:
    lab.run(seed=0, acc=0.80)
    lab.run(seed=1, acc=0.90)
    (row,) = ablation_table(lab.store, "p", "a").rows
    assert row.seeds == [0, 1] and row.metrics["eval/accuracy"].mean == pytest.approx(0.85)
    assert row.metrics["eval/accuracy"].std == pytest.approx(0.0707106, rel=1e-5)


def test_an_override_is_its_own_row_named_by_what_differs(lab: Lab) -> None:
    plain = lab.run(seed=0, acc=0.80)
    longer = lab.run(seed=0, acc=0.99, overrides={"train.epochs": 100})
    t = ablation_table(lab.store, "p", "a")
    names = {r.name: r.runs for r in t.rows}
    assert names == {"v": [plain], "v + train.epochs=100": [longer]}
    assert t.row("v + train.epochs=100").params["train.epochs"] == 100  # type: ignore[union-attr]
    assert t.row("v").params["train.epochs"] == 10  # type: ignore[union-attr]


def test_an_override_without_a_plain_run_is_named_by_its_overrides(lab: Lab) -> None:
    lab.run(seed=0, overrides={"model.hidden": 512})
    (row,) = ablation_table(lab.store, "p", "a").rows
    assert row.name == "v + model.hidden=512"


def test_an_edited_project_config_splits_rows_without_overrides(lab: Lab) -> None:
    old = lab.run(seed=0, config={**BASE, "train": {"epochs": 5}})
    new = lab.run(seed=0)
    t = ablation_table(lab.store, "p", "a")
    assert {r.name: r.runs for r in t.rows} == {"v": [new], "v + train.epochs=5": [old]}


def test_a_commit_in_between_sets_older_code_apart(lab: Lab) -> None:
    old = lab.run(seed=0, acc=0.5)
    lab.state = lab.commit("b" * 40)
    new = lab.run(seed=0, acc=0.9)
    t = ablation_table(lab.store, "p", "a")
    assert [r.runs for r in t.rows] == [[new]] and t.code == "b" * 10
    assert [(x.run, x.why) for x in t.set_apart] == [(old, "code")]
    assert any("older code" in n and "aaaaaaaaaa ×1" in n for n in t.notes())
    every = ablation_table(lab.store, "p", "a", all_code=True)
    assert {r.name: r.runs for r in every.rows} == {"v @aaaaaaaaaa": [old], "v": [new]}


def test_a_dirty_diff_is_another_code_state(lab: Lab) -> None:
    lab.run(seed=0)
    lab.state = lab.commit("a" * 40, diff="+x = 1\n")
    dirty = lab.run(seed=1)
    t = ablation_table(lab.store, "p", "a")
    assert [r.runs for r in t.rows] == [[dirty]] and t.code.startswith("aaaaaaaaaa-dirty:")  # type: ignore[union-attr]


def test_a_missing_seed_makes_a_partial_row_never_starred(lab: Lab) -> None:
    lab.run("good", seed=0, acc=0.80)
    lab.run("good", seed=1, acc=0.82)
    lab.run("lucky", seed=0, acc=0.99)
    failed = lab.run("lucky", seed=1, status="failed")
    t = ablation_table(lab.store, "p", "a")
    lucky = t.row("lucky")
    assert lucky is not None and lucky.partial and lucky.seeds_text == "1/2" and lucky.missing == [1]
    assert t.best["eval/accuracy"] == "good"
    assert t.unfinished == {"failed": 1} and failed not in lucky.runs
    assert ablation_table(lab.store, "p", "a", star_partial=True).best["eval/accuracy"] == "lucky"
    md = export(t, "markdown")
    assert "| lucky † | 1/2 |" in md and "**0.8100 ± 0.0141**" in md and "lucky lacks seed 1" in md


def test_another_evaluation_suite_is_set_apart(lab: Lab) -> None:
    a = lab.run(seed=0, fp="fp1")
    lab.run(seed=1, fp="fp1")
    other = lab.run(seed=2, fp="fp2")
    t = ablation_table(lab.store, "p", "a")
    assert t.fingerprint == "fp1" and a in t.rows[0].runs and other not in t.rows[0].runs
    assert [(x.run, x.why) for x in t.set_apart] == [(other, "suite")]
    assert any(f"fbtui eval {other}" in n for n in t.notes())


def test_a_reevaluation_run_is_not_a_sample(lab: Lab) -> None:
    src = lab.run(seed=0, acc=0.8)
    lab.run(seed=0, acc=0.8, eval_of=src)
    (row,) = ablation_table(lab.store, "p", "a").rows
    assert row.runs == [src] and not row.repeats


def test_rows_of_different_variants_keep_their_names_and_deltas(lab: Lab) -> None:
    lab.run("base", seed=0, acc=0.80)
    lab.run("wide", seed=0, acc=0.85, config={**BASE, "model": {"hidden": 256, "depth": 2}})
    t = ablation_table(lab.store, "p", "a", baseline="base")
    assert [r.name for r in t.rows] == ["base", "wide"]  # a variant's own overrides are not "extra"
    assert t.row("wide").delta["eval/accuracy"] == pytest.approx(0.05)  # type: ignore[union-attr]


GOLDEN = Path(__file__).parent / "golden"


def golden_table(lab: Lab) -> Any:
    for seed, acc in ((0, 0.9012), (1, 0.9034)):
        lab.run("hidden=64", seed=seed, acc=acc)
    for seed, acc in ((0, 0.9311), (1, 0.9377)):
        lab.run("hidden=256", seed=seed, acc=acc, config={**BASE, "model": {"hidden": 256, "depth": 2}})
    lab.run("hidden=1024_x", seed=0, acc=0.95, config={**BASE, "model": {"hidden": 1024, "depth": 2}})
    lab.run("hidden=1024_x", seed=1, status="failed", config={**BASE, "model": {"hidden": 1024, "depth": 2}})
    return ablation_table(lab.store, "p", "a", baseline="hidden=64")


@pytest.mark.parametrize("fmt,suffix", [("csv", "csv"), ("markdown", "md"), ("latex", "tex"), ("json", "json")])
def test_exports_match_their_golden_files(lab: Lab, fmt: str, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import fbtui

    monkeypatch.setattr(fbtui, "__version__", "0.0.0-test")
    text = export(golden_table(lab), fmt)
    path = GOLDEN / f"compare.{suffix}"
    if os.environ.get("FB_UPDATE_GOLDEN"):  # FB_UPDATE_GOLDEN=1 rewrites them: read the diff, then commit
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()
    if fmt == "latex":
        assert r"\textbf{0.9344 $\pm$ 0.0047}" in text and r"hidden=1024\_x$^\dagger$" in text
    if fmt == "csv":
        import csv

        rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
        assert rows[1]["best"] == "eval/accuracy" and rows[2]["partial"] == "yes"


def test_a_rerun_of_older_code_does_not_take_the_table_over(lab: Lab) -> None:
    old_state = lab.state
    lab.run(seed=0, acc=0.5)
    lab.state = lab.commit("b" * 40)
    new = lab.run(seed=0, acc=0.9)
    lab.state = old_state
    rerun = lab.run(seed=0, acc=0.5)  # `fbtui rerun` of the first run: its (older) code state again
    t = ablation_table(lab.store, "p", "a")
    assert [r.runs for r in t.rows] == [[new]] and rerun in {x.run for x in t.set_apart}


def test_seeds_launched_out_of_order_are_shown_in_seed_order(lab: Lab) -> None:
    late = {s: lab.run(seed=s, acc=0.8 + s / 100) for s in (2, 0)}  # the grouping's fast path expects order
    late[1] = lab.run(seed=1, acc=0.81)
    lab.run(variant="w", seed=1, acc=0.7)
    lab.run(variant="w", seed=0, acc=0.6)
    v, w = ablation_table(lab.store, "p", "a").rows
    assert v.seeds == [0, 1, 2] and v.runs == [late[0], late[1], late[2]] and v.expected == [0, 1, 2]
    assert not v.partial and v.seeds_text == "3/3" and v.metrics["eval/accuracy"].n == 3
    assert w.seeds == [0, 1] and w.metrics["eval/accuracy"].mean == pytest.approx(0.65)


@pytest.mark.parametrize("a, b", [(0.1, 0.2), (0.9123456789, 0.9123456788), (-0.0, -0.0), (1e300, 1e300), (3, 0.5)])
def test_two_seeds_stat_is_the_general_formulas_float(a: float, b: float) -> None:
    """The grouping inlines the usual two-seed mean ± std: bit for bit what _stat gives."""
    from fbtui.records.rows import _group, _stat

    runs = [{"ablation": "a", "variant": "v", "state_hash": "s", "config_hash": "c", "fingerprint": "f", "seed": s,
             "run": s + 1, "metrics": {"m": y}, "params": {}, "overrides": [], "sha": "a" * 40, "dirty": False,
             "finished_at": 1.0} for s, y in ((0, a), (1, b))]
    (row,) = _group(runs, [], [], ["m"], {})
    got, want = row.metrics["m"], _stat([a, b])
    assert (got.mean, got.std, got.n) == (want.mean, want.std, want.n) and str(got.mean) == str(want.mean)


def test_two_seed_stats_are_the_general_formula_even_with_a_metric_missing() -> None:
    """_group's path for the usual two seeds gives _stat's floats, and one value where one seed lacks it."""
    import random

    from fbtui.records.rows import _group, _stat

    rnd = random.Random(7)
    kept = []
    for i in range(200):
        for seed in (0, 1):
            m = {"a": rnd.uniform(-1e3, 1e3), "b": rnd.random() * 10 ** rnd.randint(-8, 8)}
            if i % 7 == 0 and seed == 1:
                m["b"] = None  # this seed never logged b
            kept.append({"run": 2 * i + seed, "ablation": "x", "variant": f"v{i}", "seed": seed, "state_hash": "s",
                         "config_hash": f"c{i}", "fingerprint": "f", "metrics": m, "params": {}, "overrides": [],
                         "sha": "0" * 40, "dirty": False, "finished_at": 1.0})
    rows = _group(kept, [], [], ["a", "b"], {})
    for i, row in enumerate(rows):
        pair = kept[2 * i:2 * i + 2]
        for k in ("a", "b"):
            values = [r["metrics"][k] for r in pair if r["metrics"][k] is not None]
            assert row.metrics[k] == _stat(values), (i, k)  # the same floats, not merely close
