"""Today's evaluation suite is the reference (#17, parts 1, 2 and 5) on a real engine, store and git.

One lab and one ablation run (digits-mlp, depth: two runs) serve every test, in order: each test
changes what the working tree's suite is (evaluation code, eval config, data config) and checks
that compare, show and `fbtui eval --stale` agree on which runs are under it.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.labs import end_lab, make_git_lab

pytestmark = [pytest.mark.slow, pytest.mark.engine]

STALE = "fbtui eval --stale digits-mlp --ablation depth"
Cli = Callable[..., subprocess.CompletedProcess[str]]


def _cli(root: Path) -> Cli:
    """The real CLI entry point, in this process, inside the lab (the `fbtui` fixture is per test)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        from fbtui.cli import main

        with pytest.MonkeyPatch.context() as m:
            m.chdir(root)
            m.delenv("FB_LAB", raising=False)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(list(args))
                except SystemExit as e:  # argparse's usage errors
                    rc = int(e.code or 0)
        return subprocess.CompletedProcess(["fbtui", *args], rc, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, docker_host: str) -> Iterator[tuple[Path, Cli, dict[str, Any]]]:
    """The lab, its CLI, and what the tests learn on the way (the original runs, old fingerprints)."""
    root = make_git_lab(tmp_path_factory.mktemp("evalsvc") / "lab")
    cli = _cli(root)
    proc = cli("run", "digits-mlp", "--ablation", "depth", "-o", "train.epochs=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield root, cli, {}
    end_lab(root, docker_host)


def compare(cli: Cli, *extra: str) -> dict[str, Any]:
    proc = cli("compare", "digits-mlp", "--ablation", "depth", "--json", *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def store(root: Path) -> Store:
    return Store(Lab(root).store_path)


def evaluations(root: Path) -> list[dict[str, Any]]:
    with store(root) as s:
        return s.query("SELECT run_id, fingerprint, made_by_run FROM evaluations ORDER BY id")


def run_ids(root: Path) -> list[int]:
    with store(root) as s:
        return [r["id"] for r in s.query("SELECT id FROM runs ORDER BY id")]


def row_runs(table: dict[str, Any]) -> list[int]:
    return sorted(i for r in table["rows"] for i in r["runs"])


def edit_config(root: Path, line: str) -> None:
    """Add a line under `config:` in digits-mlp's project.yaml."""
    y = root / "projects/digits-mlp/project.yaml"
    text = y.read_text()
    assert "\nconfig:\n" in text
    y.write_text(text.replace("\nconfig:\n", f"\nconfig:\n  {line}\n", 1))


def stale_again(root: Path, cli: Cli, state: dict[str, Any]) -> dict[str, Any]:
    """`--stale` re-evaluates both runs; compare then shows them under today's suite, no new rows."""
    proc = cli("eval", "--stale", "digits-mlp", "--ablation", "depth")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for src in state["runs"]:
        assert f"run #{src}: evaluating again under today's suite" in proc.stdout, proc.stdout
    t = compare(cli)
    assert t["suite"] == "today" and t["stale"] == [] and t["set_apart"] == [], t["notes"]
    assert row_runs(t) == state["runs"]
    return t


# ------------------------------------------------------------------ the tests, in order


def test_a_fresh_ablation_is_under_todays_suite(lab: tuple[Path, Cli, dict[str, Any]]) -> None:
    root, cli, state = lab
    with store(root) as s:
        runs = s.query("SELECT id, status FROM runs ORDER BY id")
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"], runs
    state["runs"] = [r["id"] for r in runs]
    t = compare(cli)
    assert t["suite"] == "today" and t["set_apart"] == [] and t["stale"] == []
    assert row_runs(t) == state["runs"] and t["fingerprint"]
    state["fp0"] = t["fingerprint"]
    evs = evaluations(root)
    assert sorted(e["run_id"] for e in evs) == state["runs"] and all(e["made_by_run"] is None for e in evs)


def test_changed_evaluation_code_makes_every_run_stale(lab: tuple[Path, Cli, dict[str, Any]]) -> None:
    root, cli, state = lab
    with (root / "common/metrics.py").open("a") as f:
        f.write("# an edit to the evaluation code\n")
    t = compare(cli)
    assert t["suite"] == "none" and t["rows"] == [] and t["fingerprint"] is None
    assert t["stale"] == state["runs"]
    assert sorted(x["run"] for x in t["set_apart"]) == state["runs"]
    for x in t["set_apart"]:
        assert x["why"] == "suite" and "code common/metrics.py" in x["differs"], x
    proc = cli("compare", "digits-mlp", "--ablation", "depth")
    assert proc.returncode == 0, proc.stderr
    assert f"{STALE} brings 2 stale runs up to today's suite" in proc.stdout, proc.stdout
    assert "no run of digits-mlp in ablation depth is evaluated under today's suite yet" in proc.stdout
    assert f"--suite FP shows them under an older suite ({state['fp0'][:12]})" in proc.stdout
    proc = cli("show", str(state["runs"][0]))
    assert proc.returncode == 0, proc.stderr
    assert ": not today's suite" in proc.stdout and "code common/metrics.py" in proc.stdout
    assert "code   common/metrics.py" in proc.stdout  # what the latest evaluation covers


def test_eval_stale_brings_the_runs_up_to_todays_suite(lab: tuple[Path, Cli, dict[str, Any]]) -> None:
    root, cli, state = lab
    before = run_ids(root)
    t = stale_again(root, cli, state)
    assert t["fingerprint"] != state["fp0"]
    state["fp1"] = t["fingerprint"]
    reevals = [i for i in run_ids(root) if i not in before]
    assert len(reevals) == 2
    with store(root) as s:
        of = {i: s.run(i)["eval_of"] for i in reevals}
        assert sorted(of.values()) == state["runs"]
        assert all(s.run(i)["status"] == "succeeded" for i in reevals)
        for i in reevals:  # the model is the source run's; prepare and evaluate are today's
            stages = {st["name"]: st["status"] for st in s.stages(i)}
            assert stages["train"] == "cached" and stages["evaluate"] == "succeeded", stages
    # each run is credited its re-evaluation's (which keeps its own copy: a later cache hit reuses it)
    new = [e for e in evaluations(root)[2:] if e["run_id"] in state["runs"]]
    assert sorted((e["run_id"], e["made_by_run"]) for e in new) == sorted((src, i) for i, src in of.items())
    assert all(e["fingerprint"] == state["fp1"] for e in new)
    proc = cli("ps", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["run"] for r in json.loads(proc.stdout)) == state["runs"]
    proc = cli("show", str(state["runs"][0]))
    assert proc.returncode == 0, proc.stderr
    made_by = next(e["made_by_run"] for e in new if e["run_id"] == state["runs"][0])
    assert f"by re-evaluation #{made_by}): today's suite" in proc.stdout, proc.stdout
    assert "not today's suite" not in proc.stdout
    # the suite they had before is still there to see, on purpose, with its own numbers
    old = compare(cli, "--suite", state["fp0"][:10])
    assert old["suite"] == "pinned" and old["fingerprint"] == state["fp0"] and row_runs(old) == state["runs"]


def test_a_second_eval_stale_queues_nothing(lab: tuple[Path, Cli, dict[str, Any]]) -> None:
    root, cli, _ = lab
    before, evs = run_ids(root), len(evaluations(root))
    proc = cli("eval", "--stale", "digits-mlp")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "digits-mlp: nothing stale" in proc.stdout and "evaluating again" not in proc.stdout
    assert run_ids(root) == before and len(evaluations(root)) == evs


def test_the_same_model_under_the_same_suite_is_reused(lab: tuple[Path, Cli, dict[str, Any]]) -> None:
    root, cli, state = lab
    first = state["runs"][0]
    before, evs = run_ids(root), evaluations(root)
    proc = cli("eval", str(first))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (reeval,) = [i for i in run_ids(root) if i not in before]
    with store(root) as s:
        assert s.run(reeval)["eval_of"] == first
        assert s.stage(reeval, "evaluate")["status"] == "cached"
    (new,) = [e for e in evaluations(root)[len(evs):] if e["run_id"] == first]
    assert new == {"run_id": first, "fingerprint": state["fp1"], "made_by_run": reeval}
    assert compare(cli)["suite"] == "today"


def test_changed_eval_config_sets_the_runs_apart_until_re_evaluated(lab: tuple[Path, Cli, dict[str, Any]]) -> None:
    root, cli, state = lab
    edit_config(root, "eval: {ece_bins: 10}")
    t = compare(cli)
    assert t["suite"] == "none" and t["rows"] == [] and t["stale"] == state["runs"]
    for x in t["set_apart"]:
        assert "config eval.ece_bins" in x["differs"] and "code" not in x["differs"], x
    pinned = compare(cli, "--suite", state["fp1"][:8])  # the older suite, on purpose
    assert pinned["suite"] == "pinned" and pinned["fingerprint"] == state["fp1"]
    assert row_runs(pinned) == state["runs"] and pinned["set_apart"] == []
    t = stale_again(root, cli, state)
    assert t["fingerprint"] not in (state["fp0"], state["fp1"])
    state["fp2"] = t["fingerprint"]


def test_changed_data_config_sets_the_runs_apart_until_re_evaluated(lab: tuple[Path, Cli, dict[str, Any]]) -> None:
    root, cli, state = lab
    edit_config(root, "data: {split_seed: 1}")
    t = compare(cli)
    assert t["suite"] == "none" and t["rows"] == [] and t["stale"] == state["runs"]
    for x in t["set_apart"]:
        assert "data (config data.split_seed; today's not prepared yet)" in x["differs"], x
    before = run_ids(root)
    t = stale_again(root, cli, state)  # the re-evaluation prepares today's data
    assert t["fingerprint"] not in (state["fp0"], state["fp1"], state["fp2"])
    with store(root) as s:  # today's data is prepared once, by one of them; the models are the runs'
        new = [i for i in run_ids(root) if i not in before]
        assert all(s.stage(i, "train")["status"] == "cached" for i in new)
        prepares = [s.stage(i, "prepare") for i in new]
        assert "succeeded" in [p["status"] for p in prepares]
        made = {p["id"] for p in prepares if p["status"] == "succeeded"}
        assert all(p["cached_from"] in made for p in prepares if p["status"] == "cached"), prepares


def test_back_to_the_first_suite_reuses_the_first_evaluation(lab: tuple[Path, Cli, dict[str, Any]]) -> None:
    root, cli, state = lab
    subprocess.run(["git", "-C", str(root), "checkout", "-q", "--", "common/metrics.py",
                    "projects/digits-mlp/project.yaml"], check=True)
    assert compare(cli)["stale"] == state["runs"]
    before = run_ids(root)
    t = stale_again(root, cli, state)
    assert t["fingerprint"] == state["fp0"]  # the first evaluation's suite is today's again
    with store(root) as s:
        for i in (i for i in run_ids(root) if i not in before):  # the same model under the same suite
            assert s.stage(i, "evaluate")["status"] == "cached", s.stages(i)
        for src in state["runs"]:
            assert s.evaluations(src)[-1]["fingerprint"] == state["fp0"]


@pytest.mark.parametrize(("args", "rc", "line"), [
    (("eval",), 2, "give run numbers, or --stale [PROJECT] [--ablation A]"),
    (("eval", "1", "--stale"), 2, "give run numbers or --stale, not both"),
    (("eval", "--stale", "nosuchproject"), 1, "nosuchproject"),
    (("eval", "--stale", "digits-mlp", "--ablation", "nosuch"), 2,
     "no runs of ablation 'nosuch' of project digits-mlp"),
    (("compare", "digits-mlp", "--suite", "ffff"), 2, "--suite ffff: no run has that suite (suites: "),
])
def test_bad_input_is_one_clear_line(lab: tuple[Path, Cli, dict[str, Any]], args: tuple[str, ...], rc: int,
                                     line: str) -> None:
    root, cli, _ = lab
    if args[-1] == "ffff":
        assert not any(e["fingerprint"].startswith("ffff") for e in evaluations(root))
    before = run_ids(root)
    proc = cli(*args)
    assert proc.returncode == rc, proc.stdout + proc.stderr
    assert proc.stderr.startswith("fbtui: error: ") and line in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and run_ids(root) == before
