"""Metric ingest and log following, from real containers, each against a baseline in the same run.

    .venv/bin/python bench/ingest.py [--points 1000000] [--lines 1000000]

Targets (issue #5): ingest >= 0.5x a plain sqlite3 executemany of the same points; log following
>= 50,000 lines/s with 0 lines lost and 0 doubled, also across reconnects.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fbtui.config.models import HostConfig  # noqa: E402
from fbtui.engine import client as engine_client  # noqa: E402
from fbtui.images.service import ensure_project_image  # noqa: E402
from fbtui.lab import Lab  # noqa: E402
from fbtui.pipeline.ingest import ingest_file  # noqa: E402
from fbtui.pipeline.logs import follow, read_spool  # noqa: E402
from fbtui.store import Store  # noqa: E402

WRITER = (
    "import json, time\n"
    "t = time.time()\n"
    "with open('/fb/out/metrics.jsonl', 'w') as f:\n"
    "    for i in range({n}):\n"
    "        f.write(json.dumps({{'step': i // 2, 'key': 'train/loss' if i % 2 else 'train/acc', "
    "'value': 1.0 / (i + 1), 't': t + i}}) + '\\n')\n"
)


def bench_ingest(client, image: str, folder: Path, points: int) -> None:  # type: ignore[no-untyped-def]
    import docker

    out = folder / "out"
    out.mkdir()
    c = client.containers.run(image, ["python3", "-c", WRITER.format(n=points)], detach=True, network_mode="none",
                              mounts=[docker.types.Mount("/fb/out", str(out), type="bind")])
    c.wait()
    c.remove()
    path = out / "metrics.jsonl"
    with Store(folder / "fb.db") as store:
        rid = store.create_run("bench", config="{}", params={}, stages=["train"])
        t0 = time.perf_counter()
        n = ingest_file(store, rid, "train", path)
        ours = n / (time.perf_counter() - t0)
        assert n == points == store.metric_count(rid)
        assert ingest_file(store, rid, "train", path) == 0  # by offset: a second pass adds nothing
    # Baseline: the same points, parsed beforehand, by a plain executemany into the same schema.
    rows = [(d["key"], d["step"], d["value"], d["t"]) for d in map(json.loads, path.read_text().splitlines())]
    Store(folder / "base.db").close()
    conn = sqlite3.connect(folder / "base.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("INSERT INTO runs (id, project, status, config) VALUES (1, 'b', 'running', '{}')")
    t0 = time.perf_counter()
    for start in range(0, len(rows), 100_000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO metrics (run_id, stage, key, step, value, t) VALUES (1, 'train', ?, ?, ?, ?)",
                         rows[start:start + 100_000])
        conn.execute("COMMIT")
    base = len(rows) / (time.perf_counter() - t0)
    print(f"metric ingest of {points:,} points written by a container:")
    print(f"  fbtui (read by offset, parse, insert)  {ours:>10,.0f} points/s")
    print(f"  plain sqlite3 executemany (pre-parsed) {base:>10,.0f} points/s")
    print(f"  ratio                                  {ours / base:>10.2f}x   (target >= 0.5x)")


def check(spool: Path, lines: int) -> tuple[int, int]:
    got, _ = read_spool(spool)
    seen: dict[str, int] = {}
    for x in got:
        seen[x] = seen.get(x, 0) + 1
    lost = sum(1 for i in range(1, lines + 1) if str(i) not in seen)
    doubled = sum(v - 1 for v in seen.values() if v > 1)
    return lost, doubled


def bench_logs(client, image: str, folder: Path, lines: int) -> None:  # type: ignore[no-untyped-def]
    cmd = ["sh", "-c", f"sleep 1; seq 1 {lines}"]
    c = client.containers.run(image, cmd, detach=True, network_mode="none")
    spool = folder / "straight.log"
    t0 = time.perf_counter()
    follow(client, c.id, spool)
    elapsed = time.perf_counter() - t0 - 1.0  # the container's own 1 s head start
    lost, doubled = check(spool, lines)
    # The same, once the container has ended: our reader against the docker CLI reading it.
    again = folder / "again.log"
    t0 = time.perf_counter()
    follow(client, c.id, again, follow=False)
    ours_done = lines / (time.perf_counter() - t0)
    from fbtui.engine import local_url

    t0 = time.perf_counter()
    subprocess.run(["docker", "-H", local_url(), "logs", "--timestamps", c.id], stdout=subprocess.DEVNULL, check=True)
    cli_done = lines / (time.perf_counter() - t0)
    c.remove(force=True)
    print(f"log follow of {lines:,} lines (seq in a container):")
    print(f"  live, one stream       {lines / elapsed:>10,.0f} lines/s   lost {lost}, doubled {doubled}"
          f"   (target >= 50,000, 0, 0)")
    print(f"  after it ended         {ours_done:>10,.0f} lines/s   vs `docker logs` {cli_done:,.0f} lines/s "
          f"({ours_done / cli_done:.2f}x)")
    # Reconnects: short non-following reads while it prints, each resuming from the spool's end.
    # A slower printer (a shell loop, so lines keep arriving), read in many short pieces.
    slow = lines // 10
    c = client.containers.run(image, ["sh", "-c", f"seq 1 {slow} | while read -r n; do echo $n; done"],
                              detach=True, network_mode="none")
    spool = folder / "reconnects.log"
    reads = 0
    while True:
        c.reload()
        running = c.status == "running"
        follow(client, c.id, spool, follow=False)
        reads += 1
        if not running:
            break
        time.sleep(0.05)
    c.remove(force=True)
    lost, doubled = check(spool, slow)
    print(f"  {slow:,} lines in {reads} reconnects: lost {lost}, doubled {doubled}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    args = ap.parse_args()
    lab = Lab.find(str(ROOT))
    image = ensure_project_image(lab, "digits-mlp").tag
    client = engine_client(HostConfig())
    with tempfile.TemporaryDirectory() as tmp:
        bench_ingest(client, image, Path(tmp), args.points)
        bench_logs(client, image, Path(tmp), args.lines)


if __name__ == "__main__":
    main()
