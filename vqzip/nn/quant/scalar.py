"""Bounded scalar quantization: every latent channel is rounded to an integer in [-L, L].

The refinement layer's tokens are these integers, one per channel and position (an FSQ-like code
with an odd number of levels, so that 0, "nothing to add", is a level). Unlike the base layer's
fixed 20 bits a token, their cost follows the content: a prior that makes 0 cheap spends almost
nothing where the base layer was already right.

Training passes gradients straight through the rounding to the decoder, and gives the rate model
the latent plus uniform noise, whose density is differentiable (Balle et al. 2018).
"""
from __future__ import annotations

import torch
from torch import nn


class ScalarQuantizer(nn.Module):
    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels  # L: symbols are -L..L, an alphabet of 2L + 1

    @property
    def alphabet(self) -> int:
        return 2 * self.levels + 1

    def clamp(self, y: torch.Tensor) -> torch.Tensor:
        return y.clamp(-self.levels, self.levels)

    def forward(self, y: torch.Tensor):
        """y (B, C, H, W) float -> (rounded y with straight-through grad, y plus uniform noise for the rate)."""
        y = self.clamp(y)
        hard = y + (torch.round(y) - y).detach()
        noisy = self.clamp(y + torch.empty_like(y).uniform_(-0.5, 0.5)) if self.training else torch.round(y)
        return hard, noisy

    def to_symbols(self, y: torch.Tensor) -> torch.Tensor:
        """Integer symbols in [-L, L] (int64)."""
        return torch.round(self.clamp(y.float())).long()

    def from_symbols(self, s: torch.Tensor) -> torch.Tensor:
        return s.float()
