"""prepare: load the configured dataset, split it by data.split_seed, fit the transform on the
train split, write data.npz for the later stages."""

from __future__ import annotations

import json
import sys

from common import report
from common.context import StageContext, cfg
from common.data import prepared
from common.fingerprints import data_made_by
from common.stages._run import main


def run(ctx: StageContext) -> None:
    data_cfg = cfg(ctx.config, "data")
    report.truncate(0)  # a re-run replaces this stage's metrics rather than doubling them
    p = prepared.prepare(data_cfg, ctx.project_dir)
    prepared.save(p, ctx.out / "data.npz")
    info = {"dataset": data_cfg["name"], "classes": p.class_names, "input_shape": list(p.input_shape),
            **{f"n_{s}": len(p.y[s]) for s in prepared.SPLITS},
            **{f"sha256_{s}": p.digest(s) for s in prepared.SPLITS},
            "made_by": data_made_by(data_cfg, ctx.project_dir)}  # lets fbtui tell whether today's data is the same
    (ctx.out / "data.json").write_text(json.dumps(info, indent=2) + "\n")
    report.report(0, **{f"data/n_{s}": len(p.y[s]) for s in prepared.SPLITS}, **{"data/classes": p.num_classes})
    print(f"prepare: {data_cfg['name']}: train {len(p.y['train'])}, val {len(p.y['val'])}, "
          f"test {len(p.y['test'])}, {p.num_classes} classes, input {p.input_shape}")


if __name__ == "__main__":
    sys.exit(main("prepare", run))
