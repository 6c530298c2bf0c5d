"""Typed models of lab.yaml, project.yaml and environment.yaml (pydantic v2).

Unknown keys are errors everywhere except inside a project's free-form `config:` mapping.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fbtui.config.names import DEFAULT_MAX_ABLATION_RUNS, DEFAULT_STORE, MAX_SLOTS, name_problem
from fbtui.config.packages import AptEntry, PipEntry, PipOptions
from fbtui.config.slurm_settings import SlurmSettings

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)
DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CAPABILITIES = frozenset({  # what `capabilities:` may name (Linux 6.x)
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
    "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN",
    "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM"
})


def _named(kind: str, v: str) -> str:
    problem = name_problem(kind, v)
    if problem:
        raise ValueError(problem)
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


def parse_size(value: Any) -> int:
    """`512m`, `4g`, `1.5GiB` or a byte count -> bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 512m or 4g, got {value!r}")
    if isinstance(value, int):
        return value
    m = SIZE_RE.match(str(value).strip())
    if not m:
        raise ValueError(f"expected a size such as 512m or 4g, got {value!r}")
    number, unit = float(m.group(1)), m.group(2).lower()
    return int(number * 1024 ** "bkmgt".index(unit or "b"))


def positive_size(value: Any) -> int:
    n = parse_size(value)
    if n <= 0:
        raise ValueError(f"expected a size above 0 such as 512m or 4g, got {value!r}")
    return n


def parse_duration(value: Any) -> float:
    """`90`, `90s`, `30m`, `2h`, `1d` -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90s, 30m or 2h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = DURATION_RE.match(str(value).strip())
        if not m:
            raise ValueError(f"expected a duration such as 90s, 30m or 2h, got {value!r}")
        seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2) or "s"]
    if not 0 < seconds < 10 * 365 * 86400:  # NaN fails this too
        raise ValueError(f"expected a duration above 0 such as 90s, 30m or 2h, got {value!r}")
    return seconds


# ---------------------------------------------------------------- lab.yaml


class TLSConfig(Strict):
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True


class HostConfig(Strict):
    kind: Literal["docker", "slurm"] = "docker"  # slurm: stages are Slurm jobs (the `slurm:` settings)
    slurm: SlurmSettings | None = None
    url: str = "local"
    tls: TLSConfig | None = None
    insecure: bool = False  # allow plain tcp:// without TLS
    gpus: list[int] = Field(default_factory=list)
    slots: int | None = Field(default=None, ge=1, le=MAX_SLOTS)  # a cap on stages at once; capacity decides first
    cpus: float | None = Field(default=None, gt=0)  # use at most this many of the engine's CPUs
    memory: int | None = None  # use at most this much of the engine's memory
    data: dict[str, str] = Field(default_factory=dict)  # name -> path on that host, mounted read-only
    socket: str = "/var/run/docker.sock"  # the engine's socket on an ssh:// host
    ssh_options: list[str] = Field(default_factory=list)  # e.g. [-i, ~/.ssh/lab_key]
    # How long the host may not answer before its stages are declared lost (found again when it
    # answers) and runs not started there may go elsewhere: `30s`, `2m`. See pipeline/health.py.
    grace: float = 30.0
    # How long a failed stage's container and a failed run's volumes stay on this host for a
    # post-mortem (`fbtui gc` lists them): `1d`, `12h`. Everything else goes once it is recorded.
    keep_failed: float = 86400.0

    @field_validator("grace", mode="before")
    @classmethod
    def _grace(cls, v: Any) -> Any:
        return parse_duration(v)

    @field_validator("keep_failed", mode="before")
    @classmethod
    def _keep_failed(cls, v: Any) -> Any:
        return parse_duration(v)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        return None if v is None else positive_size(v)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v == "local" or re.match(r"^(unix|npipe)://.+", v):
            return v
        if re.match(r"^ssh://([^@/\s]+@)?[^@/:\s]+(:\d+)?$", v):
            return v
        if re.match(r"^tcp://[^/:\s]+:\d+$", v):
            return v
        raise ValueError(
            f"expected 'local', unix:///path.sock, ssh://user@host[:port] or tcp://host:port, got {v!r}"
        )

    @model_validator(mode="after")
    def _kind(self) -> HostConfig:
        if self.kind == "slurm" and self.slurm is None:
            raise ValueError("a kind: slurm host needs slurm: {shared: /path/all/nodes/see} (see docs/slurm.md)")
        if self.kind == "docker" and self.slurm is not None:
            raise ValueError("slurm: settings need kind: slurm on the same host")
        return self

    @model_validator(mode="after")
    def _tls(self) -> HostConfig:
        if self.url.startswith("tcp://") and self.tls is None and not self.insecure:
            raise ValueError(
                "a tcp:// host needs tls: {ca, cert, key} (or insecure: true to allow plain TCP)"
            )
        return self


class BuildSettings(Strict):
    base_image: str = "pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime"
    # The ID (sha256:...) base_image must have on the engine: the build refuses another (images/pin.py).
    base_image_id: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    builder: Literal["auto", "buildkit", "classic"] = "auto"
    network: Literal["host", "none", "default"] = "host"
    ca_bundle: str | None = None
    pip_index_url: str | None = None
    pip_extra_index_urls: list[str] = Field(default_factory=list)
    wheelhouse: str | None = None
    build_args: dict[str, str] = Field(default_factory=dict)
    # Untracked (not ignored) files up to this size go into builds; larger ones never do.
    max_untracked_size: int = 1024 * 1024

    @field_validator("max_untracked_size", mode="before")
    @classmethod
    def _max_untracked(cls, v: Any) -> Any:
        return parse_size(v)


class LabDefaults(Strict):
    environment: str = "torch-cpu"
    host: str = "local"

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: str) -> str:
        return _named("environment", v)


class LabLimits(Strict):
    # An ablation above this many runs (grid points and variants x seeds) is refused before it is
    # expanded: a 10^6-point grid would slow every command that loads the project and queue 10^6 runs.
    ablation_runs: int = Field(default=DEFAULT_MAX_ABLATION_RUNS, ge=1)


class RegistrySettings(Strict):
    """`registry: 127.0.0.1:5050` (or `{address: registry.lab:5000/team}`): a Docker Distribution
    (v2) registry. Remote hosts pull the layers they lack from it instead of receiving whole images.
    TLS and credentials are the engines' own (their certificates, `docker login` in the Docker
    config); fbtui stores neither."""

    address: str

    @model_validator(mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return {"address": v} if isinstance(v, str) else v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)*$", v):
            raise ValueError(f"expected HOST[:PORT][/PATH] such as 127.0.0.1:5050 or registry.lab:5000/team, "
                             f"got {v!r} (no scheme: the engine chooses https, or http on loopback)")
        return v


class LabConfig(Strict):
    name: str = "lab"
    store: str = DEFAULT_STORE
    registry: RegistrySettings | None = None  # the lab registry remote hosts pull layers from
    defaults: LabDefaults = Field(default_factory=LabDefaults)
    hosts: dict[str, HostConfig] = Field(default_factory=lambda: {"local": HostConfig()})
    build: BuildSettings = Field(default_factory=BuildSettings)
    limits: LabLimits = Field(default_factory=LabLimits)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _named("lab", v)

    @model_validator(mode="after")
    def _default_host(self) -> LabConfig:
        if "local" not in self.hosts:
            self.hosts = {"local": HostConfig(), **self.hosts}
        for name, h in self.hosts.items():
            engine = self.hosts.get(h.slurm.engine) if h.slurm is not None else None
            if h.slurm is not None and (engine is None or engine.kind != "docker"):
                raise ValueError(f"host {name}: slurm.engine must name a Docker host of this file "
                                 f"(got {h.slurm.engine!r})")
        return self


# ---------------------------------------------------------------- environment.yaml


class EnvironmentConfig(Strict):
    description: str = ""
    base_image: str | None = None  # overrides build.base_image (a CUDA image for GPU environments)
    gpu: bool = False
    apt: list[AptEntry] = Field(default_factory=list)  # Debian packages: name[:arch][=version]
    pip: list[PipEntry] = Field(default_factory=list)  # PEP 508 requirements, never options
    pip_options: PipOptions = Field(default_factory=PipOptions)  # index URLs, find-links, --pre
    build_args: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------- project.yaml


class Resources(Strict):
    gpus: int | list[int] = 0
    cpus: float | None = Field(default=None, gt=0)
    memory: int | None = None
    shm_size: int | None = None

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus(cls, v: Any) -> Any:
        if isinstance(v, bool) or not (
            (isinstance(v, int) and v >= 0)
            or (isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v))
        ):
            raise ValueError(f"expected a GPU count (0, 1, ...) or a list of device ids, got {v!r}")
        return v

    @field_validator("memory", "shm_size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return None if v is None else positive_size(v)


def _out_path(what: str, a: str) -> str:
    import posixpath

    norm = posixpath.normpath(a) if a else ""
    if not a.strip() or a.startswith("/") or ".." in a.split("/") or norm in (".", "") or "\0" in a or "\\" in a:
        raise ValueError(f"{what} are file paths relative to /fb/out, such as model.pt or ckpt/last.pt, got {a!r}")
    return a


class Evaluates(Strict):
    """A stage that evaluates: `fbtui eval` runs it again on an earlier run's model, whatever its name."""

    results: str = "eval.json"  # the report it writes in /fb/out: {"fingerprint": ..., "results": {...}}
    reads: list[str] = Field(default_factory=list)  # earlier stages' artifacts it needs: STAGE/PATH

    @field_validator("results")
    @classmethod
    def _results(cls, v: str) -> str:
        return _out_path("results", v)

    @field_validator("reads")
    @classmethod
    def _reads(cls, v: list[str]) -> list[str]:
        for r in v:
            stage, _, rel = r.partition("/")
            if not NAME_RE.match(stage) or not rel:
                raise ValueError(f"expected STAGE/PATH, an artifact of an earlier stage such as train/model.pt, "
                                 f"got {r!r}")
            _out_path("artifacts", rel)
        return v


class StdoutPattern(Strict):
    """A regular expression over a stage's log lines: a `step` group, and either one named group per
    metric (the key is `prefix` + the group's name, or what `keys:` names for it) or a `name`/`value` pair."""

    pattern: str
    prefix: str = ""  # put before every key: `train/`
    keys: dict[str, str] = Field(default_factory=dict)  # group name -> whole metric key (no prefix; may hold `/`)

    @model_validator(mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return {"pattern": v} if isinstance(v, str) else v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        from fbtui.config.templates import pattern_problem

        if problem := pattern_problem(v):
            raise ValueError(problem)
        return v


class MetricSources(Strict):
    """Where a stage's metrics come from, besides nothing: all are ingested by offset, exactly once."""

    jsonl: bool = True  # /fb/out/metrics.jsonl, common's format
    stdout: list[StdoutPattern] = Field(default_factory=list)
    tensorboard: list[str] = Field(default_factory=list)  # globs under /fb/out: **/events.out.tfevents.*

    @field_validator("tensorboard", mode="before")
    @classmethod
    def _one(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("tensorboard")
    @classmethod
    def _globs(cls, v: list[str]) -> list[str]:
        for g in v:
            _out_path("tensorboard event files", g)
        return v


class StageSpec(Strict):
    name: str
    # default: python -m common.stages.<name>. Placeholders ({model.hidden}, {seed}, {out}, {in.train},
    # {flags:SECTION}) are rendered per run from its resolved config: config/templates.py.
    command: list[str] | None = None
    artifacts: list[str] = Field(default_factory=list)  # paths, folders (ckpt/) or globs (runs/*.pt)
    needs: list[str] | None = None  # default: every earlier stage
    resources: Resources = Field(default_factory=Resources)
    network: Literal["none", "host"] = "none"
    timeout: float | None = None
    env: dict[str, str] = Field(default_factory=dict)  # values set in the stage (templated), recorded
    secrets: list[str] = Field(default_factory=list)  # names of host variables passed through, never stored
    metrics: MetricSources = Field(default_factory=MetricSources)
    # One run across several processes (#15): the command starts under torchrun with this many
    # processes per node; common's trainer then runs DistributedDataParallel (see run_command).
    processes: int = Field(default=1, ge=1, le=256)
    after: str | None = None  # only under `pipeline: {extends: common}`: where an added stage goes
    before: str | None = None
    cache: bool = True
    # Config sections the stage reads (default: all). Its cache key covers only these, so a
    # `prepare` that reads [data, seed] runs once for all the variants of an ablation over the model.
    reads: list[str] | None = None
    # Least privilege (fbtui/pipeline/privileges.py): a stage runs as the invoking user with no
    # capabilities and no-new-privileges. `user: root` asks for root (recorded with the run);
    # `capabilities: [NET_BIND_SERVICE]` adds named ones back (root stages only); `read_only_root:
    # true` makes the image's filesystem read-only (/tmp is a tmpfs); `pids_limit` caps processes
    # and threads (default 4096). The `env:` names are secrets: files at /run/secrets/NAME on a
    # tmpfs by default, environment variables (visible in `docker inspect`) with `secrets_as: env`.
    user: Literal["root"] | None = None
    capabilities: list[str] = Field(default_factory=list)
    read_only_root: bool = False
    pids_limit: int | None = Field(default=None, ge=16)
    secrets_as: Literal["files", "env"] = "files"
    # Marks the stage that evaluates (default: the one called `evaluate`, reporting eval.json).
    evaluates: Evaluates | None = None

    def report_file(self) -> str | None:
        """The evaluation report this stage writes, if it evaluates."""
        if self.evaluates is not None:
            return self.evaluates.results
        return "eval.json" if self.name == "evaluate" or "eval.json" in self.artifacts else None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"expected a lower-case name (letters, digits, - _ .), got {v!r}")
        return v

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, v: Any) -> Any:
        if isinstance(v, str):
            import shlex

            return shlex.split(v)
        return v

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @model_validator(mode="before")
    @classmethod
    def _env_list(cls, v: Any) -> Any:
        # `env: [NAME, ...]` (before values were allowed) names secrets passed from the launching shell
        if isinstance(v, dict) and isinstance(v.get("env"), list):
            secrets = v.get("secrets") if isinstance(v.get("secrets"), list) else []
            v = {**v, "env": {}, "secrets": [*secrets, *v["env"]]}
        return v

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out = {}
        for name, value in v.items():
            if not isinstance(name, str) or not ENV_NAME_RE.match(name):
                raise ValueError(f"expected environment variable names, got {name!r}")
            if value is None or isinstance(value, (dict, list)):
                raise ValueError(f"env: {name}: expected a value such as 1 or 'text' (a secret from the "
                                 "launching shell goes under secrets: instead)")
            out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: list[str]) -> list[str]:
        for name in v:
            if not ENV_NAME_RE.match(name):
                raise ValueError(f"expected environment variable names, got {name!r}")
        return v

    @field_validator("artifacts")
    @classmethod
    def _artifacts(cls, v: list[str]) -> list[str]:
        for a in v:
            _out_path("artifacts", a.rstrip("/") if a.endswith("/") and a.strip("/") else a)
        return v

    @field_validator("capabilities")
    @classmethod
    def _capabilities(cls, v: list[str], info: ValidationInfo) -> list[str]:
        names = [c.upper().removeprefix("CAP_") for c in v]
        for c in names:
            if c not in CAPABILITIES:
                raise ValueError(f"expected Linux capability names such as NET_BIND_SERVICE, got {c!r}")
        if names and info.data.get("user") != "root":
            raise ValueError("capabilities need user: root in the same stage (a non-root process keeps none)")
        return names

    def default_command(self) -> list[str]:
        return self.command or ["python3", "-m", f"common.stages.{self.name}"]

    def run_command(self) -> list[str]:
        """What the container runs: the command, under torchrun when the stage asks for processes."""
        cmd = self.default_command()
        if self.processes == 1:
            return cmd
        # loopback: a stage without a network has no name for its own hostname
        return [cmd[0], "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.processes}",
                "--local-addr=127.0.0.1", *cmd[1:]]

    @model_validator(mode="after")
    def _processes(self) -> StageSpec:
        if self.processes > 1:
            cmd = self.default_command()
            if not cmd[0].rsplit("/", 1)[-1].startswith("python") or len(cmd) < 2:
                raise ValueError(f"processes: {self.processes} starts the command under torchrun, which runs a "
                                 f"Python script or module: the command must be python3 SCRIPT ... or python3 -m "
                                 f"MODULE ..., got {' '.join(cmd)!r}")
        return self


class AblationSpec(Strict):
    description: str = ""
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    seeds: list[int] | None = None
    baseline: str | None = None


class PipelineExtension(Strict):
    """`pipeline: {extends: common, stages: [...]}`: the inherited stages, plus these. A stage named
    like an inherited one changes only the fields it gives; a new one goes `after:`/`before:` a stage
    (default: at the end). Merged and checked in lab.py, where errors can point at their lines."""

    extends: Literal["common"]
    stages: list[dict[str, Any]] = Field(default_factory=list)


def _pipeline_kind(v: Any) -> str:
    # Tagged, so an error speaks of the form given, not of both; validate.py drops "function-" parts
    return "function-extends" if isinstance(v, (dict, PipelineExtension)) else "function-list"


class ProjectConfig(Strict):
    description: str = ""
    environment: str | None = None  # default: lab.yaml defaults.environment
    # default: common/pipeline.yaml; a list replaces it, {extends: common, stages: [...]} adds to it
    pipeline: Annotated[Annotated[list[StageSpec], Tag("function-list")]
                        | Annotated[PipelineExtension, Tag("function-extends")],
                        Discriminator(_pipeline_kind)] | None = None
    # which sections of common/defaults.yaml the project's config starts from: all (true), none
    # (false: the records hold only the project's own keys), or a list of top-level sections
    inherit: bool | list[str] = True
    config: dict[str, Any] = Field(default_factory=dict)
    ablations: dict[str, AblationSpec] = Field(default_factory=dict)


class PipelineFile(Strict):
    """common/pipeline.yaml: the pipeline a project inherits unless it declares its own."""

    pipeline: list[StageSpec]
