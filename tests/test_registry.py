"""A lab registry (#15, item 1) on real engines: scripts/registry's loopback registry, the session's
second engine as the remote host. The host pulls the layers it lacks; a project edit moves one thin
layer; a registry that does not answer is one clear line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fbtui.images.events import BuildEvent
from fbtui.images.service import current_layers
from fbtui.lab import Lab
from fbtui.store import Store
from tests.labs import REPO, make_git_lab
from tests.test_images import actions, build, unique

pytestmark = [pytest.mark.slow, pytest.mark.engine]


@pytest.fixture(scope="session")
def registry() -> str:
    proc = subprocess.run([str(REPO / "scripts" / "registry")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def remote_lab(root: Path, url: str, registry: str) -> Path:
    make_git_lab(root)
    lab_yaml = root / "lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text().replace(
        "hosts:\n", f"registry: {registry}\nhosts:\n  remote:\n    url: {url}\n    insecure: true\n"))
    return root


def moved(events: list[BuildEvent], layer: str) -> int:
    """Bytes that travelled for a layer: its push and its pull."""
    return sum(e.bytes or 0 for e in events if e.layer == layer and e.kind == "done"
               and ("pushed" in e.text or "pulled" in e.text))


def test_a_remote_host_pulls_the_layers_it_lacks_and_an_edit_moves_one_thin_layer(
        tmp_path: Path, remote_daemon, registry: str, fbtui) -> None:  # type: ignore[no-untyped-def]
    import docker

    root = remote_lab(tmp_path / "rlab", remote_daemon.url, registry)
    remote = docker.DockerClient(base_url=remote_daemon.url)
    for layer in current_layers(Lab(root)).values():  # whatever earlier tests left there goes
        try:
            remote.api.remove_image(layer.tag, force=True, noprune=True)
        except docker.errors.NotFound:
            pass
    result, events = build(root, "digits-mlp", host="remote")
    assert actions(result) == {"fb/base": "pulled", "fb/env-torch-cpu": "pulled", "fb/proj-digits-mlp": "pulled"}
    assert remote.api.inspect_image(result.tag)["Id"] == result.image_id  # type: ignore[attr-defined]
    with Store(Lab(root).store_path) as s:
        rows = s.query("SELECT layer, registry_ref, registry_digest FROM images WHERE host = 'remote'")
    assert {r["layer"] for r in rows} == {"base", "env", "proj"}
    assert all(r["registry_ref"].startswith(f"{registry}/fb/") and r["registry_digest"].startswith("sha256:")
               for r in rows)
    # A one-file project edit: only the project layer moves, and it is thin.
    (root / "projects/digits-mlp/notes.md").write_text(unique("edit"))
    again, events = build(root, "digits-mlp", host="remote")
    assert actions(again) == {"fb/base": "present", "fb/env-torch-cpu": "present", "fb/proj-digits-mlp": "pulled"}
    thin = moved(events, "fb/proj-digits-mlp")
    assert 0 < thin < 5e6, thin  # one thin layer (the project's files), pushed once and pulled once
    # the run's stages use the pulled image on the remote host
    proc = fbtui("run", "digits-mlp", "--host", "remote", "-o", "train.epochs=1", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doctor = fbtui("doctor", cwd=root)
    assert f"{registry} answers" in doctor.stdout


def test_a_registry_that_does_not_answer_is_one_line(tmp_path: Path, remote_daemon, fbtui) -> None:  # type: ignore[no-untyped-def]
    import docker

    root = remote_lab(tmp_path / "rlab", remote_daemon.url, "127.0.0.1:9")
    (root / "projects/digits-mlp/notes.md").write_text(unique("nobody"))  # a project layer nobody has
    remote = docker.DockerClient(base_url=remote_daemon.url)
    for layer in current_layers(Lab(root)).values():
        if layer.kind == "proj":
            try:
                remote.api.remove_image(layer.tag, force=True, noprune=True)
            except docker.errors.NotFound:
                pass
    proc = fbtui("build", "digits-mlp", "--host", "remote", cwd=root)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out
    assert "registry 127.0.0.1:9:" in out and "scripts/registry" in out
    doctor = fbtui("doctor", cwd=root)
    assert "127.0.0.1:9 does not answer" in doctor.stdout
