"""The evaluation suite: one fixed computation over a model's test-set outputs, fingerprinted.

Results are comparable only under one fingerprint: sha256 of the suite's code (the modules it
declares), the `eval` config section and the evaluation data's bytes. Nothing else (seed,
model, training code) enters it, so every ablation variant lands under the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common import metrics
from common.data.prepared import Prepared
from common.registry import register


def code_digest(module_names: list[str]) -> str:
    h = hashlib.sha256()
    for name in module_names:
        file = getattr(sys.modules[name], "__file__", None)
        h.update(name.encode() + b"\0")
        h.update(Path(file).read_bytes() if file else b"")
    return h.hexdigest()


def fingerprint(evaluator: Any, eval_cfg: dict[str, Any], data: Prepared, split: str = "test") -> str:
    h = hashlib.sha256()
    h.update(b"code\0" + code_digest(evaluator.code_modules()).encode())
    h.update(b"config\0" + json.dumps(eval_cfg, sort_keys=True, separators=(",", ":")).encode())
    h.update(b"data\0" + data.digest(split).encode())
    return h.hexdigest()


def covers(evaluator: Any, eval_cfg: dict[str, Any], data: Prepared, made_by: dict[str, Any] | None,
           project_dir: Path | None, split: str = "test") -> dict[str, Any]:
    """What `fingerprint` covers, itemised (common/fingerprints.py): the suite's code files with
    their hashes, its config, and the data's digest with what prepared it (when known)."""
    from common.fingerprints import code_files

    data_part: dict[str, Any] = {"digest": data.digest(split), "split": split}
    if made_by:
        data_part["made_by"] = made_by
    return {"code": code_files(evaluator.code_modules(), project_dir), "config": {"eval": eval_cfg},
            "data": data_part}


@register("evaluator", "classification")
class ClassificationSuite:
    """Accuracy, macro-F1, cross-entropy, ECE, per-class metrics and the confusion matrix."""

    def __init__(self, eval_cfg: dict[str, Any]) -> None:
        self.cfg = eval_cfg
        self.bins = int(eval_cfg.get("ece_bins", 15))

    def code_modules(self) -> list[str]:
        # Its own module and the metric code; a subclass in a project adds its module.
        mods = [__name__, metrics.__name__]
        if type(self).__module__ not in mods:
            mods.append(type(self).__module__)
        return mods

    @torch.no_grad()
    def predict(self, model: nn.Module, x: np.ndarray, device: torch.device, batch_size: int = 512) -> np.ndarray:
        """Log-probabilities in float64 (always fp32 forward: the suite must not depend on precision)."""
        model.eval().to(device)
        out = []
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device)
            out.append(torch.log_softmax(model(xb).float(), dim=1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))

    def evaluate(self, model: nn.Module, data: Prepared, device: torch.device, split: str = "test"
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(results, confusion artifact)."""
        y = data.y[split]
        log_probs = self.predict(model, data.x[split], device)
        pred = log_probs.argmax(1)
        confusion = metrics.confusion_matrix(y, pred, data.num_classes)
        per = metrics.per_class(confusion, data.class_names)
        results = {
            "accuracy": float((pred == y).mean()),
            "macro_f1": metrics.macro_f1(per),
            "loss": metrics.log_loss(log_probs, y),
            "ece": metrics.expected_calibration_error(np.exp(log_probs), y, self.bins),
            "n": len(y),
            "per_class": per,
        }
        return results, {"labels": data.class_names, "matrix": confusion.tolist(),
                         "rows": "true class", "columns": "predicted class"}
