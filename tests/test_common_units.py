"""Units of `common/`: the metrics protocol, the registry, data, splits, loaders, metric maths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from common import registry, report
from common.data import prepared
from common.data.loaders import EpochBatchSampler, make_loader
from common.errors import StageError
from common.metrics import confusion_matrix, expected_calibration_error, macro_f1, per_class


def test_report_writes_one_whole_line_per_key(tmp_path: Path) -> None:
    report.configure(tmp_path)
    report.report(10, **{"train/loss": 0.31, "train/lr": torch.tensor(0.5)})
    report.report(20, **{"train/loss": float("nan"), "epoch": np.int64(2)})
    text = (tmp_path / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(m["step"], m["key"], m["value"]) for m in lines] == [
        (10, "train/loss", 0.31), (10, "train/lr", 0.5), (20, "train/loss", None), (20, "epoch", 2)]
    assert all(isinstance(m["t"], float) for m in lines)
    first_two = len("".join(f"{line}\n" for line in text.splitlines()[:2]).encode())
    report.truncate(first_two)
    assert len(report.read(tmp_path / "metrics.jsonl")) == 2


def test_unknown_component_names_the_known_ones() -> None:
    with pytest.raises(StageError, match=r"model.name: unknown model 'resnet' \(registered: .*linear, mlp"):
        registry.get("model", "resnet")


def test_registering_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register("model", "mlp")(type("Other", (torch.nn.Module,), {}))


def test_splits_are_deterministic_disjoint_and_stratified() -> None:
    y = np.repeat(np.arange(5), 40)
    x = np.arange(len(y), dtype=np.float32)[:, None]
    a, b = prepared.split(x, y, 0.2, 0.1, seed=3), prepared.split(x, y, 0.2, 0.1, seed=3)
    c = prepared.split(x, y, 0.2, 0.1, seed=4)
    assert all(np.array_equal(a[s], b[s]) for s in prepared.SPLITS)
    assert not np.array_equal(a["test"], c["test"])
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(len(y)))
    assert (np.bincount(y[a["test"]]) == 8).all()  # 20% of each class


def test_digits_prepare_uses_split_seed_not_seed() -> None:
    cfg = {"name": "digits", "test_fraction": 0.2, "val_fraction": 0.1, "split_seed": 0, "transform": "standardize"}
    p = prepared.prepare(cfg, None)
    assert p.input_shape == (1, 8, 8) and p.num_classes == 10
    assert len(p.y["train"]) + len(p.y["val"]) + len(p.y["test"]) == 1797
    assert abs(float(p.x["train"].mean())) < 1e-5  # standardized by the train split's statistics
    assert prepared.prepare(cfg, None).digest("test") == p.digest("test")
    assert prepared.prepare({**cfg, "split_seed": 1}, None).digest("test") != p.digest("test")


def test_synthetic_is_seeded(tmp_path: Path) -> None:
    cfg = {"name": "synthetic", "split_seed": 7, "synthetic": {"samples": 300, "features": 8, "classes": 3}}
    a, b = prepared.prepare(cfg, None), prepared.prepare(cfg, None)
    assert a.input_shape == (8,) and a.num_classes == 3 and a.digest("train") == b.digest("train")
    prepared.save(a, tmp_path / "data.npz")
    assert prepared.load(tmp_path / "data.npz").digest("test") == a.digest("test")


def test_csv_dataset_reads_a_mounted_file(tmp_path: Path) -> None:
    rows = ["f1,species,f2"] + [f"{i % 7},{'ab'[i % 2]},{i * 0.5}" for i in range(40)]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    cfg = {"name": "csv", "path": "table.csv", "target": "species", "transform": "none", "test_fraction": 0.25,
           "val_fraction": 0.0}
    p = prepared.prepare(cfg, tmp_path)  # relative paths are relative to the project folder
    assert p.class_names == ["a", "b"] and p.input_shape == (2,) and len(p.y["test"]) == 10
    with pytest.raises(StageError, match=r"data\.target: column 'label' not in"):
        prepared.prepare({**cfg, "target": "label"}, tmp_path)
    with pytest.raises(StageError, match="does not exist"):
        prepared.prepare({**cfg, "path": "missing.csv"}, tmp_path)


def test_image_folder_dataset(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image")
    for label, shade in (("cat", 30), ("dog", 220)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(6):
            image.new("RGB", (12, 10), (shade, i, 0)).save(tmp_path / "imgs" / label / f"{i}.png")
    cfg = {"name": "image-folder", "path": str(tmp_path / "imgs"), "image_size": 8, "image_channels": 3,
           "transform": "none", "test_fraction": 0.5, "val_fraction": 0.0}
    p = prepared.prepare(cfg, None)
    assert p.class_names == ["cat", "dog"] and p.input_shape == (3, 8, 8)
    for split in ("train", "test"):  # the red channel tells the classes apart
        red = p.x[split][:, 0].mean(axis=(1, 2))
        assert ((red > 0.5) == (p.y[split] == 1)).all()


def test_batches_depend_on_seed_and_epoch_and_resume_mid_epoch() -> None:
    s = EpochBatchSampler(10, 3, shuffle=True, seed=1)

    def batches(epoch: int, start: int = 0) -> list[list[int]]:
        s.set_epoch(epoch, start)
        return [b.tolist() for b in s]

    e0, e1 = batches(0), batches(1)
    assert batches(0, start=2) == e0[2:] and e0 != e1 and len(e0) == 4
    assert sorted(i for b in e0 for i in b) == list(range(10))
    assert batches(0) == e0


def test_loader_honours_the_data_config() -> None:
    x, y = np.zeros((10, 2), np.float32), np.arange(10)
    cfg = {"batch_size": 4, "num_workers": 0, "pin_memory": True, "persistent_workers": True}
    loader = make_loader(x, y, cfg, shuffle=False, seed=0, device=torch.device("cpu"))
    batches = [yb.tolist() for _, yb in loader]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert loader.pin_memory is False and loader.persistent_workers is False  # CPU, no workers
    workers = make_loader(x, y, {**cfg, "num_workers": 2}, shuffle=False, seed=0, device=torch.device("cpu"))
    assert workers.num_workers == 2 and workers.persistent_workers is True
    assert [yb.tolist() for _, yb in workers] == batches


def test_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import confusion_matrix as sk_confusion
    from sklearn.metrics import f1_score, precision_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200))
    cm = confusion_matrix(y, pred, 4)
    assert (cm == sk_confusion(y, pred, labels=range(4))).all()
    per = per_class(cm, ["a", "b", "c", "d"])
    assert macro_f1(per) == pytest.approx(f1_score(y, pred, average="macro"))
    assert per["c"]["precision"] == pytest.approx(precision_score(y, pred, average=None)[2])


def test_expected_calibration_error_by_hand() -> None:
    # Two bins used: conf 0.9 (1 of 2 right) and conf 0.6 (both right): (2*0.4 + 2*0.4) / 4.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    assert expected_calibration_error(probs, y, bins=10) == pytest.approx(0.4)
