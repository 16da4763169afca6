"""Reconstruction and adversarial losses for the tokenizer.

No perceptual (LPIPS) term: it needs pretrained VGG weights that cannot be fetched here. MS-SSIM
stands in as the structural term.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F
from pytorch_msssim import ms_ssim


def reconstruction_loss(x, y, msssim_weight: float, pixel: str = "l1"):
    """x, y in [-1, 1]. L1 (or MSE) plus (1 - MS-SSIM); MS-SSIM is computed in fp32."""
    if pixel not in ("l1", "mse"):
        raise ValueError(f"pixel loss must be l1 or mse, not {pixel!r}")
    l1 = (x - y).abs().mean() if pixel == "l1" else ((x - y) ** 2).mean() * 4
    if msssim_weight <= 0:
        return l1, l1.new_zeros(())
    with torch.autocast(x.device.type, enabled=False):  # bf16 variances would cancel catastrophically
        s = ms_ssim((x.float() + 1) / 2, (y.float().clamp(-1, 1) + 1) / 2, data_range=1.0,
                    win_size=msssim_window(min(x.shape[-2:])))
    return l1 + msssim_weight * (1 - s), s


def msssim_window(side: int) -> int:
    """MS-SSIM's 11 px window needs a side over 160 px; small training crops get a smaller window."""
    w = min(11, (side - 1) // 16 + 1)
    return max(3, w - 1 + w % 2)


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix / VQGAN): a score per ~70 px patch."""

    def __init__(self, ch: int = 64, layers: int = 3):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(3, ch, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = ch
        for i in range(1, layers):
            seq += [nn.Conv2d(c, c * 2, 4, 2, 1), nn.GroupNorm(8, c * 2), nn.LeakyReLU(0.2)]
            c *= 2
        seq += [nn.Conv2d(c, c, 4, 1, 1), nn.GroupNorm(8, c), nn.LeakyReLU(0.2), nn.Conv2d(c, 1, 4, 1, 1)]
        self.net = nn.Sequential(*seq)

    def forward(self, x):
        return self.net(x)


def hinge_d_loss(real_logits, fake_logits):
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
