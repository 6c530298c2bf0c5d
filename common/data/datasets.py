"""Registered datasets. Each returns (x, y, class_names): x float32 in its natural shape
(features, or channels x height x width), y int64 class indices."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import StageError
from common.registry import register

Loaded = tuple[np.ndarray, np.ndarray, list[str]]


def _data_path(cfg: dict[str, Any], project_dir: Path | None, kind: str) -> Path:
    raw = str(cfg.get("path") or "")
    if not raw:
        raise StageError(f"data.path: the {kind} dataset needs a path (a file or folder; relative to the project)")
    path = Path(raw)
    if not path.is_absolute() and project_dir is not None:
        path = project_dir / path
    if not path.exists():
        raise StageError(f"data.path: {path} does not exist (mount the dataset or fix the path)")
    return path


@register("dataset", "digits")
def digits(cfg: dict[str, Any], project_dir: Path | None) -> Loaded:
    """scikit-learn's 8x8 handwritten digits (ships with the package: nothing is downloaded)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[:, None, :, :]  # N x 1 x 8 x 8, values 0..16
    return x, d.target.astype(np.int64), [str(c) for c in d.target_names]


@register("dataset", "synthetic")
def synthetic(cfg: dict[str, Any], project_dir: Path | None) -> Loaded:
    """A seeded classification problem (scikit-learn's make_classification)."""
    from sklearn.datasets import make_classification

    s = cfg.get("synthetic") or {}
    n_features = int(s.get("features", 20))
    n_classes = int(s.get("classes", 4))
    x, y = make_classification(
        n_samples=int(s.get("samples", 2000)), n_features=n_features,
        n_informative=max(2, n_features // 2), n_redundant=n_features // 4, n_classes=n_classes,
        n_clusters_per_class=1, random_state=int(cfg.get("split_seed", 0)),
    )
    return x.astype(np.float32), y.astype(np.int64), [str(c) for c in range(n_classes)]


@register("dataset", "csv")
def tabular_csv(cfg: dict[str, Any], project_dir: Path | None) -> Loaded:
    """A CSV with a header: numeric feature columns and one label column (data.target)."""
    path = _data_path(cfg, project_dir, "csv")
    target = str(cfg.get("target") or "label")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise StageError(f"data.path: {path} has no data rows")
    header, body = rows[0], [r for r in rows[1:] if r]
    if target not in header:
        raise StageError(f"data.target: column {target!r} not in {path} (columns: {', '.join(header)})")
    t = header.index(target)
    labels = [r[t] for r in body]
    class_names = sorted(set(labels), key=lambda v: (_is_not_number(v), float(v) if not _is_not_number(v) else v))
    index = {c: i for i, c in enumerate(class_names)}
    try:
        x = np.array([[float(v) for j, v in enumerate(r) if j != t] for r in body], dtype=np.float32)
    except ValueError as e:
        raise StageError(f"data.path: {path}: a feature column is not numeric ({e})") from None
    return x, np.array([index[v] for v in labels], dtype=np.int64), class_names


def _is_not_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return True
    return False


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@register("dataset", "image-folder")
def image_folder(cfg: dict[str, Any], project_dir: Path | None) -> Loaded:
    """<path>/<class name>/<image files>, resized to data.image_size and scaled to 0..1."""
    root = _data_path(cfg, project_dir, "image-folder")
    try:
        from PIL import Image
    except ImportError:
        raise StageError("data.name: image-folder needs Pillow in the image (pip install pillow)") from None
    size = int(cfg.get("image_size", 32))
    mode = "L" if int(cfg.get("image_channels", 3)) == 1 else "RGB"
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_names:
        raise StageError(f"data.path: {root} holds no class folders (<path>/<class>/<image>)")
    xs, ys = [], []
    for label, name in enumerate(class_names):
        for f in sorted((root / name).iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(f) as im:
                arr = np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
            xs.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            ys.append(label)
    if not xs:
        raise StageError(f"data.path: no images under {root} ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return np.stack(xs), np.array(ys, dtype=np.int64), class_names
