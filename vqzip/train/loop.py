"""What both trainers share: a wall-clock budget that survives resume, the learning-rate schedule
(warm-up, then cosine over the budget), the run log and EMA weights."""
from __future__ import annotations

import json
import math
import time

import torch


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

    def next_lr(self, progress: float) -> float:
        """`progress` is passed in so that every rank of a multi-process run uses rank 0's."""
        self.step += 1
        warm = min(1.0, self.step / self.warmup)
        return self.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    def save_due(self, every_s: float) -> bool:
        if time.monotonic() - self._last_save >= every_s:
            self._last_save = time.monotonic()
            return True
        return False


def compiled(asked: bool | None, dev: torch.device) -> bool:
    """Whether a trainer torch.compiles its network: as asked, else on CUDA only. On the busy 2-core
    CPU, compiling the tokenizer's first training step took 12 minutes (benchmarks/results/trainer/)."""
    return dev.type == "cuda" if asked is None else asked


def device_name(dev: torch.device) -> str:
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"


class RunLog:
    """Every 50 steps, one JSON line in the run folder, also handed to `on_log` (the CLI's bar)."""

    def __init__(self, path, on_log=None, every: int = 50):
        self.f = open(path, "a")
        self.on_log = on_log
        self.every = every

    def due(self, budget: Budget) -> bool:
        return budget.step % self.every == 0 or budget.done()

    def note(self, rec: dict):
        """A line of its own in the log (not a step's), e.g. where a run started from."""
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()

    def write(self, budget: Budget, rec: dict):
        rec = {"step": budget.step, "t": round(budget.elapsed, 1)} | rec
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()
        if self.on_log:
            self.on_log(rec, budget.progress)


def set_lr(opt: torch.optim.Optimizer, lr: float):
    """Every parameter group at `lr`, times the group's "scale" where it has one."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("scale", 1.0)


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
