"""One stage as one container, as DESIGN.md's container contract says: labels to find it again,
/fb/out read-write, /fb/in/<stage> read-only, /fb/config.yaml, data mounts read-only, no network
unless asked, GPUs only as requested, `init` so that a stop is quick; least privilege and secrets
as files as privileges.py says."""

from __future__ import annotations

import contextlib
import io
import math
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError
from fbtui.pipeline import privileges as pv

if TYPE_CHECKING:
    import docker

    from fbtui.config.models import HostConfig, StageSpec


class StageSetupError(FBError):
    """The stage could not start (image missing, no GPU runtime, bad mount): nothing ran."""


@dataclass
class StageSpecOnHost:
    lab: str
    run_id: int
    project: str
    stage: StageSpec
    image: str
    host_name: str
    host: HostConfig
    config_yaml: str
    out: str  # local: a folder on this machine; remote: a volume name
    inputs: dict[str, str] = field(default_factory=dict)  # predecessor -> its out (folder or volume)
    gpus: list[int] | int = 0
    remote: bool = False
    instance: str = ""  # this lab checkout on this machine: names on shared engines never collide
    cpus: float | None = None  # the request placement made room for (default: the stage's own)
    memory: int | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)  # fb.checkout, fb.user, fb.cpus, ...
    invoker: pv.Identity | None = None  # whose files outputs become (default: this process's user)
    run_as: tuple[int, int] | None = None  # set by create_and_start: the uid:gid the stage runs as
    overlay: bytes | None = None  # a tar put under /fb before the start (a suite's common/, first on PYTHONPATH)
    pull: bool = False  # the image is a registry reference the host pulls when it lacks it (Slurm nodes)

    @property
    def labels(self) -> dict[str, str]:
        labels = {"fb.lab": self.lab, "fb.run": str(self.run_id), "fb.stage": self.stage.name,
                  "fb.project": self.project, "fb.host": self.host_name}
        if self.gpus:
            labels["fb.gpus"] = ",".join(map(str, self.gpus)) if isinstance(self.gpus, list) else f"n{self.gpus}"
        return {**labels, **self.extra_labels}


def lab_instance(root: Path) -> str:
    """Short id of one checkout of a lab on one machine. Run ids restart in every store, so names
    on a shared engine carry this too: two clones of a lab never share a container or a volume."""
    import hashlib
    import socket

    return hashlib.sha256(f"{socket.gethostname()}:{root.resolve()}".encode()).hexdigest()[:8]


def container_name(lab: str, instance: str, run_id: int, stage: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in lab)
    return f"fb-{safe}-{instance}-r{run_id}-{stage}"


def volume_name(lab: str, instance: str, run_id: int, stage: str) -> str:
    return container_name(lab, instance, run_id, stage)


def check_gpus(client: docker.DockerClient, host_name: str, stage: StageSpec) -> None:
    """A GPU request on an engine without the NVIDIA runtime fails at start with an obscure error
    (MEASURED.md): say so before anything starts."""
    gpus = stage.resources.gpus
    if not gpus:
        return
    runtimes = sorted((client.info().get("Runtimes") or {}).keys())
    if "nvidia" not in runtimes:
        wanted = f"GPUs {gpus}" if isinstance(gpus, list) else f"{gpus} GPU{'s' if gpus != 1 else ''}"
        raise StageSetupError(
            f"stage {stage.name} asks for {wanted}, but host {host_name} has no GPU runtime "
            f"(runtimes: {', '.join(runtimes) or 'none'})",
            hint="run it on a host with the NVIDIA container toolkit, or set resources.gpus: 0",
        )


# compute for the stage, utility for the nvidia-smi that `fbtui top` execs; naming any driver capability
# sets NVIDIA_DRIVER_CAPABILITIES to exactly those named, so "utility" alone would drop compute
GPU_CAPABILITIES = [["gpu", "compute", "utility"]]


def device_requests(gpus: list[int] | int) -> list[Any]:
    import docker

    if not gpus:
        return []
    if isinstance(gpus, list):
        return [docker.types.DeviceRequest(device_ids=[str(g) for g in gpus], capabilities=GPU_CAPABILITIES)]
    return [docker.types.DeviceRequest(count=int(gpus), capabilities=GPU_CAPABILITIES)]


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")


def thread_env(cpus: float | None, processes: int = 1) -> dict[str, str]:
    """Threads follow the CPU request: a script that never sets them (torch's default is every CPU
    the machine has) still does not oversubscribe its share; the processes of one stage split it.
    A stage's env: can still override."""
    if not cpus:
        return {}
    n = str(max(1, math.ceil(cpus / processes - 1e-9)))
    return {**dict.fromkeys(THREAD_VARS, n), "FB_CPUS": f"{cpus:g}"}


def stage_env(spec: StageSpecOnHost, run_as: tuple[int, int], cpus: float | None) -> dict[str, str]:
    """The environment every stage gets, on any backend: fb's variables, a user's HOME, threads that
    follow the CPU request, the stage's own env:, a suite's code first on PYTHONPATH, and loopback
    for torchrun's ranks. Secrets are added by each backend its own way."""
    st = spec.stage
    env = {"FB_RUN": str(spec.run_id), "FB_STAGE": st.name, "FB_PROJECT_DIR": "/fb/project",
           **pv.user_env(run_as), **thread_env(cpus, st.processes), **st.env}
    if spec.overlay is not None:
        env["PYTHONPATH"] = "/fb/suite"
    if st.processes > 1:
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def create_and_start(client: docker.DockerClient, spec: StageSpecOnHost, env_values: dict[str, str]) -> str:
    """Create the stage's container, put its config in, start it; returns the container id."""
    import docker

    st = spec.stage
    cname = container_name(spec.lab, spec.instance, spec.run_id, st.name)
    invoker = spec.invoker or pv.invoking_user(Path.cwd())
    rootless = not spec.remote and pv.engine_is_rootless(client)
    run_as = spec.run_as = pv.stage_user(st, invoker, rootless)
    if spec.remote and st.read_only_root:
        raise StageSetupError(f"stage {st.name}: read_only_root works on local hosts only (a remote stage's config "
                              "and secrets are copied into its filesystem before it starts)",
                              hint=f"run it on the local host, or drop read_only_root from stage {st.name}")
    # Secret files on this machine's tmpfs need an owner the stage can read as: this process's
    # user, root (it chowns), or a rootless engine's root; otherwise they go in like a remote's.
    secret_files = {} if st.secrets_as == "env" else env_values
    local_secrets = bool(secret_files) and not spec.remote and (
        os.geteuid() in (0, run_as[0]) or rootless)
    if secret_files and not local_secrets and st.read_only_root:
        raise StageSetupError(f"stage {st.name}: its secrets cannot reach a read-only root as files here",
                              hint="set secrets_as: env, or run fbtui as the stage's user")
    mounts: list[Any] = []
    stage_dir = Path(spec.out).parent
    if spec.remote:
        _fresh_volume(client, spec)
        mounts.append(docker.types.Mount("/fb/out", spec.out, type="volume"))
        for name, vol in spec.inputs.items():
            mounts.append(docker.types.Mount(f"/fb/in/{name}", vol, type="volume", read_only=True))
    else:
        # .fb/runs/N/<stage>/out: up to .fb/runs, folders root made become the invoking user's
        pv.prepare_out(Path(spec.out), run_as, invoker, stop_at=stage_dir.parent.parent.parent)
        mounts.append(docker.types.Mount("/fb/out", spec.out, type="bind"))
        if st.read_only_root:  # put_archive cannot write into a read-only root: the config is a bind
            config_file = stage_dir / "config.yaml"
            config_file.unlink(missing_ok=True)
            config_file.write_text(spec.config_yaml)
            config_file.chmod(0o444)
            mounts.append(docker.types.Mount("/fb/config.yaml", str(config_file), type="bind", read_only=True))
        for name, folder in spec.inputs.items():
            mounts.append(docker.types.Mount(f"/fb/in/{name}", folder, type="bind", read_only=True))
    for name, path in spec.host.data.items():
        mounts.append(docker.types.Mount(f"/fb/data/{name}", path, type="bind", read_only=True))
    res = st.resources
    cpus = spec.cpus if spec.cpus is not None else res.cpus
    memory = spec.memory if spec.memory is not None else res.memory
    if spec.overlay is not None and st.read_only_root:
        raise StageSetupError(f"stage {st.name}: a suite's code cannot be copied into a read-only root")
    env = stage_env(spec, run_as, cpus)
    if st.secrets_as == "env":
        env.update(env_values)
    elif env_values:
        env["FB_SECRETS"] = "/run/secrets"
    kwargs: dict[str, Any] = {
        "image": spec.image, "command": st.run_command(), "name": cname,
        "labels": spec.labels, "mounts": mounts, "init": True, "detach": True,
        "network_mode": st.network, "working_dir": "/fb", "environment": env,
        **pv.security_kwargs(st, run_as),
    }
    if run_as[0] == 0 and not spec.remote and not rootless and os.geteuid() != 0:
        # the out folder is this (non-root) user's, 0755: root without DAC_OVERRIDE could not write
        # it. Its other mounts are read-only, so the capability reaches nothing else of the host's.
        kwargs["cap_add"] = sorted({*kwargs.get("cap_add", []), "DAC_OVERRIDE"})
    if st.processes > 1:  # torchrun's ranks meet on loopback: a stage with no network has no other name
        kwargs["hostname"] = "localhost"
    if memory:  # swap only up to the limit, so an overrun is an OOM kill, not a crawl
        kwargs["mem_limit"] = memory
        kwargs["memswap_limit"] = memory
    if cpus:
        kwargs["nano_cpus"] = int(cpus * 1e9)
    if res.shm_size:
        kwargs["shm_size"] = res.shm_size
    if spec.gpus:
        kwargs["device_requests"] = device_requests(spec.gpus)
    secrets_dir = pv.write_secrets(cname, secret_files, run_as) if local_secrets else None
    if secrets_dir is not None:
        mounts.append(docker.types.Mount("/run/secrets", str(secrets_dir), type="bind", read_only=True))
    try:
        container = _create(client, spec, kwargs)
        if container is None:  # a retried start found it running: it keeps the secrets it has
            if secrets_dir is not None:
                pv.remove_folder(secrets_dir)
            return str(client.containers.get(cname).id)
        if not st.read_only_root:
            container.put_archive("/fb", _tar({"config.yaml": spec.config_yaml.encode()}))
        if spec.overlay is not None:
            container.put_archive("/fb", spec.overlay)
        if spec.remote and run_as[0] != 0:  # a fresh volume is root's: make it the stage user's
            container.put_archive("/fb", pv.owned_dir_tar("out", run_as))
        if secret_files and not local_secrets:  # in the container's layer until it is removed
            container.put_archive("/", pv.secrets_tar(secret_files, run_as))
        try:
            container.start()
        except docker.errors.APIError as e:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            raise StageSetupError(f"stage {st.name} could not start on {spec.host_name}: "
                                  f"{e.explanation or e}") from None
    except BaseException:  # an engine error before the start is retried next tick, with fresh secrets
        if secrets_dir is not None:
            pv.remove_folder(secrets_dir)
        raise
    return str(container.id)


def _create(client: docker.DockerClient, spec: StageSpecOnHost, kwargs: dict[str, Any]) -> Any:
    """The created container, or None when a retried start finds it started already."""
    import docker

    try:
        return client.containers.create(**kwargs)
    except docker.errors.ImageNotFound:
        raise StageSetupError(f"image {spec.image} is missing on host {spec.host_name}",
                              hint=f"fbtui build {spec.project} --host {spec.host_name}") from None
    except docker.errors.APIError as e:
        if e.status_code != 409:
            raise StageSetupError(f"cannot create the container of stage {spec.stage.name}: "
                                  f"{e.explanation or e}") from None
    container = client.containers.get(kwargs["name"])  # this stage's container exists: a retried start
    if container.status != "created":
        return None
    container.remove(force=True)
    return client.containers.create(**kwargs)


def _fresh_volume(client: docker.DockerClient, spec: StageSpecOnHost) -> None:
    """A volume left by an earlier incarnation of this store (deleted, run ids reused) must not
    leak into this stage: remove it, unless this is a retried start of the same container."""
    import docker

    try:
        client.api.inspect_container(container_name(spec.lab, spec.instance, spec.run_id, spec.stage.name))
        return
    except docker.errors.NotFound:
        pass
    try:
        client.api.remove_volume(spec.out, force=True)
    except docker.errors.NotFound:
        pass


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read_file(client: docker.DockerClient, container_id: str, path: str, offset: int = 0) -> bytes | None:
    """A file from a container's filesystem (volumes included), from `offset`; None if absent."""
    import docker

    try:
        stream, _ = client.api.get_archive(container_id, path)
    except docker.errors.NotFound:
        return None
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        if member is None or not member.isfile():
            return None
        f = tar.extractfile(member)
        return f.read()[offset:] if f else None


TAIL_CAP = 16 * 2**20  # bytes one read brings back; the rest comes with the next
SMALL_READ = 2**20  # below this offset a whole-file archive read is the cheaper way


def read_from(client: docker.DockerClient, container_id: str, path: str, offset: int) -> bytes | None:
    """The bytes of a file in a running container past `offset`, without moving what came before:
    `tail -c +N` run in it (the archive API sends the whole file every time, so reading a growing
    metrics file that way moves bytes that grow with the square of its length). A container that
    no longer runs, or has no `tail`, is read through the archive once (None: the file is absent)."""
    import docker

    if offset < SMALL_READ:  # a small file costs less as one archive read than as an exec
        data = read_file(client, container_id, path, offset)
        return None if data is None else data[:TAIL_CAP]
    try:
        res = client.api.exec_create(container_id, ["sh", "-c", 'tail -c "+$1" -- "$2" 2>/dev/null | head -c "$3"',
                                                     "sh", str(offset + 1), path, str(TAIL_CAP)],
                                     stdout=True, stderr=False)
        out = client.api.exec_start(res["Id"])
        code = client.api.exec_inspect(res["Id"]).get("ExitCode")
        if code == 0 and isinstance(out, bytes):
            if out or file_size(client, container_id, path) is not None:
                return out
            return None
    except docker.errors.APIError:
        pass  # not running (409), or no shell in the image
    data = read_file(client, container_id, path, offset)
    return None if data is None else data[:TAIL_CAP]


def file_size(client: docker.DockerClient, container_id: str, path: str) -> int | None:
    """A file's size from the archive API's stat header, asked with HEAD (no content moves); None if absent."""
    import base64
    import json as _json

    api = client.api
    res = api.head(api._url("/containers/{0}/archive", container_id), params={"path": path})
    if res.status_code == 404:
        return None
    api._raise_for_status(res)
    stat = res.headers.get("X-Docker-Container-Path-Stat")
    return int(_json.loads(base64.b64decode(stat))["size"]) if stat else None


def host_env(names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Secrets passed by name from this machine's environment: (values, names that are unset)."""
    values = {n: os.environ[n] for n in names if n in os.environ}
    return values, [n for n in names if n not in os.environ]
