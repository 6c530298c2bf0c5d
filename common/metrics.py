"""Classification metrics in plain numpy, so the evaluation suite's numbers depend on its own code."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def per_class(confusion: np.ndarray, class_names: list[str]) -> dict[str, dict[str, Any]]:
    tp = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(0), confusion.sum(1)
    # An undefined ratio (nothing predicted / no support) counts as 0, as scikit-learn's default does.
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])} for i, name in enumerate(class_names)}


def macro_f1(per: dict[str, dict[str, Any]]) -> float:
    return float(np.mean([c["f1"] for c in per.values()])) if per else 0.0


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins."""
    conf = probs.max(1)
    correct = (probs.argmax(1) == y_true).astype(np.float64)
    # Bin i holds (i/bins, (i+1)/bins]; confidence 0 cannot occur with softmax outputs.
    idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def log_loss(log_probs: np.ndarray, y_true: np.ndarray) -> float:
    return float(-log_probs[np.arange(len(y_true)), y_true].mean())
