"""Shared fixtures: temporary labs made from the real example lab, a real engine, CLI runner."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.labs import REPO, copy_lab, make_git_lab

__all__ = ["REPO", "make_git_lab"]  # tests import these from here


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    """A copy of the bundled example lab's configuration in a temporary folder."""
    return copy_lab(tmp_path / "lab")


@pytest.fixture
def write(lab_dir: Path) -> Callable[[str, str], Path]:
    """write('projects/x/project.yaml', text): write a dedented file into the lab."""

    def _write(rel: str, text: str) -> Path:
        path = lab_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


@pytest.fixture
def fbtui(lab_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real CLI entry point in this process, inside the temporary lab (fast)."""

    def _run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        from fbtui.cli import main

        with monkeypatch.context() as m:
            m.chdir(cwd or lab_dir)
            m.delenv("FB_LAB", raising=False)
            for k, v in (env or {}).items():
                m.setenv(k, v)
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(list(args))
                except SystemExit as e:  # argparse: --help, --version, usage errors
                    rc = int(e.code or 0)
        return subprocess.CompletedProcess(["fbtui", *args], rc, out.getvalue(), err.getvalue())

    return _run


@pytest.fixture
def fbtui_process(lab_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed CLI as its own process."""

    def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "FB_LAB"}
        return subprocess.run([sys.executable, "-m", "fbtui", *args], cwd=cwd or lab_dir, env=env,
                              capture_output=True, text=True, timeout=120)

    return _run


@pytest.fixture(scope="session", autouse=True)
def machine_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The machine-wide list of stores (gc reads it) is this session's own: tests neither see
    other sessions' stores nor leave theirs in the user's ~/.local/state."""
    path = tmp_path_factory.mktemp("state")
    os.environ["FB_STATE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def docker_host() -> str:
    """A reachable Docker engine, started by scripts/engine when none is. Never skips: a test
    that needs the engine and cannot get one fails loudly."""
    proc = subprocess.run([str(REPO / "scripts/engine")], capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        pytest.fail(f"scripts/engine could not provide a Docker engine:\n{proc.stderr[-3000:]}")
    host = proc.stdout.strip().splitlines()[-1]
    os.environ["DOCKER_HOST"] = host
    return host


@pytest.fixture(scope="session")
def docker_client(docker_host: str):  # type: ignore[no-untyped-def]
    import docker

    client = docker.DockerClient(base_url=docker_host, version="auto", timeout=120)
    yield client
    client.close()



@pytest.fixture(scope="session")
def sshd():  # type: ignore[no-untyped-def]
    """sshd on a loopback port that forwards to the engines' sockets: an ssh:// lab host."""
    from tests.engines import LoopbackSshd

    server = LoopbackSshd()
    server.start()
    yield server
    server.stop()


SHIPS_FIRST = "test_remote_host_gets_base_and_env_shipped_and_project_built_there"


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the xdist_group marks added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The session's second engine starts empty, and the test that checks base and environment
    images are shipped to it untags them there first: run it before any other test uses that
    engine, so that its ship (1.8 GB) is the session's only one, not a second after another test's."""
    users = [i for i, item in enumerate(items) if "remote_daemon" in getattr(item, "fixturenames", ())]
    ship = next((i for i in users if items[i].name == SHIPS_FIRST), None)
    if ship is not None and users[0] < ship:
        items.insert(users[0], items.pop(ship))
    for item in items:  # scripts/test runs 2 workers (--dist loadgroup): what shares one thing shares one
        name = item.path.name if hasattr(item, "path") else ""
        fixtures = getattr(item, "fixturenames", ())
        if "remote_daemon" in fixtures or "sshd" in fixtures or name in ("test_slurm.py", "test_registry.py"):
            # one second engine (images shipped there once), one Slurm cluster, one registry start
            item.add_marker(pytest.mark.xdist_group("engines"))
        elif name.startswith(("test_tui", "test_terminal")):  # Textual under two workers' load: in turn
            item.add_marker(pytest.mark.xdist_group("tui"))
        else:  # a module's tests together: module fixtures (a lab, its runs) are made once, in order
            item.add_marker(pytest.mark.xdist_group(name or "other"))


@pytest.fixture(scope="session")
def remote_daemon(docker_host: str):  # type: ignore[no-untyped-def]
    """A second engine on loopback TCP that no other checkout uses: a remote host, and a host whose
    capacity tests can reason about exactly. One per session: images shipped there stay."""
    from tests.engines import SecondDaemon

    daemon = SecondDaemon()
    daemon.start()
    yield daemon
    daemon.stop()
