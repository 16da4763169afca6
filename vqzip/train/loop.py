"""What both trainers share: device choice, a wall-clock budget that survives resume, the
learning-rate schedule (warm-up, then cosine over the budget) and bf16 autocast on CUDA."""
from __future__ import annotations

import contextlib
import math
import time

import torch


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but CUDA is not available")
    return torch.device(device)


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Budget:
    """Time-based schedule: progress is elapsed / budget, so a resumed run continues the curve."""

    def __init__(self, minutes: float, lr: float, warmup_steps: int = 200, elapsed: float = 0.0, step: int = 0):
        self.total = minutes * 60.0
        self.lr = lr
        self.warmup = warmup_steps
        self.step = step
        self._start = time.monotonic() - elapsed
        self._last_save = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    @property
    def progress(self) -> float:
        return min(1.0, self.elapsed / self.total) if self.total > 0 else 1.0

    def done(self) -> bool:
        return self.elapsed >= self.total

    def next_lr(self) -> float:
        self.step += 1
        warm = min(1.0, self.step / self.warmup)
        return self.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * self.progress)))

    def save_due(self, every_s: float) -> bool:
        if time.monotonic() - self._last_save >= every_s:
            self._last_save = time.monotonic()
            return True
        return False


def set_lr(opt: torch.optim.Optimizer, lr: float):
    for g in opt.param_groups:
        g["lr"] = lr


class EMA:
    """Exponential moving average of a model's weights; the shipped weights are the average."""

    def __init__(self, model: torch.nn.Module, decay: float):
        import copy
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int):
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)
