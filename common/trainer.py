"""The training loop every project inherits: accumulation, clipping, mixed precision, schedules,
early stopping, periodic checkpoints and exact resume, metrics through `report`."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import checkpoint, distributed, report
from common.data.loaders import EpochBatchSampler
from common.device import autocast
from common.errors import StageError
from common.registry import register
from common.seeding import rng_state, set_rng_state


@dataclass
class TrainSettings:
    epochs: int = 20
    grad_accum: int = 1
    grad_clip: float = 0.0
    checkpoint_every: int = 100  # optimizer steps; 0 = only the final checkpoint
    keep_checkpoints: int = 3
    early_stop_patience: int = 0  # epochs without a better val loss; 0 = off
    log_every: int = 10

    @classmethod
    def from_config(cls, train_cfg: dict[str, Any]) -> TrainSettings:
        s = cls(**{k: type(getattr(cls, k))(train_cfg[k]) for k in cls.__dataclass_fields__ if k in train_cfg})
        for key in ("epochs", "grad_accum", "log_every"):
            if getattr(s, key) < 1:
                raise StageError(f"train.{key}: must be at least 1, got {getattr(s, key)}")
        return s


@dataclass
class LoopState:
    """Everything besides model/optimizer that a resumed run needs to continue bit for bit."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # micro-batches done in the current epoch
    total_loss: float = 0.0  # sum of every micro-batch loss so far (float64)
    window_start_loss: float = 0.0  # total_loss when the current log window began
    window_batches: int = 0
    window_samples: int = 0
    epoch_start_loss: float = 0.0
    epoch_batches: int = 0
    best_val_loss: float = float("inf")
    bad_epochs: int = 0
    stopped_early: bool = False
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@register("trainer", "default")
class Trainer:
    def __init__(self, model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: Any, train_loader: Any, val_loader: Any | None,
                 settings: TrainSettings, device: torch.device, amp_dtype: torch.dtype | None, out: Path,
                 meta: dict[str, Any] | None = None) -> None:
        self.model, self.loss_fn, self.optimizer, self.scheduler = model, loss_fn, optimizer, scheduler
        self.train_loader, self.val_loader = train_loader, val_loader
        self.s, self.device, self.amp_dtype, self.out = settings, device, amp_dtype, out
        self.meta = meta or {}
        # fp16 needs loss scaling; bf16 has fp32's range and does not.
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype is torch.float16 else None
        self.state = LoopState()
        self.best_weights: dict[str, torch.Tensor] | None = None
        if settings.early_stop_patience > 0 and (val_loader is None or len(val_loader) == 0):
            raise StageError("train.early_stop_patience: early stopping needs a validation split "
                             "(data.val_fraction > 0)")
        self.non_blocking = bool(getattr(train_loader, "pin_memory", False))
        # what the ranks train through (DDP averages gradients); self.model stays the plain module,
        # whose state_dict is saved and evaluated
        self.net = distributed.wrap(model, device)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "loop": self.state.__dict__.copy(),
            "rng": rng_state(),
            "rng_ranks": distributed.gather(rng_state()),  # every rank's own, to resume bit for bit
            "world": distributed.world(),
            "best_weights": self.best_weights,
            "metrics_bytes": report.size(),
            "meta": self.meta,
        }

    def save_checkpoint(self) -> Path | None:
        state = self.state_dict()  # a collective under torchrun: every rank takes part
        path = checkpoint.save(self.out, self.state.step, state, self.s.keep_checkpoints) if distributed.is_main() \
            else None
        distributed.barrier()  # no rank runs ahead of a checkpoint being written
        return path

    def resume(self) -> int | None:
        """Continue from the latest checkpoint in the out dir, if any; returns its step."""
        path = checkpoint.latest(self.out)
        if path is None:
            return None
        # Onto the CPU: RNG states must stay CPU tensors; load_state_dict moves weights and
        # optimizer state to the parameters' device.
        ck = checkpoint.load(path, "cpu")
        distributed.check_world(ck.get("world"))
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        if self.scaler and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self.state = LoopState(**ck["loop"])
        self.best_weights = ck.get("best_weights")
        set_rng_state(ck["rng_ranks"][distributed.rank()] if ck.get("rng_ranks") else ck["rng"])
        # Lines written after this checkpoint will be written again: drop them.
        report.truncate(int(ck["metrics_bytes"]))
        return self.state.step

    # ------------------------------------------------------------------ loop

    def fit(self) -> dict[str, Any]:
        st, s = self.state, self.s
        sampler = self.train_loader.sampler
        n_batches = len(self.train_loader)
        # One running sum on the device, read back only when logging: no per-step host sync.
        total = torch.tensor(st.total_loss, dtype=torch.float64, device=self.device)
        t_window = time.perf_counter()
        t_start, samples_total = t_window, 0
        while not st.done and st.epoch < s.epochs and not st.stopped_early:
            if isinstance(sampler, EpochBatchSampler):
                sampler.set_epoch(st.epoch, st.batch)
            self.model.train()
            for xb, yb in self.train_loader:
                xb = xb.to(self.device, non_blocking=self.non_blocking)
                yb = yb.to(self.device, non_blocking=self.non_blocking)
                with autocast(self.device, self.amp_dtype):
                    loss = self.loss_fn(self.net(xb), yb)
                scaled = loss / s.grad_accum if s.grad_accum > 1 else loss
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
                st.batch += 1
                total.add_(loss.detach())
                st.window_batches += 1
                st.epoch_batches += 1
                st.window_samples += len(yb)
                samples_total += len(yb)
                if st.batch % s.grad_accum and st.batch != n_batches:
                    continue  # accumulate: the last partial group of an epoch still steps
                self._optimizer_step()
                st.step += 1
                if st.step % s.log_every == 0:
                    st.total_loss = total.item()  # the one host sync per window
                    # over the ranks: the loss averaged, the samples added up
                    mean = distributed.mean((st.total_loss - st.window_start_loss) / st.window_batches, self.device)
                    now = time.perf_counter()
                    rate = distributed.mean(st.window_samples / max(now - t_window, 1e-9), self.device)
                    report.report(st.step, **{
                        "train/loss": mean,
                        "train/samples_per_s": rate * distributed.world(),
                        "train/lr": self.optimizer.param_groups[0]["lr"],
                    })
                    st.window_start_loss = st.total_loss
                    st.window_batches = st.window_samples = 0
                    t_window = now
                if s.checkpoint_every and st.step % s.checkpoint_every == 0:
                    st.total_loss = total.item()
                    self.save_checkpoint()
            st.total_loss = total.item()
            self._end_epoch()
        st.done = True
        self.save_checkpoint()
        elapsed = time.perf_counter() - t_start
        return {"step": st.step, "epochs": st.epoch, "stopped_early": st.stopped_early,
                "best_val_loss": st.best_val_loss if st.best_val_loss != float("inf") else None,
                "samples_per_s": samples_total / elapsed if elapsed > 0 else 0.0}

    def _optimizer_step(self) -> None:
        if self.scaler:
            if self.s.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if self.s.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def _end_epoch(self) -> None:
        st = self.state
        metrics: dict[str, float] = {
            "epoch": st.epoch + 1,
            "train/epoch_loss": (st.total_loss - st.epoch_start_loss) / max(1, st.epoch_batches),
        }
        if self.val_loader is not None and len(self.val_loader) > 0:
            val_loss, val_acc = self.validate()
            metrics.update({"val/loss": val_loss, "val/accuracy": val_acc})
            if self.s.early_stop_patience > 0:
                if val_loss < st.best_val_loss:
                    st.best_val_loss, st.bad_epochs = val_loss, 0
                    self.best_weights = copy.deepcopy(self.model.state_dict())
                else:
                    st.bad_epochs += 1
                    st.stopped_early = st.bad_epochs >= self.s.early_stop_patience
            elif val_loss < st.best_val_loss:
                st.best_val_loss = val_loss
        report.report(st.step, **metrics)
        if st.stopped_early:
            report.report(st.step, **{"train/stopped_early_epoch": st.epoch + 1})
        st.epoch += 1
        st.batch = st.epoch_batches = 0
        st.epoch_start_loss = st.total_loss

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        assert self.val_loader is not None
        self.model.eval()
        total, correct, n = torch.zeros((), device=self.device), torch.zeros((), device=self.device), 0
        sampler = self.val_loader.sampler
        if isinstance(sampler, EpochBatchSampler):
            sampler.set_epoch(0, 0)
        for xb, yb in self.val_loader:
            xb = xb.to(self.device, non_blocking=self.non_blocking)
            yb = yb.to(self.device, non_blocking=self.non_blocking)
            with autocast(self.device, self.amp_dtype):
                logits = self.model(xb)
            total += nn.functional.cross_entropy(logits.float(), yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
            n += len(yb)
        self.model.train()
        return (total / n).item(), (correct / n).item()

    def final_weights(self) -> dict[str, torch.Tensor]:
        """The best-validation weights when early stopping is on, else the last ones."""
        return self.best_weights if self.best_weights is not None else self.model.state_dict()
