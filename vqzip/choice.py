"""The per-image choice of an operating point.

A ladder point (`-q`) may name alternatives in models/points.json: its neighbours on the ladder,
other scales and rate levels at about its rate. Which of them is best per bit depends on the
image: a smooth one keeps its detail at x1/2 with a high rate level, a busy one wants x1. So the
encoder codes each variant in a single pass (effort 0), scores the picture the decoder will show
against the source, and keeps the variant of least cost

    J = -(PSNR + MS_SSIM_WEIGHT * MS-SSIM) + choice_lambda * bpp,

before spending the point's effort on that one alone. The decoder is unchanged: a file records
its scale and rate level whichever the encoder chose.

Why these terms: the ladder is scored by the mean PSNR and MS-SSIM over images against the mean
bits, so a per-image cost that is linear in each metric spends bits where those means gain most
(log MSE or log(1 - MS-SSIM) favour the images that are already good). The weight and each
point's lambda were set on 24 training photos, never on Kodak
(benchmarks/results/point_choice/README.md).
"""
from __future__ import annotations

from PIL import Image

from .bench import metrics

MS_SSIM_WEIGHT = 100.0  # one MS-SSIM hundredth is worth a dB


def distortion(source: Image.Image, picture: Image.Image) -> float:
    """-(PSNR + MS_SSIM_WEIGHT * MS-SSIM) of `picture` against `source` (both RGB, the same size):
    the bench's own metrics. MS-SSIM falls back to SSIM below 161 px a side, and is left out of
    the sum (the same for every variant) below 11 px, where neither is defined."""
    d = -metrics.psnr(source, picture)
    if min(source.size) >= 11:
        d -= MS_SSIM_WEIGHT * metrics.ms_ssim(source, picture)
    return d


def cost(source: Image.Image, picture: Image.Image, n_bytes: int, choice_lambda: float) -> float:
    """J of one variant: its distortion plus the price of its file's bits a pixel."""
    return distortion(source, picture) + choice_lambda * n_bytes * 8 / (source.width * source.height)


def best(costs: list[float]) -> int:
    """The index of the least cost; the first (the ladder's own point) on a tie."""
    return min(range(len(costs)), key=lambda i: (costs[i], i))
