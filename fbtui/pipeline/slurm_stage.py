"""A stage on a `kind: slurm` host (#15): submitted as a batch job as soon as its predecessors are
done (Slurm places it, fbtui does not), watched through `scontrol`, its log and metrics read from
the shared path by offset, its end named from the job's outcome file and Slurm's job state.

While Slurm holds the job, the stage stays `pending` with the job id recorded and Slurm's reason
(`Resources`, `Priority`, ...) as its wait reason; the run stays `queued` until a job starts. A
supervisor killed at any point finds the job again from the store (or by its name, if it died
between the submit and the record) and goes on reading at the spool's and the metrics' offsets."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.backends import slurm_backend
from fbtui.backends.base import JobState
from fbtui.backends.slurm import SlurmError
from fbtui.backends.slurm_job import read_outcome
from fbtui.errors import FBError
from fbtui.pipeline import containers as ct
from fbtui.pipeline import privileges as pv
from fbtui.pipeline.capacity import capacity_labels
from fbtui.pipeline.health import unreachable
from fbtui.pipeline.ingest import store_fault
from fbtui.pipeline.recorded import pipeline_of
from fbtui.pipeline.stage import TICK, StageWorker

if TYPE_CHECKING:
    from fbtui.backends.slurm import SlurmBackend
    from fbtui.config.models import StageSpec
    from fbtui.pipeline.placement import Request
    from fbtui.pipeline.supervisor import Supervisor

COPY_CAP = 16 * 2**20  # log bytes copied per pass; the rest comes with the next


def stage_folder(sup: Supervisor, host: str, run_id: int, stage: str) -> Path:
    """<shared>/<lab>-<instance>/r<run>/<stage>: this checkout's, never another's (run ids restart per store)."""
    settings = sup.lab.config.hosts[host].slurm
    assert settings is not None
    return Path(settings.shared) / f"{sup.lab.config.name}-{sup.instance}" / f"r{run_id}" / stage


def backend(sup: Supervisor, host: str) -> SlurmBackend:
    """The host's backend, made again when lab.yaml's settings for it changed (the supervisor reloads it)."""
    found = sup.backends.get(host)
    if found is None or found.s != sup.lab.config.hosts[host].slurm:
        found = sup.backends[host] = slurm_backend(sup.lab.config.hosts, host)
    return found


def submitted(st: dict[str, Any]) -> bool:
    """A pending stage whose job Slurm holds (its id recorded)."""
    return st["status"] == "pending" and bool(st["container_id"])


def submit_or_wait(sup: Supervisor, run: dict[str, Any], spec: StageSpec, host: str, req: Request) -> None:
    """Submit; a controller that does not answer makes the stage wait (its host's clock runs)."""
    try:
        submit_stage(sup, run, sup.store.stage(run["id"], spec.name), spec, host, req)
    except Exception as e:
        if unreachable(e):
            sup.health.failed(host, e)
            sup._wait(run, spec.name, f"waiting: {sup.health.reason(host)}")
        elif isinstance(e, FBError) and store_fault(e, sup.store.path) is None:
            sup.finish_stage(run["id"], spec.name, "failed", e.message)
        else:
            print(f"run {run['id']}: {type(e).__name__}: {e}", flush=True)


def submit_stage(sup: Supervisor, run: dict[str, Any], st: dict[str, Any], spec: StageSpec, host: str,
                 req: Request) -> None:
    """Write the stage's folder on the shared path and hand its job to Slurm."""
    project = sup.pipelines.get(run["id"]) or pipeline_of(sup.lab, run)
    values, missing = ct.host_env(spec.secrets)
    if missing:
        sup.finish_stage(run["id"], spec.name, "failed",
                         f"stage {spec.name} needs {', '.join(missing)} in the supervisor's environment")
        return
    name = ct.container_name(sup.lab.config.name, sup.instance, run["id"], spec.name)
    b = backend(sup, host)
    folder = stage_folder(sup, host, run["id"], spec.name)
    job_id = b.find(name) if folder.exists() else None  # killed between the submit and its record
    if job_id is None:
        fresh_folder(folder)
        run_as = pv.stage_user(spec, sup.invoker, rootless=False)
        pv.prepare_out(folder / "out", run_as, sup.invoker, stop_at=folder.parent.parent)
        (folder / "config.yaml").write_text(run["config"])
        overlay = sup.store.blob(run["suite_code"]) if run.get("suite_code") else None
        if overlay is not None:
            with tarfile.open(fileobj=io.BytesIO(overlay)) as tar:
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python < 3.10.12: none
                tar.extractall(folder / "suite", **safe)  # type: ignore[arg-type]
        stages = {s["name"]: s for s in sup.store.stages(run["id"])}
        inputs = {dep: stages[dep]["out"] for dep in project.needs[spec.name] if stages[dep]["out"]}
        image, pull = node_image(sup, run, st)
        on_host = ct.StageSpecOnHost(
            lab=sup.lab.config.name, run_id=run["id"], project=run["project"], stage=spec, image=image,
            host_name=host, host=sup.lab.config.hosts[host], config_yaml=run["config"], out=str(folder / "out"),
            inputs=inputs, gpus=req.gpu_count, instance=sup.instance, cpus=req.cpus, memory=req.memory,
            extra_labels=capacity_labels(req, (), sup.instance, sup.user), invoker=sup.invoker, overlay=overlay,
            run_as=run_as, pull=pull)
        job_id = b.start(on_host, values)
    sup._bind(run, host)
    sup.store.update_stage(run["id"], spec.name, container_id=job_id, out=str(folder / "out"), host=host,
                           image=st["image"] or run["image"], command=json.dumps(spec.run_command()),
                           reason=f"submitted to Slurm as job {job_id}")
    if run["status"] == "queued":
        sup.store.update_run(run["id"], reason=f"stage {spec.name}: submitted to Slurm as job {job_id}")
    sup.waits.pop((run["id"], spec.name), None)
    sup.start_worker(run, sup.store.stage(run["id"], spec.name), spec)


def fresh_folder(folder: Path) -> None:
    """A folder left by an earlier incarnation of this store (run ids restart) is moved aside, never mixed in."""
    if folder.exists() or folder.is_symlink():
        aside = folder.with_name(f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(folder), str(aside))
    folder.mkdir(parents=True)


def node_image(sup: Supervisor, run: dict[str, Any], st: dict[str, Any]) -> tuple[str, bool]:
    """What the node's runtime runs, and whether it pulls it: the image's reference in the lab
    registry where there is one (the launch pushed it there), else its tag (on the Slurm host's `engine`)."""
    image = st["image"] or run["image"]
    registry = sup.lab.config.registry
    if registry is None:
        return image, False
    repo, _, tag = image.rpartition(":")
    return f"{registry.address}/{repo}:{tag}", True


def jobs_of(sup: Supervisor, host: str) -> int:
    """This checkout's jobs on a Slurm host that have not ended (queued in Slurm or running)."""
    return int(sup.store.query(
        "SELECT COUNT(*) AS n FROM stages WHERE host = ? AND container_id IS NOT NULL AND status IN "
        "('pending', 'running', 'lost')", (host,))[0]["n"])


def cluster_with_room(sup: Supervisor, hosts: list[str]) -> str | None:
    """The first of these Slurm hosts under its `slots` cap (none: no cap; Slurm queues the rest)."""
    for h in hosts:
        cap = sup.lab.config.hosts[h].slots
        if cap is None or jobs_of(sup, h) < cap:
            return h
    return None


def full_reason(sup: Supervisor, hosts: list[str]) -> str:
    return "; ".join(f"{h} has {jobs_of(sup, h)} of its {sup.lab.config.hosts[h].slots} jobs (slots in lab.yaml)"
                     for h in hosts) or "no host answers"


def cancel_submitted(sup: Supervisor, run_id: int) -> None:
    """A run cancelled before any of its jobs started: its jobs leave Slurm's queue too."""
    for st in sup.store.stages(run_id):
        if submitted(st) and st["host"] in sup.lab.config.hosts:
            try:
                backend(sup, st["host"]).cancel(st["container_id"])
            except SlurmError as e:
                print(f"run {run_id}: stage {st['name']}: scancel failed: {e.message}", flush=True)


class SlurmStageWorker(StageWorker):
    """Watches one Slurm job to its end: its wait reason, its start, log, metrics, timeout, outcome."""

    def __init__(self, sup: Supervisor, run: dict[str, Any], stage: dict[str, Any], spec: StageSpec) -> None:
        super().__init__(sup, run, stage, spec)
        self.remote = False  # its files are on the shared path, read here like a local stage's
        self.job = str(stage["container_id"])
        self.folder_on_shared = Path(stage["out"]).parent
        self.cancel_sent = False
        self.slurm_state: JobState | None = None

    def cleanup(self) -> None:
        if self.stage_row["out"]:
            pv.strip_setid(Path(self.stage_row["out"]))

    def copy_log(self, final: bool = False) -> None:
        """The job's `log` onto the spool from where the spool ends: both are the same bytes."""
        src = self.folder_on_shared / "log"
        have = self.spool.stat().st_size if self.spool.exists() else 0
        try:
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return
        with os.fdopen(fd, "rb") as f:
            if not os.path.stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return
            f.seek(have)
            data = f.read(COPY_CAP)
        cut = len(data) if final else data.rfind(b"\n") + 1
        if cut:
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            with self.spool.open("ab") as out:
                out.write(data[:cut] if data[:cut].endswith(b"\n") or not final else data[:cut] + b"\n")

    def _run(self) -> None:
        started = self.sup.store.stage(self.run_id, self.name)["started_at"]
        timed_out = False
        while True:
            try:
                state = self.backend.states([self.job])[self.job]
                self.sup.health.ok(self.host)
            except SlurmError as e:
                if e.unreachable and self.sup.store.stage(self.run_id, self.name)["status"] == "running":
                    raise  # the health clock decides when it is lost (StageWorker.run)
                self.sup._wait(self.sup.store.run(self.run_id), self.name, f"waiting: {e.message}")
                time.sleep(TICK * 4)
                continue
            self.slurm_state = state
            outcome = read_outcome(self.folder_on_shared)
            if state.phase == "pending" and outcome is None:
                why = f"waiting in Slurm's queue: {state.reason or 'not scheduled yet'} (job {self.job})"
                self.sup._wait(self.sup.store.run(self.run_id), self.name, why)
            elif started is None:
                started = self._job_started(state)
            self.copy_log()
            if started is not None:
                try:
                    if self.store_state.due():
                        self.ingest_now("")
                except Exception as e:
                    if unreachable(e):
                        raise
            if outcome is not None or state.phase in ("done", "gone"):
                break
            if self.spec.timeout and started and time.time() - started > self.spec.timeout and not timed_out:
                timed_out = True
                self.backend.cancel(self.job)
            if self.sup.cancel_requested(self.run_id) and not self.cancel_sent:
                self.cancel_sent = True
                self.backend.cancel(self.job)
            time.sleep(TICK)
        state = self.final_state(state)
        self.copy_log(final=True)
        if started is None:  # it ended before this watcher saw it run (a fast job, or one cancelled while queued)
            self._job_started(state)
        while not self.ingest_now("", final=True):
            self.store_state.pause()
        try:
            self.sources.finish(self.out_files("", final=True))
        except Exception as e:
            print(f"run {self.run_id} {self.name}: event files not checked: {e}", flush=True)
        self.record_outcome(lambda: self.conclude_job(state, timed_out))

    def final_state(self, state: JobState, bound: float = 15.0) -> JobState:
        """The outcome file is written just before the job ends: Slurm's last word (COMPLETED,
        CANCELLED, ...) names the end, so wait a little for it."""
        deadline = time.monotonic() + bound
        while state.phase not in ("done", "gone") and time.monotonic() < deadline:
            time.sleep(TICK)
            try:
                state = self.backend.states([self.job])[self.job]
            except SlurmError:
                break
        return state

    def _job_started(self, state: JobState) -> float:
        """The job runs: the stage and (on its first stage) the run are running now."""
        now = time.time()
        run = self.sup.store.run(self.run_id)
        with self.sup._lock:
            if self.sup.store.stage(self.run_id, self.name)["status"] == "pending":
                node = f" on node {state.node}" if state.node else ""
                self.sup.store.set_stage_status(self.run_id, self.name, "running", f"Slurm job {self.job}{node}")
        if run["status"] == "queued":
            self.sup.store.set_run_status(self.run_id, "running", "")
        return now

    def conclude_job(self, state: JobState, timed_out: bool) -> None:
        outcome = read_outcome(self.folder_on_shared)
        job = f"Slurm job {self.job}" + (f" on node {state.node}" if state.node else "")
        if self.sup.cancel_requested(self.run_id):
            self._finish("cancelled", "cancelled")
            return
        if timed_out:
            self._finish("failed", f"timed out after {self.spec.timeout:g} s (the stage's timeout: in project.yaml)")
            return
        if outcome is None:  # the job ended without its script's word: Slurm's state says how
            if state.state == "CANCELLED":
                why = f"{job} was cancelled outside fbtui (scancel, or an administrator); Slurm: CANCELLED"
            elif state.state == "FAILED" and not self.folder_on_shared.joinpath("log").exists() and \
                    not self.setup_error():  # the script could not even enter its folder
                why = (f"{job} failed before its container was created: is the shared path "
                       f"{self.folder_on_shared.parents[2]} mounted at that path on node {state.node or '?'}? "
                       f"(Slurm: FAILED, exit code {state.exit_code})")
            elif state.phase == "gone":
                why = f"{job} left Slurm's records without an outcome file in {self.folder_on_shared}"
            else:
                why = f"{job} ended: {state.reason}" + (f", exit code {state.exit_code}" if state.exit_code else "")
            self._finish("failed", why, exit_code=state.exit_code)
            return
        code, oom = int(outcome.get("exit", -1) or 0), bool(outcome.get("oom"))
        setup = self.setup_error()
        if code == 125 and setup:
            self._finish("failed", f"{job}: the stage's container did not start: {setup}", exit_code=code)
            return
        if state.state == "CANCELLED" and code:
            self._finish("failed", f"{job} was cancelled outside fbtui (scancel, or an administrator); its "
                                   f"container was stopped (exit code {code}); Slurm: CANCELLED", exit_code=code)
            return
        if state.state in ("TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY") and code and not oom:
            self._finish("failed", f"{job}: {state.reason} (exit code {code})", exit_code=code)
            return
        self.conclude("", JobState("done", exit_code=code, oom=oom), False)

    def setup_error(self) -> str:
        try:
            text = (self.folder_on_shared / "setup.err").read_bytes()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        return lines[-1][:300] if lines else ""
