"""Metric sources besides metrics.jsonl (#13): stdout patterns over a stage's log and TensorBoard
event files, each against metrics.jsonl's ingest of the same points in the same run.

    .venv/bin/python bench/sources.py [--points 200000]

What it shows: points/s of each source through SourceIngest into a real store, and the ratio to
the jsonl path (the one common/ writes). A second pass must add nothing (offsets committed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fbtui.config.models import MetricSources  # noqa: E402
from fbtui.pipeline.ingest import ingest_file  # noqa: E402
from fbtui.pipeline.metric_sources import LocalOut, SourceIngest  # noqa: E402
from fbtui.store import Store  # noqa: E402


def timed(fn) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=200_000)
    n = ap.parse_args().points
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        out = folder / "out"
        (out / "runs").mkdir(parents=True)
        steps = n // 2  # two metrics a line / an event
        with (out / "metrics.jsonl").open("w") as f:
            for s in range(steps):
                for key in ("train/loss", "train/val"):
                    f.write(json.dumps({"step": s, "key": key, "value": 1.0 / (s + 1), "t": 1.0 + s}) + "\n")
        with (folder / "train.log").open("w") as f:
            for s in range(steps):
                f.write(f"2026-11-27T10:00:00.{s % 10**9:09d}Z step {s} | loss {1.0 / (s + 1):.6f} | val 0.5\n")
        w = EventFileWriter(str(out / "runs"))
        for s in range(steps):
            w.add_event(event_pb2.Event(step=s, wall_time=1.0 + s, summary=summary_pb2.Summary(value=[
                summary_pb2.Summary.Value(tag="Loss/train", simple_value=1.0 / (s + 1)),
                summary_pb2.Summary.Value(tag="Loss/val", simple_value=0.5)])))
        w.close()
        spec_out = MetricSources(jsonl=False, stdout=[
            {"pattern": r"step (?P<step>\d+) \| loss (?P<loss>[0-9.]+) \| val (?P<val>[0-9.]+)", "prefix": "train/"}])
        spec_tb = MetricSources(jsonl=False, tensorboard=["runs/events.out.tfevents.*"])
        results = {}
        with Store(folder / "fb.db") as store:
            for name, fn in (
                ("metrics.jsonl (baseline)", lambda rid: ingest_file(store, rid, "train", out / "metrics.jsonl")),
                ("stdout patterns", lambda rid: SourceIngest(store, rid, "train", spec_out, folder / "train.log",
                                                             folder / "m1").ingest(None)),
                ("tensorboard events", lambda rid: SourceIngest(store, rid, "train", spec_tb, folder / "x.log",
                                                                folder / "m2").ingest(LocalOut(out))),
            ):
                rid = store.create_run("bench", config="{}", params={}, stages=["train"])
                got, secs = timed(lambda fn=fn, rid=rid: fn(rid))
                again, _ = timed(lambda fn=fn, rid=rid: fn(rid))
                results[name] = (got, secs, again)
        base = results["metrics.jsonl (baseline)"][0] / results["metrics.jsonl (baseline)"][1]
        print(f"{n:,} points per source (two metrics per step), into one store")
        for name, (got, secs, again) in results.items():
            rate = got / secs
            print(f"  {name:<26} {got:>9,} points in {secs:6.2f} s = {rate:>10,.0f} points/s "
                  f"({rate / base:.2f}x jsonl); a second pass added {again}")


if __name__ == "__main__":
    main()
