"""`fbtui doctor`: each check passes, warns or fails, and says how to fix what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fbtui.errors import FBError

if TYPE_CHECKING:
    from fbtui.lab import Lab


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None


def run_checks(lab_arg: str | None = None) -> list[Check]:
    from fbtui.lab import HOW_TO_MAKE_A_LAB, Lab

    checks: list[Check] = []
    try:
        lab = Lab.find(lab_arg)
    except FBError as e:
        checks.append(Check("lab", "fail", e.message, HOW_TO_MAKE_A_LAB))
        checks.extend(_engine_checks(None))
        return checks
    checks.append(Check("lab", "ok", f"{lab.config.name} at {lab.root}: {len(lab.project_names())} projects, "
                        f"environments {', '.join(lab.environment_names()) or 'none'}"))
    checks.extend(_config_checks(lab))
    checks.extend(_engine_checks(lab))
    if lab is not None and lab.config.registry is not None:
        checks.append(_registry_check(lab.config.registry.address))
    checks.append(_store_check(lab))
    checks.append(_git_check(lab))
    return checks


def _config_checks(lab: Lab) -> list[Check]:
    from fbtui.images.plan import index_credentials

    problems = []
    for name in lab.environment_names():
        try:
            lab.load_environment(name)
        except FBError as e:
            problems.append(str(e))
    try:
        index_credentials(lab)  # credentials in build.pip_index_url need build.network: host
    except FBError as e:
        problems.append(str(e))
    pipelines = []
    for name in lab.project_names():
        try:
            project = lab.project(name)
            pipelines.append(f"{name}: {' -> '.join(s.name for s in project.stages)}")
        except FBError as e:
            problems.append(str(e))
    if problems:
        return [Check("config", "fail", "; ".join(problems), "edit the file and line named above")]
    return [Check("config", "ok", "lab.yaml, every environment.yaml and project.yaml are valid"),
            *[Check("pipeline", "ok", p) for p in pipelines]]


def _registry_check(address: str) -> Check:
    from fbtui.images.registry import reachable

    why = reachable(address)
    if why is None:
        return Check("registry", "ok", f"{address} answers (remote hosts pull the layers they lack from it)")
    return Check("registry", "fail", f"{address} does not answer ({why})",
                 "start it (scripts/registry runs one on loopback), or fix lab.yaml's registry:")


def _engine_checks(lab: Lab | None) -> list[Check]:
    from fbtui.config.models import HostConfig
    from fbtui.engine import START_HINT, client, host_url

    out: list[Check] = []
    hosts = lab.config.hosts if lab else {"local": HostConfig()}
    for name, host in hosts.items():
        label = "engine" if name == "local" else f"host {name}"
        if host.kind == "slurm" and lab is not None:
            out.extend(_slurm_checks(lab, name))
            continue
        try:
            if lab is not None:
                from fbtui.pipeline.hosts import shared_hosts

                c = shared_hosts(lab.root, lab.config.hosts).client(name, timeout=10)
            else:
                c = client(host, timeout=10)
            v = c.version()
        except FBError as e:
            status = "fail" if name == "local" else "warn"
            out.append(Check(label, status, e.message, START_HINT if name == "local" else
                             f"check that {host.url} is up and reachable from here"))
            continue
        except Exception as e:  # a broken remote must not stop the other checks
            out.append(Check(label, "fail" if name == "local" else "warn",
                             f"{host_url(host)}: {type(e).__name__}: {str(e)[:200]}"))
            continue
        runtimes = sorted((c.info().get("Runtimes") or {}).keys())
        out.append(Check(label, "ok", f"{host_url(host)}: Docker {v.get('Version')} (API {v.get('ApiVersion')}), "
                         f"runtimes {', '.join(runtimes)}"))
        if name == "local" and lab is not None:
            out.extend(_base_image_checks(lab, c))
    return out


def _slurm_checks(lab: Lab, name: str) -> list[Check]:
    """A slurm host: its commands, its controller, its shared path (each with the fix)."""
    from fbtui.backends import slurm_backend

    b = slurm_backend(lab.config.hosts, name)
    found = b.problems()
    if found:
        return [Check(f"host {name}", "warn", what.removeprefix(f"host {name}: "), fix) for what, fix in found]
    try:
        s = b.summary()
    except FBError as e:
        return [Check(f"host {name}", "warn", e.message.removeprefix(f"host {name}: "))]
    nodes = ", ".join(f"{n} {state}" for state, n in sorted(s["nodes"].items()))  # type: ignore[attr-defined]
    return [Check(f"host {name}", "ok", f"{s['version']}: {nodes or 'no nodes'}; {s['cpus']} CPUs; "
                  f"shared path {b.s.shared}; runtime {b.s.runtime}")]


def _base_image_checks(lab: Lab, c: object) -> list[Check]:
    import docker

    wanted: dict[str, list[str]] = {lab.config.build.base_image: []}
    for env in lab.environment_names():
        try:
            spec = lab.load_environment(env)
        except FBError:
            continue
        wanted.setdefault(spec.base_image or lab.config.build.base_image, []).append(env)
    out = []
    for image, envs in wanted.items():
        used_by = f" (environments: {', '.join(envs)})" if envs else " (build.base_image)"
        try:
            c.images.get(image)  # type: ignore[attr-defined]
            out.append(Check("base image", "ok", f"{image} is present{used_by}"))
        except docker.errors.ImageNotFound:
            gpu_only = all(_is_gpu(lab, e) for e in envs) and envs
            out.append(Check(
                "base image", "warn" if gpu_only else "fail", f"{image} is not on the local engine{used_by}",
                "GPU environments build only where their CUDA base image can be pulled" if gpu_only else
                "scripts/engine makes the stand-in fb/torch-stand-in:2.13.0; otherwise docker pull it",
            ))
    return out


def _is_gpu(lab: Lab, env: str) -> bool:
    try:
        return lab.load_environment(env).gpu
    except FBError:
        return False


def _store_check(lab: Lab) -> Check:
    from fbtui.store import Store
    from fbtui.store.migrations import LATEST

    path = lab.store_path
    if not path.exists():
        return Check("store", "ok", f"{lab.rel(path)} will be created on the first run (schema v{LATEST})")
    from fbtui.errors import FBError
    from fbtui.store.opening import writable

    try:  # read-only: doctor changes nothing, and a store this user may only read still checks
        with Store(path, read_only=True) as store:
            version = store.schema_version
            runs = store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if version else 0
    except FBError as e:  # a newer schema, not SQLite, a folder: the store's own one-line reason and fix
        return Check("store", "fail", f"{lab.rel(path)}: {e.message}", e.hint or "")
    except Exception as e:
        return Check("store", "fail", f"{lab.rel(path)}: {e}", "move the file aside; a new one is created")
    note = "current" if version == LATEST else f"will migrate to v{LATEST} on next use"
    if not writable(path):
        return Check("store", "warn", f"{lab.rel(path)}: schema v{version}, {runs} runs, read-only here: ls, ps, "
                     "logs, show and compare work; run, build and cancel do not",
                     "make the store and its folder writable for you, or run as the lab's owner")
    return Check("store", "ok", f"{lab.rel(path)}: schema v{version} ({note}), {runs} runs")


def _git_check(lab: Lab) -> Check:
    from fbtui.gitstate import capture

    state = capture(lab.root)
    if not state.is_repo:
        return Check("git", "warn", "the lab is not a git repository: runs are recorded without a commit",
                     "git init && git add -A && git commit -m 'lab'")
    extra = f", {len(state.untracked)} untracked files" if state.untracked else ""
    return Check("git", "ok", f"{state.short}{extra}")
