"""The batch script of one stage on a Slurm node (#15): the container contract of
pipeline/containers.py, spoken to the node's runtime on its command line.

The script writes three files into the stage's folder on the shared path, each read by fbtui by
offset or once: `log` (the container's output, one "<RFC 3339 ns timestamp> <text>" line each:
the spool's own format, so fbtui copies it byte for byte), `outcome.json` (exit code, OOM; written
atomically before the job ends) and `setup.err` (why the container could not start). A scancel or
Slurm's time limit sends SIGTERM: the script stops its container with a grace period, then records
the outcome like any other end; no container is left running behind a cancelled job."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote

TIMESTAMPER = r"""stamp() {  # what apptainer prints, stamped like `docker logs -t` (no fork per line)
  local line t
  while IFS= read -r line || [ -n "$line" ]; do
    printf -v t '%(%Y-%m-%dT%H:%M:%S)T' "${EPOCHREALTIME%.*}"
    printf '%s.%s000Z %s\n' "$t" "${EPOCHREALTIME#*.}" "$line"
  done
}"""


@dataclass
class NodeJob:
    run_id: int
    project: str
    stage: str
    name: str  # the container's name on the node, and the job's
    folder: Path  # on the shared path
    image: str
    command: list[str]
    runtime: str = "docker"  # docker | podman | apptainer
    env: dict[str, str] = field(default_factory=dict)  # values, put in the script
    secrets: list[str] = field(default_factory=list)  # names: their values come from the job's environment
    secrets_as: str = "files"
    run_as: tuple[int, int] = (0, 0)
    cpus: float | None = None
    memory: int | None = None
    gpus: int = 0
    shm_size: int | None = None
    network: str = "none"
    pids_limit: int = 4096
    capabilities: list[str] = field(default_factory=list)
    read_only_root: bool = False
    processes: int = 1
    inputs: dict[str, str] = field(default_factory=dict)  # predecessor -> its out folder on the shared path
    data: dict[str, str] = field(default_factory=dict)  # name -> read-only path on the node
    labels: dict[str, str] = field(default_factory=dict)
    node_env: dict[str, str] = field(default_factory=dict)
    pull: bool = False  # the image is a registry reference the node pulls when it lacks it
    suite: bool = False  # folder/suite holds a suite's code, mounted at /fb/suite


def script(job: NodeJob) -> str:
    head = [
        "#!/bin/bash",
        f"# fbtui: run {job.run_id}, stage {job.stage} of {job.project} (written by fbtui/backends/slurm_job.py)",
        "set -u",
        f"cd {quote(str(job.folder))} || {{ echo {quote(f'fbtui: {job.folder} is not visible on')} "
        '"$(hostname)" >&2; exit 125; }',
        *(f"export {k}={quote(v)}" for k, v in job.node_env.items()),
        "outcome() {  # exit code, OOM: once, atomically, before the job ends",
        "  printf '{\"exit\": %s, \"oom\": %s}\\n' \"$1\" \"$2\" >outcome.json.tmp",
        "  mv -f outcome.json.tmp outcome.json",
        "}",
        "SECRETS=",
        "setup_failed() { [ -n \"$SECRETS\" ] && rm -rf \"$SECRETS\"; outcome 125 false; exit 125; }",
    ]
    for n in job.secrets:  # sbatch passes the submitter's environment; ssh to a login node does not
        head.append(f'[ -n "${{{n}+x}}" ] || {{ echo "secret {n} did not reach the job (submitted over ssh? '
                    f'the login node must export it)" >setup.err; setup_failed; }}')
    if job.secrets and job.secrets_as != "env":
        uid, gid = job.run_as
        head += [
            "SECRETS=$(mktemp -d /dev/shm/fb-secrets.XXXXXX 2>/dev/null || mktemp -d) || setup_failed",
            "chmod 700 \"$SECRETS\"",
            *(f"printf '%s' \"${{{n}}}\" > \"$SECRETS/{n}\" && chmod 400 \"$SECRETS/{n}\"" for n in job.secrets),
            f"[ \"$(id -u)\" = 0 ] && chown -R {uid}:{gid} \"$SECRETS\"",
        ]
    body = _apptainer(job) if job.runtime == "apptainer" else _engine(job)
    return "\n".join([*head, *body, ""])


def _engine(job: NodeJob) -> list[str]:
    """docker or podman: create, start, follow the log with timestamps, wait, inspect, remove."""
    rt = job.runtime
    args = ["--name", job.name, "--init", "--network", job.network, "--workdir", "/fb",
            "--user", f"{job.run_as[0]}:{job.run_as[1]}", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--pids-limit", str(job.pids_limit),
            "-v", f"{job.folder / 'out'}:/fb/out", "-v", f"{job.folder / 'config.yaml'}:/fb/config.yaml:ro"]
    for k, v in job.labels.items():
        args += ["--label", f"{k}={v}"]
    for cap in job.capabilities:
        args += ["--cap-add", cap]
    if job.read_only_root:
        args += ["--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,mode=1777"]
    for name, path in job.inputs.items():
        args += ["-v", f"{path}:/fb/in/{name}:ro"]
    for name, path in job.data.items():
        args += ["-v", f"{path}:/fb/data/{name}:ro"]
    if job.suite:
        args += ["-v", f"{job.folder / 'suite'}:/fb/suite:ro"]
    if job.memory:  # swap only up to the limit: an overrun is an OOM kill, named as such
        args += ["--memory", str(job.memory), "--memory-swap", str(job.memory)]
    if job.cpus:
        args += ["--cpus", f"{job.cpus:g}"]
    if job.shm_size:
        args += ["--shm-size", str(job.shm_size)]
    if job.processes > 1:  # torchrun's ranks meet on loopback
        args += ["--hostname", "localhost"]
    for k, v in job.env.items():
        args += ["-e", f"{k}={v}"]
    if job.secrets and job.secrets_as == "env":
        args += [x for n in job.secrets for x in ("-e", n)]  # the value comes from the job's environment
    lines = [f"RT={rt}", f"NAME={quote(job.name)}", '"$RT" rm -f "$NAME" >/dev/null 2>&1']
    if job.pull:
        lines.append(f'"$RT" image inspect {quote(job.image)} >/dev/null 2>&1 || '
                     f'"$RT" pull -q {quote(job.image)} >/dev/null 2>setup.err || setup_failed')
    extra = ""
    if job.secrets and job.secrets_as != "env":
        extra = ' -v "$SECRETS:/run/secrets:ro"'
    gpu = ""
    if job.gpus:  # the GPUs Slurm gave this job, and only those
        gpu = (' --gpus "device=${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-all}}"' if rt == "docker" else
               ' $(for g in ${SLURM_JOB_GPUS//,/ }; do printf -- "--device nvidia.com/gpu=%s " "$g"; done)')
    create = " ".join(quote(a) for a in args) + extra + gpu
    lines += [
        f'"$RT" create {create} {quote(job.image)} {" ".join(quote(c) for c in job.command)} '
        ">/dev/null 2>setup.err || setup_failed",
        'stop() { "$RT" stop -t 5 "$NAME" >/dev/null 2>&1; }',
        "trap stop TERM INT",
        '"$RT" start "$NAME" >/dev/null 2>>setup.err || { "$RT" rm -f "$NAME" >/dev/null 2>&1; setup_failed; }',
        '"$RT" logs -f --timestamps "$NAME" >>log 2>&1 &',
        "LOGS=$!",
        '"$RT" wait "$NAME" >/dev/null 2>&1 &',
        "W=$!",
        'while :; do wait "$W"; c=$?; kill -0 "$W" 2>/dev/null || break; done  # a trap interrupts `wait`',
        '[ "$c" = 0 ] || "$RT" wait "$NAME" >/dev/null 2>&1  # a SIGTERM (scancel) ended the CLI\'s wait early',
        'wait "$LOGS"; l=$?',
        '# lines the follower missed (the SIGTERM reached it too): only those past what `log` holds',
        'if [ "$l" != 0 ]; then',
        '  n=$(wc -l < log 2>/dev/null || echo 0)',
        '  "$RT" logs --timestamps "$NAME" 2>&1 | tail -n "+$((n + 1))" >>log',
        'fi',
        "read -r code oom < <(\"$RT\" inspect -f '{{.State.ExitCode}} {{.State.OOMKilled}}' \"$NAME\" 2>/dev/null)",
        'code=${code:-255}',
        '[ "${oom:-}" = true ] || oom=false',
        '[ -n "$SECRETS" ] && rm -rf "$SECRETS"',
        'outcome "$code" "$oom"',
        '"$RT" rm -f "$NAME" >/dev/null 2>&1',
        'exit "$code"',
    ]
    return lines


def _apptainer(job: NodeJob) -> list[str]:
    """apptainer exec from the registry (docker://): Slurm's cgroup holds its memory and CPUs."""
    args = ["--containall", "--cleanenv", "--no-home", "--pwd", "/fb",
            "--bind", f"{job.folder / 'out'}:/fb/out", "--bind", f"{job.folder / 'config.yaml'}:/fb/config.yaml:ro"]
    for name, path in job.inputs.items():
        args += ["--bind", f"{path}:/fb/in/{name}:ro"]
    for name, path in job.data.items():
        args += ["--bind", f"{path}:/fb/data/{name}:ro"]
    if job.suite:
        args += ["--bind", f"{job.folder / 'suite'}:/fb/suite:ro"]
    if job.gpus:
        args.append("--nv")
    for k, v in job.env.items():
        args += ["--env", f"{k}={v}"]
    extra = ' --bind "$SECRETS:/run/secrets:ro"' if job.secrets and job.secrets_as != "env" else ""
    if job.secrets and job.secrets_as == "env":
        extra += "".join(f' --env "{n}=${{{n}}}"' for n in job.secrets)
    image = job.image if "://" in job.image else f"docker://{job.image}"
    return [
        TIMESTAMPER,
        "set -o pipefail",
        f"apptainer exec {' '.join(quote(a) for a in args)}{extra} {quote(image)} "
        f"{' '.join(quote(c) for c in job.command)} 2>&1 | stamp >>log &",
        "P=$!",
        "trap 'kill -TERM \"$P\" 2>/dev/null' TERM INT",
        'while :; do wait "$P"; c=$?; kill -0 "$P" 2>/dev/null || break; done  # a trap interrupts `wait`',
        "code=$c",
        '[ -n "$SECRETS" ] && rm -rf "$SECRETS"',
        'outcome "$code" false',
        'exit "$code"',
    ]


def read_outcome(folder: Path) -> dict[str, object] | None:
    """The job's outcome file, or None while it has none (running, or killed before it could write)."""
    try:
        data = (folder / "outcome.json").read_bytes()[:4096]
        got = json.loads(data)
    except (OSError, ValueError):
        return None
    return got if isinstance(got, dict) else None
