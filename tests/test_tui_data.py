"""A lab with runs made through the Store API (no engine): deterministic data for the app's tests."""

from __future__ import annotations

import json
from pathlib import Path

from fbtui.lab import Lab
from fbtui.store import Store
from fbtui.tui import data

T0 = 1_760_000_000.0  # fixed times: durations and ages do not move between runs of a test
FIXED_CLOCK = T0 + 3600


def spool(lab: Lab, run_id: int, stage: str, lines: list[str], t: float = T0) -> Path:
    from fbtui.pipeline.supervisor import run_folder

    path = run_folder(lab, run_id) / f"{stage}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for i, line in enumerate(lines):
            f.write(f"2025-10-09T08:{int(i // 60) % 60:02d}:{i % 60:02d}.000000000Z {line}\n")
    return path


def make_run(store: Store, lab: Lab, *, project: str = "digits-mlp", variant: str | None = None,
             ablation: str | None = None, seed: int | None = 0, status: str = "succeeded",
             params: dict[str, object] | None = None, acc: float = 0.95, fingerprint: str = "f" * 64,
             curve: int = 20, offset: float = 0.0, log: list[str] | None = None) -> int:
    stages = ["prepare", "train", "evaluate"]
    rid = store.create_run(project, config="{}", params={"seed": seed, **(params or {})}, stages=stages,
                           ablation=ablation, variant=variant, seed=seed, host="local")
    store.update_run(rid, requested_host="local", created_at=T0 + offset)
    store.set_run_status(rid, "queued")
    store.set_run_status(rid, "running", started_at=T0 + offset)
    for i, st in enumerate(stages):
        if status == "running" and st == "evaluate":
            break
        store.set_stage_status(rid, st, "running", started_at=T0 + offset + 10 * i)
        if status == "running" and st == "train":
            break
        final = "failed" if status == "failed" and st == "evaluate" else "succeeded"
        store.set_stage_status(rid, st, final, "exit code 1" if final == "failed" else None,
                               finished_at=T0 + offset + 10 * i + 7.5)
    store.add_metrics(rid, [("train/loss", s, 2.0 / (s + 1) + (1 - acc), T0 + s) for s in range(curve)], "train")
    store.add_metrics(rid, [("val/accuracy", s, acc * (1 - 0.5 / (s + 1)), T0 + s) for s in range(curve)], "train")
    if status != "running":
        if status == "succeeded":
            store.add_metrics(rid, [("eval/accuracy", 0, acc, T0), ("eval/loss", 0, 1 - acc, T0)], "evaluate")
            store.add_evaluation(rid, "evaluate", fingerprint, {"accuracy": acc, "loss": 1 - acc})
        store.set_run_status(rid, status, "stage evaluate failed: exit code 1" if status == "failed" else None,
                             finished_at=T0 + offset + 30)
    spool(lab, rid, "train", log if log is not None else [f"epoch {i}: loss {2.0 / (i + 1):.4f}" for i in range(5)])
    spool(lab, rid, "evaluate", [f"evaluate: accuracy {acc:.4f}"])
    return rid


def populate(lab_root: Path) -> Lab:
    """Runs of digits-mlp: a plain one, the depth ablation (two seeds each), a failed run, one set
    apart (another evaluation fingerprint) and one still running."""
    lab = Lab.find(str(lab_root))
    with Store(lab.store_path) as store:
        make_run(store, lab, offset=0, acc=0.95, log=["loading data", "epoch 0: loss 2.1", "Traceback (most "
                                                      "recent call last):", "ValueError: bad things", "done"])
        for seed in (0, 1):
            make_run(store, lab, ablation="depth", variant="shallow", seed=seed, params={"model.depth": 1},
                     acc=0.97 + seed * 0.002, offset=100 + seed)
            make_run(store, lab, ablation="depth", variant="deep", seed=seed, params={"model.depth": 4},
                     acc=0.96 + seed * 0.002, offset=200 + seed)
        make_run(store, lab, ablation="depth", variant="deep", seed=2, params={"model.depth": 4}, acc=0.5,
                 fingerprint="0" * 64, offset=300)
        make_run(store, lab, status="failed", offset=400)
        make_run(store, lab, status="running", offset=500)
    return lab


def itemise(lab: Lab, store: Store, run_id: int, *, ece_bins: int = 15, old_code: bool = False,
            fingerprint: str = "a" * 64, model: bool = True) -> None:
    """Evaluate a run again with an evaluation that says what its fingerprint covers: today's suite
    (the lab's own evaluation code and config) unless told another ece_bins or older code; with
    the model it read recorded as train's artifact (what `fbtui eval` checks before it queues)."""
    import hashlib
    import shutil

    from fbtui.records.suite import Today
    from tests.labs import REPO

    code = lab.root / "common/evaluation.py"
    if not code.exists():  # the lab's configuration alone lacks it
        shutil.copy2(REPO / "common/evaluation.py", code)
    sha = "0" * 64 if old_code else hashlib.sha256(code.read_bytes()).hexdigest()
    run = store.run(run_id)
    config = Today(lab, run["project"]).config({"ablation": run["ablation"], "variant": run["variant"]})
    assert config is not None
    covers = {"code": {"common/evaluation.py": sha}, "config": {"eval": {**config["eval"], "ece_bins": ece_bins}},
              "data": {"digest": "d" * 64, "split": "test", "made_by": {
                  "code": {"common/evaluation.py": hashlib.sha256(code.read_bytes()).hexdigest()},
                  "config": {"data": config["data"]}}}}
    acc = store.evaluations(run_id)[-1]["results"]["accuracy"]
    store.add_evaluation(run_id, "evaluate", fingerprint, {"accuracy": acc, "loss": 1 - acc}, covers=covers)
    if model:
        store.add_artifact(run_id, "train", "model.pt", 1000, "e" * 64)


def make_reevaluation(store: Store, source: int, status: str = "queued") -> int:
    """A re-evaluation of a run as `fbtui eval` records it: a hidden run (eval_of) of its own."""
    src = store.run(source)
    rid = store.create_run(src["project"], config="{}", params=store.params(source),
                           stages=["prepare", "train", "evaluate"], ablation=src["ablation"], variant=src["variant"],
                           seed=src["seed"], host="local")
    store.update_run(rid, requested_host="local", created_at=T0 + 900, eval_of=source)
    store.set_run_status(rid, "queued")
    if status != "queued":
        store.set_run_status(rid, "running", started_at=T0 + 900)
    if status == "succeeded":
        store.set_run_status(rid, "succeeded", finished_at=T0 + 930)
    return rid


def tui_state(lab: Lab) -> dict[str, object]:
    path = lab.root / ".fb" / "tui.json"
    return json.loads(path.read_text()) if path.exists() else {}


# ------------------------------------------------------------------ tests of the data layer and widgets' cores


def test_populated_lab_data(lab_dir: Path) -> None:
    from fbtui.tui import data

    lab = populate(lab_dir)
    with Store(lab.store_path) as store:
        rows = {r.name: r for r in data.project_rows(lab, store)}
        assert rows["digits-mlp"].last_status == "running" and rows["digits-mlp"].active == 1
        assert rows["digits-cnn"].last_run is None
        d = data.dashboard(lab, store, "digits-mlp")
        assert d.stages == ["prepare", "train", "evaluate"] and d.latest is not None
        assert [s["status"] for s in d.latest_stages] == ["succeeded", "running", "pending"]
        runs, metrics = data.runs_table(store, "digits-mlp")
        assert len(runs) == 8 and metrics == ["eval/accuracy", "eval/loss"]
        detail = data.run_detail(store, runs[-1]["id"])
        assert set(detail.curves) == {"train/loss", "val/accuracy"} and len(detail.curves["train/loss"]) == 20


def test_state_is_remembered(lab_dir: Path) -> None:
    from fbtui.tui import data

    lab = Lab.find(str(lab_dir))
    assert data.load_state(lab) == {}
    data.save_state(lab, project="digits-cnn")
    assert tui_state(lab) == {"project": "digits-cnn"}


def test_spool_index_reads_lines_by_block(tmp_path: Path) -> None:
    from fbtui.tui.widgets.logview import BLOCK, SpoolIndex

    path = tmp_path / "x.log"
    path.write_text("".join(f"2025-01-01T00:00:00.000000000Z line {i}\n" for i in range(BLOCK * 3 + 5)) + "partial")
    idx = SpoolIndex(path)
    first, _ = idx.scan()
    assert first == 0 and idx.count == BLOCK * 3 + 5 and len(idx.blocks) == 4
    assert idx.line(0).endswith(b"line 0") and idx.line(BLOCK * 3 + 4).endswith(f"line {BLOCK * 3 + 4}".encode())
    with path.open("a") as f:
        f.write(" done\n2025-01-01T00:00:01.000000000Z last\n")
    first, _ = idx.scan()
    assert first == BLOCK * 3 + 5 and idx.count == BLOCK * 3 + 7
    assert idx.line(BLOCK * 3 + 5).endswith(b"partial done") and idx.line(idx.count - 1).endswith(b"last")
    idx.close()


def test_braille_chart_draws_every_series() -> None:
    from fbtui.tui.widgets.chart import BrailleChart

    segs = BrailleChart("loss", [("a", [(0, 1.0), (10, 0.1)]), ("b", [(0, 0.5), (10, 0.6)])], 8).lines(40, 8)
    text = "".join(s.text for s in segs)
    assert "■ a" in text and "■ b" in text and any(0x2800 < ord(c) < 0x2900 for c in text)
    assert len(text.splitlines()) == 8


def test_mean_curve_averages_seeds_step_by_step() -> None:
    a = [(0, 1.0, 0.0), (1, 0.5, 0.0), (1, 0.4, 0.0), (2, None, 0.0)]  # step 1 logged twice: the latest
    b = [(0, 3.0, 0.0), (1, 0.6, 0.0), (2, 0.2, 0.0), (3, 0.1, 0.0)]
    assert data.mean_curve([a, b]) == [(0.0, 2.0), (1.0, 0.5), (2.0, 0.2), (3.0, 0.1)]
    assert data.mean_curve([]) == []


def test_runs_stamp_moves_with_every_change_the_runs_table_shows(lab_dir: Path) -> None:
    lab = populate(lab_dir)
    with Store(lab.store_path) as store:
        first = data.runs_stamp(store, "digits-mlp")
        assert first == data.runs_stamp(store, "digits-mlp") and first[-1] == 1  # one active run
        store.set_run_status(8, "succeeded", finished_at=T0 + 9999)
        done = data.runs_stamp(store, "digits-mlp")
        assert done != first and done[-1] == 0
        store.add_evaluation(3, "evaluate", "g" * 64, {"accuracy": 0.5})  # `fbtui eval`
        evaluated = data.runs_stamp(store, "digits-mlp")
        assert evaluated != done
        make_run(store, lab, offset=600)
        assert data.runs_stamp(store, "digits-mlp") != evaluated
        assert data.runs_stamp(store, "digits-cnn")[0] == 0


def test_curves_are_read_incrementally_and_thinned(lab_dir: Path) -> None:
    lab = populate(lab_dir)
    with Store(lab.store_path) as store:
        rid = make_run(store, lab, status="running", curve=0)
        curves = data.Curves()
        store.add_metrics(rid, [("train/loss", s, 1.0, T0) for s in range(10)], "train")
        assert len(curves.update(store, rid, ["train/loss"])["train/loss"]) == 10
        store.add_metrics(rid, [("train/loss", s, 0.5, T0) for s in range(10, 20)], "train")
        assert curves.update(store, rid, ["train/loss"])["train/loss"][-1] == (19.0, 0.5)
        store.add_metrics(rid - 1, [("train/loss", 99, 7.0, T0)], "train")  # another run's row: not this curve
        seen = curves.mark
        assert curves.update(store, rid, ["train/loss"])["train/loss"][-1] == (19.0, 0.5)
        assert curves.mark == seen and (99.0, 7.0) not in curves.points["train/loss"]
        store.add_metrics(rid, [("train/loss", 5, 9.0, T0)], "train")  # an earlier step, written late
        pts = curves.update(store, rid, ["train/loss"])["train/loss"]
        assert len(pts) == 21 and (5.0, 9.0) in pts and [p[0] for p in pts] == sorted(p[0] for p in pts)
        # 100,000 points: drawn from about 1,000, the spike kept.
        big = [(float(s), 1.0 if s != 54_321 else 50.0) for s in range(100_000)]
        thin = data.thin(big)
        assert len(thin) <= data.CURVE_POINTS + 2 and (54_321.0, 50.0) in thin
        assert thin[0][0] == 0.0 and thin[-1][0] >= 99_000


def test_closing_the_stores_never_closes_a_connection_under_a_running_query(tmp_path: Path) -> None:
    """What quitting the app does while a worker polls: it crashed the interpreter once (in a
    subprocess here, so a crash fails this test instead of ending the session)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys, threading, time
        from pathlib import Path
        from fbtui.store import Store
        from fbtui.tui.data import Stores

        path = Path(sys.argv[1]) / "fb.db"
        Store(path).close()
        stores = Stores(path)
        started, result = threading.Event(), {}

        def slow(x):
            started.set()
            time.sleep(0.002)
            return x

        def worker():
            s = stores.get()
            s.conn.create_function("slow", 1, slow)
            result["rows"] = len(s.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                         "WHERE x < 300) SELECT slow(x) FROM c"))
            result["again"] = len(s.query("SELECT 1"))  # the worker's next poll still works

        t = threading.Thread(target=worker)
        t.start()
        started.wait()
        stores.close()  # the app quitting mid-query
        t.join()
        late = []
        threading.Thread(target=lambda: late.append(stores.get())).start()
        time.sleep(0.2)
        print(result["rows"], result["again"], late)
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["300", "1", "[None]"]  # a thread starting after close gets no store


def test_reevaluations_are_no_runs_of_their_own(lab_dir: Path) -> None:
    """A re-evaluation going on shows under its run's number; a finished one is part of its run's
    record: no row, no count, not the project's latest run."""
    lab = populate(lab_dir)
    with Store(lab.store_path) as store:
        before = data.runs_stamp(store, "digits-mlp")
        done = make_reevaluation(store, 2, "succeeded")
        going = make_reevaluation(store, 3, "running")
        runs, _ = data.runs_table(store, "digits-mlp")
        assert len(runs) == 9 and done not in {r["id"] for r in runs}
        assert next(r for r in runs if r["id"] == going)["eval_of"] == 3
        last = {r.name: r for r in data.project_rows(lab, store)}["digits-mlp"]
        assert last.last_run == 8 and last.active == 2  # run 8 runs, run 3 is being evaluated again
        d = data.dashboard(lab, store, "digits-mlp")
        assert d.latest is not None and d.latest["id"] == 8 and done not in {r["id"] for r in d.recent}
        stamp = data.runs_stamp(store, "digits-mlp")
        assert stamp != before and stamp[-1] == 2
        store.set_run_status(going, "succeeded", finished_at=T0 + 990)  # it ends: its row goes
        assert data.runs_stamp(store, "digits-mlp") != stamp
        assert len(data.runs_table(store, "digits-mlp")[0]) == 8


def test_a_runs_latest_evaluation_is_judged_against_todays_suite(lab_dir: Path) -> None:
    from fbtui.records.suite import NOT_ITEMISED
    from fbtui.tui import evaluations

    lab = populate(lab_dir)
    with Store(lab.store_path) as store:
        for rid in (2, 3, 4, 5):
            itemise(lab, store, rid)
        itemise(lab, store, 6, ece_bins=10, fingerprint="b" * 64)
        today = evaluations.latest_evaluation(lab, store, store.run(2))
        assert today is not None and today["today"] is True
        assert evaluations.summary(today) == ("evaluation aaaaaaaaaaaa: today's suite  (v: what it covers)", "green")
        stale = evaluations.latest_evaluation(lab, store, store.run(6))
        assert stale is not None and stale["today"] is False and stale["differs"] == ["config eval.ece_bins"]
        text, style = evaluations.summary(stale)
        assert text.endswith("not today's suite (v: why): config eval.ece_bins") and style == "yellow"
        lines = evaluations.detail_lines(stale, 60)
        assert "  config eval.ece_bins" in lines and "results: accuracy 0.5, loss 0.5" in lines
        assert any(x.startswith("  code   common/evaluation.py  ") for x in lines) and max(map(len, lines)) <= 80
        # A run evaluated before evaluations itemised their suites is not today's suite ...
        old = evaluations.latest_evaluation(lab, store, store.run(1))
        assert old is not None and old["today"] is False and old["differs"] == [NOT_ITEMISED]
        assert evaluations.detail_lines(old)[-1].startswith("covers: not itemised")
        # ... and where no evaluation itemises, nothing is judged: said so.
        with store.write() as c:
            c.execute("DELETE FROM evaluations WHERE covers IS NOT NULL")
        voted = evaluations.latest_evaluation(lab, store, store.run(2))
        assert voted is not None and "today" not in voted
        assert "does not say what it covers" in evaluations.summary(voted)[0]


# ------------------------------------------------------------------ curves for any metric (issue 13)


def test_metric_keys_group_by_prefix_in_any_case() -> None:
    from fbtui.tui.metric_groups import Pick, group_keys, group_of

    keys = ["lr", "Loss/val", "loss/train", "Loss/train", "train/ppl", "charts/episodic_return", "LR/x"]
    assert group_of("Loss/train/step") == "loss" and group_of("lr") == "lr"
    assert group_keys(keys) == {"charts": ["charts/episodic_return"], "loss": ["Loss/train", "loss/train", "Loss/val"],
                                "lr": ["lr", "LR/x"], "train": ["train/ppl"]}
    assert Pick("group", "loss").keys(keys) == ["Loss/train", "loss/train", "Loss/val"]
    assert Pick("group", "loss").title(keys) == "loss/*" and Pick("key", "lr").title(keys) == "lr"
    assert Pick("key", "Loss/train").keys(keys) == ["Loss/train"] and Pick("key", "gone").keys(keys) == []
    many = [f"charts/k{i:03d}" for i in range(300)]  # a big group overlays its first keys, and says so
    assert len(Pick("group", "charts").keys(many)) == 8
    assert Pick("group", "charts").title(many) == "charts/* (first 8 of 300)"


def test_default_charts_are_loss_and_accuracy_else_the_first_groups() -> None:
    from fbtui.tui.metric_groups import ACCURACY, LOSS, Pick, default_key, default_picks

    native = ["eval/accuracy", "eval/loss", "train/loss", "val/accuracy", "val/loss"]
    assert default_picks(native) == [LOSS, ACCURACY]  # today's two charts, eval/ (final points) left out
    assert LOSS.keys(native) == ["train/loss", "val/loss"] and ACCURACY.keys(native) == ["val/accuracy"]
    assert LOSS.title(native) == "loss"
    foreign = ["Loss/train", "Loss/val", "lr"]
    assert default_picks(foreign) == [LOSS]  # any case counts
    assert LOSS.keys(foreign) == ["Loss/train", "Loss/val"]
    rl = ["charts/episodic_return", "charts/sps", "eval/return", "lr"]
    assert default_picks(rl) == [Pick("group", "charts"), Pick("key", "lr")]
    assert default_picks(["eval/return", "z"], charts=1) == [Pick("key", "z")]  # eval/ last
    assert default_picks([]) == []
    assert default_key(native) == "train/loss" and default_key(rl) == "charts/episodic_return"
    assert default_key(["eval/x"]) == "eval/x" and default_key([]) is None


def test_picker_lists_groups_and_keys_filtered_as_you_type() -> None:
    from fbtui.tui.metric_groups import Pick, picker_entries

    keys = ["Loss/train", "Loss/val", "lr", "train/ppl"]
    assert picker_entries(keys) == [
        (Pick("group", "loss"), "loss/*  (2 keys)"), (Pick("key", "Loss/train"), "  Loss/train"),
        (Pick("key", "Loss/val"), "  Loss/val"), (Pick("key", "lr"), "lr"), (Pick("key", "train/ppl"), "train/ppl")]
    filtered = picker_entries(keys, "TRAIN")  # the loss group's header, its matching key, and train/ppl
    assert [label for _, label in filtered] == ["loss/*  (2 keys)", "  Loss/train", "train/ppl"]
    assert picker_entries(keys, "loss")[0][0] == Pick("group", "loss") and len(picker_entries(keys, "loss")) == 3
    assert picker_entries(keys, groups=False)[0] == (None, "loss/*  (2 keys)")  # a header only: one key per chart
    assert picker_entries(keys, "nothing") == []


def test_curves_read_only_the_charted_keys_and_follow_a_new_pick(lab_dir: Path) -> None:
    from fbtui.tui.metric_groups import Pick

    lab = populate(lab_dir)
    with Store(lab.store_path) as store:
        rid = make_run(store, lab, status="running", curve=0)
        store.add_metrics(rid, [(k, s, float(s), T0) for s in range(5) for k in ("Loss/train", "Loss/val", "lr")])
        store.add_metrics(rid, [(f"charts/k{i:03d}", 0, 1.0, T0) for i in range(300)])
        curves = data.Curves()
        d = data.run_detail(store, rid, curves)
        assert len(d.keys) == 303 and d.charts == [("loss", ["Loss/train", "Loss/val"])]
        assert set(curves.points) == {"Loss/train", "Loss/val"}  # no other key's points were read
        d = data.run_detail(store, rid, curves, [Pick("key", "lr"), Pick("key", "Loss/train")])
        assert d.charts == [("lr", ["lr"]), ("Loss/train", ["Loss/train"])]
        assert set(curves.points) == {"lr", "Loss/train"}
        # Rows written after a key joined the charts arrive once each, for the old and the new key.
        store.add_metrics(rid, [(k, 5, 5.0, T0) for k in ("Loss/train", "lr")])
        d = data.run_detail(store, rid, curves, [Pick("key", "lr"), Pick("key", "Loss/train")])
        assert [p[0] for p in d.curves["lr"]] == [0, 1, 2, 3, 4, 5] == [p[0] for p in d.curves["Loss/train"]]
        assert data.metric_keys_of(store, [rid, rid - 1])[:3] == ["Loss/train", "Loss/val", "charts/k000"]
