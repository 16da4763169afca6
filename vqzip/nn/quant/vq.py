"""Vector quantization: nearest of K learned codes, straight-through gradient.

Codes are looked up in a low-dimensional, l2-normalized space (ViT-VQGAN / LlamaGen); that and
re-seeding dead codes from the batch keep codebook use high.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class VQ(nn.Module):
    def __init__(self, dim: int, codebook_size: int, code_dim: int = 8, commit_weight: float = 0.25,
                 dead_after: int = 200):
        super().__init__()
        self.codebook_size = codebook_size
        self.bits = (codebook_size - 1).bit_length()
        self.commit_weight = commit_weight
        self.dead_after = dead_after
        self.proj_in = nn.Conv2d(dim, code_dim, 1)
        self.proj_out = nn.Conv2d(code_dim, dim, 1)
        self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim))
        self.register_buffer("unused_steps", torch.zeros(codebook_size), persistent=False)

    def _codes(self):
        return F.normalize(self.codebook, dim=1)

    def forward(self, z: torch.Tensor):
        with torch.autocast(z.device.type, enabled=False):  # nearest-code search in fp32
            return self._quantize(z.float())

    def _quantize(self, z: torch.Tensor):
        e = F.normalize(self.proj_in(z), dim=1)
        B, D, H, W = e.shape
        flat = e.permute(0, 2, 3, 1).reshape(-1, D)
        codes = self._codes()
        idx = (flat @ codes.T).argmax(1)  # max cosine = min distance between unit vectors
        q = codes[idx]
        aux = z.new_zeros(())
        stats = {}
        if self.training:
            aux = F.mse_loss(q, flat.detach()) + self.commit_weight * F.mse_loss(flat, q.detach())
            self._reseed_dead(idx, flat)
            stats = {"codes_used": (self.unused_steps == 0).float().mean()}
        q = flat + (q - flat).detach()
        q = q.view(B, H, W, D).permute(0, 3, 1, 2)
        return self.proj_out(q), idx.view(B, H, W), aux, stats

    @torch.no_grad()
    def _reseed_dead(self, idx: torch.Tensor, flat: torch.Tensor):
        used = torch.zeros_like(self.unused_steps).index_fill_(0, idx, 1.0)
        self.unused_steps.mul_(1 - used).add_(1 - used)
        dead = (self.unused_steps > self.dead_after).nonzero().squeeze(1)
        if len(dead):
            pick = torch.randint(0, len(flat), (len(dead),), device=flat.device)
            self.codebook.data[dead] = flat[pick].to(self.codebook.dtype)
            self.unused_steps[dead] = 0

    def to_indices(self, z: torch.Tensor) -> torch.Tensor:
        return self.forward(z)[1]

    def from_indices(self, idx: torch.Tensor) -> torch.Tensor:
        q = self._codes()[idx].permute(0, 3, 1, 2)
        return self.proj_out(q)
