"""Metrics from stdout patterns and TensorBoard event files (#13), against a real store and real
event files written by TensorBoard's own writer: exactly once across restarts, bad files named."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from fbtui.config.models import MetricSources
from fbtui.pipeline.metric_sources import LocalOut, SourceIngest, glob_match, static_prefix
from fbtui.store import Store


def write_events(folder: Path, points: list[tuple[int, str, float]]) -> Path:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(str(folder))
    for step, tag, value in points:
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        w.add_event(event_pb2.Event(step=step, wall_time=1.0 + step, summary=summary))
    w.close()
    return next(folder.glob("events.out.tfevents.*"))


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Store(tmp_path / "fb.db") as s:
        rid = s.create_run("p", config="{}", params={}, stages=["train"])
        s.test_run = rid  # type: ignore[attr-defined]
        yield s


SPEC = MetricSources(jsonl=False, stdout=[
    {"pattern": r"step (?P<step>\d+) \| loss (?P<loss>[0-9.]+) \| val (?P<val_loss>[0-9.]+)", "prefix": "train/",
     "keys": {"val_loss": "val/loss"}},
    r"(?P<step>\d+): (?P<name>\w+)=(?P<value>[-0-9.e]+)"],
    tensorboard=["runs/**/events.out.tfevents.*"])


def points(store: Store, rid: int) -> list[tuple[str, int, float]]:
    return [(r["key"], r["step"], r["value"]) for r in
            store.query("SELECT key, step, value FROM metrics WHERE run_id = ? ORDER BY key, step, rowid", (rid,))]


def ingest(store: Store, tmp_path: Path) -> SourceIngest:
    return SourceIngest(store, store.test_run, "train", SPEC, tmp_path / "train.log",  # type: ignore[attr-defined]
                        tmp_path / "mirror")


def test_stdout_and_event_files_land_once_each_across_restarts(store: Store, tmp_path: Path) -> None:
    rid = store.test_run  # type: ignore[attr-defined]
    out = tmp_path / "out"
    (out / "runs" / "a").mkdir(parents=True)
    spool = tmp_path / "train.log"
    spool.write_bytes(b"2026-11-27T10:00:00.123456789Z step 100 | loss 2.31 | val 2.40\n"
                      b"2026-11-27T10:00:01.000000000Z 7: acc=0.5\n"
                      b"2026-11-27T10:00:02.000000000Z step 200 | loss 2.")  # a partial line waits
    events = write_events(out / "runs" / "a", [(i, "Loss/train", 1.0 / (i + 1)) for i in range(50)])
    first = ingest(store, tmp_path)
    assert first.ingest(LocalOut(out)) == 3 + 50
    with spool.open("ab") as f:
        f.write(b"10 | val 2.20\n")
    second = ingest(store, tmp_path)  # a supervisor that came back: nothing doubled
    assert second.ingest(LocalOut(out)) == 2
    assert second.ingest(LocalOut(out)) == 0
    got = points(store, rid)
    assert ("train/loss", 100, 2.31) in got and ("val/loss", 200, 2.2) in got and ("acc", 7, 0.5) in got
    assert len([p for p in got if p[0] == "Loss/train"]) == 50
    assert store.query("SELECT t FROM metrics WHERE key = 'train/loss' AND step = 100")[0]["t"] == pytest.approx(
        1795773600.123456, abs=1e-3)
    # more events appended to the same file (another file's records, its version record too): only they come in
    more = write_events(tmp_path / "more", [(i, "Loss/train", 0.0) for i in range(50, 60)])
    with events.open("ab") as f:
        f.write(more.read_bytes())
    assert ingest(store, tmp_path).ingest(LocalOut(out)) == 10
    assert len([p for p in points(store, rid) if p[0] == "Loss/train"]) == 60


def test_a_truncated_then_completed_record_and_a_corrupt_one(store: Store, tmp_path: Path) -> None:
    rid = store.test_run  # type: ignore[attr-defined]
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    whole = write_events(tmp_path / "w", [(i, "x", float(i)) for i in range(20)]).read_bytes()
    target = out / "runs" / "events.out.tfevents.1"
    target.write_bytes(whole[:-7])  # the last record cut mid-write
    src = ingest(store, tmp_path)
    n = src.ingest(LocalOut(out))
    assert n == 19  # all but the cut one, which waits for its bytes
    with target.open("ab") as f:
        f.write(whole[-7:])
    assert src.ingest(LocalOut(out)) == 1
    # a second file with a bad CRC in its 5th record: the first four are kept, the rest named
    bad = bytearray(write_events(tmp_path / "b", [(i, "y", float(i)) for i in range(10)]).read_bytes())
    pos = 0
    for _ in range(5):
        (length,) = struct.unpack("<Q", bad[pos:pos + 8])
        pos += length + 16
    bad[pos + 12] ^= 0xFF  # a data byte of the 6th record (the version record is the first)
    (out / "runs" / "events.out.tfevents.2").write_bytes(bytes(bad))
    src.ingest(LocalOut(out))
    assert [p[1] for p in points(store, rid) if p[0] == "y"] == [0, 1, 2, 3]
    notes = {r["source"]: r["note"] for r in store.metric_sources(rid)}
    assert "corrupt record after byte" in notes["tb:runs/events.out.tfevents.2"]
    assert "failed event crc32 check" in notes["tb:runs/events.out.tfevents.2"]
    # one that ends in a partial record when the stage is over is named too
    (out / "runs" / "events.out.tfevents.3").write_bytes(whole[:60])
    src.ingest(LocalOut(out))
    src.finish(LocalOut(out))
    notes = {r["source"]: r["note"] for r in store.metric_sources(rid)}
    assert "ends in a partial record" in notes["tb:runs/events.out.tfevents.3"]
    assert notes.get("tb:runs/events.out.tfevents.1") is None


def test_a_link_where_an_event_file_is_expected_is_never_followed(store: Store, tmp_path: Path) -> None:
    rid = store.test_run  # type: ignore[attr-defined]
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    secret = write_events(tmp_path / "host", [(1, "secret", 42.0)])
    (out / "runs" / "events.out.tfevents.9").symlink_to(secret)
    ingest(store, tmp_path).ingest(LocalOut(out))
    assert points(store, rid) == []
    notes = {r["source"]: r["note"] for r in store.metric_sources(rid)}
    assert "never followed" in notes["tb:runs/events.out.tfevents.9"]


def test_globs_and_their_folder() -> None:
    assert glob_match("events.out.tfevents.1", "**/events.out.tfevents.*")
    assert glob_match("runs/a/b/events.out.tfevents.1", "runs/**/events.out.tfevents.*")
    assert not glob_match("runs/a/model.pt", "runs/**/events.out.tfevents.*")
    assert glob_match("ckpt/a.pt", "ckpt/*.pt") and not glob_match("ckpt/s/a.pt", "ckpt/*.pt")
    assert static_prefix(["runs/*/e.*", "runs/**/x"]) == "runs" and static_prefix(["**/e.*"]) == ""


@pytest.mark.slow
@pytest.mark.engine
def test_a_remote_stages_event_files_come_through_its_container(store: Store, tmp_path: Path,
                                                                 docker_client) -> None:  # type: ignore[no-untyped-def]
    """What a remote stage's out volume gives (RemoteOut: one tar stream to list, a read per file), on a
    real container: the same points as a local read, a link inside never followed."""
    import io
    import tarfile

    from fbtui.pipeline.metric_sources import RemoteOut

    rid = store.test_run  # type: ignore[attr-defined]
    events = write_events(tmp_path / "ev", [(i, "Loss/train", float(i)) for i in range(30)])
    c = docker_client.containers.create("fb/torch-stand-in:2.13.0", ["true"], labels={"fb.test": "remote-out"})
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in (("fb/out/runs/a/events.out.tfevents.1", events.read_bytes()),
                               ("fb/out/model.pt", b"\0" * 1000)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("fb/out/runs/events.out.tfevents.2")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
        assert c.put_archive("/", buf.getvalue())
        out = RemoteOut(docker_client, c.id, SPEC.tensorboard)
        assert out.prefix == "runs"
        assert out.files() == {"runs/a/events.out.tfevents.1": events.stat().st_size,
                               "runs/events.out.tfevents.2": -1}
        assert ingest(store, tmp_path).ingest(out) == 30
        assert [p[1] for p in points(store, rid) if p[0] == "Loss/train"] == list(range(30))
        notes = {r["source"]: r["note"] for r in store.metric_sources(rid)}
        assert "never followed" in notes["tb:runs/events.out.tfevents.2"]
    finally:
        c.remove(force=True)


@pytest.mark.engine
def test_a_growing_remote_file_is_read_from_its_offset(docker_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """read_from moves only the bytes past the offset while the container runs (tail in it), and
    reads through the archive once it has stopped; an absent file is None either way."""
    from fbtui.pipeline.containers import SMALL_READ, read_from

    n = 2 * SMALL_READ // 9 + 10
    body = b"".join(b"%08d\n" % i for i in range(n))
    c = docker_client.containers.run(
        "fb/torch-stand-in:2.13.0",
        ["python3", "-c", f"open('/tmp/m.jsonl', 'wb').write(b''.join(b'%08d\\n' % i for i in range({n})))\n"
                          "import time\ntime.sleep(60)"], detach=True, labels={"fb.test": "read-from"})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            res = docker_client.api.exec_create(c.id, ["sh", "-c", f"test $(wc -c < /tmp/m.jsonl) -eq {len(body)}"])
            docker_client.api.exec_start(res["Id"])
            if docker_client.api.exec_inspect(res["Id"])["ExitCode"] == 0:
                break
            time.sleep(0.2)
        offset = len(body) - 45
        from fbtui.pipeline import containers

        whole = containers.read_file
        with monkeypatch.context() as m:  # while it runs, the whole-file archive read is never used
            m.setattr(containers, "read_file", lambda *a, **k: pytest.fail("read the whole file"))
            assert read_from(docker_client, c.id, "/tmp/m.jsonl", offset) == body[offset:]  # the tail only
        assert containers.read_file is whole
        assert read_from(docker_client, c.id, "/tmp/m.jsonl", 9) == body[9:]  # small offset: the archive
        assert read_from(docker_client, c.id, "/tmp/none.jsonl", SMALL_READ + 1) is None
        c.kill()
        assert read_from(docker_client, c.id, "/tmp/m.jsonl", offset) == body[offset:]  # stopped: the archive
    finally:
        c.remove(force=True)
