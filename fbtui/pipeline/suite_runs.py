"""Scoring runs on a lab-wide suite (`fbtui eval --suite NAME RUN...`, and `auto:` after a run).

A suite evaluation is a hidden run (`eval_of` the scored run, `suite` its name), like a
re-evaluation, with two differences: it runs in the scored run's own image (its project's model
code loads the checkpoint as it was trained), and the lab's `common/` as it was when the
evaluation was queued is copied into each of its containers ahead of the image's own (a blob in
the store, by sha256: a suite edited while evaluations wait does not change them, and the cache
key includes it). Its prepare runs the suite's data; train comes from the scored run.
"""

from __future__ import annotations

import io
import sys
import tarfile
from typing import TYPE_CHECKING, Any

import yaml

from fbtui.errors import FBError, UsageError

if TYPE_CHECKING:
    from fbtui.config.suites import Suite
    from fbtui.lab import Lab
    from fbtui.store import Store

OVERLAY_ROOT = "/fb/suite"  # the container's PYTHONPATH: today's common/ before the image's own
STAGES = ("prepare", "train", "evaluate")


def common_tar(lab: Lab) -> bytes:
    """The lab's common/ as a tar under suite/common/, byte-stable for the same files."""
    buf = io.BytesIO()
    root = lab.root / "common"
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if "__pycache__" in rel.parts or not path.is_file() or path.is_symlink() \
                    or path.suffix not in (".py", ".yaml", ".toml"):
                continue
            data = path.read_bytes()
            info = tarfile.TarInfo(f"suite/common/{rel.as_posix()}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _check(lab: Lab, store: Store, src: dict[str, Any], check_image: bool) -> None:
    from fbtui.pipeline.recorded import pipeline_of

    rid = src["id"]
    if src["eval_of"]:
        raise UsageError(f"run {rid} evaluates run {src['eval_of']}: score run {src['eval_of']} instead")
    if src["status"] != "succeeded":
        raise FBError(f"run {rid} is {src['status']}: only a succeeded run's model is scored")
    specs = {s.name: s for s in pipeline_of(lab, src).stages}
    custom = [n for n in STAGES
              if n not in specs or specs[n].default_command() != ["python3", "-m", f"common.stages.{n}"]]
    if custom:
        raise FBError(f"run {rid}: a suite scores models of common's pipeline (prepare, train, evaluate); "
                      f"its stage {custom[0]} is " + ("missing" if custom[0] not in specs else "its own command"))
    from fbtui.config.models import Evaluates
    from fbtui.pipeline.reevaluate import check_reads

    check_reads(store, src, specs["evaluate"].model_copy(update={"evaluates": Evaluates(reads=["train/model.pt"])}))
    if check_image:
        _check_image(lab, src)


def _check_image(lab: Lab, src: dict[str, Any]) -> None:
    """The run's own image must be on its host: its project's model code loads the checkpoint."""
    import docker

    from fbtui.images.service import host_client

    host = src["host"] or "local"
    try:
        host_client(lab, host).images.get(src["image"])
    except docker.errors.ImageNotFound:
        raise FBError(f"run {src['id']}: its image {src['image']} is gone from host {host} (fbtui gc or "
                      "docker rmi removed it): its model code cannot load the checkpoint",
                      hint=f"fbtui rerun {src['id']} rebuilds that code state's image and trains it again; "
                           "or fbtui build " + src["project"] + " if the code has not changed since") from None


def queue_suite(lab: Lab, store: Store, suite: Suite, run_ids: list[int], *, check_image: bool = True,
                start: bool = True) -> list[int]:
    """Queue a suite evaluation of each run (all checked before any is queued); returns their ids."""
    from fbtui.pipeline.launch import fresh_run_folder
    from fbtui.pipeline.supervisor import ensure_supervisor
    from fbtui.records.show import get_run

    sources = [get_run(store, rid) for rid in run_ids]
    for src in sources:
        _check(lab, store, src, check_image)
    code = store.add_blob(common_tar(lab))
    sections = suite.sections(lab.defaults.data or {})
    new_ids = []
    for src in sources:
        rid, host = src["id"], src["host"] or "local"
        config = yaml.safe_load(src["config"]) or {}
        config.update(sections)
        text = yaml.safe_dump(config, sort_keys=False)
        stages = store.stages(rid)
        new = store.create_run(src["project"], config=text, params=store.params(rid),
                               stages=[s["name"] for s in stages], ablation=src["ablation"], variant=src["variant"],
                               seed=src["seed"], commit_id=src["commit_id"], image=src["image"], host=None)
        folder = fresh_run_folder(lab, new)
        (folder / "config.yaml").write_text(text)
        store.update_run(new, requested_host=host, folder=lab.rel(folder), eval_of=rid, suite=suite.name,
                         suite_code=code, only_stages="prepare,evaluate", pipeline=src.get("pipeline"))
        for st in stages:
            if st["name"] == "train":
                store.copy_stage_results({"run_id": rid, "name": "train"}, new, "train")
                store.set_stage_status(new, "train", "cached", f"from run {rid}", cached_from=st["cached_from"]
                                       or st["id"], out=st["out"], host=host)
            elif st["name"] not in STAGES:
                store.set_stage_status(new, st["name"], "skipped", f"not part of suite {suite.name}")
        store.set_run_status(new, "queued")
        new_ids.append(new)
    if start and new_ids:
        ensure_supervisor(lab)
    return new_ids


def after_success(lab: Lab, store: Store, run: dict[str, Any]) -> None:
    """The suites marked `auto:` for this run's project score it (called by the supervisor when a
    run of its own succeeds). A broken suites file is said in the supervisor's log, never fatal."""
    from fbtui.config.suites import load_suites

    if run["eval_of"]:
        return
    try:
        for suite in load_suites(lab).values():
            if run["project"] in suite.spec.auto:
                (new,) = queue_suite(lab, store, suite, [run["id"]], check_image=False, start=False)
                print(f"run {run['id']}: scored on suite {suite.name} by run {new} (auto)", file=sys.stderr,
                      flush=True)
    except Exception as e:  # scoring is extra: the run it follows has succeeded regardless
        print(f"run {run['id']}: auto suites: {e}", file=sys.stderr, flush=True)
