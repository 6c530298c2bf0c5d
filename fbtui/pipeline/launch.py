"""Launching runs: resolve each variant's config, capture git, make sure the image is on every host
the runs may use, record the runs as queued, and make sure a supervisor is there to run them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fbtui.errors import UsageError

if TYPE_CHECKING:
    from fbtui.config.resolve import Resolved, Variant
    from fbtui.images.events import EventSink
    from fbtui.lab import Lab, Project
    from fbtui.records.resume import Cell
    from fbtui.store import Store


@dataclass
class Launch:
    run_ids: list[int]
    image: str | None  # None: nothing needed to run (every cell of a --resume is done)
    hosts: list[str]
    cells: list[Cell] = field(default_factory=list)  # --resume: every cell, queued or skipped, and why


def fresh_run_folder(lab: Lab, run_id: int) -> Path:
    """The run's folder, empty. One left by a deleted store (run ids restart) is moved aside, never
    mixed into the new run."""
    import time

    from fbtui.pipeline.supervisor import run_folder

    folder = run_folder(lab, run_id)
    if folder.exists():
        folder.rename(folder.with_name(f"{run_id}.old-{time.strftime('%Y%m%d-%H%M%S')}"))
    folder.mkdir(parents=True)
    return folder


def select_variants(lab: Lab, project_name: str, variant: str | None, ablation: str | None,
                    seed: int | None) -> list[Variant | None]:
    from fbtui.config.resolve import Variant, expand, find_variant

    project = lab.project(project_name)
    if variant:
        runs = find_variant(lab, project, variant, ablation)
        if seed is None:
            return list(runs)
        # The seed asked for, even one the ablation does not list (resolve records it as --seed).
        return [v for v in runs if v.seed == seed] or [Variant(runs[0].ablation, runs[0].name, runs[0].overrides,
                                                               None, runs[0].lines)]
    if ablation:
        runs = expand(lab, project, ablation)
        if seed is None:
            return list(runs)
        picked = [v for v in runs if v.seed == seed]
        if picked:
            return picked
        once: dict[str, Variant] = {}  # every variant once, at the seed asked for
        for v in runs:
            once.setdefault(v.name, Variant(v.ablation, v.name, v.overrides, None, v.lines))
        return list(once.values())
    return [None]


def validate(lab: Lab, project_name: str, *, variants: list[Variant | None], overrides: list[str], hosts: list[str],
             stages: list[str] | None = None, seed: int | None = None) -> list[tuple[Variant | None, Resolved]]:
    """Every check a launch makes before it builds or records anything: hosts and stages exist,
    each run's config resolves (errors name file:line:key), secrets are set. Returns the resolved
    configs; raises FBError with the first problem. No engine is contacted."""
    from fbtui.config.resolve import resolve
    from fbtui.lab import Lab
    from fbtui.pipeline.containers import host_env

    # The supervisor reads lab.yaml afresh: one edited since `lab` was read (an app open for hours)
    # must still load, or the runs would wait queued for a supervisor that cannot start.
    Lab(lab.root)
    project = lab.project(project_name)
    if not hosts:
        raise UsageError("no host to run on")
    for h in hosts:
        if h not in lab.config.hosts:
            raise UsageError(f"unknown host '{h}' (hosts in lab.yaml: {', '.join(lab.config.hosts)})")
    names = [s.name for s in project.stages]
    if stages is not None:
        if not stages:
            raise UsageError("pick at least one stage")
        unknown = [s for s in stages if s not in names]
        if unknown:
            raise UsageError(f"unknown stage {', '.join(unknown)} (stages of {project_name}: {', '.join(names)})")
    from fbtui.config.stage_checks import check_rendered

    resolved = [(v, resolve(lab, project, v, overrides, seed=seed)) for v in variants]
    for _, r in resolved:  # every command and env template renders for every run
        check_rendered(project, r.config, stages)
    for s in project.stages:  # secrets are passed by name: they must be set here, now
        if stages and s.name not in stages:
            continue
        _, missing = host_env(s.secrets)
        if missing:
            raise UsageError(f"stage {s.name} needs {', '.join(missing)} in the environment (secrets: in "
                             "project.yaml); export it and run again")
    return resolved


def check_launch(lab: Lab, project_name: str, *, variants: list[Variant | None], overrides: list[str],
                 hosts: list[str], stages: list[str] | None = None, seed: int | None = None
                 ) -> list[tuple[Variant | None, Resolved]]:
    """What `launch` checks before it touches the store: `validate`, then GPU requests against the
    engines and requests no host can ever serve. The CLI calls it before opening the store, so
    rejected input creates nothing."""
    # Every config resolves first: a config error stops the launch before anything is built.
    resolved = validate(lab, project_name, variants=variants, overrides=overrides, hosts=hosts, stages=stages,
                        seed=seed)
    project = lab.project(project_name)
    from fbtui.images.plan import index_credentials

    lab.load_environment(project.environment)  # its apt/pip entries, before the store opens or a build starts
    index_credentials(lab)  # index credentials need build.network: host
    from fbtui.backends import is_slurm

    engines = [h for h in hosts if not is_slurm(lab.config.hosts, h)]  # a cluster's nodes are Slurm's to judge
    gpu_stages = [s for s in project.stages if s.resources.gpus and (not stages or s.name in stages)]
    if gpu_stages:  # a GPU request an engine cannot serve fails here, before anything starts
        from fbtui.images.service import host_client
        from fbtui.pipeline.containers import check_gpus

        for h in engines:
            for s in gpu_stages:
                check_gpus(host_client(lab, h), h, s)
    from fbtui.pipeline.capacity import unfit_stages

    if engines == hosts:  # with a cluster among them, Slurm refuses what no node can hold (its pending reason)
        unfit_stages(lab, project, hosts, stages)  # a request no host can ever serve: refused, nothing queued
    return resolved


def launch(lab: Lab, store: Store, project_name: str, *, variants: list[Variant | None], overrides: list[str],
           hosts: list[str], stages: list[str] | None = None, seed: int | None = None, no_cache: bool = False,
           emit: EventSink | None = None, resume: bool = False,
           checked: list[tuple[Variant | None, Resolved]] | None = None) -> Launch:
    """Resolve, build, record and queue. With `resume`, only the cells without a succeeded run
    under today's code and config are queued (`Launch.cells` says what was skipped and why).
    `checked`: what `check_launch` returned for these arguments (it is not done again)."""
    from fbtui.gitstate import capture
    from fbtui.images.service import ensure_project_image, record_layers
    from fbtui.pipeline.supervisor import ensure_supervisor
    from fbtui.records import resume as resuming

    resolved = checked if checked is not None else check_launch(
        lab, project_name, variants=variants, overrides=overrides, hosts=hosts, stages=stages, seed=seed)
    project = lab.project(project_name)
    state = capture(lab.root)
    cells: list[resuming.Cell] = []
    if resume:
        cells = resuming.plan(store, project_name, resolved, state.state_hash)
        resolved = [(c.variant, c.resolved) for c in cells if c.run]
        if not resolved:
            return Launch([], None, hosts, cells)
    image = None
    for h in hosts:
        result = ensure_project_image(lab, project_name, host=h, store=store, emit=emit or (lambda e: None))
        image = result.tag
    assert image is not None
    commit_id = store.record_commit(state, root=lab.root)
    layers = record_layers(lab, project_name, hosts[0], store)
    run_ids = [queue_run(lab, store, project, config=r.config, origins=r.origins, variant=v, commit_id=commit_id,
                         image=image, layers=layers, hosts=hosts, overrides=overrides, no_cache=no_cache,
                         stages=stages) for v, r in resolved]
    ensure_supervisor(lab)
    return Launch(run_ids, image, hosts, cells)


def queue_run(lab: Lab, store: Store, project: Project, *, config: dict[str, Any], origins: dict[str, str],
              variant: Variant | None, commit_id: int, image: str, layers: list[dict[str, Any]], hosts: list[str],
              overrides: list[str], no_cache: bool = False, stages: list[str] | None = None,
              ablation: str | None = None, rerun_of: int | None = None, source: str | None = None) -> int:
    """Record one run as queued with everything its record needs (config, code state, image layers,
    the pipeline as launched). `project` is the project as its image was built: the lab's own, or
    that of a checkout of an older code state (a rerun)."""
    from fbtui.config.resolve import flatten
    from fbtui.pipeline.recorded import pipeline_record

    store.ensure_project(project.name, project.environment, lab.rel(lab.root / "projects" / project.name))
    config_yaml = yaml.safe_dump(config, sort_keys=False)
    seed = config.get("seed")
    run_id = store.create_run(
        project.name, config=config_yaml, params=flatten(config), stages=[s.name for s in project.stages],
        origins=origins, ablation=variant.ablation if variant else ablation, variant=variant.name if variant else None,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None, commit_id=commit_id, image=image,
        host=None, overrides=[o.strip() for o in overrides], pipeline=pipeline_record(project, config),
        layers=layers, rerun_of=rerun_of, source=source)
    folder = fresh_run_folder(lab, run_id)
    (folder / "config.yaml").write_text(config_yaml)
    store.update_run(run_id, requested_host=",".join(hosts), folder=lab.rel(folder), no_cache=int(no_cache),
                     only_stages=",".join(stages) if stages else None)
    store.set_run_status(run_id, "queued")
    return run_id
