"""Training pairs for the inter refinement layer (vqzip/inter.py): a frame, and the prediction the
decoder has for it when it decodes the frame, which is the previous frame as it was decoded.

The inter layer is the refinement layer (refine.py) with that prediction in place of the base
reconstruction, so its trainer is the refinement's (train/refine.py) fed by this source instead of
the base layer. A predicted frame's reference is, at the start of a GOP, the key frame: the base
layer plus the image refinement at one of its rates. So the prediction here is the previous frame
coded that way by the frozen shipped layers (a later P-frame's reference is of about the same
quality, being coded at the same point).

Pairs come from two places:
- video clips: frames t and t-1 (sometimes t-2, for more motion), at a random place;
- photos: two windows of the same photo a few pixels apart (a pan under zero-motion prediction),
  or at the same place with independent sensor noise on both (a still camera: the layer has to
  learn that noise is not worth its bits, and the encoder's skip decisions that zeros are cheap).
Clips named in `exclude` (the benchmark clips) are left out, so the results stay a fair test.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..devices import autocast
from .data import CropSampler

CLIP_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".y4m"}
MAX_CLIP_FRAMES = 150    # frames kept per clip (memory)
CLIP_SIDE = 640          # clips are shrunk to at most this width first: the video ladder codes at 1/2 to 3/4
MAX_SHIFT = 4            # photo pairs: the largest shift between the two windows, in output pixels
NOISE_SHARE = 0.25       # photo pairs that are a still camera with sensor noise
MAX_NOISE = 4.0          # its standard deviation, at most, in 0-255 levels


def load_clips(paths: list[Path]) -> list[torch.Tensor]:
    """Each clip as (T, 3, H, W) uint8, shrunk to CLIP_SIDE wide at most."""
    from ..video_io import read_frames
    out = []
    for p in paths:
        frames = []
        for f in read_frames(p, MAX_CLIP_FRAMES):
            im = Image.fromarray(f)
            if im.width > CLIP_SIDE:
                im = im.resize((CLIP_SIDE, round(im.height * CLIP_SIDE / im.width)), Image.LANCZOS)
            frames.append(torch.from_numpy(np.asarray(im).transpose(2, 0, 1).copy()))
        if len(frames) > 2:
            out.append(torch.stack(frames))
    return out


def find_clips(folder: str, exclude: tuple[str, ...]) -> list[Path]:
    if not folder:
        return []
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in CLIP_EXTS and p.stem not in exclude)


class PairSource:
    """Batches of (frames, predictions, base tokens, surprise) as the refinement trainer's pool
    takes them; the tokens and surprise are zeros (an inter frame has no base layer)."""

    def __init__(self, photos: Path, clips: list[Path], crop: int, scales: list[Fraction], key_refiner,
                 base, prior, seed: int = 0, clip_share: float = 0.5, device="cpu", base_stride: int = 16):
        self.crop, self.base, self.prior, self.ref = crop, base, prior, key_refiner
        self.rng = np.random.default_rng(seed)
        self.photos = CropSampler(photos, crop + 2 * MAX_SHIFT, scales=scales, seed=seed, device=device)
        self.clips = load_clips(clips)
        self.clips = [c for c in self.clips if min(c.shape[-2:]) >= crop]
        self.clip_share = clip_share if self.clips else 0.0
        self.base_stride = base_stride

    def _photo_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        c, m = self.crop, MAX_SHIFT
        big = self.photos.batch(1)[0]  # (3, c + 2m, c + 2m) in [-1, 1]
        if self.rng.random() < NOISE_SHARE:
            sigma = self.rng.uniform(0.5, MAX_NOISE) / 127.5
            x = big[:, m:m + c, m:m + c]
            return (x + sigma * torch.randn_like(x)).clamp(-1, 1), (x + sigma * torch.randn_like(x)).clamp(-1, 1)
        dy, dx = self.rng.integers(-m, m + 1, 2)
        return big[:, m:m + c, m:m + c], big[:, m + dy:m + dy + c, m + dx:m + dx + c]

    def _clip_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.crop
        clip = self.clips[self.rng.integers(len(self.clips))]
        gap = 1 if self.rng.random() < 0.75 else 2
        t = self.rng.integers(gap, clip.shape[0])
        y = self.rng.integers(0, clip.shape[2] - c + 1)
        x = self.rng.integers(0, clip.shape[3] - c + 1)
        pair = clip[[t, t - gap], :, y:y + c, x:x + c].float().div(127.5).sub(1)
        if self.rng.random() < 0.5:
            pair = pair.flip(-1)
        return pair[0], pair[1]

    @torch.no_grad()
    def predict(self, prev: torch.Tensor) -> torch.Tensor:
        """The previous frames as key frames decode: base layer, then the image refinement at a
        random rate level."""
        from .refine import code_base
        _, b, tokens, surprise = code_base(self.base, self.prior, prev)
        rate = torch.from_numpy(self.rng.integers(0, len(self.ref.cfg.rates), prev.shape[0])).to(prev.device)
        with autocast(prev.device):
            s = self.ref.quant.to_symbols(self.ref.latent(prev, b, rate))
            y = self.ref.reconstruct(b, self.ref.quant.from_symbols(s).to(b.dtype), rate)
        # the decoder's reference is an 8-bit frame
        return ((y.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1

    def batch(self, n: int):
        pairs = [self._clip_pair() if self.rng.random() < self.clip_share else self._photo_pair() for _ in range(n)]
        x = torch.stack([p[0] for p in pairs]).contiguous(memory_format=torch.channels_last)
        prev = torch.stack([p[1] for p in pairs]).contiguous(memory_format=torch.channels_last)
        pred = self.predict(prev)
        g = self.crop // self.base_stride
        zeros = torch.zeros(n, g, g, dtype=torch.long, device=x.device)
        return x, pred, zeros, zeros
