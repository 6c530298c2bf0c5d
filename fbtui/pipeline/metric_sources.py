"""A stage's metrics from sources other than metrics.jsonl (#13): regular expressions over its log,
and TensorBoard event files under /fb/out. Each source is ingested by offset, its points and its
new offset committed together (store.add_metrics with `source`), so a supervisor that dies and
comes back ingests every point exactly once.

- stdout: the spool (`.fb/runs/N/STAGE.log`, "<timestamp> <text>" lines, kept without a line lost
  or doubled across reconnects) is read from the committed byte offset, whole lines only.
- tensorboard: the bytes of each event file matching the stage's globs are mirrored, by offset,
  into `.fb/runs/N/STAGE/tb/` (read as a stage output: no link is followed), and the mirror is read
  with TensorBoard's own record reader (CRC-checked; a partial record at the end is waited for).
  The offset is the bytes of whole records ingested. A corrupt record stops that file: what came
  before it is kept, and the stage's record says where it broke.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fbtui.config.models import MetricSources
    from fbtui.store import Store

STDOUT = "stdout"
READ = 16 * 2**20  # per file and pass: a huge backlog is taken over several passes
MAX_FILES = 1000  # event files per stage followed


class OutFiles(Protocol):
    """A stage's /fb/out, wherever it is: its regular files and their bytes from an offset."""

    def files(self) -> dict[str, int]: ...  # relative path -> size

    def read(self, rel: str, offset: int) -> bytes: ...


class LocalOut:
    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self) -> dict[str, int]:
        """Every file under the out folder; -1 for what is not a regular file (never followed)."""
        found: dict[str, int] = {}
        if not self.root.is_dir():
            return found
        for folder, _dirs, names in os.walk(self.root, followlinks=False):
            for name in names:
                path = Path(folder) / name
                st = os.lstat(path)
                found[path.relative_to(self.root).as_posix()] = st.st_size if stat.S_ISREG(st.st_mode) else -1
            if len(found) > 50_000:
                break
        return found

    def read(self, rel: str, offset: int) -> bytes:
        from fbtui.pipeline.outputs import read_output

        return read_output(self.root, rel, offset=offset, cap=READ) or b""


class RemoteOut:
    """A remote stage's out volume, through its container: listed with one tar stream of the
    folder its globs share (give them one, `runs/**/...`: the stream carries the files' bytes)."""

    def __init__(self, client: Any, cid: str, globs: list[str]) -> None:
        self.client, self.cid = client, cid
        self.prefix = static_prefix(globs)

    def files(self) -> dict[str, int]:
        import io
        import tarfile

        import docker

        base = "/fb/out" + (f"/{self.prefix}" if self.prefix else "")
        try:
            stream, _ = self.client.api.get_archive(self.cid, base)
        except docker.errors.NotFound:
            return {}
        found: dict[str, int] = {}
        top = base.rsplit("/", 1)[-1]  # the archive's members start with the folder's own name
        from fbtui.pipeline.artifacts import ChunkReader

        with tarfile.open(fileobj=io.BufferedReader(ChunkReader(stream), 1 << 20), mode="r|") as tar:
            for member in tar:
                rel = member.name.split("/", 1)[1] if "/" in member.name else ""
                if not rel or member.name.split("/", 1)[0] != top:
                    continue
                rel = f"{self.prefix}/{rel}" if self.prefix else rel
                if not member.isdir():
                    found[rel] = member.size if member.isfile() else -1
        return found

    def read(self, rel: str, offset: int) -> bytes:
        from fbtui.pipeline.containers import read_from

        return (read_from(self.client, self.cid, f"/fb/out/{rel}", offset) or b"")[:READ]


def static_prefix(globs: list[str]) -> str:
    """The folder every glob starts in: `runs` for runs/*/events.* and runs/**/x."""
    heads = []
    for g in globs:
        parts = g.split("/")[:-1]
        fixed = []
        for p in parts:
            if any(c in p for c in "*?["):
                break
            fixed.append(p)
        heads.append(fixed)
    common = heads[0] if heads else []
    for h in heads[1:]:
        n = 0
        while n < min(len(common), len(h)) and common[n] == h[n]:
            n += 1
        common = common[:n]
    return "/".join(common)


def glob_match(rel: str, pattern: str) -> bool:
    """The same globs as artifacts: `*`, `?`, `[...]` within a folder, `**` any number of them."""
    from fbtui.pipeline.artifacts import matches

    return matches(pattern, rel)


def _spool_time(ts: bytes) -> float:
    text = ts.decode("ascii", "replace").rstrip("Z")
    base, _, frac = text.partition(".")
    try:
        return datetime.fromisoformat(base + "+00:00").timestamp() + float("0." + (frac[:6] or "0"))
    except ValueError:
        return 0.0


class SourceIngest:
    """One stage's stdout patterns and event files, ingested pass by pass."""

    def __init__(self, store: Store, run_id: int, stage: str, spec: MetricSources, spool: Path,
                 mirror: Path) -> None:
        self.store, self.run_id, self.stage, self.spec = store, run_id, stage, spec
        self.spool, self.mirror = spool, mirror
        self.patterns = [(re.compile(p.pattern), p) for p in spec.stdout]
        self.readers: dict[str, Any] = {}  # event file -> [reader, bytes of whole records read]
        self.broken: set[str] = set()  # files read no further (corrupt, or not a regular file)

    @property
    def wanted(self) -> bool:
        return bool(self.spec.stdout or self.spec.tensorboard)

    def ingest(self, out: OutFiles | None) -> int:
        added = self.ingest_stdout() if self.spec.stdout else 0
        if self.spec.tensorboard and out is not None:
            added += self.ingest_events(out)
        return added

    # -------------------------------------------------------- stdout

    def ingest_stdout(self) -> int:
        added = 0
        while True:
            offset = self.store.source_offset(self.run_id, self.stage, STDOUT)
            try:
                with self.spool.open("rb") as f:
                    f.seek(offset)
                    data = f.read(READ)
            except FileNotFoundError:
                return added
            end = data.rfind(b"\n") + 1
            if not end:
                return added
            rows = self.parse_lines(data[:end])
            added += self.store.add_metrics(self.run_id, rows, stage=self.stage, offset=offset + end, source=STDOUT)
            if len(data) < READ:
                return added

    def parse_lines(self, block: bytes) -> list[tuple[str, int, float | None, float]]:
        rows: list[tuple[str, int, float | None, float]] = []
        for raw in block.split(b"\n"):
            ts, _, text_b = raw.partition(b" ")
            if not text_b:
                continue
            text = text_b.decode("utf-8", "replace")
            t = 0.0
            for regex, p in self.patterns:
                m = regex.search(text)
                if m is None:
                    continue
                try:
                    step = int(float(m.group("step")))
                except (TypeError, ValueError):
                    continue
                t = t or _spool_time(ts)
                groups = m.groupdict()
                if "name" in groups:
                    pairs = [(groups["name"], groups["value"])]
                else:
                    pairs = [(k, v) for k, v in groups.items() if k != "step"]
                for name, value in pairs:
                    if name is None or value is None:
                        continue
                    try:
                        number = float(value)
                    except ValueError:
                        continue
                    rows.append((p.keys[name] if name in p.keys else p.prefix + name, step, number, t))
        return rows

    # -------------------------------------------------------- event files

    def event_files(self, out: OutFiles) -> dict[str, int]:
        found = out.files()
        names = sorted(rel for rel in found if any(glob_match(rel, g) for g in self.spec.tensorboard))
        return {rel: found[rel] for rel in names[:MAX_FILES]}

    def ingest_events(self, out: OutFiles) -> int:
        from fbtui.pipeline.outputs import UnsafeOutput

        added = 0
        sizes = self.event_files(out)
        for rel in sizes:
            if rel in self.broken:
                continue
            if sizes[rel] < 0:
                self.give_up(rel, "not a regular file (a link?): never followed")
                continue
            source = f"tb:{rel}"
            mirror = self.mirror / rel
            have = mirror.stat().st_size if mirror.is_file() else 0
            try:
                new = out.read(rel, have)
            except UnsafeOutput as e:  # a link put where the file was: never followed
                self.give_up(rel, e.message)
                continue
            if new:
                mirror.parent.mkdir(parents=True, exist_ok=True)
                with mirror.open("ab") as f:
                    f.write(new)
            added += self.read_records(rel, source, mirror)
        return added

    def read_records(self, rel: str, source: str, mirror: Path) -> int:
        from tensorboard.compat.proto import event_pb2

        if not mirror.is_file():
            return 0
        entry = self.readers.get(rel)
        if entry is None:
            entry = self.readers[rel] = [_record_reader(mirror), 0]
            committed = self.store.source_offset(self.run_id, self.stage, source)
            while entry[1] < committed:  # a restarted supervisor: skip what is in the store
                data = self._next(entry, rel)
                if data is None:
                    break
        added, rows = 0, []
        while True:
            data = self._next(entry, rel)
            if data is None:
                break
            rows += _scalars(event_pb2.Event.FromString(data))
            if len(rows) >= 20_000:
                added += self.store.add_metrics(self.run_id, rows, stage=self.stage, offset=entry[1], source=source)
                rows = []
        if rows or entry[1] > self.store.source_offset(self.run_id, self.stage, source):
            added += self.store.add_metrics(self.run_id, rows, stage=self.stage, offset=entry[1], source=source)
        return added

    def _next(self, entry: list[Any], rel: str) -> bytes | None:
        """The next whole record, or None: none yet (a partial one waits for its bytes), or the file is
        corrupt here (named, and read no further)."""
        from tensorboard.compat.tensorflow_stub import errors

        reader = entry[0]
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return None
        except errors.DataLossError as e:
            if str(e).startswith(f"{reader.filename} has truncated record in "):  # not a path holding the word
                return None
            self.give_up(rel, f"corrupt record after byte {entry[1]:,} ({_why(e)}): the rest is not read")
            return None
        data = reader.record()
        entry[1] += len(data) + 16  # length, its CRC, the data, its CRC
        return data

    def give_up(self, rel: str, why: str) -> None:
        self.broken.add(rel)
        self.store.note_source(self.run_id, self.stage, f"tb:{rel}", why)

    def finish(self, out: OutFiles | None) -> None:
        """After the stage's last pass: an event file that ends in a partial record says so."""
        if out is None or not self.spec.tensorboard:
            return
        for rel in self.event_files(out):
            entry = self.readers.get(rel)
            mirror = self.mirror / rel
            if rel in self.broken or entry is None or not mirror.is_file():
                continue
            size = mirror.stat().st_size
            if entry[1] < size:
                self.store.note_source(self.run_id, self.stage, f"tb:{rel}",
                                       f"ends in a partial record ({size - entry[1]:,} bytes after byte "
                                       f"{entry[1]:,}): not ingested")


def _why(e: Exception) -> str:
    """`failed event crc32 check`, without the mirror's path the reader puts first."""
    text = str(getattr(e, "message", None) or e)
    return text.split(" ", 1)[1] if text.startswith("/") and " " in text else text


def _record_reader(path: Path) -> Any:
    """TensorBoard's record reader (its pure-Python one: no TensorFlow), over the mirror."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    return PyRecordReader_New(str(path))


def _scalars(event: Any) -> list[tuple[str, int, float | None, float]]:
    """The scalar values of one event: simple_value (tensorboardX, torch's add_scalar) or a
    scalar tensor (TF2-style summaries)."""
    if not event.HasField("summary"):
        return []
    out = []
    for v in event.summary.value:
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            out.append((v.tag, int(event.step), float(v.simple_value), float(event.wall_time)))
        elif kind == "tensor" and not v.tensor.tensor_shape.dim:
            t = v.tensor
            values = list(t.float_val) or list(t.double_val) or list(t.int_val) or list(t.int64_val)
            if not values and t.tensor_content:
                from tensorboard.util import tensor_util

                try:
                    values = [float(tensor_util.make_ndarray(t).item())]
                except (ValueError, TypeError):
                    values = []
            if values:
                out.append((v.tag, int(event.step), float(values[0]), float(event.wall_time)))
    return out
