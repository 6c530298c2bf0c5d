"""Deploying images to a second engine (#15, item 1): through the lab registry vs docker save | load,
both in this run, on a fresh second engine (a private dockerd on loopback, as the tests use).

    .venv/bin/python bench/deploy.py

1. First deploy of base + environment + project: bytes the host received and seconds, registry
   (push, then the host pulls) vs save -> load of the project image (which carries every layer).
2. After a one-file project edit: the same two ways. Targets: >= 10x fewer bytes through the
   registry, and <= 2 s to make the edited image runnable there.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from fbtui.images.events import BuildEvent  # noqa: E402
from fbtui.images.plan import Layer  # noqa: E402
from fbtui.images.service import current_layers, ensure_project_image  # noqa: E402
from fbtui.lab import Lab  # noqa: E402
from tests.engines import SecondDaemon  # noqa: E402
from tests.labs import make_git_lab  # noqa: E402


def save_load(local: docker.DockerClient, remote: docker.DockerClient, tag: str) -> tuple[int, float]:
    """docker save | docker load of one image, streamed: (bytes, seconds)."""
    t0 = time.perf_counter()
    sent = 0

    def chunks():  # type: ignore[no-untyped-def]
        nonlocal sent
        for chunk in local.api.get_image(tag, chunk_size=1 << 20):
            sent += len(chunk)
            yield chunk

    api = remote.api
    res = api._post(api._url("/images/load"), data=chunks(), stream=True, timeout=1800)
    api._raise_for_status(res)
    for _ in api._stream_helper(res, decode=True):
        pass
    return sent, time.perf_counter() - t0


def through_registry(root: Path, project: str) -> tuple[int, int, float]:
    """ensure_project_image on the remote host with the registry: (pushed, pulled bytes, seconds)."""
    events: list[BuildEvent] = []
    t0 = time.perf_counter()
    ensure_project_image(Lab(root), project, host="remote", emit=events.append)
    seconds = time.perf_counter() - t0
    pushed = sum(e.bytes or 0 for e in events if e.kind == "done" and e.text.startswith("pushed"))
    pulled = sum(e.bytes or 0 for e in events if e.kind == "done" and " pulled " in e.text)
    return pushed, pulled, seconds


def proj_layer(root: Path, project: str) -> Layer:
    return next(x for x in current_layers(Lab(root)).values() if x.kind == "proj" and x.name == project)


def main() -> None:
    registry = subprocess.run([str(ROOT / "scripts" / "registry")], capture_output=True, text=True,
                              check=True).stdout.strip().splitlines()[-1]
    local = docker.from_env()
    with tempfile.TemporaryDirectory() as d:
        root = make_git_lab(Path(d) / "lab")
        ensure_project_image(Lab(root), "digits-mlp")  # the local engine has every layer
        original = (root / "lab.yaml").read_text()
        for name in ("save -> load", "registry"):  # each on a fresh second engine
            daemon = SecondDaemon()
            daemon.start()
            remote = docker.DockerClient(base_url=daemon.url, timeout=600)
            try:
                lab_yaml = root / "lab.yaml"
                text = original.split("hosts:\n", 1)
                registry_line = f"registry: {registry}\n" if name == "registry" else ""
                lab_yaml.write_text(text[0] + registry_line + f"hosts:\n  remote:\n    url: {daemon.url}\n"
                                    "    insecure: true\n" + text[1])
                (root / "projects/digits-mlp/bench.txt").write_text(f"first {time.time_ns()}\n")
                ensure_project_image(Lab(root), "digits-mlp")
                if name == "save -> load":
                    n, s = save_load(local, remote, proj_layer(root, "digits-mlp").tag)
                    print(f"first deploy, {name}: {n / 1e6:8.1f} MB to the host in {s:6.1f} s")
                else:
                    pushed, pulled, s = through_registry(root, "digits-mlp")
                    print(f"first deploy, {name}: {pulled / 1e6:8.1f} MB to the host in {s:6.1f} s "
                          f"(pushed {pushed / 1e6:.1f} MB: what the registry lacked)")
                (root / "projects/digits-mlp/bench.txt").write_text(f"edit {time.time_ns()}\n")
                ensure_project_image(Lab(root), "digits-mlp")  # the edit's thin layer, built locally
                if name == "save -> load":
                    n_save, s_save = save_load(local, remote, proj_layer(root, "digits-mlp").tag)
                    print(f"after a one-file edit, {name}: {n_save / 1e6:8.1f} MB in {s_save:6.1f} s")
                    baseline = (n_save, s_save)
                else:
                    pushed, pulled, s = through_registry(root, "digits-mlp")
                    # a layer of a few KB reports no progress: bound it by the layer's own size instead
                    layer = proj_layer(root, "digits-mlp")
                    top = local.api.inspect_image(layer.tag)["Size"] - local.api.inspect_image(layer.parent.tag)["Size"]
                    moved = max(pushed + pulled, 2 * top)
                    print(f"after a one-file edit, {name}: <= {moved / 1e3:8.1f} KB (the project layer, "
                          f"{top / 1e3:.1f} KB, pushed once and pulled once) in {s:6.2f} s")
                    print(f"  ratio: {baseline[0] / max(moved, 1):,.0f}x fewer bytes (target >= 10x), "
                          f"{s:.2f} s vs {baseline[1]:.1f} s by save -> load (target <= 2 s)")
            finally:
                remote.close()
                daemon.stop()


if __name__ == "__main__":
    main()
