"""Pixels in and out of the codecs: the operating point's scale, and images to the tensors the
networks take and back. Images and video frames share these (a module of its own, so that
video.py does not have to import the image codec, nor the codec the video module)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
from PIL import Image


def scaled_size(width: int, height: int, scale: Fraction) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def resized(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`img` at `size` (Lanczos): how an operating point's scale is applied, and undone."""
    return img if img.size == size else img.resize(size, Image.LANCZOS)


def to_tensor(img: Image.Image, stride: int) -> torch.Tensor:
    """RGB image -> (1, 3, H', W') in [-1, 1], padded by edge replication to multiples of stride.
    Built in place as H x W x C (about half the time of permute-then-pad), so it is already
    channels-last, as the tokenizer wants it."""
    a = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
    h, w = a.shape[:2]
    x = torch.empty(h + -h % stride, w + -w % stride, 3)
    x[:h, :w].copy_(a).div_(127.5).sub_(1)
    x[:h, w:] = x[:h, w - 1:w]
    x[h:] = x[h - 1:h]
    return x.permute(2, 0, 1)[None]


def to_image(x: torch.Tensor, width: int, height: int) -> Image.Image:
    arr = ((x[0, :, :height, :width].float().cpu() + 1) * 127.5).round().clamp(0, 255).byte()
    return Image.fromarray(arr.permute(1, 2, 0).numpy())
