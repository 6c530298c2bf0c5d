"""Samples/s of the common trainer against a plain hand-written PyTorch loop, same model and data,
in the same process.

    .venv/bin/python bench/train.py [--epochs 30] [--repeat 5] [--batch-size 64] [--device auto]

Both loops do the same work: shuffled mini-batches of the prepared digits train split, Adam,
cross-entropy, one validation pass per epoch. The common trainer also reports metrics every
log_every steps and writes its final checkpoint. Target (issue #4): ratio >= 0.95x.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import report
from common.data import prepared
from common.data.loaders import make_loader
from common.device import configure_threads, resolve_device, resolve_precision
from common.models import MLP
from common.optim import constant
from common.trainer import Trainer, TrainSettings

DATA_CFG = {"name": "digits", "test_fraction": 0.2, "val_fraction": 0.1, "split_seed": 0,
            "transform": "standardize", "num_workers": 0, "pin_memory": True, "persistent_workers": False}


def plain_loop(model: nn.Module, data: prepared.Prepared, epochs: int, batch_size: int,
               device: torch.device, amp: torch.dtype | None) -> float:
    """What one would write by hand; returns seconds."""
    x, y = torch.from_numpy(data.x["train"]).to(device), torch.from_numpy(data.y["train"]).to(device)
    xv, yv = torch.from_numpy(data.x["val"]).to(device), torch.from_numpy(data.y["val"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running = 0.0
        perm = torch.randperm(len(y), generator=g).to(device)
        for i in range(0, len(y), batch_size):
            idx = perm[i:i + batch_size]
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
        model.eval()
        with torch.no_grad():
            val_acc = (model(xv).argmax(1) == yv).float().mean().item()
        del running, val_acc
    sync(device)
    return time.perf_counter() - t0


def common_trainer(model: nn.Module, data: prepared.Prepared, epochs: int, batch_size: int,
                   device: torch.device, amp: torch.dtype | None, out: Path) -> float:
    cfg = {**DATA_CFG, "batch_size": batch_size}
    train = make_loader(data.x["train"], data.y["train"], cfg, shuffle=True, seed=0, device=device)
    val = make_loader(data.x["val"], data.y["val"], cfg, shuffle=False, seed=0, device=device, batch_size=512)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    settings = TrainSettings(epochs=epochs, log_every=10, checkpoint_every=0)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, constant(opt, {}, 0), train, val, settings, device, amp, out)
    report.configure(out)
    sync(device)
    t0 = time.perf_counter()
    trainer.fit()
    sync(device)
    return time.perf_counter() - t0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    device = resolve_device(args.device)
    amp = resolve_precision(args.precision, device)
    threads = configure_threads(args.threads)
    data = prepared.prepare(DATA_CFG, None)
    torch.manual_seed(0)
    init = MLP(data.input_shape, data.num_classes, hidden=256, depth=2, dropout=0.1).to(device)
    n = len(data.y["train"]) * args.epochs
    times: dict[str, list[float]] = {"plain": [], "common": []}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up of both paths, then alternate so that drift in machine load hits both alike.
        plain_loop(copy.deepcopy(init), data, 1, args.batch_size, device, amp)
        common_trainer(copy.deepcopy(init), data, 1, args.batch_size, device, amp, Path(tmp) / "warm")
        for r in range(args.repeat):
            times["plain"].append(plain_loop(copy.deepcopy(init), data, args.epochs, args.batch_size, device, amp))
            times["common"].append(common_trainer(copy.deepcopy(init), data, args.epochs, args.batch_size,
                                                  device, amp, Path(tmp) / f"r{r}"))
    print(f"device {device} ({amp or 'fp32'}), {threads} thread(s), MLP 256x2 on digits, batch {args.batch_size}, "
          f"{args.epochs} epochs x {args.repeat} runs each, interleaved")
    # Best-of is the headline (least disturbed by other load on the machine); the median shows the spread.
    best = {k: n / min(v) for k, v in times.items()}
    median = {k: n / statistics.median(v) for k, v in times.items()}
    print(f"{'':20} {'best':>10}   {'median':>10}")
    print(f"plain PyTorch loop   {best['plain']:10.0f}   {median['plain']:10.0f} samples/s")
    print(f"common trainer       {best['common']:10.0f}   {median['common']:10.0f} samples/s")
    print(f"ratio                {best['common'] / best['plain']:10.2f}x  {median['common'] / median['plain']:10.2f}x"
          "   (target >= 0.95x)")


if __name__ == "__main__":
    main()
