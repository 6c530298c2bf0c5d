"""Lab-wide evaluation suites (#17, part 4) on a real engine, store and git: a suite in common/
scores a digits-mlp run and a digits-cnn run (each in its own image), the leaderboard ranks them,
an `auto:` suite scores a run after it succeeds, and bad suites and runs are refused clearly.

One lab, two trained runs (the digits-cnn example's test is here too), reused by the tests in
order (CI time)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fbtui.lab import Lab
from fbtui.store import Store
from tests.labs import end_lab, make_git_lab
from tests.test_eval_service import Cli, _cli

pytestmark = [pytest.mark.slow, pytest.mark.engine]

SUITES = """\
suites:
  holdout:
    description: digits' test split, one evaluator for every project
    data: {name: digits}
    split: test
    evaluator: {name: classification, ece_bins: 15}
    metrics: [accuracy, loss]
    auto: [digits-cnn]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, docker_host: str) -> Iterator[tuple[Path, Cli]]:
    root = make_git_lab(tmp_path_factory.mktemp("suites") / "lab")
    (root / "common/suites.yaml").write_text(SUITES)
    cli = _cli(root)
    for project in ("digits-mlp", "digits-cnn"):  # run 1, run 2 (scored by itself: auto)
        proc = cli("run", project, "-o", "train.epochs=1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    yield root, cli
    end_lab(root, docker_host)


def test_digits_cnn_really_uses_its_own_model(lab: tuple[Path, Cli]) -> None:
    """The bundled digits-cnn example trains its own model (projects/digits-cnn/model.py)."""
    from fbtui.pipeline.supervisor import run_folder

    root, _ = lab
    with Store(Lab(root).store_path) as s:
        mlp, cnn = s.final_metrics(1), s.final_metrics(2)
        assert s.run(2)["status"] == "succeeded" and s.params(2)["model.name"] == "digits-cnn"
        assert cnn["model/parameters"] != mlp["model/parameters"]
    components = json.loads((run_folder(Lab(root), 2) / "train" / "out" / "components.json").read_text())
    text = json.dumps(components)
    assert "digits-cnn" in text and "project" in text


def _wait_scored(root: Path, run: int, suite: str, n: int = 1, timeout: float = 240) -> list[dict[str, Any]]:
    """The run's evaluations on a suite once there are n (an auto suite is queued after the run)."""
    deadline = time.monotonic() + timeout
    while True:
        with Store(Lab(root).store_path) as s:
            evs = s.evaluations(run, suite)
            hidden = s.query("SELECT status FROM runs WHERE eval_of = ? AND suite = ?", (run, suite))
        if len(evs) >= n:
            return evs
        assert not any(h["status"] in ("failed", "cancelled") for h in hidden), hidden
        assert time.monotonic() < deadline, f"run {run} never scored on {suite}: {hidden}"
        time.sleep(1)


def test_an_auto_suite_scores_a_run_after_it_succeeds(lab: tuple[Path, Cli]) -> None:
    root, cli = lab
    (cnn,) = _wait_scored(root, 2, "holdout")
    assert cnn["made_by_run"] and set(cnn["results"]) >= {"accuracy", "loss"}
    with Store(Lab(root).store_path) as s:
        assert not s.evaluations(1, "holdout")  # digits-mlp is not in auto:
        hidden = s.run(cnn["made_by_run"])
        assert hidden["eval_of"] == 2 and hidden["suite"] == "holdout" and hidden["image"] == s.run(2)["image"]
        assert [st["status"] for st in s.stages(hidden["id"])] == ["succeeded", "cached", "succeeded"]
    # a suite score is not the project's own evaluation: the comparison is untouched
    table = json.loads(cli("compare", "digits-cnn", "--json").stdout)
    assert table["suite"] == "today" and table["rows"][0]["runs"] == [2]
    assert "suite holdout" in cli("show", "2").stdout


def test_a_suite_scores_runs_of_two_projects_and_the_leaderboard_ranks_them(lab: tuple[Path, Cli]) -> None:
    root, cli = lab
    proc = cli("eval", "--suite", "holdout", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run #1: scoring on suite holdout" in proc.stdout
    assert re.search(r"run #1: holdout \w{12}: accuracy", proc.stdout)
    (mlp,) = _wait_scored(root, 1, "holdout")
    (cnn,) = _wait_scored(root, 2, "holdout")
    assert mlp["fingerprint"] == cnn["fingerprint"]  # one suite, whichever project
    assert {p for p in mlp["covers"]["code"]} == {"common/evaluation.py", "common/metrics.py"}
    board = json.loads(cli("leaderboard", "holdout", "--json").stdout)
    assert board["version"] == "today" and board["fingerprint"] == mlp["fingerprint"]
    scores = [(-mlp["results"]["accuracy"], "digits-mlp"), (-cnn["results"]["accuracy"], "digits-cnn")]
    assert [r["project"] for r in board["rows"]] == [p for _, p in sorted(scores)]
    assert [r["rank"] for r in board["rows"]] == [1, 2]
    text = cli("leaderboard", "holdout").stdout
    assert f"suite holdout: today's version {mlp['fingerprint'][:12]}; ranked by accuracy" in text
    listing = cli("leaderboard").stdout
    assert re.search(r"holdout\s+2\s+digits-cnn", listing)
    with Store(Lab(root).store_path) as s:  # no new runs of their own
        assert [r["id"] for r in s.query("SELECT id FROM runs WHERE eval_of IS NULL ORDER BY id")] == [1, 2]
    assert {r["run"] for r in json.loads(cli("ps", "--all", "--json").stdout)} == {1, 2}


def test_a_suite_edited_while_an_evaluation_waits_keeps_the_version_it_started_with(lab: tuple[Path, Cli]) -> None:
    root, cli = lab
    suites = root / "common/suites.yaml"
    proc = cli("eval", "--suite", "holdout", "1", "--detach")
    assert proc.returncode == 0, proc.stderr
    from fbtui.images.plan import project_layer

    before = project_layer(Lab(root), "digits-mlp").tag
    suites.write_text(SUITES.replace("ece_bins: 15", "ece_bins: 10"))  # today's version moves on
    assert project_layer(Lab(root), "digits-mlp").tag == before  # a suite edit rebuilds no image
    _, latest = _wait_scored(root, 1, "holdout", n=2)
    assert latest["covers"]["config"]["eval"]["ece_bins"] == 15  # the version it was queued under
    board = json.loads(cli("leaderboard", "holdout", "--json").stdout)
    assert board["version"] == "none" and not board["rows"] and sorted(board["stale"]) == [1, 2]
    assert all("config eval.ece_bins" in x["differs"] for x in board["set_apart"])
    assert "fbtui eval --suite holdout 1 2 scores them on today's version" in cli("leaderboard", "holdout").stdout
    older = cli("leaderboard", "holdout", "--fingerprint", latest["fingerprint"][:10], "--json")
    assert json.loads(older.stdout)["version"] == "pinned" and len(json.loads(older.stdout)["rows"]) == 2
    suites.write_text(SUITES)


def test_bad_suites_and_runs_are_refused_in_one_line(lab: tuple[Path, Cli]) -> None:
    root, cli = lab
    suites = root / "common/suites.yaml"

    def refused(*args: str) -> str:
        proc = cli(*args)
        assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
        return proc.stderr.strip()

    assert "no evaluation suite 'holdut'; did you mean 'holdout'?" in refused("eval", "--suite", "holdut", "1")
    assert "no evaluation suite 'nope'" in refused("leaderboard", "nope")
    try:
        suites.write_text(SUITES.replace("data: {name: digits}", "data: {name: digitz}"))
        err = refused("eval", "--suite", "holdout", "1")
        assert "common/suites.yaml:4: suites.holdout.data.name: unknown dataset 'digitz' (registered: " in err
        suites.write_text(SUITES.replace("{name: classification,", "{name: clasification,"))
        err = refused("leaderboard", "holdout")
        assert "common/suites.yaml:6: suites.holdout.evaluator.name: unknown evaluator 'clasification'" in err
    finally:
        suites.write_text(SUITES)
    with Store(Lab(root).store_path) as s:
        image, out = s.run(1)["image"], s.stage(1, "train")["out"]
        s.update_run(1, image="fb/proj-digits-mlp:gone")
    try:
        err = refused("eval", "--suite", "holdout", "1")
        assert "run 1: its image fb/proj-digits-mlp:gone is gone from host local" in err
        assert "fbtui rerun 1" in err
    finally:
        with Store(Lab(root).store_path) as s:
            s.update_run(1, image=image)
    model = Path(out) / "model.pt"
    model.rename(model.with_suffix(".kept"))
    try:
        assert "run 1: train/model.pt is gone from" in refused("eval", "--suite", "holdout", "1")
    finally:
        model.with_suffix(".kept").rename(model)
    with Store(Lab(root).store_path) as s:
        hidden = s.query("SELECT id FROM runs WHERE eval_of = 1 LIMIT 1")[0]["id"]
    assert f"run {hidden} evaluates run 1: score run 1 instead" in refused("eval", "--suite", "holdout", str(hidden))
