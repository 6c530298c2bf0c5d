"""The lab's supervisor: a detached process that places queued runs on hosts, starts their stages
in order, follows logs into spool files, ingests metrics by byte offset, and records outcomes.

One per lab (a lock file makes sure): placement needs one view of every host's capacity and one
queue, and one writer of run progress keeps the store simple. It holds no state that matters: everything is in the
store, the spool files and the containers' labels, so a supervisor that is killed is replaced by
the next `fbtui` command and picks up exactly where the last one was.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from fbtui.backends import is_slurm
from fbtui.backends.docker import DockerBackend
from fbtui.errors import FBError
from fbtui.pipeline import containers as ct
from fbtui.pipeline import dispatch, recovery, slurm_stage, suite_runs
from fbtui.pipeline import privileges as pv
from fbtui.pipeline.capacity import capacity_labels, current_user, request_of
from fbtui.pipeline.cleanup import Janitor
from fbtui.pipeline.health import GRACE_DEFAULT, HostHealth, unreachable
from fbtui.pipeline.hosts import Hosts
from fbtui.pipeline.ingest import store_fault
from fbtui.pipeline.paths import lock_path, run_folder
from fbtui.pipeline.placement import Request, Waiting
from fbtui.pipeline.recorded import pipeline_of
from fbtui.pipeline.reload import LabWatch
from fbtui.pipeline.stage import TICK, StageWorker
from fbtui.pipeline.views import HostViews

if TYPE_CHECKING:
    from fbtui.config.models import StageSpec
    from fbtui.lab import Lab
    from fbtui.store import Store

IDLE_EXIT = 3.0
CALL_TIMEOUT = 15  # seconds for one engine call: a hung host is noticed by then, not after a minute

__all__ = ["Supervisor", "ensure_supervisor", "lock_path", "run_folder", "supervisor_alive"]


def supervisor_alive(lab: Lab) -> bool:
    path = lock_path(lab)
    if not path.exists():
        return False
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def ensure_supervisor(lab: Lab) -> None:
    """Start a detached supervisor unless one is alive. It outlives the app and the shell."""
    if supervisor_alive(lab):
        return
    log = lab.root / ".fb" / "supervisor.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        subprocess.Popen([sys.executable, "-m", "fbtui", "--lab", str(lab.root), "supervise"],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                         cwd=lab.root)


class Supervisor:
    def __init__(self, lab: Lab, store: Store) -> None:
        self.lab, self.store = lab, store
        self.hosts = Hosts(lab.config.hosts, lab.root / ".fb" / "tunnels", timeout=CALL_TIMEOUT)
        self.health = HostHealth(self.grace, lambda host: recovery.ping(self, host))
        self.workers: dict[tuple[int, str], StageWorker] = {}
        self.backends: dict[str, Any] = {}  # slurm host -> its backend (slurm_stage.py)
        self.pipelines: dict[int, Any] = {}  # run -> its recorded stages, parsed once
        self.waits: dict[tuple[int, str], str] = {}  # (run, stage) -> the reason last recorded
        self.user = current_user()
        self.invoker = pv.invoking_user(lab.root)  # whose files stage outputs become
        self.copy_back_limit = 16 * 2**20
        self.instance = ct.lab_instance(lab.root)
        self.views = HostViews(self)
        self._lock = threading.Lock()
        self.janitor = Janitor(self)  # containers and volumes whose stage is recorded
        self.labwatch = LabWatch(self)  # lab.yaml edits, applied while running

    # -------------------------------------------------------- the loop

    def serve(self) -> int:
        path = lock_path(self.lab)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another supervisor serves this lab
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        idle_since: float | None = None
        try:
            self.janitor.start()
            self.sweep_secrets()
            while True:
                self.labwatch.check()
                try:
                    active = self.tick()
                except Exception as e:  # a store that cannot take a write (disk full): waited out, never fatal
                    print(f"supervisor: {type(e).__name__}: {e} (retrying)", file=sys.stderr, flush=True)
                    active = 1
                    time.sleep(1)
                if active or any(not w.done for w in self.workers.values()):
                    idle_since = None
                else:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > IDLE_EXIT:
                        self.janitor.stop()
                        self.janitor.sweep()  # the last runs' leftovers, while their hosts' tunnels are open
                        return 0
                time.sleep(TICK)
        finally:
            self.janitor.stop()
            self.hosts.close()
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    def tick(self) -> int:
        runs = self.store.query("SELECT * FROM runs WHERE status IN ('queued', 'running') ORDER BY id")
        waiting: list[tuple[Waiting, dict[str, Any], StageSpec]] = []
        first_of: dict[str, int] = {}  # cache key -> the earliest waiting run that will compute it
        for run in runs:
            try:
                if run["status"] == "queued" and run["cancel_requested"]:
                    slurm_stage.cancel_submitted(self, run["id"])  # its jobs still in Slurm's queue
                    self.store.set_run_status(run["id"], "cancelled", "cancelled before it started")
                    self._skip_rest(run["id"], "cancelled")
                    continue
                recovery.requeue_if_lost(self, run)
                if self.labwatch.blocked(run):  # its host left lab.yaml: the run says so and waits
                    continue
                wants = self.advance(run)
                if wants is not None:
                    w, run_row, spec, shared = wants
                    if shared and shared in first_of:  # one prepare per ablation, even when all start at once
                        self._wait(run_row, spec.name, f"waiting for {spec.name} of #{first_of[shared]} (same inputs)")
                        continue
                    if shared:
                        first_of[shared] = run["id"]
                    waiting.append((w, run_row, spec))
            except Exception as e:
                if run["host"] and unreachable(e):  # a host that does not answer fails no run: it waits
                    self.hosts.forget(run["host"])
                    self.health.failed(run["host"], e)
                    self._wait_run(run, f"waiting: {self.health.reason(run['host'])}")
                elif isinstance(e, FBError) and store_fault(e, self.store.path) is None:
                    self.fail_run(run["id"], e.message)
                else:  # the store or something unforeseen: retried next tick
                    print(f"run {run['id']}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        if waiting:
            self.start_waiting(waiting)
        return len(runs)

    def sweep(self) -> int:
        """Remove this checkout's containers and volumes whose stage is recorded, on the hosts with
        work (a supervisor that died between recording a result and removing them leaves them).
        The janitor does this every few seconds on its own thread; see pipeline/cleanup.py."""
        return self.janitor.sweep()

    def sweep_secrets(self) -> int:
        """Secret files of this checkout's stages that no longer run (a supervisor that died left them)."""
        running = self.store.query("SELECT run_id, name FROM stages WHERE status = 'running' AND host = 'local'")
        keep = {ct.container_name(self.lab.config.name, self.instance, r["run_id"], r["name"]) for r in running}
        return pv.sweep_secrets(ct.container_name(self.lab.config.name, self.instance, 0, "")[:-3], keep)

    def cancel_requested(self, run_id: int) -> bool:
        return bool(self.store.run(run_id)["cancel_requested"])

    # -------------------------------------------------------- advancing a run

    def candidates(self, run: dict[str, Any]) -> list[str]:
        if run["host"]:
            return [run["host"]]  # bound: its stages' outputs live there
        known = self.requested(run)
        answering = [h for h in known if not self.health.lost(h)]  # a lost host's cache hits would bind it again
        return answering or known

    def requested(self, run: dict[str, Any]) -> list[str]:
        """The hosts a run may go to, as launched (those lab.yaml still names)."""
        names = (run["requested_host"] or self.lab.config.defaults.host).split(",")
        return [h for h in names if h in self.lab.config.hosts]

    def advance(self, run: dict[str, Any]) -> tuple[Waiting, dict[str, Any], StageSpec, str | None] | None:
        """Move a run along as far as it goes without starting a container; returns the stage that
        wants a container next (placement decides), or None."""
        project = self.pipelines.get(run["id"])
        if project is None:
            project = self.pipelines[run["id"]] = pipeline_of(self.lab, run)
        specs = {s.name: s for s in project.stages}
        for st in self.store.stages(run["id"]):
            if st["status"] in ("succeeded", "cached", "skipped"):
                continue
            if st["status"] == "running" or slurm_stage.submitted(st):  # a job in Slurm's queue is watched too
                worker = self.workers.get((run["id"], st["name"]))
                if worker is None or (worker.done and self.store.stage(run["id"], st["name"])["status"] in
                                      ("running", "pending")):
                    self.start_worker(run, st, specs[st["name"]])
                return None
            if st["status"] == "lost":
                recovery.refind(self, run, st, specs[st["name"]])
                st = self.store.stage(run["id"], st["name"])
                if st["status"] not in ("failed", "cancelled"):
                    return None  # waiting for its host, or followed again
            if st["status"] == "pending":
                if run["cancel_requested"]:
                    self.store.set_stage_status(run["id"], st["name"], "cancelled", "cancelled")
                    continue
                wants = self.prepare_stage(run, st, specs[st["name"]], project)
                if wants == "next":
                    run = self.store.run(run["id"])  # a cache hit may have bound the run to a host
                    continue
                return wants
            # failed or cancelled: the run ends, no later stage starts
            final = "cancelled" if st["status"] == "cancelled" else "failed"
            self._skip_rest(run["id"], "cancelled" if final == "cancelled" else "skipped")
            if run["status"] == "queued":
                self.store.set_run_status(run["id"], "running")
            self.store.set_run_status(run["id"], final, f"stage {st['name']}: {st['reason'] or st['status']}")
            return None
        if self.store.run(run["id"])["status"] == "queued":  # every stage came from the cache
            self.store.set_run_status(run["id"], "running")
        self.store.set_run_status(run["id"], "succeeded")
        suite_runs.after_success(self.lab, self.store, run)  # lab-wide suites marked auto: for its project
        return None

    def backend(self, host: str) -> Any:
        """The host's backend (fbtui/backends/): a Docker engine, or a Slurm cluster."""
        if is_slurm(self.lab.config.hosts, host):
            return slurm_stage.backend(self, host)
        return DockerBackend(host, self.hosts)

    def start_worker(self, run: dict[str, Any], st: dict[str, Any], spec: StageSpec) -> None:
        kind = slurm_stage.SlurmStageWorker if is_slurm(self.lab.config.hosts, st["host"]) else StageWorker
        worker = self.workers[(run["id"], st["name"])] = kind(self, run, st, spec)
        worker.start()

    def grace(self, host: str) -> float:
        config = self.lab.config.hosts.get(host)
        return config.grace if config is not None else GRACE_DEFAULT

    def _wait_run(self, run: dict[str, Any], reason: str) -> None:
        """Why a run waits, on the stage it waits at (or the run, before its first stage)."""
        st = next((s for s in self.store.stages(run["id"]) if s["status"] in ("pending", "lost")), None)
        if st is not None and st["status"] == "pending":
            self._wait(run, st["name"], reason)
        elif self.waits.get((run["id"], "")) != reason:
            self.waits[(run["id"], "")] = reason
            self.store.update_run(run["id"], reason=reason)

    def _skip_rest(self, run_id: int, status: str) -> None:
        for st in self.store.stages(run_id):
            if st["status"] == "pending":
                self.store.set_stage_status(run_id, st["name"], status, "an earlier stage did not succeed"
                                            if status == "skipped" else "cancelled")

    def _bind(self, run: dict[str, Any], host: str) -> None:
        if run["host"] != host:
            self.store.update_run(run["id"], host=host)
            with self.store.write() as c:
                c.execute("UPDATE stages SET host = ? WHERE run_id = ?", (host, run["id"]))
            run["host"] = host

    def prepare_stage(self, run: dict[str, Any], st: dict[str, Any], spec: StageSpec,
                      project: Any) -> Any:
        """A pending stage: a cache hit ("next"), a wait for the same work under way (None), a
        failure, or the stage asking placement for a container."""
        from fbtui.pipeline.cache import cache_key, find_cached

        stages = {s["name"]: s for s in self.store.stages(run["id"])}
        key = cache_key(self.store, run, spec, stages, project.needs[spec.name])
        if key != st["cache_key"]:
            self.store.update_stage(run["id"], spec.name, cache_key=key)
        only = run["only_stages"].split(",") if run["only_stages"] else None
        left_out = only is not None and spec.name not in only
        hosts = self.candidates(run)
        if key and (left_out or (spec.cache and not run["no_cache"])):
            for host in hosts:
                hit = find_cached(self.store, key, host, run["id"], volume_kept=self.janitor.claim)
                if hit is not None:
                    self._bind(run, host)
                    self.store.copy_stage_results(hit, run["id"], spec.name)
                    self.store.set_stage_status(run["id"], spec.name, "cached",
                                                f"same inputs as run {hit['run_id']}", cached_from=hit["id"],
                                                out=hit["out"])
                    if run["eval_of"] and not left_out:  # the same model under the same suite: reused
                        self.store.credit_evaluation(run["id"], spec.name, run["eval_of"], run["id"])
                    return "next"
            busy = self.store.query(
                "SELECT run_id FROM stages WHERE cache_key = ? AND (status = 'running' OR (status = 'pending' AND "
                "container_id IS NOT NULL)) AND run_id != ? AND host IN "
                f"({','.join('?' * len(hosts))}) LIMIT 1", (key, run["id"], *hosts))
            if busy:  # the same work is under way for another run: wait and reuse it (one prepare per ablation)
                self._wait(run, spec.name, f"waiting for {spec.name} of #{busy[0]['run_id']} (same inputs)")
                return None
        if left_out:
            self.finish_stage(run["id"], spec.name, "failed",
                              f"stage {spec.name} was left out (--stages) and no earlier result on "
                              f"{' or '.join(hosts)} matches its inputs: include it in --stages")
            return None  # the next tick ends the run
        shared = key if key and spec.cache and not run["no_cache"] else None  # reusable by same-input stages
        return Waiting(run["id"], spec.name, request_of(spec), hosts), run, spec, shared

    def _wait(self, run: dict[str, Any], stage: str, reason: str) -> None:
        """Record why a stage (and a run not started yet) waits; written only when it changes."""
        if self.waits.get((run["id"], stage)) == reason:
            return
        self.waits[(run["id"], stage)] = reason
        self.store.update_stage(run["id"], stage, reason=reason)
        if run["status"] == "queued":
            self.store.update_run(run["id"], reason=reason)

    def start_waiting(self, waiting: list[tuple[Waiting, dict[str, Any], StageSpec]]) -> None:
        dispatch.start_waiting(self, waiting)

    def start_stage(self, run: dict[str, Any], st: dict[str, Any], spec: StageSpec, host: str,
                    gpus: tuple[int, ...], req: Request) -> None:
        project = self.pipelines.get(run["id"]) or pipeline_of(self.lab, run)
        remote = host != "local"
        client = self.hosts.client(host)
        ct.check_gpus(client, host, spec)
        if remote:
            out = ct.volume_name(self.lab.config.name, self.instance, run["id"], spec.name)
        else:
            out = str(run_folder(self.lab, run["id"]) / spec.name / "out")
        values, missing = ct.host_env(spec.secrets)
        if missing:  # the supervisor has the environment of the fbtui command that started it
            self.finish_stage(run["id"], spec.name, "failed",
                              f"stage {spec.name} needs {', '.join(missing)} in the supervisor's environment "
                              "(export it where fbtui runs; a supervisor started without it must end first)")
            return
        stages = {s["name"]: s for s in self.store.stages(run["id"])}
        inputs = {dep: stages[dep]["out"] for dep in project.needs[spec.name]}
        image = st["image"] or run["image"]
        gpu_request: list[int] | int = list(gpus) if gpus else req.gpu_count
        spec_on_host = ct.StageSpecOnHost(
            lab=self.lab.config.name, run_id=run["id"], project=run["project"], stage=spec, image=image,
            host_name=host, host=self.lab.config.hosts[host], config_yaml=run["config"], out=out,
            inputs={k: v for k, v in inputs.items() if v}, gpus=gpu_request, remote=remote, instance=self.instance,
            cpus=req.cpus, memory=req.memory, extra_labels=capacity_labels(req, gpus, self.instance, self.user),
            invoker=self.invoker, overlay=self.store.blob(run["suite_code"]) if run.get("suite_code") else None)
        try:
            cid = self.backend(host).start(spec_on_host, values)
        except ct.StageSetupError as e:
            self.store.update_stage(run["id"], spec.name, out=out)
            self.finish_stage(run["id"], spec.name, "failed", e.message)
            return
        if run["status"] == "queued":  # its first container: the run starts now, on this host
            self._bind(run, host)
            self.store.set_run_status(run["id"], "running", "")
            run["status"] = "running"
        gpu_label = ",".join(map(str, gpus)) if gpus else (str(req.gpu_count) if req.gpu_count else None)
        self.store.set_stage_status(run["id"], spec.name, "running", "", container_id=cid, out=out, gpus=gpu_label,
                                    image=image, command=json.dumps(spec.run_command()), host=host,
                                    run_as=pv.user_label(spec_on_host.run_as))
        self.waits.pop((run["id"], spec.name), None)

    def finish_stage(self, run_id: int, stage: str, status: str, reason: str | None, *, remove: str | None = None,
                     **fields: Any) -> None:
        with self._lock:  # a stage ends once, whoever notices first
            if self.store.stage(run_id, stage)["status"] in ("pending", "running", "lost"):
                self.store.set_stage_status(run_id, stage, status, reason, **fields)
        host = self.store.stage(run_id, stage)["host"]
        if remove and status != "failed" and not is_slurm(self.lab.config.hosts, host):  # failed: kept (keep_failed)
            try:
                self.hosts.client(host).api.remove_container(remove, force=True)
            except Exception:
                pass  # reconciliation removes finished containers later

    def fail_run(self, run_id: int, reason: str) -> None:
        run = self.store.run(run_id)
        for st in self.store.stages(run_id):
            if st["status"] in ("running", "lost"):
                return  # its watcher (or its host's return) decides
        self._skip_rest(run_id, "skipped")
        if run["status"] in ("queued", "pending"):
            self.store.set_run_status(run_id, "running")
        if self.store.run(run_id)["status"] == "running":
            self.store.set_run_status(run_id, "failed", reason)
