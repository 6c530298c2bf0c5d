"""Least-privilege stage containers on a real engine: who a stage runs as, what `docker inspect`
shows, setuid and chown attempts, secrets as files, root only when asked (issue #12, part 6)."""

from __future__ import annotations

import json
import os
import stat
import textwrap
import time
from pathlib import Path

import pytest

from fbtui.lab import Lab
from fbtui.pipeline import privileges as pv
from fbtui.pipeline.supervisor import run_folder
from fbtui.store import Store
from tests.conftest import make_git_lab
from tests.labs import end_lab
from tests.test_pipeline import wait_for

SECRET = "s3cret-value-for-privileges"
PROJECT = textwrap.dedent("""
    environment: torch-cpu
    config:
      probe: {wait: false}
    pipeline:
      - name: work
        command: [python3, /fb/project/probe.py]
        artifacts: [report.json]
        env: [FB_PRIV_SECRET]
        cache: false
""")
# What the stage finds out about itself; it never prints or writes the secret's value.
PROBE_PY = textwrap.dedent('''
    import json, os, shutil, sys, time
    import yaml
    cfg = yaml.safe_load(open("/fb/config.yaml"))["probe"]
    if cfg["wait"]:  # held until the test has inspected the container
        while not os.path.exists("/fb/data/ctl/go"):
            time.sleep(0.1)
    out = "/fb/out"
    report = {"uid": os.getuid(), "gid": os.getgid(), "home": os.environ.get("HOME")}
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    report["cap_eff"] = status["CapEff"].strip()
    report["no_new_privs"] = status["NoNewPrivs"].strip()
    shell = f"{out}/shell"
    shutil.copy("/bin/sh", shell)
    try:
        os.chmod(shell, 0o4755)
        report["setuid"] = "set"
    except OSError as e:
        report["setuid"] = type(e).__name__
    try:
        os.chown(shell, 0, 0)
        report["chown_root"] = "done"
    except OSError as e:
        report["chown_root"] = type(e).__name__
    try:
        os.makedirs(os.path.expanduser("~/.cache/torch"), exist_ok=True)
        report["home_writable"] = True
    except OSError:
        report["home_writable"] = False
    path = "/run/secrets/FB_PRIV_SECRET"
    report["secret_file"] = os.path.exists(path) and open(path).read() == "@@VALUE@@"
    report["secret_env"] = os.environ.get("FB_PRIV_SECRET") == "@@VALUE@@"
    try:
        open("/usr/local/planted", "w").write("x")
        report["root_writable"] = True
    except OSError:
        report["root_writable"] = False
    mounts = [line.split() for line in open("/proc/self/mounts")]
    report["root_ro"] = any(m[1] == "/" and m[3].split(",")[0] == "ro" for m in mounts)
    for pids in ("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"):  # cgroup v1, v2
        if os.path.exists(pids):
            report["pids_max"] = open(pids).read().strip()
    open("/tmp/scratch", "w").write("x")  # /tmp works either way
    json.dump(report, open(f"{out}/report.json", "w"))
    print("probe done", flush=True)
''').replace("@@VALUE@@", SECRET)


@pytest.fixture
def privlab(tmp_path: Path, docker_host: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FB_PRIV_SECRET", SECRET)
    root = make_git_lab(tmp_path / "privlab")
    (root / "projects/probe").mkdir()
    (root / "projects/probe/project.yaml").write_text(PROJECT)
    (root / "projects/probe/probe.py").write_text(PROBE_PY)
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    y = root / "lab.yaml"
    y.write_text(y.read_text().replace("hosts:\n  local:\n", f"hosts:\n  local:\n    data: {{ctl: {ctl}}}\n", 1))
    assert f"data: {{ctl: {ctl}}}" in y.read_text()
    yield root
    end_lab(root, docker_host)


def stage_yaml(root: Path, extra: str) -> None:
    y = root / "projects/probe/project.yaml"
    text = y.read_text()
    assert "\n    cache: false\n" in text
    y.write_text(text.replace("\n    cache: false\n", "\n    cache: false\n" + textwrap.indent(
        textwrap.dedent(extra).lstrip("\n"), " " * 4)))


def report(root: Path, run_id: int) -> dict:  # type: ignore[type-arg]
    return json.loads((run_folder(Lab(root), run_id) / "work/out/report.json").read_text())


def leftover_secrets(root: Path) -> list[str]:
    from fbtui.pipeline.containers import container_name, lab_instance

    prefix = pv.SECRETS_PREFIX + container_name(Lab(root).config.name, lab_instance(root), 0, "")[:-3]
    return [p.name for p in pv.SECRETS_ROOT.iterdir() if p.name.startswith(prefix)]


@pytest.mark.slow
@pytest.mark.engine
def test_a_stage_runs_as_the_invoking_user_with_nothing_more(privlab, fbtui, docker_client):  # type: ignore[no-untyped-def]
    sudo = {"SUDO_UID": "1234", "SUDO_GID": "2345"}  # fbtui under sudo: outputs belong to that user
    proc = fbtui("run", "probe", "--detach", "-o", "probe.wait=true", cwd=privlab, env=sudo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lab = Lab(privlab)
    deadline = time.monotonic() + 120
    found: list = []  # type: ignore[type-arg]
    while not found and time.monotonic() < deadline:
        found = docker_client.api.containers(filters={"label": [f"fb.lab={lab.config.name}", "fb.run=1",
                                                                 f"fb.checkout={_instance(privlab)}"]})
        time.sleep(0.2)
    assert found, "the stage's container never started"
    info = docker_client.api.inspect_container(found[0]["Id"])
    host = info["HostConfig"]
    assert info["Config"]["User"] == "1234:2345"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"] and host["PidsLimit"] == pv.DEFAULT_PIDS
    assert not host["ReadonlyRootfs"]
    assert all(SECRET not in e for e in info["Config"]["Env"])  # a file, not an env variable
    secrets = [m for m in info["Mounts"] if m["Destination"] == "/run/secrets"]
    assert len(secrets) == 1 and not secrets[0]["RW"] and secrets[0]["Source"].startswith("/dev/shm/")
    folder = Path(secrets[0]["Source"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o500 and folder.stat().st_uid == 1234
    assert stat.S_IMODE((folder / "FB_PRIV_SECRET").stat().st_mode) == 0o400
    assert SECRET not in json.dumps(info)
    (Path(lab.config.hosts["local"].data["ctl"]) / "go").write_text("")
    with Store(lab.store_path) as s:
        run = wait_for(s, 1)
        assert run["status"] == "succeeded", run["reason"]
        assert s.stage(1, "work")["run_as"] == "1234:2345"
    r = report(privlab, 1)
    assert (r["uid"], r["gid"], r["home"]) == (1234, 2345, "/tmp") and r["home_writable"]
    assert r["cap_eff"] == "0000000000000000" and r["no_new_privs"] == "1"
    assert r["chown_root"] == "PermissionError" and r["secret_file"] and not r["secret_env"]
    out = run_folder(lab, 1) / "work" / "out"
    for path in (out / "report.json", out / "shell", out, out.parent, out.parent.parent):
        assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345), path  # the user can delete .fb/runs/1
    assert not (out / "shell").stat().st_mode & (stat.S_ISUID | stat.S_ISGID)  # cleared at the stage's end
    assert not folder.exists() and not leftover_secrets(privlab)
    shown = fbtui("show", "1", cwd=privlab).stdout
    assert "USER" in shown and any(x.startswith("work ") and " 1234:2345 " in x for x in shown.splitlines())


def _instance(root: Path) -> str:
    from fbtui.pipeline.containers import lab_instance

    return lab_instance(root)


@pytest.mark.slow
@pytest.mark.engine
def test_root_only_when_asked_recorded_and_its_setuid_files_defused(privlab, fbtui):  # type: ignore[no-untyped-def]
    stage_yaml(privlab, """
        user: root
        capabilities: [CHOWN]
    """)
    proc = fbtui("run", "probe", cwd=privlab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = report(privlab, 1)
    assert (r["uid"], r["gid"]) == (0, 0) and r["cap_eff"] == "0000000000000001"  # CHOWN alone
    assert r["no_new_privs"] == "1" and r["setuid"] == "set" and r["root_writable"] and not r["root_ro"]
    shell = run_folder(Lab(privlab), 1) / "work/out/shell"
    assert shell.stat().st_uid == 0 and not shell.stat().st_mode & stat.S_ISUID  # no setuid-root shell stays
    with Store(Lab(privlab).store_path) as s:
        assert s.stage(1, "work")["run_as"] == "0:0"
    rec = json.loads(fbtui("show", "1", "--json", cwd=privlab).stdout)
    assert rec["stages"][0]["run_as"] == "0:0"
    assert " root " in fbtui("show", "1", cwd=privlab).stdout


@pytest.mark.slow
@pytest.mark.engine
def test_nobody_when_everyone_is_root_read_only_root_and_secrets_as_env(privlab, fbtui):  # type: ignore[no-untyped-def]
    assert privlab.stat().st_uid == 0 and os.getuid() == 0 and "SUDO_UID" not in os.environ  # as in CI
    stage_yaml(privlab, """
        read_only_root: true
        secrets_as: env
        pids_limit: 64
    """)
    proc = fbtui("run", "probe", cwd=privlab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = report(privlab, 1)
    assert (r["uid"], r["gid"]) == pv.NOBODY and r["home_writable"] and r["pids_max"] == "64"
    assert r["root_ro"] and not r["root_writable"] and r["secret_env"] and not r["secret_file"]
    out = run_folder(Lab(privlab), 1) / "work/out"
    assert out.stat().st_uid == pv.NOBODY[0] and (out / "report.json").stat().st_uid == pv.NOBODY[0]
    assert out.parent.stat().st_uid == 0  # nobody gets its out folder, nothing above it
    with Store(Lab(privlab).store_path) as s:
        assert s.stage(1, "work")["run_as"] == "65534:65534"


@pytest.mark.slow
@pytest.mark.engine
def test_on_a_remote_host_the_volume_and_the_secret_files_are_the_users(privlab, fbtui, remote_daemon):  # type: ignore[no-untyped-def]
    import docker

    from tests.test_pipeline import add_host

    ctl = Path(Lab(privlab).config.hosts["local"].data["ctl"])
    add_host(privlab, "remote", remote_daemon.url, extra=f"    insecure: true\n    data: {{ctl: {ctl}}}\n")
    sudo = {"SUDO_UID": "1234", "SUDO_GID": "2345"}
    proc = fbtui("run", "probe", "--host", "remote", "--detach", "-o", "probe.wait=true", cwd=privlab, env=sudo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    remote = docker.DockerClient(base_url=remote_daemon.url)
    deadline = time.monotonic() + 300  # the first run ships the images there
    found: list = []  # type: ignore[type-arg]
    while not found and time.monotonic() < deadline:
        found = remote.api.containers(filters={"label": ["fb.run=1", f"fb.checkout={_instance(privlab)}"]})
        time.sleep(0.2)
    assert found, "the stage's container never started"
    info = remote.api.inspect_container(found[0]["Id"])
    assert info["Config"]["User"] == "1234:2345" and info["HostConfig"]["CapDrop"] == ["ALL"]
    assert SECRET not in json.dumps(info)  # copied in as a file, so inspect does not show it
    (ctl / "go").write_text("")
    with Store(Lab(privlab).store_path) as s:
        run = wait_for(s, 1, timeout=120)
        assert run["status"] == "succeeded", run["reason"]
        assert s.stage(1, "work")["run_as"] == "1234:2345"
    r = report(privlab, 1)  # the declared artifact came back from the volume
    assert (r["uid"], r["gid"]) == (1234, 2345) and r["secret_file"] and not r["secret_env"]
    assert r["chown_root"] == "PermissionError" and r["cap_eff"] == "0000000000000000"


# ------------------------------------------------------------------ without an engine


def test_who_the_invoking_user_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getuid() != 0:
        assert pv.invoking_user(tmp_path) == pv.Identity(os.getuid(), os.getgid(), "user")
        return
    monkeypatch.delenv("SUDO_UID", raising=False)
    assert pv.invoking_user(tmp_path) == pv.Identity(*pv.NOBODY, "nobody")
    owned = tmp_path / "owned"
    owned.mkdir()
    os.chown(owned, 4321, 4322)
    assert pv.invoking_user(owned) == pv.Identity(4321, 4322, "lab owner")
    monkeypatch.setenv("SUDO_UID", "1000")
    monkeypatch.setenv("SUDO_GID", "1001")
    assert pv.invoking_user(owned) == pv.Identity(1000, 1001, "sudo")


def test_capabilities_are_named_and_need_root(write, fbtui) -> None:  # type: ignore[no-untyped-def]
    write("projects/digits-mlp/project.yaml", (Path(__file__).parent.parent / "projects/digits-mlp/project.yaml")
          .read_text() + "pipeline:\n  - name: train\n    capabilities: [NET_BIND_SERVICE]\n")
    proc = fbtui("doctor")
    assert "capabilities need user: root" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_secret_folders_are_private_and_swept(tmp_path: Path) -> None:
    name = f"fb-unit-{os.getpid()}-r1-train"
    folder = pv.write_secrets(name, {"TOKEN": "abc"}, (os.getuid(), os.getgid()))
    try:
        assert folder.parent == pv.SECRETS_ROOT and stat.S_IMODE(folder.stat().st_mode) == 0o500
        assert (folder / "TOKEN").read_text() == "abc" and stat.S_IMODE((folder / "TOKEN").stat().st_mode) == 0o400
        other = pv.write_secrets(name + "-eval", {"TOKEN": "x"}, (os.getuid(), os.getgid()))
        pv.remove_secrets(name)  # a stage whose name continues with "-eval" keeps its folder
        assert not folder.exists() and other.exists()
        assert pv.sweep_secrets(f"fb-unit-{os.getpid()}-", keep={name + "-eval"}) == 0 and other.exists()
        assert pv.sweep_secrets(f"fb-unit-{os.getpid()}-", keep=set()) == 1 and not other.exists()
    finally:
        pv.remove_folder(folder)


def test_setuid_bits_are_cleared_without_following_links(tmp_path: Path) -> None:
    target = tmp_path / "outside"
    target.write_text("x")
    target.chmod(0o4755)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub/tool").write_text("x")
    (out / "sub/tool").chmod(0o6755)
    (out / "link").symlink_to(target)
    os.mkfifo(out / "fifo")
    assert pv.strip_setid(out) == 1
    assert stat.S_IMODE((out / "sub/tool").stat().st_mode) == 0o755
    assert stat.S_IMODE(target.stat().st_mode) == 0o4755  # the link was not followed
