"""The per-image choice of an operating point.

A ladder point (`-q`) may name alternatives in models/points.json: other scales, rate levels and
refinement layers at about its rate ("3/4+r1", "1+r0@perceptual"). Which of them is best per bit
depends on the image: a smooth one keeps its detail at x1/2 with a high rate level, a busy one
wants x1, a textured one the perceptual layer (trained with SSIMULACRA2 in its objective), a
flat one the plain layer. So the encoder codes each variant in a single pass (effort 0), scores
the picture the decoder will show against the source by

    J = -(PSNR + MS_SSIM_WEIGHT * MS-SSIM + SSIMULACRA2_WEIGHT * SSIMULACRA2) + choice_lambda * bpp,

searches the SEARCHED variants of least J at the point's effort, scores those files again, and
keeps the one of least J. The decoder is unchanged: a file records its scale, rate level and
layer (by its weights' hash) whichever the encoder chose.

Why these terms: the ladder is scored by the mean PSNR, MS-SSIM and SSIMULACRA2 over images
against the mean bits, so a per-image cost that is linear in each metric spends bits where those
means gain most (log MSE or log(1 - MS-SSIM) favour the images that are already good). Why the
second scoring: the perceptual layer's search spends its bits on SSIMULACRA2, so its single-pass
file says too little of its searched one; choosing among the three cheapest searched files kept
nearly all that choosing among every searched file would (benchmarks/results/layer_choice/). The
weights, SEARCHED and each point's lambda were set on 24 training photos, never on Kodak
(benchmarks/results/point_choice/ and layer_choice/).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .bench import metrics
from .train import ssimulacra2

MS_SSIM_WEIGHT = 100.0  # one MS-SSIM hundredth is worth a dB
SSIMULACRA2_WEIGHT = 0.03  # and 33 SSIMULACRA2 points are worth one
SEARCHED = 3  # the variants of least single-pass cost that are searched before the choice


def distortion(source: Image.Image, picture: Image.Image) -> float:
    """-(PSNR + MS_SSIM_WEIGHT * MS-SSIM + SSIMULACRA2_WEIGHT * SSIMULACRA2) of `picture` against
    `source` (both RGB, the same size): the bench's own metrics, SSIMULACRA2 through its torch port
    in float32 (within about 0.01 of the bench's package, and 4x faster than float64). MS-SSIM falls
    back to SSIM below 161 px a side; both are left out of the sum (the same for every variant)
    below 11 px, where MS-SSIM is not defined and SSIMULACRA2 has no more than one scale."""
    d = -metrics.psnr(source, picture)
    if min(source.size) >= 11:
        d -= MS_SSIM_WEIGHT * metrics.ms_ssim(source, picture)
        if SSIMULACRA2_WEIGHT:  # a quarter of a second at Kodak's size: not spent for nothing
            d -= SSIMULACRA2_WEIGHT * float(ssimulacra2.score(_tensor(source), _tensor(picture))[0])
    return d


def _tensor(img: Image.Image) -> torch.Tensor:
    """An RGB picture as the SSIMULACRA2 port takes it: (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(img, np.float32)).permute(2, 0, 1)[None] / 255


def cost(source: Image.Image, picture: Image.Image, n_bytes: int, choice_lambda: float) -> float:
    """J of one variant: its distortion plus the price of its file's bits a pixel."""
    return distortion(source, picture) + choice_lambda * n_bytes * 8 / (source.width * source.height)


def best(costs: list[float]) -> int:
    """The index of the least cost; the first (the ladder's own point) on a tie."""
    return min(range(len(costs)), key=lambda i: (costs[i], i))


def shortlist(costs: list[float], k: int) -> list[int]:
    """The indices of the k least costs, in their order (the earlier first on a tie)."""
    return sorted(sorted(range(len(costs)), key=lambda i: (costs[i], i))[:k])
