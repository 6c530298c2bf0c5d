"""One running stage watched to its end: its log spooled, its metrics ingested, its timeout and
cancellation applied, its exit and artifacts judged, its evaluation recorded."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.backends.base import JobState
from fbtui.pipeline import containers as ct
from fbtui.pipeline import privileges as pv
from fbtui.pipeline import recovery
from fbtui.pipeline.artifacts import Collected, TooManyFiles, collect_local, collect_remote
from fbtui.pipeline.degraded import StoreHealth
from fbtui.pipeline.health import unreachable
from fbtui.pipeline.ingest import ingest_bytes, ingest_file, waiting_points
from fbtui.pipeline.logs import follow, read_spool
from fbtui.pipeline.metric_sources import LocalOut, OutFiles, RemoteOut, SourceIngest
from fbtui.pipeline.outputs import UnsafeOutput, read_output
from fbtui.pipeline.paths import run_folder

if TYPE_CHECKING:
    import docker

    from fbtui.config.models import StageSpec
    from fbtui.pipeline.supervisor import Supervisor

TICK = 0.5
REMOTE_LIST = 10.0  # seconds between listings of a remote stage's event files (a tar stream each)
LOG_TAIL_IN_REASON = 10
MAX_REPORT = 16 * 2**20  # an evaluation report larger than this is not parsed


class StageWorker(threading.Thread):
    """Watches one running stage to its end: log, metrics, timeout, exit, artifacts."""

    def __init__(self, sup: Supervisor, run: dict[str, Any], stage: dict[str, Any], spec: StageSpec) -> None:
        super().__init__(daemon=True, name=f"r{run['id']}-{stage['name']}")
        self.sup, self.run_row, self.stage_row, self.spec = sup, run, stage, spec
        self.run_id, self.name, self.host = run["id"], stage["name"], stage["host"]
        self.folder = run_folder(sup.lab, self.run_id)
        self.spool = self.folder / f"{self.name}.log"
        self.remote = self.host != "local"
        self.done = False
        # the store's side: a store that cannot take the stage's progress makes it degraded, never failed
        self.store_state = StoreHealth(sup.store, self.run_id, self.name, stage.get("degraded"), self.waiting_text)
        self.recorded: set[tuple[str, object]] = set()  # outcome parts already in the store (a retry skips them)
        self.unread = (0, 0)  # a remote stage's last read: (offset, whole lines past it)
        self.lost = False  # its host stopped answering past its grace: the container is left as it is
        self.collected: Collected | None = None  # its artifacts as concluded: a retried conclude keeps them
        self.stop_logs = threading.Event()
        # stdout patterns and event files (#13): metric_sources.py
        self.sources = SourceIngest(sup.store, self.run_id, self.name, spec.metrics, self.spool,
                                    self.folder / self.name / "tb")
        self.remote_listed = 0.0  # a remote stage's event files are listed every REMOTE_LIST s
        self.backend = sup.backend(self.host)  # start, state, cancel, kill (fbtui/backends/)

    # -------------------------------------------------------- plumbing

    def client(self) -> docker.DockerClient:
        return self.sup.hosts.client(self.host)

    def ingest(self, cid: str, final: bool = False) -> None:
        if not self.spec.metrics.jsonl:
            pass
        elif self.remote:
            offset = int(self.sup.store.stage(self.run_id, self.name)["metrics_offset"] or 0)
            data = ct.read_from(self.client(), cid, "/fb/out/metrics.jsonl", offset) or b""
            self.unread = (offset, data.count(b"\n"))
            ingest_bytes(self.sup.store, self.run_id, self.name, data, offset)
        else:
            ingest_file(self.sup.store, self.run_id, self.name, Path(self.stage_row["out"]) / "metrics.jsonl")
        if self.sources.wanted:
            self.sources.ingest(self.out_files(cid, final))

    def out_files(self, cid: str, final: bool = False) -> OutFiles | None:
        """Where the stage's event files are read from (None: a remote one listed too recently)."""
        if not self.spec.metrics.tensorboard:
            return None
        if not self.remote:
            return LocalOut(Path(self.stage_row["out"]))
        if not final and time.time() - self.remote_listed < REMOTE_LIST:
            return None
        self.remote_listed = time.time()
        return RemoteOut(self.client(), cid, self.spec.metrics.tensorboard)

    def ingest_now(self, cid: str, final: bool = False) -> bool:
        """One ingest pass. A store that cannot take the points degrades the stage (False: they wait
        in the file past the committed offset for the next pass); one that takes them again clears
        it. Other errors are raised."""
        try:
            self.ingest(cid, final)
        except UnsafeOutput:
            raise
        except Exception as e:
            if not self.store_state.failed(e):
                raise
            return False
        self.store_state.ok()
        return True

    def waiting_text(self) -> str:
        """What waits for the store, for the supervisor's log."""
        if self.remote:
            offset, n = self.unread
        else:
            row = self.sup.store.stage(self.run_id, self.name)
            offset, n = int(row["metrics_offset"] or 0), waiting_points(row) or 0
        return f"{n:,} metric point{'s' if n != 1 else ''} wait past byte {offset:,} of its metrics.jsonl"

    def record_outcome(self, record: Callable[[], None]) -> None:
        """Record the stage's outcome, retrying while the store cannot take it (the container is kept
        until then): a stage is never failed because the store could not record it."""
        while True:
            try:
                record()
                break
            except Exception as e:
                if not self.store_state.failed(e, "its outcome and points"):
                    raise
            self.store_state.pause()
        self.store_state.caught_up()  # the outcome's write cleared `degraded` with it

    def follow_logs(self, cid: str, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                follow(self.client(), cid, self.spool, stop=stop)
            except Exception:
                time.sleep(1)
                continue
            try:
                if self.backend.states([cid])[cid].phase != "running":
                    return
            except Exception:
                time.sleep(1)

    # -------------------------------------------------------- the watch

    def run(self) -> None:
        try:
            while True:
                try:
                    self._run()
                    break
                except Exception as e:  # a host that stops answering mid-call: the watch starts over
                    self.stop_logs.set()  # the next watch follows the log from where the spool ends
                    if not unreachable(e):
                        raise
                    if self._unreachable(e):
                        break
                    time.sleep(TICK)
        except Exception as e:  # never let a watcher die silently: the stage fails with the reason
            self.sup.finish_stage(self.run_id, self.name, "failed", f"supervisor error: {type(e).__name__}: {e}")
        finally:
            if not self.lost:
                self.cleanup()
            self.done = True

    def _unreachable(self, e: BaseException) -> bool:
        """A call to the host failed: its clock runs; past its grace the stage is lost (True)."""
        self.sup.hosts.forget(self.host)
        self.sup.health.failed(self.host, e)
        if not self.sup.health.lost(self.host):
            return False
        self.lost = True
        recovery.mark_lost(self.sup, self.run_id, self.name, self.host)
        return True

    def cleanup(self) -> None:
        """The stage is over: its secret files go, and no setuid file it made stays in .fb/runs."""
        if self.remote:
            return
        try:
            pv.remove_secrets(ct.container_name(self.sup.lab.config.name, self.sup.instance, self.run_id, self.name))
            if self.stage_row["out"]:
                pv.strip_setid(Path(self.stage_row["out"]))
        except Exception:
            pass  # best effort: the next supervisor sweeps secrets again

    def _run(self) -> None:
        cid = self.stage_row["container_id"]
        started = self.stage_row["started_at"] or time.time()
        stop = self.stop_logs = threading.Event()
        logs = threading.Thread(target=self.follow_logs, args=(cid, stop), daemon=True)
        logs.start()
        timed_out = False
        while True:
            try:
                state = self.backend.states([cid])[cid]
                self.sup.health.ok(self.host)
            except Exception as e:
                if self._unreachable(e):
                    stop.set()
                    return
                time.sleep(TICK)
                continue
            if state.phase == "gone":
                stop.set()
                self.sup.finish_stage(self.run_id, self.name, "failed",
                                      "the stage's container disappeared (removed while it ran)")
                return
            try:
                if self.store_state.due():  # a store that keeps failing is retried at a growing pace
                    self.ingest_now(cid)
            except UnsafeOutput as e:  # a link or FIFO where metrics go: the stage ends here
                stop.set()
                self._kill(cid)
                self.record_outcome(lambda why=e.message: self._finish("failed", why, remove=cid))
                return
            except Exception as e:  # not the store's: retried next tick
                if unreachable(e) and self._unreachable(e):  # the host's clock runs, as for every call
                    stop.set()
                    return
            if state.phase != "running":
                break
            if self.spec.timeout and time.time() - started > self.spec.timeout and not timed_out:
                timed_out = True
                self.backend.kill(cid)
            if self.sup.cancel_requested(self.run_id):
                self.backend.cancel(cid)
            time.sleep(TICK)
        logs.join(timeout=30)
        stop.set()
        try:  # every point in before the outcome: a store with no room is waited out, never a failure
            while not self.ingest_now(cid, final=True):
                self.store_state.pause()
            try:
                self.sources.finish(self.out_files(cid, final=True))
            except Exception as e:  # a note about a partial record is no reason to fail or stall a stage
                print(f"run {self.run_id} {self.name}: event files not checked: {e}", file=sys.stderr, flush=True)
        except UnsafeOutput as e:
            why = e.message
            self.record_outcome(lambda: self._finish("failed", why, remove=cid))
            return
        self.record_outcome(lambda: self.conclude(cid, state, timed_out))

    def _finish(self, status: str, reason: str | None, **fields: Any) -> None:
        """The stage's outcome, `degraded` cleared in the same write."""
        self.sup.finish_stage(self.run_id, self.name, status, reason, degraded=None, **fields)

    def _kill(self, cid: str) -> None:
        try:
            self.backend.kill(cid)
        except Exception:
            pass  # gone already

    def conclude(self, cid: str, state: JobState, timed_out: bool) -> None:
        code = -1 if state.exit_code is None else state.exit_code
        oom = state.oom
        if self.sup.cancel_requested(self.run_id):
            self._finish("cancelled", "cancelled", exit_code=code, remove=cid)
            return
        if timed_out:
            reason = f"timed out after {self.spec.timeout:g} s (the stage's timeout: in project.yaml)"
            self._finish("failed", reason, exit_code=code, remove=cid)
            return
        if oom:
            limit = self.spec.resources.memory
            reason = "killed: out of memory" + (f" (memory limit {limit / 2**20:.0f} MiB)" if limit else "")
            self._finish("failed", reason, exit_code=code, remove=cid)
            return
        if code != 0:
            # the end of the spool only: a stage may have logged gigabytes
            start = max(0, self.spool.stat().st_size - 64 * 1024) if self.spool.exists() else 0
            tail, _ = read_spool(self.spool, start=start)
            last = "\n".join(tail[1 if start else 0:][-LOG_TAIL_IN_REASON:])
            why = {137: " (killed)", 139: " (segmentation fault)", 143: " (terminated)"}.get(code, "")
            reason = f"exit code {code}{why}" + (f"; last lines:\n{last}" if last else "")
            self._finish("failed", reason, exit_code=code, remove=cid)
            return
        try:  # a link, FIFO or device where artifacts go, or a folder of too many files, ends it here
            found = self.collected = self.collected or self.artifacts(cid)
        except (UnsafeOutput, TooManyFiles) as e:
            self._finish("failed", e.message, exit_code=code, remove=cid)
            return
        missing = found.missing
        if missing:
            reason = f"declared artifact{'s' if len(missing) > 1 else ''} not written: {', '.join(missing)}"
            self._finish("failed", reason, exit_code=code, remove=cid)
            return
        self.record_artifacts(found)
        self._finish("succeeded", None, exit_code=0, remove=cid)

    def artifacts(self, cid: str) -> Collected:
        """The declared files, listed and hashed (artifacts.py): a remote stage's through its container."""
        if self.remote:
            return collect_remote(self.client(), cid, self.outputs(), self.folder / self.name / "out",
                                  self.sup.copy_back_limit)
        return collect_local(Path(self.stage_row["out"]), self.outputs())

    def outputs(self) -> list[str]:
        """The declared artifacts, and the evaluation report of a stage that declares `evaluates:`."""
        extra = [self.spec.evaluates.results] if self.spec.evaluates is not None else []
        return list(dict.fromkeys([*self.spec.artifacts, *extra]))

    def record_artifacts(self, found: Collected) -> None:
        """One row per file; `recorded` skips what a try the store failed later on wrote already."""
        for rel, (digest, size) in found.files.items():
            if ("artifact", rel) not in self.recorded:
                self.sup.store.add_artifact(self.run_id, self.name, rel, size, digest, host=self.host)
                self.recorded.add(("artifact", rel))
        report = self.spec.report_file()
        if report in found.files and found.files[report][1] <= MAX_REPORT:  # a larger one is not parsed
            self.record_evaluation(read_output(found.root, report, cap=MAX_REPORT) or b"")

    def record_evaluation(self, data: bytes) -> None:
        """An evaluation report carries its suite's fingerprint: keep it, so only results under one
        fingerprint are ever compared."""
        try:
            report = json.loads(data or b"{}")
        except ValueError:
            return
        if isinstance(report, dict) and report.get("fingerprint"):
            fingerprint, results = str(report["fingerprint"]), report.get("results") or {}
            covers = report.get("covers") if isinstance(report.get("covers"), dict) else None
            run = self.sup.store.run(self.run_id)
            source = run["eval_of"]
            # a re-evaluation brings the earlier run up to the current suite (or scores it on a lab-wide one)
            for run_id in (self.run_id, source) if source else (self.run_id,):
                if ("evaluation", run_id) not in self.recorded:
                    self.sup.store.add_evaluation(run_id, self.name, fingerprint, results, covers=covers,
                                                  suite=run.get("suite"),
                                                  made_by_run=self.run_id if run_id != self.run_id else None)
                    self.recorded.add(("evaluation", run_id))
