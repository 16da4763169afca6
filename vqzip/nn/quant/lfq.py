"""Lookup-free quantization (MAGVIT-v2): each latent channel is one bit, q = sign(z).

The entropy penalty is computed on the joint distribution of groups of bits, not per bit:
per-bit balance alone let a model use 27 of 65,536 codes, while a joint penalty on 8-bit
groups used thousands.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class LFQ(nn.Module):
    def __init__(self, bits: int, group_bits: int = 10, commit_weight: float = 0.25,
                 entropy_weight: float = 0.1, codebook_entropy_gamma: float = 1.0):
        super().__init__()
        self.bits = bits
        self.codebook_size = 2 ** bits
        self.commit_weight = commit_weight
        self.entropy_weight = entropy_weight
        self.gamma = codebook_entropy_gamma
        self.groups = _split(bits, group_bits)
        self.register_buffer("powers", 2 ** torch.arange(bits), persistent=False)
        for i, g in enumerate(self.groups):
            codes = (torch.arange(2 ** g)[:, None] >> torch.arange(g)) & 1
            self.register_buffer(f"codes{i}", codes.float(), persistent=False)

    def forward(self, z: torch.Tensor):
        """z: (B, bits, H, W) -> (quantized z with straight-through grad, indices, aux loss, stats)."""
        q = torch.where(z > 0, 1.0, -1.0).to(z.dtype)
        zq = z + (q - z).detach()
        idx = self.to_indices(z)
        if not self.training:
            return zq, idx, z.new_zeros(()), {}
        with torch.autocast(z.device.type, enabled=False):  # log-probabilities need fp32
            zf = z.float()
            commit = F.mse_loss(zf, q.float())
            sample_ent, code_ent = self._entropy(zf)
        aux = self.commit_weight * commit + self.entropy_weight * (sample_ent - self.gamma * code_ent)
        return zq, idx, aux, {"commit": commit.detach(), "sample_entropy": sample_ent.detach(),
                              "codebook_entropy": code_ent.detach()}

    def _entropy(self, z: torch.Tensor):
        # p(bit=1) = sigmoid(4z): the softmax over -||z - c||^2 for c in {-1,1} factorizes per bit.
        logits = 4 * z.permute(0, 2, 3, 1).reshape(-1, self.bits)
        l1, l0 = F.logsigmoid(logits), F.logsigmoid(-logits)
        p1 = l1.exp()
        sample = -(p1 * l1 + (1 - p1) * l0).sum(1).mean()  # exact per-token entropy of the joint code
        code_ent = z.new_zeros(())
        start = 0
        for i, g in enumerate(self.groups):
            codes = getattr(self, f"codes{i}")
            logp = l0[:, start:start + g].sum(1, keepdim=True) + (l1 - l0)[:, start:start + g] @ codes.T
            avg = logp.softmax(1).mean(0)  # rows are already normalized; softmax guards rounding
            code_ent = code_ent - (avg * (avg + 1e-12).log()).sum()
            start += g
        return sample, code_ent

    def to_indices(self, z: torch.Tensor) -> torch.Tensor:
        bits = (z > 0).long()
        return (bits * self.powers.view(1, -1, 1, 1)).sum(1)

    def from_indices(self, idx: torch.Tensor) -> torch.Tensor:
        bits = (idx.unsqueeze(1) >> torch.arange(self.bits, device=idx.device).view(1, -1, 1, 1)) & 1
        return bits.float() * 2 - 1


def _split(bits: int, group_bits: int) -> list[int]:
    n = -(-bits // group_bits)
    base, extra = divmod(bits, n)
    return [base + (1 if i < extra else 0) for i in range(n)]
