"""A `kind: slurm` host (#15): each stage is one batch job that runs the stage's image on its node
through the node's container runtime (slurm_job.py writes the script). Slurm places; fbtui submits,
reads the job's log and metrics from the shared path by offset, and names how each job ended.

Commands run on the login node: here, or through `ssh` for `login: ssh://...`. Job states come from
`scontrol show job` (it needs no accounting database; a finished job stays there MinJobAge
seconds, and after that the job's own outcome file on the shared path still tells its end)."""

from __future__ import annotations

import math
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from fbtui.backends.base import JobState, Submission
from fbtui.errors import FBError

if TYPE_CHECKING:
    from fbtui.config.slurm_settings import SlurmSettings
    from fbtui.pipeline.containers import StageSpecOnHost

CALL_TIMEOUT = 15.0
PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED"}
# How a job that ended was ended, in words a person can act on
ENDED = {
    "OUT_OF_MEMORY": "Slurm: OUT_OF_MEMORY (the job went over --mem)",
    "TIMEOUT": "Slurm: TIMEOUT (the job reached its --time)",
    "NODE_FAIL": "Slurm: NODE_FAIL (its node stopped answering the controller)",
    "BOOT_FAIL": "Slurm: BOOT_FAIL (its node did not boot)",
    "DEADLINE": "Slurm: DEADLINE (the job's deadline passed)",
    "PREEMPTED": "Slurm: PREEMPTED (a higher-priority job took its resources)",
    "CANCELLED": "Slurm: CANCELLED",
    "FAILED": "Slurm: FAILED",
    "COMPLETED": "Slurm: COMPLETED",
}


class SlurmError(FBError):
    """A Slurm command failed or did not answer."""

    unreachable = False  # True: the controller (or the login node) did not answer: the health clock runs


class SlurmUnreachable(SlurmError):
    unreachable = True


class SlurmBackend:
    kind = "slurm"
    places = False

    def __init__(self, name: str, settings: SlurmSettings, ssh_options: list[str] | None = None) -> None:
        self.name, self.s = name, settings
        self.ssh_options = ssh_options or []

    # -------------------------------------------------------- commands on the login node

    def command(self, args: list[str]) -> list[str]:
        if self.s.login == "local":
            return args
        target = self.s.login.removeprefix("ssh://")
        port: list[str] = []
        if ":" in target:
            target, p = target.rsplit(":", 1)
            port = ["-p", p]
        conf = [f"SLURM_CONF={shlex.quote(self.s.conf)}"] if self.s.conf else []
        return ["ssh", "-o", "BatchMode=yes", *port, *self.ssh_options, target, "--",
                shlex.join(["env", *conf, *args]) if conf else shlex.join(args)]

    def call(self, args: list[str], *, env: dict[str, str] | None = None,
             timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        full = self.command(args)
        environ = {**os.environ, **(env or {})}
        if self.s.conf and self.s.login == "local":
            environ["SLURM_CONF"] = self.s.conf
        try:
            return subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=environ,
                                  stdin=subprocess.DEVNULL, check=False)
        except FileNotFoundError:
            raise SlurmError(f"host {self.name}: {full[0]} is not installed here",
                             hint="install Slurm's client commands (Debian: slurm-client), or set "
                                  "slurm.login: ssh://user@login-node in lab.yaml") from None
        except subprocess.TimeoutExpired:
            raise SlurmUnreachable(f"host {self.name}: {args[0]} did not answer in {timeout:g} s "
                                   "(is slurmctld up? `scontrol ping`)") from None

    def checked(self, args: list[str], **kw: object) -> str:
        res = self.call(args, **kw)  # type: ignore[arg-type]
        if res.returncode != 0:
            text = (res.stderr or res.stdout).strip().splitlines()
            kind = SlurmUnreachable if down(res.stderr + res.stdout) else SlurmError
            raise kind(f"host {self.name}: {args[0]} failed: {text[-1] if text else f'exit {res.returncode}'}")
        return res.stdout

    # -------------------------------------------------------- the interface

    def ping(self) -> None:
        res = self.call(["scontrol", "ping"])
        said = next((x.strip() for x in (res.stdout + res.stderr).splitlines() if "Slurmctld" in x), "")
        if res.returncode != 0 or " is UP" not in said:
            raise SlurmUnreachable(f"host {self.name}: the Slurm controller does not answer "
                                   f"({said or (res.stderr or res.stdout).strip()[:200] or f'exit {res.returncode}'})")

    def start(self, spec: StageSpecOnHost, secrets: dict[str, str]) -> str:
        """The stage as a batch job: its folder on the shared path (`spec.out`'s parent) holds what
        the supervisor wrote there (config.yaml, suite/, out/); the job script is written and submitted."""
        from fbtui.backends.slurm_job import NodeJob, script
        from fbtui.pipeline import containers as ct
        from fbtui.pipeline import privileges as pv

        st, folder = spec.stage, Path(spec.out).parent
        run_as = spec.run_as or pv.stage_user(st, spec.invoker or pv.invoking_user(folder), rootless=False)
        spec.run_as = run_as
        env = ct.stage_env(spec, run_as, spec.cpus)
        if st.secrets and st.secrets_as != "env":
            env["FB_SECRETS"] = "/run/secrets"
        gpus = len(spec.gpus) if isinstance(spec.gpus, list) else int(spec.gpus)
        name = ct.container_name(spec.lab, spec.instance, spec.run_id, st.name)
        job = NodeJob(spec.run_id, spec.project, st.name, name, folder, spec.image, st.run_command(),
                      runtime=self.s.runtime, env=env, secrets=list(st.secrets), secrets_as=st.secrets_as,
                      run_as=run_as, cpus=spec.cpus, memory=spec.memory, gpus=gpus, shm_size=st.resources.shm_size,
                      network=st.network, pids_limit=st.pids_limit or pv.DEFAULT_PIDS,
                      capabilities=list(st.capabilities), read_only_root=st.read_only_root, processes=st.processes,
                      inputs=spec.inputs, data=dict(spec.host.data), labels=spec.labels,
                      node_env=dict(self.s.node_env), pull=spec.pull, suite=spec.overlay is not None)
        return self.submit(Submission(name, folder, script(job), cpus=spec.cpus, memory=spec.memory, gpus=gpus,
                                      timeout=st.timeout, labels=spec.labels, env=secrets))

    def kill(self, handle: str) -> None:
        self.cancel(handle)  # Slurm's own kill is a signal too: the script's trap stops the container

    def submit(self, job: Submission) -> str:
        job.folder.mkdir(parents=True, exist_ok=True)
        script = job.folder / "job.sh"
        script.write_text(job.script)
        script.chmod(0o700)  # it names the secrets' variables, never their values
        args = ["sbatch", "--parsable", f"--job-name={job.name}", f"--chdir={job.folder}",
                f"--output={job.folder / 'slurm.out'}", "--no-requeue", "--ntasks=1", "--export=ALL",
                "--comment=" + ",".join(f"{k}={v}" for k, v in job.labels.items() if "," not in v)[:250]]
        if job.cpus:
            args.append(f"--cpus-per-task={max(1, math.ceil(job.cpus - 1e-9))}")
        if job.memory:
            args.append(f"--mem={max(1, math.ceil(job.memory / 2**20))}M")
        if job.gpus:
            args.append(f"--gres=gpu:{job.gpus}")
        if job.timeout:  # minutes, rounded up, plus one: fbtui's own timer ends it first, in seconds
            args.append(f"--time={math.ceil(job.timeout / 60) + 1}")
        if self.s.partition:
            args.append(f"--partition={self.s.partition}")
        if self.s.account:
            args.append(f"--account={self.s.account}")
        args += [*self.s.sbatch_args, str(script)]
        out = self.checked(args, env=job.env)
        handle = out.strip().split(";")[0]
        if not handle.isdigit():
            raise SlurmError(f"host {self.name}: sbatch answered {out.strip()[:200]!r}, not a job id")
        return handle

    def states(self, handles: list[str]) -> dict[str, JobState]:
        found: dict[str, JobState] = {}
        for h in handles:  # `scontrol show job` takes one id; finished jobs are not in squeue's default view
            res = self.call(["scontrol", "show", "job", "-o", h])
            if res.returncode != 0:
                if "Invalid job id" in (res.stderr + res.stdout):
                    found[h] = JobState("gone")
                    continue
                kind = SlurmUnreachable if down(res.stderr + res.stdout) else SlurmError
                raise kind(f"host {self.name}: scontrol failed: {(res.stderr or res.stdout).strip()[:200]}")
            found[h] = parse_job(res.stdout)
        return found

    def cancel(self, handle: str) -> None:
        res = self.call(["scancel", handle])
        if res.returncode != 0 and "Invalid job id" not in res.stderr and "already completing" not in res.stderr:
            raise SlurmError(f"host {self.name}: scancel {handle} failed: {res.stderr.strip()[:200]}")

    def find(self, name: str) -> str | None:
        out = self.checked(["squeue", "-h", "-n", name, "-o", "%i"])
        ids = [x for x in out.split() if x.isdigit()]
        return ids[-1] if ids else None

    def summary(self) -> dict[str, object]:
        """The cluster as `fbtui hosts` shows it: version, nodes, CPUs and memory, fb's jobs there."""
        version = self.checked(["scontrol", "version"]).strip()
        cpus = alloc = 0
        memory = 0
        states: dict[str, int] = {}
        for line in self.checked(["sinfo", "-h", "-N", "-o", "%n|%C|%m|%T"]).splitlines():
            _, c, m, state = [*line.split("|"), "", "", "", ""][:4]
            a, _, _, total = [*c.split("/"), "0", "0", "0", "0"][:4]
            cpus += int(total) if total.isdigit() else 0
            alloc += int(a) if a.isdigit() else 0
            memory += int(m) * 2**20 if m.isdigit() else 0
            states[state] = states.get(state, 0) + 1
        jobs = []
        for line in self.checked(["squeue", "-h", "-o", "%i|%j|%T|%r|%C"]).splitlines():
            jid, name, state, reason, c = [*line.split("|"), "", "", "", "", ""][:5]
            if name.startswith("fb-"):
                jobs.append({"job": jid, "name": name, "state": state, "reason": reason, "cpus": c})
        return {"version": version, "cpus": cpus, "cpus_in_use": alloc, "memory": memory, "nodes": states,
                "jobs": jobs}

    def problems(self) -> list[tuple[str, str]]:
        """What stops this host from working, each with its fix."""
        missing = [c for c in ("sbatch", "squeue", "scontrol", "scancel") if self.s.login == "local"
                   and shutil.which(c) is None]
        if missing:
            return [(f"{', '.join(missing)} not found here",
                     "install Slurm's client commands (Debian: slurm-client), or set slurm.login: ssh://login-node")]
        found: list[tuple[str, str]] = []
        try:
            self.ping()
        except FBError as e:
            found.append((e.message, "start the controller (this machine's test cluster: scripts/slurm), or "
                                     "check slurm.conf / slurm.login in lab.yaml"))
        shared = self.s.shared
        if not os.path.isdir(shared):
            found.append((f"shared path {shared} does not exist here",
                          "mount the cluster's shared filesystem at that path, or set slurm.shared"))
        elif not os.access(shared, os.W_OK):
            found.append((f"shared path {shared} is not writable by this user", f"chmod/chown {shared}"))
        return found


def down(text: str) -> bool:
    """Whether a command's error says the controller (or ssh to the login node) did not answer."""
    return any(w in text for w in ("Unable to contact slurm controller", "Socket timed out", "Connection refused",
                                   "Connection timed out", "Could not resolve hostname", "No route to host",
                                   "Zero Bytes were transmitted", "ssh: connect to host"))


def parse_job(text: str) -> JobState:
    """`scontrol show job -o` (one line of Key=Value pairs) -> a JobState."""
    fields: dict[str, str] = {}
    for part in text.split():  # values with spaces (a Command=) are cut: only the simple keys are used
        key, eq, value = part.partition("=")
        if eq:
            fields[key] = value
    state = fields.get("JobState", "").split()[0] if fields.get("JobState") else ""
    reason = fields.get("Reason", "")
    code, _, sig = fields.get("ExitCode", "").partition(":")
    node = fields.get("BatchHost") or fields.get("NodeList", "")
    exit_code = int(code) if code.isdigit() else None
    signal = int(sig) if sig.isdigit() and sig != "0" else None
    if state in PENDING:
        return JobState("pending", state, "" if reason == "None" else reason, node=node, detail=fields)
    if state in RUNNING:
        return JobState("running", state, "", node=node, detail=fields)
    return JobState("done", state, ENDED.get(state, f"Slurm: {state or 'unknown state'}"), exit_code=exit_code,
                    oom=state == "OUT_OF_MEMORY", signal=signal, node=node, detail=fields)
