"""Random crops from a folder of image sets, sampled with per-set weights.

Each immediate subfolder of the data folder is a set (loose images form a set of their own).
Sets differ a lot in size, so by default a set's weight is the square root of its size: big sets
still count more, but small clean sets (wallpapers) are not drowned by the ImageNet sample.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..errors import InputError

EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def find_sets(root: Path) -> dict[str, list[Path]]:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"no such folder: {root}")
    sets: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in EXTS and p.is_file():
            rel = p.relative_to(root).parts
            sets.setdefault(rel[0] if len(rel) > 1 else ".", []).append(p)
    if not sets:
        raise InputError(f"no images in {root}")
    return sets


def set_weight(name: str, size: int, weights: dict[str, float]) -> float:
    """A set's share of the draws: as `weights` gives it, else the square root of its size."""
    return weights.get(name, math.sqrt(size))


def parse_weights(spec: str) -> dict[str, float]:
    """'bsds500=1,imagenet_sample=0.5' -> {'bsds500': 1.0, 'imagenet_sample': 0.5}"""
    out = {}
    for part in filter(None, (s.strip() for s in spec.split(","))):
        name, _, w = part.partition("=")
        out[name] = float(w)
    return out


def parse_scales(spec: str) -> list[Fraction]:
    """'3/4,1,5/4' -> [3/4, 1, 5/4]"""
    try:
        out = [Fraction(s.strip()) for s in spec.split(",") if s.strip()]
    except (ValueError, ZeroDivisionError):
        raise InputError(f"not a list of scales: {spec!r} (e.g. 3/4,1,5/4)") from None
    if not out or min(out) <= 0:
        raise InputError(f"scales must be positive: {spec!r}")
    return out


class CropSampler:
    """Holds every image on the training device (uint8) and draws batches of random, randomly
    flipped crops there; the host only draws the random numbers, so a GPU does not wait each step
    for crops cut on the host one photo at a time and copied over.

    With `scales`, each crop is first resized by one of them, drawn at random: that is what the
    codec's quality levels do to an image before tokenizing, and a prior coding tokens at those
    scales should learn from them. On Kodak, a prior fine-tuned on crops of photos shrunk to 448 px
    saved bits at scale 3/4 but spent 6-9 % more at 5/4 and 3/2, until fresh crops at every scale
    fixed it (benchmarks/results/stop12_prior)."""

    def __init__(self, root: Path, crop: int, weights: dict[str, float] | None = None,
                 max_side: int = 1024, seed: int = 0, limit: int | None = None,
                 scales: list[Fraction] | None = None, device: torch.device | str = "cpu"):
        self.crop = crop
        self.scales = scales or [Fraction(1)]
        self.rng = np.random.default_rng(seed)
        sets = find_sets(root)
        weights = weights or {}
        self.images: list[torch.Tensor] = []  # (3, H, W) uint8
        self.set_of: list[int] = []
        self.names = list(sets)
        set_w = []
        for si, (name, files) in enumerate(sets.items()):
            for f in files[:limit]:
                im = _load(f, math.ceil(crop / min(self.scales)), max_side)
                self.images.append(torch.from_numpy(im.transpose(2, 0, 1).copy()).to(device))
                self.set_of.append(si)
            set_w.append(set_weight(name, len(files[:limit]), weights))
        counts = np.bincount(self.set_of, minlength=len(sets))
        per_image = np.array([set_w[s] / counts[s] for s in self.set_of])
        self.p = per_image / per_image.sum()
        self.set_weights = {n: float(w / sum(set_w)) for n, w in zip(self.names, set_w)}

    def batch(self, n: int) -> torch.Tensor:
        """(n, 3, crop, crop) float in [-1, 1], on the device."""
        c = self.crop
        out = []
        for k in self.rng.choice(len(self.images), n, p=self.p):
            im = self.images[k]
            side = round(c / self.scales[self.rng.integers(len(self.scales))])  # source window
            y = self.rng.integers(0, im.shape[1] - side + 1)
            x = self.rng.integers(0, im.shape[2] - side + 1)
            crop = im[:, y:y + side, x:x + side].float()
            if side != c:  # antialiased bicubic: the device's nearest match to the codec's Lanczos
                crop = F.interpolate(crop[None], (c, c), mode="bicubic", antialias=True)[0].clamp(0, 255)
            out.append(crop.flip(-1) if self.rng.random() < 0.5 else crop)
        return torch.stack(out).div_(127.5).sub_(1)


def _load(path: Path, crop: int, max_side: int) -> np.ndarray:
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    k = min(1.0, max_side / max(im.size))
    k = max(k, crop / min(im.size))  # small photos are upscaled just enough to hold one crop
    if k != 1.0:
        im = im.resize((max(crop, round(im.width * k)), max(crop, round(im.height * k))), Image.LANCZOS)
    return np.asarray(im)
