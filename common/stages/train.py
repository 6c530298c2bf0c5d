"""train: build the configured components, train (resuming from the latest checkpoint in the
out dir), write model.pt, checkpoints/ and components.json."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from common import checkpoint, distributed, registry, report
from common.context import StageContext, cfg
from common.data import prepared
from common.data.loaders import make_loader
from common.device import configure_threads, resolve_device, resolve_precision
from common.models import build_model, parameter_count
from common.seeding import seed_everything
from common.stages._run import main
from common.trainer import TrainSettings

# The config key naming each component kind (trainer and transform have defaults).
COMPONENTS = {"dataset": "data.name", "transform": "data.transform", "model": "model.name",
              "optimizer": "optim.name", "scheduler": "schedule.name", "loss": "loss.name",
              "trainer": "train.trainer", "evaluator": "eval.suite"}
DEFAULTS = {"data.transform": "none", "loss.name": "cross_entropy", "train.trainer": "default"}


def component_name(config: dict[str, Any], key: str) -> str:
    if key in DEFAULTS:
        section, leaf = key.split(".")
        return str((config.get(section) or {}).get(leaf, DEFAULTS[key]))
    return str(cfg(config, key))


def run(ctx: StageContext) -> None:
    c = ctx.config
    train_cfg = cfg(c, "train")
    seed = int(cfg(c, "seed"))
    seed_everything(seed, bool(train_cfg.get("deterministic", True)))
    device = distributed.init(resolve_device(str(train_cfg.get("device", "auto"))))
    configure_threads(int(train_cfg.get("threads", 0)))
    amp_dtype = resolve_precision(str(train_cfg.get("precision", "auto")), device)
    settings = TrainSettings.from_config(train_cfg)
    names = {kind: component_name(c, key) for kind, key in COMPONENTS.items()}
    for kind, name in names.items():
        registry.get(kind, name)  # fail on an unknown name before any work

    data = prepared.load(ctx.input("prepare", "data.npz"))
    model = build_model(cfg(c, "model"), data.input_shape, data.num_classes).to(device)
    n_params = parameter_count(model)
    loss_fn = registry.get("loss", names["loss"])(c.get("loss") or {}).to(device)
    optimizer = registry.get("optimizer", names["optimizer"])(model.parameters(), cfg(c, "optim"))
    data_cfg = cfg(c, "data")
    train_loader = make_loader(data.x["train"], data.y["train"], data_cfg, shuffle=True, seed=seed, device=device,
                               rank=distributed.rank(), world=distributed.world())
    val_loader = (make_loader(data.x["val"], data.y["val"], data_cfg, shuffle=False, seed=seed, device=device)
                  if len(data.y["val"]) else None)
    total_steps = settings.epochs * math.ceil(len(train_loader) / settings.grad_accum)
    scheduler = registry.get("scheduler", names["scheduler"])(optimizer, cfg(c, "schedule"), total_steps)
    meta = {"model_name": names["model"], "model_config": dict(cfg(c, "model")),
            "input_shape": list(data.input_shape), "num_classes": data.num_classes,
            "class_names": data.class_names, "parameters": n_params, "seed": seed}
    trainer = registry.get("trainer", names["trainer"])(
        model, loss_fn, optimizer, scheduler, train_loader, val_loader, settings, device, amp_dtype, ctx.out, meta)

    resumed = trainer.resume()
    if resumed is None:
        report.truncate(0)  # killed before the first checkpoint: start the file over
        report.report(0, **{"model/parameters": n_params})
    main_rank = distributed.is_main()  # under torchrun, rank 0 writes the stage's files
    if main_rank:
        provenance = {kind: registry.provenance(kind, name, ctx.project_dir) for kind, name in names.items()}
        provenance["model"]["parameters"] = n_params
        (ctx.out / "components.json").write_text(json.dumps(provenance, indent=2) + "\n")
        ranks = f" x {distributed.world()} processes" if distributed.world() > 1 else ""
        print(f"train: {names['model']} ({n_params} parameters) on {device}{ranks}"
              f"{f' with {amp_dtype}' if amp_dtype else ''}" + (f", resumed at step {resumed}" if resumed else ""),
              flush=True)

    summary = trainer.fit()
    if main_rank:
        checkpoint.save_atomic({"model": trainer.final_weights(), "meta": meta, "step": summary["step"],
                                "summary": summary}, ctx.out / "model.pt")
        (ctx.out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"train: {summary['step']} steps, {summary['epochs']} epochs, "
              f"{summary['samples_per_s']:.0f} samples/s" + (" (stopped early)" if summary["stopped_early"] else ""))
    distributed.barrier()
    distributed.finish()


if __name__ == "__main__":
    sys.exit(main("train", run))
