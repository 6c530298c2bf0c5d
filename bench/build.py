"""Image build benchmarks, each against a baseline measured in the same run.

    .venv/bin/python bench/build.py [--no-remote]

Prints: the no-op lookup for a built project (target <= 50 ms); a one-file-edit rebuild of a
project layer versus its cold build (target <= 1 s), with both builders; the bytes of build context
versus a plain `docker build` of the lab folder; and, on a second private daemon over loopback TCP,
building the project layer there versus shipping the project image (ratio).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fbtui.config.models import HostConfig  # noqa: E402
from fbtui.engine import client as engine_client  # noqa: E402
from fbtui.images.ensure import Ensurer  # noqa: E402
from fbtui.images.plan import project_layer  # noqa: E402
from fbtui.images.service import ensure_project_image  # noqa: E402
from fbtui.lab import Lab  # noqa: E402
from tests.labs import make_git_lab  # noqa: E402

PROJECT = "digits-mlp"


def median(fn, n: int = 7) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tree_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for f in files:
            p = Path(folder) / f
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-remote", action="store_true", help="skip the remote-host figures (they ship ~2 GB)")
    args = ap.parse_args()
    local = engine_client(HostConfig())
    with tempfile.TemporaryDirectory() as tmp:
        lab_root = make_git_lab(Path(tmp) / "lab")
        lab = Lab(lab_root)
        ensure_project_image(lab, PROJECT)  # whatever is missing, once

        # 1. No-op: the plan (hash every input) plus one lookup on the engine.
        def noop() -> None:
            Ensurer(Lab(lab_root), local, builder="classic").ensure(project_layer(Lab(lab_root), PROJECT))

        t_noop = median(noop, 15)
        tag = project_layer(lab, PROJECT).tag
        t_lookup = median(lambda: local.api.inspect_image(tag), 15)
        t_full = median(lambda: ensure_project_image(Lab(lab_root), PROJECT), 5)
        print("no-op build of a built project:")
        print(f"  plan + lookup                {t_noop * 1000:8.1f} ms   (target <= 50 ms)")
        print(f"  of which the engine lookup   {t_lookup * 1000:8.1f} ms")
        print(f"  fbtui build (+ git capture)  {t_full * 1000:8.1f} ms")

        # 2. Project layer: cold build (new content, nothing cached) versus a one-file edit.
        print("project layer, parent present:")
        target = lab_root / "projects" / PROJECT / "bench_edit.py"
        for builder in ("classic", "buildkit"):
            def build_once(text: str, builder: str = builder) -> float:
                target.write_text(text)
                t0 = time.perf_counter()
                Ensurer(Lab(lab_root), local, builder=builder).ensure(project_layer(Lab(lab_root), PROJECT))
                return time.perf_counter() - t0

            cold = build_once(f"COLD = {time.time_ns()}\n")
            edits = [build_once(f"EDIT = {time.time_ns()}\n") for _ in range(3)]
            edit = statistics.median(edits)
            print(f"  {builder:<9} cold {cold:6.2f} s   one-file edit {edit:6.2f} s   ratio {edit / cold:4.2f}   "
                  f"(target edit <= 1 s)")

        # 3. Context bytes versus a plain `docker build` of the lab folder.
        layer = project_layer(Lab(lab_root), PROJECT)
        ours = sum(x.context_bytes for x in layer.chain)
        plain = tree_bytes(ROOT)
        print("build context:")
        print(f"  fbtui, all three layers      {ours / 1e3:10.1f} kB")
        print(f"  docker build of the lab      {plain / 1e6:10.1f} MB   ({plain / max(ours, 1):,.0f}x more)")

        if args.no_remote:
            return
        from tests.engines import SecondDaemon

        daemon = SecondDaemon()
        daemon.start()
        try:
            remote = engine_client(HostConfig(url=daemon.url, insecure=True))
            lab_yaml = lab_root / "lab.yaml"
            lab_yaml.write_text(lab_yaml.read_text().replace(
                "hosts:\n", f"hosts:\n  remote:\n    url: {daemon.url}\n    insecure: true\n"))
            t0 = time.perf_counter()
            ensure_project_image(Lab(lab_root), PROJECT, host="remote")
            t_first = time.perf_counter() - t0
            target.write_text(f"REMOTE = {time.time_ns()}\n")
            t0 = time.perf_counter()
            result = ensure_project_image(Lab(lab_root), PROJECT, host="remote")
            t_remote_build = time.perf_counter() - t0
            # Baseline: ship the same project image instead (save locally -> load there).
            ensure_project_image(Lab(lab_root), PROJECT)
            remote.api.remove_image(result.tag, force=True)
            t0 = time.perf_counter()
            remote.api.load_image(local.api.get_image(result.tag, chunk_size=1 << 20))
            for _ in remote.api.images(name=result.tag.split(":")[0]):
                pass
            t_ship = time.perf_counter() - t0
            size = int(local.api.inspect_image(result.tag)["Size"])
            print("remote host (second daemon, tcp://127.0.0.1):")
            print(f"  first time (ship base + env, build project)   {t_first:7.1f} s")
            print(f"  project layer built on the remote host        {t_remote_build:7.2f} s")
            print(f"  shipping the project image instead ({size / 1e6:.0f} MB) {t_ship:7.1f} s   "
                  f"(ratio {t_ship / t_remote_build:.0f}x)")
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
