"""Image commands: build, images, gc."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fbtui.commands.common import Command, lab_of, open_store, read_store


def add_parsers(sub: Any, cmd: Command) -> None:
    b = cmd(
        "build", "make a project's image present on a host (base -> environment -> project layers)",
        "Build the layers a project needs, each tagged by a hash of its inputs: what exists is never\n"
        "rebuilt. With --host, base and environment images are shipped from the local engine and the\n"
        "project layer is built on the host from its small context.",
    )
    b.add_argument("project")
    b.add_argument("--variant", metavar="V", help="accepted for symmetry with run: every variant shares one image")
    b.add_argument("--host", default=None, help="a host from lab.yaml (default: defaults.host)")
    b.add_argument("--builder", choices=["auto", "classic", "buildkit"], help="override build.builder")
    b.add_argument("-v", "--verbose", action="store_true", help="print every build log line")
    b.add_argument("--json", action="store_true", help="print the result as JSON")

    im = cmd("images", "list the lab's images on a host, marking current and stale ones")
    im.add_argument("--host", default=None, help="a host from lab.yaml (default: defaults.host)")
    im.add_argument("--json", action="store_true", help="print JSON")
    im.add_argument("--packages", metavar="TAG", help="list the Python packages (pip freeze --all) in one image "
                    "(a tag or an image ID), as recorded when it was built")

    gc = cmd("gc", "remove stale images and finished stages' leftovers nothing needs now (dry run unless --yes)",
             "Remove fb images of this lab that are stale (not what its projects need now), that this\n"
             "checkout's store built or used, that no run used in --days, that no other checkout's store on\n"
             "this machine records and that no container uses. Also this checkout's stage containers and\n"
             "remote volumes whose outcome is recorded; a failed stage's are kept for the host's keep_failed\n"
             "(lab.yaml, 1d by default) unless --failed. Everything kept is listed with the reason.")
    gc.add_argument("--host", default=None, help="a host from lab.yaml (default: defaults.host)")
    gc.add_argument("--days", type=float, default=14, help="keep images used by runs in this many days (14)")
    gc.add_argument("--yes", action="store_true", help="really delete")
    gc.add_argument("--failed", action="store_true", help="also remove failed stages' containers and volumes "
                    "kept for a post-mortem")
    gc.add_argument("--json", action="store_true", help="print JSON")



def build_failed(e: Any) -> int:
    """The failing step and its last lines, then the error: what a person needs to fix a build."""
    print(f"\nbuild failed: {e.layer} at step: {e.step}", file=sys.stderr)
    for line in e.lines:
        print(f"    | {line}", file=sys.stderr)
    print(f"fbtui: error: {e.message.split(': ', 1)[-1]}", file=sys.stderr)
    return 1


def cmd_build(args: argparse.Namespace) -> int:
    from fbtui.images.builders import BuildFailed
    from fbtui.images.service import ensure_project_image
    from fbtui.output import print_json
    from fbtui.progress import BuildProgress

    lab = lab_of(args)
    project = lab.project(args.project)
    if args.variant:
        from fbtui.config.resolve import find_variant

        find_variant(lab, project, args.variant)
    host = args.host or lab.config.defaults.host
    if host not in lab.config.hosts:  # refused before the store is opened: rejected input creates nothing
        from fbtui.errors import UsageError

        raise UsageError(f"unknown host '{host}' (hosts in lab.yaml: {', '.join(lab.config.hosts)})")
    from fbtui.images.plan import project_layer

    project_layer(lab, project.name)  # environment.yaml and build settings refused before the store opens
    progress = BuildProgress(sys.stderr if args.json else sys.stdout, verbose=args.verbose)
    with open_store(lab) as store:
        try:
            result = ensure_project_image(lab, project.name, host=host, store=store, emit=progress,
                                          builder=args.builder)
        except BuildFailed as e:
            progress.finish()
            return build_failed(e)
    progress.finish()
    if args.json:
        print_json({"tag": result.tag, "image_id": result.image_id, "host": host,
                    "layers": [r.__dict__ for r in result.layers]})
    else:
        made = ", ".join(f"{r.layer} {r.action} in {r.seconds:.1f} s"
                         + (f" ({r.packages} packages recorded)" if r.packages is not None else "")
                         for r in result.built) or "nothing to build"
        print(f"{result.tag} is on {host} ({made})")
    base = result.base
    if (base is not None and base.id and not base.pinned and base.ref == lab.config.build.base_image
            and "@sha256:" not in base.ref):  # NAME@sha256:DIGEST is pinned by the registry digest
        from fbtui.images.pin import pin_line

        print(f"hint: {base.ref} is not pinned; to refuse any other image under that name later, add under "
              f"build: in lab.yaml:  {pin_line(base.id)}", file=sys.stderr)
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from fbtui.images.service import list_images
    from fbtui.output import print_json, table

    lab = lab_of(args)
    host = args.host or lab.config.defaults.host
    if args.packages is not None:
        return image_packages(lab, host, args.packages, as_json=args.json)
    rows = list_images(lab, host)
    held = recorded_freezes(lab)
    if args.json:
        print_json([{**r.to_dict(), "packages": held.get(r.id)} for r in rows])
        return 0
    if not rows:
        print(f"no images of lab {lab.config.name} on {host} yet: fbtui build PROJECT makes them")
        return 0
    print(table(["HOST", "LAYER", "NAME", "TAG", "STATE", "CREATED", "SIZE", "PACKAGES"],
                [[r.host, r.layer, r.name, ", ".join(t for t in r.tags) or r.id[7:19],
                  "current" if r.current else "stale", r.created, f"{r.size / 1e6:.0f} MB",
                  str(len(held[r.id])) if r.id in held else "-"] for r in rows]))
    return 0


def recorded_freezes(lab: Any) -> dict[str, list[str]]:
    """image ID -> its recorded pip freeze, from the store (read only; none when there is no store)."""
    from fbtui.images.freeze import parse

    if not lab.store_path.exists():
        return {}
    store = read_store(lab)
    try:
        rows = store.query("SELECT digest, packages FROM images WHERE packages IS NOT NULL ORDER BY built_at")
    except Exception:  # a store older than v7, read only: nothing recorded
        rows = []
    finally:
        store.close()
    return {r["digest"]: p for r in rows if (p := parse(r["packages"])) is not None}


def image_packages(lab: Any, host: str, ref: str, *, as_json: bool) -> int:
    """One image's packages: as recorded at its build, else taken now (and said so)."""
    from fbtui.errors import UsageError
    from fbtui.images.freeze import FreezeFailed, pip_freeze
    from fbtui.images.pin import engine_id
    from fbtui.images.service import host_client
    from fbtui.output import print_json

    client = host_client(lab, host)
    image = engine_id(client, ref)
    if image is None:
        raise UsageError(f"no image {ref} on {host} (fbtui images lists them)")
    packages = recorded_freezes(lab).get(image)
    recorded = packages is not None
    if packages is None:
        try:
            packages = pip_freeze(client, image, lab=lab.config.name)
        except FreezeFailed as e:
            from fbtui.errors import FBError

            raise FBError(f"no packages recorded for {ref} and pip freeze failed in it: {e}") from e
    if as_json:
        print_json({"ref": ref, "id": image, "host": host, "recorded": recorded, "packages": packages})
        return 0
    if not recorded:
        print(f"({ref}: not recorded at build time; pip freeze taken now)", file=sys.stderr)
    print("\n".join(packages))
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from fbtui.images.service import collect_garbage
    from fbtui.output import print_json
    from fbtui.pipeline.cleanup import collect_leftovers

    lab = lab_of(args)
    host = args.host or lab.config.defaults.host
    store = read_store(lab) if lab.store_path.exists() else None
    try:  # leftovers first: a removed container no longer holds its image
        left, errors = collect_leftovers(lab, store, host, delete=args.yes, failed_too=args.failed)
        candidates, image_errors, skipped = collect_garbage(lab, store, host=host, days=args.days, delete=args.yes)
        errors += image_errors
    finally:
        if store is not None:
            store.close()
    if args.json:
        print_json({"deleted": args.yes, "images": [r.to_dict() for r in candidates], "errors": errors,
                    "skipped": [{**x.image.to_dict(), "why": x.why} for x in skipped],
                    "leftovers": [x.to_dict() for x in left]})
    else:
        verb = "removed" if args.yes else "would remove"
        for x in left:
            what = f"{x.kind} {x.name} (run #{x.run_id} {x.stage}"
            print(f"{verb} {what}: {x.why})" if x.remove else f"kept {what}): {x.why}")
        for r in candidates:
            print(f"{verb} {', '.join(r.tags) or r.id[7:19]} ({r.layer} {r.name}, {r.size / 1e6:.0f} MB)")
        for x in skipped:
            print(f"kept {', '.join(x.image.tags) or x.image.id[7:19]}: {x.why}")
        if not candidates and not any(x.remove for x in left):
            print(f"nothing to collect on {host}: every stale fb image is kept for the reason above"
                  if skipped else f"nothing to collect on {host}: every fb image is current")
        elif not args.yes:
            print("dry run: add --yes to delete")
        for e in errors:
            print(f"could not remove {e}", file=sys.stderr)
    return 1 if errors else 0
