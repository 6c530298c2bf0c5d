"""evaluate: run the evaluation suite on a train stage's model (or latest checkpoint) over the
prepared test split; write eval.json (with the suite's fingerprint) and confusion.json.

Given any earlier run's train folder as --in train=DIR, it re-evaluates that run under the
current suite."""

from __future__ import annotations

import json
import sys

from common import checkpoint, registry, report
from common.context import StageContext, cfg
from common.data import prepared
from common.device import configure_threads, resolve_device
from common.errors import StageError
from common.evaluation import covers, fingerprint
from common.models import build_model
from common.stages._run import main


def run(ctx: StageContext) -> None:
    eval_cfg = dict(cfg(ctx.config, "eval"))
    suite = str(cfg(ctx.config, "eval.suite"))
    evaluator = registry.get("evaluator", suite)(eval_cfg)
    train_cfg = ctx.config.get("train") or {}
    device = resolve_device(str(train_cfg.get("device", "auto")))
    configure_threads(int(train_cfg.get("threads", 0)))
    data = prepared.load(ctx.input("prepare", "data.npz"))
    info = ctx.input("prepare") / "data.json"  # from a prepare of before: no record of what made it
    made_by = json.loads(info.read_text()).get("made_by") if info.is_file() else None
    train_dir = ctx.input("train")
    model_path = train_dir / "model.pt"
    if not model_path.exists():
        model_path = checkpoint.latest(train_dir)  # an interrupted run: evaluate what it got to
        if model_path is None:
            raise StageError(f"no model.pt and no checkpoints in {train_dir}: did stage 'train' run?")
    ck = checkpoint.load(model_path, "cpu")
    meta = ck["meta"]
    if meta["num_classes"] != data.num_classes:
        raise StageError(f"{model_path}: model has {meta['num_classes']} classes but the evaluation data "
                         f"has {data.num_classes}: the train and prepare inputs do not belong together")
    # Rebuild from the checkpoint's own model config: an old run is evaluated as it was trained.
    model = build_model(meta["model_config"], tuple(meta["input_shape"]), meta["num_classes"])
    model.load_state_dict(ck["model"])
    step = int(ck.get("step", ck.get("loop", {}).get("step", 0)))

    report.truncate(0)
    split = str(eval_cfg.get("split", "test"))  # a lab-wide suite may score another split
    if split not in prepared.SPLITS or not len(data.y[split]):
        raise StageError(f"eval.split: {split!r} is not a split with samples here (splits: "
                         f"{', '.join(s for s in prepared.SPLITS if len(data.y[s]))})")
    fp = fingerprint(evaluator, eval_cfg, data, split)
    results, confusion = evaluator.evaluate(model, data, device, split)
    out = {"suite": suite, "fingerprint": fp, "results": results,
           "covers": covers(evaluator, eval_cfg, data, made_by, ctx.project_dir, split),
           "checkpoint": {"path": str(model_path), "step": step, "model": meta["model_name"]},
           "evaluator": registry.provenance("evaluator", suite, ctx.project_dir)}
    (ctx.out / "eval.json").write_text(json.dumps(out, indent=2) + "\n")
    (ctx.out / "confusion.json").write_text(json.dumps(confusion) + "\n")
    report.report(step, **{f"eval/{k}": v for k, v in results.items() if isinstance(v, (int, float))})
    print(f"evaluate: {suite} on {results['n']} samples: accuracy {results['accuracy']:.4f}, "
          f"macro-F1 {results['macro_f1']:.4f}, loss {results['loss']:.4f}, ECE {results['ece']:.4f} "
          f"(fingerprint {fp[:12]})")


if __name__ == "__main__":
    sys.exit(main("evaluate", run))
