"""Quantizers: one file each. Both map latents (B, C, H, W) to integer token grids (B, H, W)."""
from .lfq import LFQ
from .vq import VQ

__all__ = ["LFQ", "VQ"]
