"""The lab's supervisor: a detached process that places queued runs on hosts, starts their stages
in order, follows logs into spool files, ingests metrics by byte offset, and records outcomes.

One per lab (a lock file makes sure): placement needs one view of every host's slots, and one
writer of run progress keeps the store simple. It holds no state that matters: everything is in the
store, the spool files and the containers' labels, so a supervisor that is killed is replaced by
the next `fbtui` command and picks up exactly where the last one was.
"""

from __future__ import annotations

import fcntl
import json
import operator
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError
from fbtui.pipeline import containers as ct
from fbtui.pipeline.hosts import Hosts
from fbtui.pipeline.logs import follow, read_spool
from fbtui.pipeline.recorded import pipeline_of

if TYPE_CHECKING:
    import docker

    from fbtui.config.models import StageSpec
    from fbtui.lab import Lab
    from fbtui.store import Store

TICK = 0.5
HOST_LOST_AFTER = 20.0  # seconds of failed calls before a host's stages are declared lost
IDLE_EXIT = 3.0
LOG_TAIL_IN_REASON = 10


def run_folder(lab: Lab, run_id: int) -> Path:
    return lab.root / ".fb" / "runs" / str(run_id)


def lock_path(lab: Lab) -> Path:
    return lab.root / ".fb" / "supervisor.lock"


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


_POINT = operator.itemgetter("key", "step", "value", "t")


def parse_metric_lines(data: bytes) -> tuple[list[tuple[str, int, float | None, float]], int, int]:
    """Whole JSON lines -> rows; returns (rows, bytes consumed, malformed lines)."""
    end = data.rfind(b"\n") + 1
    if not end:
        return [], 0, 0
    lines = [x for x in data[:end].split(b"\n") if x.strip()]
    try:  # one C call for the whole batch; a bad line sends it down the careful path
        points = json.loads(b"[" + b",".join(lines) + b"]")
        rows = list(map(_POINT, points))  # C-level field picking: the report() format as written
        return rows, end, 0
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    rows, bad = [], 0
    for line in lines:
        try:
            d = json.loads(line)
            value = d["value"]  # null: a NaN or inf that JSON cannot hold; kept as a gap
            rows.append((str(d["key"]), int(d["step"]), None if value is None else float(value),
                         float(d.get("t") or 0.0)))
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
    return rows, end, bad


INGEST_CHUNK = 8 * 2**20


def ingest_bytes(store: Store, run_id: int, stage: str, data: bytes, offset: int) -> int:
    """Ingest whole lines of `data` (which starts at byte `offset` of the file), chunk by chunk,
    each chunk's rows and new offset in one transaction. Returns the points added."""
    added, start = 0, 0
    while start < len(data):
        chunk = data[start:start + INGEST_CHUNK]
        rows, used, _bad = parse_metric_lines(chunk)
        if not used:
            break
        start += used
        added += store.add_metrics(run_id, rows, stage=stage, offset=offset + start)
    return added


def ingest_file(store: Store, run_id: int, stage: str, path: Path) -> int:
    """Ingest what a local metrics file holds past the stage's committed offset."""
    if not path.exists():
        return 0
    offset = int(store.stage(run_id, stage)["metrics_offset"] or 0)
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    return ingest_bytes(store, run_id, stage, data, offset)


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

    # -------------------------------------------------------- plumbing

    def client(self) -> docker.DockerClient:
        return self.sup.hosts.client(self.host)

    def ingest(self, cid: str) -> None:
        if self.remote:
            offset = int(self.sup.store.stage(self.run_id, self.name)["metrics_offset"] or 0)
            data = ct.read_file(self.client(), cid, "/fb/out/metrics.jsonl", offset) or b""
            ingest_bytes(self.sup.store, self.run_id, self.name, data, offset)
        else:
            ingest_file(self.sup.store, self.run_id, self.name, Path(self.stage_row["out"]) / "metrics.jsonl")

    def follow_logs(self, cid: str, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                follow(self.client(), cid, self.spool)
            except Exception:
                time.sleep(1)
                continue
            try:
                state = self.client().api.inspect_container(cid)["State"]
                if not state.get("Running"):
                    return
            except Exception:
                time.sleep(1)

    # -------------------------------------------------------- the watch

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # never let a watcher die silently: the stage fails with the reason
            self.sup.finish_stage(self.run_id, self.name, "failed", f"supervisor error: {type(e).__name__}: {e}")
        finally:
            self.done = True

    def _run(self) -> None:
        cid = self.stage_row["container_id"]
        started = self.stage_row["started_at"] or time.time()
        stop = threading.Event()
        logs = threading.Thread(target=self.follow_logs, args=(cid, stop), daemon=True)
        logs.start()
        unreachable_since: float | None = None
        timed_out = False
        state: dict[str, Any] = {}
        while True:
            try:
                state = self.client().api.inspect_container(cid)["State"]
                unreachable_since = None
            except Exception as e:
                import docker

                if isinstance(e, docker.errors.NotFound):
                    stop.set()
                    self.sup.finish_stage(self.run_id, self.name, "failed",
                                          "the stage's container disappeared (removed while it ran)")
                    return
                self.sup.hosts.forget(self.host)
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > HOST_LOST_AFTER:
                    stop.set()
                    self.sup.finish_stage(self.run_id, self.name, "failed",
                                          f"host lost: {self.host} stopped answering ({type(e).__name__})")
                    return
                time.sleep(TICK)
                continue
            try:
                self.ingest(cid)
            except Exception:
                pass  # retried next tick; the offset only moves with committed rows
            if not state.get("Running"):
                break
            if self.spec.timeout and time.time() - started > self.spec.timeout and not timed_out:
                timed_out = True
                self.client().api.kill(cid)
            if self.sup.cancel_requested(self.run_id):
                self.client().api.stop(cid, timeout=5)
            time.sleep(TICK)
        logs.join(timeout=30)
        stop.set()
        self.ingest(cid)
        self.conclude(cid, state, timed_out)

    def conclude(self, cid: str, state: dict[str, Any], timed_out: bool) -> None:
        code = int(state.get("ExitCode", -1))
        oom = bool(state.get("OOMKilled"))
        if self.sup.cancel_requested(self.run_id):
            self.sup.finish_stage(self.run_id, self.name, "cancelled", "cancelled", exit_code=code, remove=cid)
            return
        if timed_out:
            reason = f"timed out after {self.spec.timeout:g} s (the stage's timeout: in project.yaml)"
            self.sup.finish_stage(self.run_id, self.name, "failed", reason, exit_code=code, remove=cid)
            return
        if oom:
            limit = self.spec.resources.memory
            reason = "killed: out of memory" + (f" (memory limit {limit / 2**20:.0f} MiB)" if limit else "")
            self.sup.finish_stage(self.run_id, self.name, "failed", reason, exit_code=code, remove=cid)
            return
        if code != 0:
            # the end of the spool only: a stage may have logged gigabytes
            start = max(0, self.spool.stat().st_size - 64 * 1024) if self.spool.exists() else 0
            tail, _ = read_spool(self.spool, start=start)
            last = "\n".join(tail[1 if start else 0:][-LOG_TAIL_IN_REASON:])
            why = {137: " (killed)", 139: " (segmentation fault)", 143: " (terminated)"}.get(code, "")
            reason = f"exit code {code}{why}" + (f"; last lines:\n{last}" if last else "")
            self.sup.finish_stage(self.run_id, self.name, "failed", reason, exit_code=code, remove=cid)
            return
        missing = [a for a in self.spec.artifacts if not self.artifact_exists(cid, a)]
        if missing:
            reason = f"declared artifact{'s' if len(missing) > 1 else ''} not written: {', '.join(missing)}"
            self.sup.finish_stage(self.run_id, self.name, "failed", reason, exit_code=code, remove=cid)
            return
        self.record_artifacts(cid)
        self.sup.finish_stage(self.run_id, self.name, "succeeded", None, exit_code=0, remove=cid)

    def artifact_exists(self, cid: str, rel: str) -> bool:
        if self.remote:
            return ct.file_exists(self.client(), cid, f"/fb/out/{rel}")
        return (Path(self.stage_row["out"]) / rel).exists()

    def record_artifacts(self, cid: str) -> None:
        import hashlib

        from fbtui.sources import file_sha256

        for rel in self.spec.artifacts:
            if self.remote:  # one read per artifact: hashed, copied back when small, parsed if a report
                data = ct.read_file(self.client(), cid, f"/fb/out/{rel}")
                if data is None:
                    continue
                digest, size = hashlib.sha256(data).hexdigest(), len(data)
                if size <= self.sup.copy_back_limit:  # small declared artifacts come back to the lab
                    local = self.folder / self.name / "out" / rel
                    local.parent.mkdir(parents=True, exist_ok=True)
                    local.write_bytes(data)
            else:
                path = Path(self.stage_row["out"]) / rel
                if path.is_dir():
                    continue
                digest, size = file_sha256(path), path.stat().st_size
                data = path.read_bytes() if rel.endswith("eval.json") else b""
            self.sup.store.add_artifact(self.run_id, self.name, rel, size, digest, host=self.host)
            if rel.endswith("eval.json"):
                self.record_evaluation(data)

    def record_evaluation(self, data: bytes) -> None:
        """An evaluation report carries its suite's fingerprint: keep it, so only results under one
        fingerprint are ever compared."""
        try:
            report = json.loads(data or b"{}")
        except ValueError:
            return
        if isinstance(report, dict) and report.get("fingerprint"):
            fingerprint, results = str(report["fingerprint"]), report.get("results") or {}
            self.sup.store.add_evaluation(self.run_id, self.name, fingerprint, results)
            source = self.sup.store.run(self.run_id)["eval_of"]
            if source:  # a re-evaluation brings the earlier run up to the current suite
                self.sup.store.add_evaluation(source, self.name, fingerprint, results)


class Supervisor:
    def __init__(self, lab: Lab, store: Store) -> None:
        self.lab, self.store = lab, store
        self.hosts = Hosts(lab.config.hosts, lab.root / ".fb" / "tunnels")
        self.workers: dict[tuple[int, str], StageWorker] = {}
        self.pipelines: dict[int, Any] = {}  # run -> its recorded stages, parsed once
        self.copy_back_limit = 16 * 2**20
        self.down_since: dict[str, float] = {}
        self.instance = ct.lab_instance(lab.root)
        self._lock = threading.Lock()

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
            self.sweep()
            while True:
                active = self.tick()
                if active or any(not w.done for w in self.workers.values()):
                    idle_since = None
                else:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > IDLE_EXIT:
                        return 0
                time.sleep(TICK)
        finally:
            self.hosts.close()
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    def tick(self) -> int:
        runs = self.store.query("SELECT * FROM runs WHERE status IN ('queued', 'running') ORDER BY id")
        for run in runs:
            try:
                if run["status"] == "queued":
                    if run["cancel_requested"]:
                        self.store.set_run_status(run["id"], "cancelled", "cancelled before it started")
                        self._skip_rest(run["id"], "cancelled")
                        continue
                    if not self.place(run):
                        continue
                    run = self.store.run(run["id"])
                self.advance(run)
            except FBError as e:
                self.fail_run(run["id"], e.message)
            except Exception as e:  # an engine that does not answer: retry, until it counts as lost
                host = run["host"]
                if host:
                    self.hosts.forget(host)
                    since = self.down_since.setdefault(host, time.monotonic())
                    if time.monotonic() - since > HOST_LOST_AFTER:
                        self.fail_run(run["id"], f"host lost: {host} stopped answering ({type(e).__name__})")
                print(f"run {run['id']}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            else:
                if run["host"]:
                    self.down_since.pop(run["host"], None)
        return len(runs)

    def sweep(self) -> int:
        """Remove this lab checkout's containers whose stage the store has already closed (a
        supervisor that died between recording a result and removing the container leaves them)."""
        prefix = "/" + ct.container_name(self.lab.config.name, self.instance, 0, "")[:-3]  # "/fb-<lab>-<id>-r"
        removed = 0
        for host in self.lab.config.hosts:
            try:
                c = self.hosts.client(host, timeout=10)
                found = c.api.containers(all=True, filters={"label": f"fb.lab={self.lab.config.name}"})
            except Exception:
                self.hosts.forget(host)
                continue
            for x in found:
                labels = x.get("Labels") or {}
                if not any(n.startswith(prefix) for n in x.get("Names") or []):
                    continue  # another checkout's
                rows = self.store.query("SELECT status FROM stages WHERE run_id = ? AND name = ?",
                                        (int(labels.get("fb.run", 0)), labels.get("fb.stage", "")))
                if rows and rows[0]["status"] not in ("pending", "running"):
                    try:
                        c.api.remove_container(x["Id"], force=True)
                        removed += 1
                    except Exception:
                        pass
        return removed

    def cancel_requested(self, run_id: int) -> bool:
        return bool(self.store.run(run_id)["cancel_requested"])

    # -------------------------------------------------------- placement

    def busy(self, host: str) -> tuple[int, set[int]]:
        """Stages running on a host and the GPU ids they hold, read from the engine's labels."""
        c = self.hosts.client(host, timeout=10)
        found = c.api.containers(filters={"label": f"fb.lab={self.lab.config.name}", "status": "running"})
        found += c.api.containers(filters={"label": f"fb.lab={self.lab.config.name}", "status": "created"})
        gpus: set[int] = set()
        for x in found:
            label = (x.get("Labels") or {}).get("fb.gpus", "")
            if label and not label.startswith("n"):
                gpus.update(int(g) for g in label.split(","))
        return len(found), gpus

    def free_slot(self, host: str) -> bool:
        try:
            used, _ = self.busy(host)
        except Exception:
            self.hosts.forget(host)
            return False
        return used < self.lab.config.hosts[host].slot_count

    def place(self, run: dict[str, Any]) -> bool:
        """Bind a queued run to the first of its hosts with a free slot."""
        candidates = (run["requested_host"] or self.lab.config.defaults.host).split(",")
        for host in candidates:
            if host in self.lab.config.hosts and self.free_slot(host):
                self.store.update_run(run["id"], host=host)
                with self.store.write() as c:
                    c.execute("UPDATE stages SET host = ? WHERE run_id = ?", (host, run["id"]))
                self.store.set_run_status(run["id"], "running")
                return True
        return False

    # -------------------------------------------------------- advancing a run

    def advance(self, run: dict[str, Any]) -> None:
        project = self.pipelines.get(run["id"])
        if project is None:
            project = self.pipelines[run["id"]] = pipeline_of(self.lab, run)
        specs = {s.name: s for s in project.stages}
        for st in self.store.stages(run["id"]):
            if st["status"] in ("succeeded", "cached", "skipped"):
                continue
            if st["status"] == "running":
                key = (run["id"], st["name"])
                worker = self.workers.get(key)
                if worker is None or (worker.done and self.store.stage(run["id"], st["name"])["status"] == "running"):
                    self.workers[key] = StageWorker(self, run, st, specs[st["name"]])
                    self.workers[key].start()
                return
            if st["status"] == "pending":
                if run["cancel_requested"]:
                    self.store.set_stage_status(run["id"], st["name"], "cancelled", "cancelled")
                    continue
                self.start_stage(run, st, specs[st["name"]], project)
                return
            # failed or cancelled: the run ends, no later stage starts
            final = "cancelled" if st["status"] == "cancelled" else "failed"
            self._skip_rest(run["id"], "cancelled" if final == "cancelled" else "skipped")
            self.store.set_run_status(run["id"], final, f"stage {st['name']}: {st['reason'] or st['status']}")
            return
        self.store.set_run_status(run["id"], "succeeded")

    def _skip_rest(self, run_id: int, status: str) -> None:
        for st in self.store.stages(run_id):
            if st["status"] == "pending":
                self.store.set_stage_status(run_id, st["name"], status, "an earlier stage did not succeed"
                                            if status == "skipped" else "cancelled")

    def start_stage(self, run: dict[str, Any], st: dict[str, Any], spec: StageSpec, project: Any) -> None:
        from fbtui.pipeline.cache import cache_key, find_cached

        host = run["host"]
        remote = host != "local"
        stages = {s["name"]: s for s in self.store.stages(run["id"])}
        inputs = {dep: stages[dep]["out"] for dep in project.needs[spec.name]}
        key = cache_key(self.store, run, spec, stages, project.needs[spec.name])
        self.store.update_stage(run["id"], spec.name, cache_key=key)
        only = run["only_stages"].split(",") if run["only_stages"] else None
        left_out = only is not None and spec.name not in only
        if key and (left_out or (spec.cache and not run["no_cache"])):
            hit = find_cached(self.store, key, host, run["id"])
            if hit is not None:
                self.store.copy_stage_results(hit, run["id"], spec.name)
                self.store.set_stage_status(run["id"], spec.name, "cached", f"same inputs as run {hit['run_id']}",
                                            cached_from=hit["id"], out=hit["out"])
                return
        if key and spec.cache and not run["no_cache"] and self.store.query(
                "SELECT 1 FROM stages WHERE cache_key = ? AND host = ? AND status = 'running' AND run_id != ?",
                (key, host, run["id"])):
            return  # the same work is under way for another run: wait and reuse it (one prepare per ablation)
        if left_out:
            self.finish_stage(run["id"], spec.name, "failed",
                              f"stage {spec.name} was left out (--stages) and no earlier result on {host} matches "
                              "its inputs: include it in --stages")
            return
        used, _ = self.busy(host)  # raises while the host does not answer: tick() counts that
        if used >= self.lab.config.hosts[host].slot_count:
            return  # waits for a slot on its host; its stages stay there
        client = self.hosts.client(host)
        ct.check_gpus(client, host, spec)
        gpus = self.pick_gpus(host, spec)
        if remote:
            out = ct.volume_name(self.lab.config.name, self.instance, run["id"], spec.name)
        else:
            out = str(run_folder(self.lab, run["id"]) / spec.name / "out")
        values, missing = ct.host_env(spec.env)
        if missing:  # the supervisor has the environment of the fbtui command that started it
            self.finish_stage(run["id"], spec.name, "failed",
                              f"stage {spec.name} needs {', '.join(missing)} in the supervisor's environment "
                              "(export it where fbtui runs; a supervisor started without it must end first)")
            return
        image = st["image"] or run["image"]
        spec_on_host = ct.StageSpecOnHost(
            lab=self.lab.config.name, run_id=run["id"], project=run["project"], stage=spec, image=image,
            host_name=host, host=self.lab.config.hosts[host], config_yaml=run["config"], out=out,
            inputs={k: v for k, v in inputs.items() if v}, gpus=gpus, remote=remote, instance=self.instance)
        try:
            cid = ct.create_and_start(client, spec_on_host, values)
        except ct.StageSetupError as e:
            self.store.update_stage(run["id"], spec.name, out=out)
            self.finish_stage(run["id"], spec.name, "failed", e.message)
            return
        gpu_label = ",".join(map(str, gpus)) if isinstance(gpus, list) else (str(gpus) if gpus else None)
        self.store.set_stage_status(run["id"], spec.name, "running", container_id=cid, out=out, gpus=gpu_label,
                                    image=image, command=json.dumps(spec.default_command()))

    def pick_gpus(self, host: str, spec: StageSpec) -> list[int] | int:
        want = spec.resources.gpus
        if not want or isinstance(want, list):
            return want
        ids = self.lab.config.hosts[host].gpus
        if not ids:
            return want  # the engine's default allocation
        _, held = self.busy(host)
        free = [g for g in ids if g not in held]
        if len(free) < want:
            raise FBError(f"host {host} has {len(free)} free GPUs, stage {spec.name} needs {want}")
        return free[:want]

    def finish_stage(self, run_id: int, stage: str, status: str, reason: str | None, *, remove: str | None = None,
                     **fields: Any) -> None:
        with self._lock:  # a stage ends once, whoever notices first
            if self.store.stage(run_id, stage)["status"] in ("pending", "running"):
                self.store.set_stage_status(run_id, stage, status, reason, **fields)
        if remove:
            host = self.store.stage(run_id, stage)["host"]
            try:
                self.hosts.client(host).api.remove_container(remove, force=True)
            except Exception:
                pass  # reconciliation removes finished containers later

    def fail_run(self, run_id: int, reason: str) -> None:
        run = self.store.run(run_id)
        for st in self.store.stages(run_id):
            if st["status"] == "running":
                return  # its watcher decides
        self._skip_rest(run_id, "skipped")
        if run["status"] in ("queued", "pending"):
            self.store.set_run_status(run_id, "running")
        if self.store.run(run_id)["status"] == "running":
            self.store.set_run_status(run_id, "failed", reason)
