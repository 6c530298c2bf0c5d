"""Layered, content-addressed images against a real engine (and a second one over loopback TCP)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fbtui.images.events import BuildEvent
from fbtui.images.plan import project_layer
from fbtui.images.service import current_layers, ensure_project_image, list_images
from fbtui.lab import Lab
from fbtui.store import Store
from tests.conftest import make_git_lab

pytestmark = [pytest.mark.slow, pytest.mark.engine]
@pytest.fixture
def glab(tmp_path: Path, docker_host: str) -> Path:
    return make_git_lab(tmp_path / "glab")


def build(root: Path, project: str, **kw: object) -> tuple[object, list[BuildEvent]]:
    events: list[BuildEvent] = []
    lab = Lab(root)
    with Store(lab.store_path) as store:
        result = ensure_project_image(lab, project, store=store, emit=events.append, **kw)  # type: ignore[arg-type]
    return result, events


def actions(result: object) -> dict[str, str]:
    return {r.layer: r.action for r in result.layers}  # type: ignore[attr-defined]


def rebuilt(result: object) -> set[str]:
    return {r.layer for r in result.layers if r.action != "present"}  # type: ignore[attr-defined]


def unique(text: str) -> str:
    """Edits carry a fresh token: the engine outlives test sessions and never builds content twice."""
    return f"{text} {time.time_ns()}\n"


def states(root: Path, project: str = "digits-mlp") -> tuple[dict[str, str], str | None]:
    from fbtui.images.service import layer_states

    rows, problem = layer_states(Lab(root), project)
    return {r.kind: r.state for r in rows}, problem


def test_hash_is_stable_across_processes_and_paths(glab, tmp_path):  # type: ignore[no-untyped-def]
    here = project_layer(Lab(glab), "digits-mlp").tag
    code = "from fbtui.lab import Lab; from fbtui.images.plan import project_layer; import sys; " \
           "print(project_layer(Lab.find(sys.argv[1]), 'digits-mlp').tag)"
    other = subprocess.run([sys.executable, "-c", code, str(glab)], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == here
    moved = tmp_path / "somewhere" / "else"
    shutil.copytree(glab, moved)
    for f in (moved / "projects/digits-mlp").rglob("*"):  # new mtimes must not matter either
        os.utime(f, (1, 1))
    assert project_layer(Lab(moved), "digits-mlp").tag == here


def test_edits_rebuild_exactly_the_layers_above_them(glab, docker_client):  # type: ignore[no-untyped-def]
    first, _ = build(glab, "digits-mlp")
    assert first.tag.startswith("fb/proj-digits-mlp:")  # type: ignore[attr-defined]
    again, events = build(glab, "digits-mlp")
    assert actions(again) == {"fb/proj-digits-mlp": "present"}
    assert [e.kind for e in events] == ["cached"]

    # Switching to another project and back rebuilds nothing the first one had.
    cnn, _ = build(glab, "digits-cnn")
    assert rebuilt(cnn) <= {"fb/proj-digits-cnn"}
    assert actions(build(glab, "digits-mlp")[0]) == {"fb/proj-digits-mlp": "present"}
    assert actions(build(glab, "digits-cnn")[0]) == {"fb/proj-digits-cnn": "present"}

    # One project file: only that project's layer.
    assert states(glab) == ({"base": "current", "env": "current", "proj": "current"}, None)
    (glab / "projects/digits-mlp/notes.md").write_text(note := unique("an edit"))
    assert states(glab) == ({"base": "current", "env": "current", "proj": "stale"}, None)  # what the app shows
    edited, _ = build(glab, "digits-mlp")
    assert actions(edited) == {"fb/base": "present", "fb/env-torch-cpu": "present", "fb/proj-digits-mlp": "built"}
    assert edited.tag != first.tag  # type: ignore[attr-defined]
    out = docker_client.containers.run(edited.tag, ["cat", "/fb/project/notes.md"], remove=True)  # type: ignore[attr-defined]
    assert out.decode() == note

    # A config edit in project.yaml reaches runs as /fb/config.yaml: no rebuild.
    cfg = glab / "projects/digits-mlp/project.yaml"
    cfg.write_text(cfg.read_text().replace("epochs: 30", "epochs: 31"))
    assert actions(build(glab, "digits-mlp")[0]) == {"fb/proj-digits-mlp": "present"}

    # common/: the base and everything above it.
    (glab / "common/_edit.py").write_text("# " + unique("edited"))
    assert states(glab) == ({"base": "stale", "env": "stale", "proj": "stale"}, None)
    after_common, _ = build(glab, "digits-mlp")
    assert actions(after_common) == {"fb/base": "built", "fb/env-torch-cpu": "built",
                                     "fb/proj-digits-mlp": "built"}
    lab = Lab(glab)
    with Store(lab.store_path) as store:
        rows = store.query("SELECT layer, tag, host, inputs_hash, build_seconds, packages FROM images ORDER BY id")
    assert {r["tag"] for r in rows} >= {r.tag for r in after_common.layers}  # type: ignore[attr-defined]
    assert all(r["host"] == "local" and r["build_seconds"] > 0 for r in rows)
    # Each layer built here keeps what pip says it holds (the tag hashes inputs, pip resolves at build time).
    built_now = {r.tag: r for r in after_common.layers}  # type: ignore[attr-defined]
    for r in rows:
        if r["tag"] in built_now:
            freeze = json.loads(r["packages"])
            assert any(x.startswith("torch==2.13.0") for x in freeze) and len(freeze) == built_now[r["tag"]].packages
            # a project layer that installs nothing holds its environment's packages: no second freeze
            assert (built_now[r["tag"]].freeze_seconds > 0) == (r["layer"] != "proj")
    assert not docker_client.containers.list(all=True, filters={"label": "fb.role=freeze",  # removed after
                                                                "ancestor": after_common.tag})  # type: ignore[attr-defined]


def test_untracked_large_file_is_never_sent(glab, docker_client):  # type: ignore[no-untyped-def]
    big = glab / "projects/digits-mlp/checkpoint.pt"
    with big.open("wb") as f:  # 100 MB, sparse: costs no disk
        f.truncate(100 * 1024 * 1024)
    (glab / "projects/digits-mlp/new_module.py").write_text("X = 1\n")  # small and untracked: a new source file
    (glab / "projects/digits-mlp/scratch.ignored").write_text("ignored by .gitignore\n")
    layer = project_layer(Lab(glab), "digits-mlp")
    names = {e.arcname for e in layer.entries}
    assert "checkpoint.pt" not in names and "scratch.ignored" not in names
    assert "new_module.py" in names and "project.yaml" not in names
    assert [f.rel for f in layer.skipped] == ["projects/digits-mlp/checkpoint.pt"]
    assert layer.context_bytes < 100_000
    (glab / "projects/digits-mlp/new_module.py").write_text("X = 1  # " + unique("fresh"))
    result, events = build(glab, "digits-mlp")
    starts = [e for e in events if e.kind == "start" and e.layer == "fb/proj-digits-mlp"]
    assert starts and starts[0].bytes is not None and starts[0].bytes < 100_000
    assert any(e.kind == "skipped-file" and "checkpoint.pt" in e.text for e in events)
    listing = docker_client.containers.run(result.tag, ["ls", "/fb/project"], remove=True).decode().split()  # type: ignore[attr-defined]
    assert "new_module.py" in listing and "checkpoint.pt" not in listing


def test_failing_step_shows_the_step_and_its_log(glab, fbtui):  # type: ignore[no-untyped-def]
    env = glab / "environments/broken"
    env.mkdir()
    (env / "environment.yaml").write_text("description: fails on purpose\n")
    (env / "Dockerfile").write_text(
        "ARG FB_PARENT\nFROM ${FB_PARENT}\n"
        "RUN echo preparing && for i in $(seq 1 40); do echo line $i; done && echo 'boom: no such thing' "
        "&& exit 3\n")
    (glab / "projects/broken").mkdir()
    (glab / "projects/broken/project.yaml").write_text("environment: broken\n")
    proc = fbtui("build", "broken", cwd=glab)
    assert proc.returncode == 1
    assert "build failed: fb/env-broken at step: RUN echo preparing" in proc.stderr
    assert "    | boom: no such thing" in proc.stderr and "    | line 40" in proc.stderr
    assert "    | line 5\n" not in proc.stderr  # only the last 30 lines
    assert "returned a non-zero code: 3" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_buildkit_builder_gives_the_same_events(glab, docker_client):  # type: ignore[no-untyped-def]
    (glab / "projects/digits-cnn/bk.txt").write_text(note := unique("built by buildkit"))
    result, events = build(glab, "digits-cnn", builder="buildkit")
    assert actions(result)["fb/proj-digits-cnn"] == "built"
    steps = [e for e in events if e.kind == "step" and e.layer == "fb/proj-digits-cnn"]
    assert any("COPY . /fb/project" in e.text for e in steps) and all(e.total for e in steps)
    assert any(e.kind == "start" and "buildkit" in e.text for e in events)
    out = docker_client.containers.run(result.tag, ["cat", "/fb/project/bk.txt"], remove=True)  # type: ignore[attr-defined]
    assert out.decode() == note
    labels = docker_client.images.get(result.tag).labels  # type: ignore[attr-defined]
    assert labels["fb.layer"] == "proj" and labels["fb.inputs-hash"].startswith(result.tag.split(":")[1])  # type: ignore[attr-defined]
    # A failing BuildKit step names the step and keeps its log, as the classic builder does.
    (glab / "projects/digits-cnn/requirements.txt").write_text("this-package-does-not-exist-fb==0.0.1\n")
    from fbtui.images.builders import BuildFailed

    with pytest.raises(BuildFailed) as err:
        build(glab, "digits-cnn", builder="buildkit")
    assert "pip install -r /fb/project/requirements.txt" in err.value.step
    assert any("this-package-does-not-exist-fb" in line for line in err.value.lines)


def test_images_and_gc(glab, fbtui):  # type: ignore[no-untyped-def]
    (glab / "projects/digits-mlp/extra.txt").write_text(unique("first"))  # built here, by this store
    first, _ = build(glab, "digits-mlp")
    (glab / "projects/digits-mlp/extra.txt").write_text(unique("x"))
    second, _ = build(glab, "digits-mlp")
    rows = json.loads(fbtui("images", "--json", cwd=glab).stdout)
    by_tag = {t: r for r in rows for t in r["tags"]}
    assert by_tag[second.tag]["current"] and not by_tag[first.tag]["current"]  # type: ignore[attr-defined]
    # The packages recorded at the build: in --json, counted in the table, listed by --packages.
    freeze = by_tag[second.tag]["packages"]  # type: ignore[attr-defined]
    assert "pyyaml" in {x.split("==")[0].lower() for x in freeze} and freeze == sorted(freeze, key=str.lower)
    one = json.loads(fbtui("images", "--packages", second.tag, "--json", cwd=glab).stdout)  # type: ignore[attr-defined]
    assert one["recorded"] and one["packages"] == freeze
    assert fbtui("images", "--packages", second.tag, cwd=glab).stdout.splitlines() == freeze  # type: ignore[attr-defined]
    assert str(len(freeze)) in fbtui("images", cwd=glab).stdout
    missing = fbtui("images", "--packages", "fb/nothing:here", cwd=glab)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no image fb/nothing:here" in missing.stderr
    dry = json.loads(fbtui("gc", "--json", cwd=glab).stdout)
    stale = {t for r in dry["images"] for t in r["tags"]}
    assert first.tag in stale and second.tag not in stale  # type: ignore[attr-defined]
    # A stale image that a recent run used is kept.
    with Store(Lab(glab).store_path) as store:
        store.create_run("digits-mlp", config="{}", params={}, stages=["train"], image=first.tag)  # type: ignore[attr-defined]
    kept = {t for r in json.loads(fbtui("gc", "--json", cwd=glab).stdout)["images"] for t in r["tags"]}
    assert first.tag not in kept  # type: ignore[attr-defined]


def test_gc_never_touches_another_checkouts_images(tmp_path, docker_host, docker_client, fbtui):  # type: ignore[no-untyped-def]
    a, b = make_git_lab(tmp_path / "a"), make_git_lab(tmp_path / "b")  # two clones, one lab name, one engine
    (a / "projects/digits-mlp/extra.txt").write_text(unique("a1"))
    a_old, _ = build(a, "digits-mlp")
    (a / "projects/digits-mlp/extra.txt").write_text(unique("a2"))
    a_new, _ = build(a, "digits-mlp")
    (b / "projects/digits-mlp/extra.txt").write_text(unique("b"))
    b_img, _ = build(b, "digits-mlp")  # B's current image: stale as far as A's files go
    (a / "projects/digits-mlp/extra.txt").write_text(unique("a3"))
    a_used, _ = build(a, "digits-mlp")
    (a / "projects/digits-mlp/extra.txt").write_text(unique("a4"))
    build(a, "digits-mlp")
    holder = docker_client.containers.create(a_used.tag, ["true"])  # type: ignore[attr-defined]
    try:
        dry = json.loads(fbtui("gc", "--json", cwd=a).stdout)
        gone = {t for r in dry["images"] for t in r["tags"]}
        kept = {t: x["why"] for x in dry["skipped"] for t in x["tags"]}
        assert a_old.tag in gone and a_new.tag in gone  # type: ignore[attr-defined]
        assert kept[b_img.tag].startswith("another checkout's store records it")  # type: ignore[attr-defined]
        assert kept[a_used.tag].startswith("container ")  # type: ignore[attr-defined]
        assert not any(t.startswith(("fb/base:", "fb/env-")) for t in gone)  # A's base and env are current
        text = fbtui("gc", cwd=a).stdout
        # one line per image: all its tags (a git-<sha> one too), then the reason and the store's path
        assert any(line.startswith("kept ") and b_img.tag in line  # type: ignore[attr-defined]
                   and ": another checkout's store records it (" in line for line in text.splitlines()), text
        assert fbtui("gc", "--yes", cwd=a).returncode == 0
        tags = {t for img in docker_client.images.list() for t in img.tags}
        assert b_img.tag in tags and a_used.tag in tags and a_old.tag not in tags  # type: ignore[attr-defined]
    finally:
        holder.remove(force=True)


def test_a_pinned_base_image_with_another_id_is_refused(glab, docker_client, fbtui):  # type: ignore[no-untyped-def]
    from fbtui.images.ensure import image_id
    from fbtui.images.pin import check_base
    from fbtui.images.plan import base_layer

    ref = Lab(glab).config.build.base_image
    real = docker_client.api.inspect_image(ref)["Id"]
    lab_yaml = glab / "lab.yaml"
    text = lab_yaml.read_text()
    assert f"  base_image: {ref}\n" in text

    def pin(value: str) -> Lab:
        lab_yaml.write_text(text.replace(f"  base_image: {ref}\n", f"  base_image: {ref}\n  base_image_id: {value}\n"))
        return Lab(glab)

    lab = pin(real)  # the right ID passes the check (and is what the classic builder starts FROM)
    assert check_base(docker_client, lab, base_layer(lab), "local") == real
    lab = pin("sha256:" + "0" * 64)
    refused = fbtui("build", "digits-mlp", cwd=glab)
    assert refused.returncode == 1
    first, *rest = refused.stderr.splitlines()
    assert first.startswith("fbtui: error: lab.yaml:") and "build.base_image_id" in first
    assert "sha256:000000000000" in first
    assert any(f"base_image_id: {real}" in line for line in rest)  # the hint: the exact line to pin what is there
    assert image_id(docker_client, base_layer(lab).tag) is None  # nothing was built on it
    lab_yaml.write_text(text.replace(f"  base_image: {ref}\n", f"  base_image: {ref}\n  base_image_id: abc\n"))
    malformed = fbtui("build", "digits-mlp", cwd=glab)
    assert malformed.returncode != 0 and "base_image_id" in malformed.stderr and "Traceback" not in malformed.stderr


def test_remote_host_gets_base_and_env_shipped_and_project_built_there(glab, remote_daemon, fbtui):  # type: ignore[no-untyped-def]
    import docker

    # The session's second engine (the first test to use it ships what later ones reuse): untag this
    # lab's layers there, so they must be shipped whatever ran before.
    remote_client = docker.DockerClient(base_url=remote_daemon.url)
    for layer in current_layers(Lab(glab)).values():
        try:
            remote_client.api.remove_image(layer.tag, force=True, noprune=True)
        except docker.errors.NotFound:
            pass
    remote_client.close()
    lab_yaml = glab / "lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text().replace(
        "hosts:\n", f"hosts:\n  remote:\n    url: {remote_daemon.url}\n    insecure: true\n"))
    result, events = build(glab, "digits-mlp", host="remote")
    assert actions(result) == {"fb/base": "shipped", "fb/env-torch-cpu": "shipped", "fb/proj-digits-mlp": "built"}
    assert any(e.kind == "transfer" and "MB/s" in e.text for e in events)
    lab = Lab(glab)
    remote = list_images(lab, "remote")
    assert {r.layer for r in remote if r.current} == {"base", "env", "proj"}
    shown = fbtui("images", "--host", "remote", cwd=glab)
    assert proc_ok(shown) and result.tag in shown.stdout  # type: ignore[attr-defined]
    # Present now: nothing moves again.
    assert actions(build(glab, "digits-mlp", host="remote")[0]) == {"fb/proj-digits-mlp": "present"}
    # A project edit rebuilds only the project layer, on the remote host, from the small context.
    (glab / "projects/digits-mlp/remote.txt").write_text(unique("r"))
    again, _ = build(glab, "digits-mlp", host="remote")
    assert actions(again) == {"fb/base": "present", "fb/env-torch-cpu": "present", "fb/proj-digits-mlp": "built"}
    with Store(lab.store_path) as store:
        hosts = {r["host"] for r in store.query("SELECT host FROM images")}
    assert "remote" in hosts


def proc_ok(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == 0
