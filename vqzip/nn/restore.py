"""A restoration filter on the decoded picture, after it is brought back to the image's size.

The refined points code the image shrunk (x1/2 at the default, x3/4 at q5) and the decoder
enlarges the result with Lanczos: the 8x8 grid of the refinement's transform and the blur of the
enlargement are both left for the eye. This small network sees the final picture and adds a
correction, as the in-loop filters of video codecs and the post-filters of learned codecs do:

    decoded picture (full size, 8-bit) --pixel-unshuffle 4--> conv --> residual blocks -->
    conv --pixel-shuffle 4--> correction; restored = decoded + correction

- It runs on 4x4 pixel cells, so three 3x3 convolutions reach 28 pixels (a refinement block at
  x1/2 covers 16) and a pixel costs a sixteenth of a full-resolution layer's work: about 3,000
  multiply-adds at width 32 with one block.
- It knows the point it restores: the refinement's rate level (one-hot) and log2 of the scale,
  as constant input planes. A coarse x1/2 picture needs sharpening; a fine x5/4 one needs little.
- Its last convolution starts at zero, so an untrained filter changes nothing.
- It is float synthesis, outside the lossless stage: the symbols and the bits do not depend on it,
  and a file's decoded pixels are the same to within the usual last-bit float differences between
  CPU kinds. It belongs to a refinement layer's weights (refine.py, `restore_width`), so a file
  names it through the layer's weights hash, and files of layers without it decode as before.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .tokenizer import tiled


CELL = 4  # the filter works on 4x4 pixel cells: a sixteenth of the positions, a wide reach


class Block(nn.Module):
    """A residual block without normalisation: a LayerNorm over channels cost the filter about a
    third of its time on this CPU."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.SiLU(), nn.Conv2d(c, c, 3, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class Restorer(nn.Module):
    def __init__(self, width: int, blocks: int, rates: int):
        super().__init__()
        self.rates = rates
        self.inp = nn.Conv2d(3 * CELL ** 2 + rates + 1, width, 3, padding=1)
        self.blocks = nn.Sequential(*(Block(width) for _ in range(blocks)))
        self.out = nn.Sequential(nn.SiLU(), nn.Conv2d(width, 3 * CELL ** 2, 3, padding=1))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, y: torch.Tensor, scale: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """y (B, 3, H, W) in [-1, 1], H and W multiples of CELL; scale (B,) float; rate (B,) int64 -> restored y."""
        B, _, H, W = y.shape
        cond = torch.cat([F.one_hot(rate, self.rates).to(y.dtype), scale.to(y.dtype).log2()[:, None]], 1)
        h = torch.cat([F.pixel_unshuffle(y, CELL), cond[:, :, None, None].expand(-1, -1, H // CELL, W // CELL)], 1)
        return y + F.pixel_shuffle(self.out(self.blocks(self.inp(h))), CELL)

    @torch.inference_mode()
    def restore(self, y: torch.Tensor, scale: float, rate: int, tile: int = 64) -> torch.Tensor:
        """One picture (1, 3, H, W) in [-1, 1], any size -> restored, clamped to [-1, 1]. Sides are
        padded by replication to multiples of 16; large pictures go in overlapping tiles (bounded
        memory) of `tile` units of 16 pixels, with tokenizer.MARGIN units of context: far more
        than the filter's reach, so the tiles join without seams."""
        H, W = y.shape[-2:]
        y = F.pad(y, (0, -W % 16, 0, -H % 16), mode="replicate")
        s = torch.tensor([float(scale)], device=y.device)
        r = torch.tensor([rate], device=y.device)
        return tiled(lambda t: self(t, s, r), y, 16, 16, tile)[..., :H, :W].clamp(-1, 1)


def macs_per_pixel(width: int, blocks: int, rates: int) -> int:
    """Multiply-accumulates per output pixel (the decode-time cost this filter adds)."""
    per_cell = 9 * ((3 * CELL ** 2 + rates + 1) * width + 2 * blocks * width * width + width * 3 * CELL ** 2)
    return math.ceil(per_cell / CELL ** 2)
