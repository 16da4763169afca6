"""Training on several processes started by torchrun: DistributedDataParallel over NCCL on CUDA
(one GPU a process) or gloo on a CPU. Each rank draws its own crops; rank 0 alone writes logs,
checkpoints and weights. Without torchrun's environment, everything here is a no-op."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from ..devices import pick_device


def is_main() -> bool:
    """Rank 0, or a plain single process."""
    return int(os.environ.get("RANK", 0)) == 0


class Ranks:
    def __init__(self, device: str = "auto"):
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.rank = int(os.environ.get("RANK", 0))
        dev = pick_device(device)
        if self.world > 1:
            if dev.type == "cuda":
                dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
                torch.cuda.set_device(dev)
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
            # the budget is shared over gloo on the host, so the training loop never waits on the GPU for it
            self.control = dist.new_group(backend="gloo") if dev.type == "cuda" else dist.group.WORLD
        self.device = dev

    @property
    def main(self) -> bool:
        return self.rank == 0

    def seed(self, *parts: int) -> tuple[int, ...]:
        """A seed of its own for each rank; a single process keeps the seed it always had."""
        return parts + (self.rank,) if self.world > 1 else parts

    def wrap(self, module: nn.Module) -> nn.Module:
        if self.world == 1:
            return module
        return nn.parallel.DistributedDataParallel(module, device_ids=[self.device] if self.device.type == "cuda" else None)

    def progress(self, budget) -> float:
        """Rank 0's progress through the time budget, for every rank: all of them take the same
        learning rate and stop at the same step (a rank that stopped alone would hang the others)."""
        if self.world == 1:
            return budget.progress
        t = torch.tensor([budget.progress], dtype=torch.float64)
        dist.broadcast(t, 0, group=self.control)
        return float(t)

    def close(self):
        if self.world > 1:
            dist.destroy_process_group()


class CallAs(nn.Module):
    """A module whose forward is another module's method (the prior's `loss`): DDP hooks forward only."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module, self.method = module, method

    def forward(self, *args):
        return getattr(self.module, self.method)(*args)
