"""Image quality metrics for ``vqzip bench``.

All functions take two RGB images of the same size (``PIL.Image`` or ``uint8``
``HxWx3`` arrays): ``a`` the reference, ``b`` the distorted one.

- :func:`psnr` -- over all three RGB channels (one MSE over R, G, B), the usual Kodak
  convention. Capped at :data:`PSNR_CAP` = 100 dB, which is what identical images get
  (MSE = 0) instead of ``inf``.
- :func:`ms_ssim` -- MS-SSIM (pytorch_msssim, ``data_range=255``, 5 scales, 11x11
  Gaussian window) on RGB (mean over channels). MS-SSIM needs the short side
  > 160 px; for smaller images it falls back to single-scale SSIM
  (``pytorch_msssim.ssim``) -- :func:`ms_ssim_ex` says which one was used.
- :func:`ssimulacra2` -- the ``ssimulacra2`` PyPI package (pure numpy/scipy port of
  libjxl's tool). 100 = identical; can go negative for very bad images. About 0.6 s
  for a 768x512 image on one core of this dev box.
- :func:`bpp` -- bits per pixel = bytes * 8 / (width * height).
"""

from __future__ import annotations

import io
import math
from typing import Callable, Union

import numpy as np
from PIL import Image

__all__ = [
    "PSNR_CAP",
    "MS_SSIM_MIN_SIDE",
    "METRICS",
    "normalize_metric",
    "bpp",
    "psnr",
    "ms_ssim",
    "ms_ssim_ex",
    "ms_ssim_db",
    "ssimulacra2",
]

ImageLike = Union[Image.Image, np.ndarray]

PSNR_CAP = 100.0
"""dB reported for identical images (and the upper clamp of :func:`psnr`)."""

MS_SSIM_MIN_SIDE = 161
"""MS-SSIM (5 scales, win 11) needs min(H, W) > (11 - 1) * 2**4 = 160."""


def _arr(x: ImageLike) -> np.ndarray:
    if isinstance(x, Image.Image):
        x = np.asarray(x.convert("RGB"))
    x = np.asarray(x)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got array of shape {x.shape}")
    if x.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB, got {x.dtype}")
    return x


def _pair(a: ImageLike, b: ImageLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = _arr(a), _arr(b)
    if a.shape != b.shape:
        raise ValueError(f"image sizes differ: {a.shape} vs {b.shape}")
    return a, b


def bpp(n_bytes: int, width: int, height: int) -> float:
    """Bits per pixel: ``n_bytes * 8 / (width * height)``."""
    return n_bytes * 8.0 / (width * height)


def psnr(a: ImageLike, b: ImageLike) -> float:
    """PSNR in dB over RGB (peak 255). Identical images -> :data:`PSNR_CAP` (100 dB)."""
    a, b = _pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def _torch_pair(a: np.ndarray, b: np.ndarray):
    import torch

    ta = torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None]
    tb = torch.from_numpy(np.array(b, dtype=np.float32)).permute(2, 0, 1)[None]
    return ta, tb


def ms_ssim_ex(a: ImageLike, b: ImageLike) -> tuple[float, str]:
    """``(value, method)`` where ``method`` is ``"ms-ssim"`` or, when the short side is
    <= 160 px, ``"ssim"`` (single-scale SSIM fallback)."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim import ssim as _ssim

    a, b = _pair(a, b)
    ta, tb = _torch_pair(a, b)
    with torch.no_grad():
        if min(a.shape[0], a.shape[1]) >= MS_SSIM_MIN_SIDE:
            return float(_ms_ssim(ta, tb, data_range=255, size_average=True)), "ms-ssim"
        if min(a.shape[0], a.shape[1]) < 11:
            raise ValueError("image too small for SSIM (needs >= 11 px per side)")
        return float(_ssim(ta, tb, data_range=255, size_average=True)), "ssim"


def ms_ssim(a: ImageLike, b: ImageLike) -> float:
    """MS-SSIM in [0, 1] (identical images -> 1.0); single-scale SSIM below 161 px
    (use :func:`ms_ssim_ex` to know which)."""
    return ms_ssim_ex(a, b)[0]


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in dB, ``-10 log10(1 - v)`` (capped at 100 dB for v == 1). Used for
    the RD plot and for BD-rate on MS-SSIM, where it spreads the high-quality end."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("nan")
    d = 1.0 - float(value)
    if d <= 1e-10:
        return 100.0
    return min(100.0, -10.0 * math.log10(d))


def _ppm(x: np.ndarray) -> io.BytesIO:
    buf = io.BytesIO()
    Image.fromarray(x, "RGB").save(buf, "PPM")
    buf.seek(0)
    return buf


def ssimulacra2(a: ImageLike, b: ImageLike) -> float:
    """SSIMULACRA2 score via the ``ssimulacra2`` package (its ``compute_ssimulacra2``
    takes file names / file objects, so the images are handed over as in-memory PPM).
    100 = identical; ~90 visually lossless, ~70 high, ~50 medium quality; may be < 0."""
    from ssimulacra2 import compute_ssimulacra2

    a, b = _pair(a, b)
    return float(compute_ssimulacra2(_ppm(a), _ppm(b)))


METRICS: dict[str, Callable[[ImageLike, ImageLike], float]] = {
    "psnr": psnr,
    "ms_ssim": ms_ssim,
    "ssimulacra2": ssimulacra2,
}
_ALIASES = {"ms-ssim": "ms_ssim", "msssim": "ms_ssim", "ssimulacra": "ssimulacra2", "ssimu2": "ssimulacra2"}


def normalize_metric(name: str) -> str:
    """Canonical metric key (``psnr``, ``ms_ssim``, ``ssimulacra2``) for a user spelling."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: psnr, ms-ssim, ssimulacra2")
    return key
