"""SSIMULACRA2 in torch, differentiable, for training objectives.

The bench scores pictures with the `ssimulacra2` package (vqzip/bench/metrics.py). This is the same
computation written on tensors so that a loss can follow its gradient: sRGB to linear light, the
XYB opsin space (cube root), at six scales (2x2 box downsampling in linear light) an SSIM map and two
edge maps per channel (ringing: the picture has edges the source lacks; blur: the source has
edges the picture lacks), their means and 4-norms weighted by the metric's 108 fitted weights, and
the final polynomial and power mapping to the 0-100 score.

It gives the package's score to 1e-6 in float64 (tests/test_ssimulacra2.py) on pictures whose
sides halve evenly five times, as Kodak's do; elsewhere an odd side is cropped, not edge-averaged,
before downsampling. The 4-norms, the cube root and the final power are taken of at least 1e-36,
so that their gradients stay finite where a map is zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SCALES = 6
C2 = 0.0009
OPSIN = torch.tensor([[0.30, 0.622, 0.078], [0.23, 0.692, 0.078],
                      [0.24342268924547819, 0.20476744424496821, 1 - 0.24342268924547819 - 0.20476744424496821]],
                     dtype=torch.float64)
OPSIN_BIAS = 0.0037930732552754493

# The metric's weights, in its order: channel (X, Y, B), scale, norm (mean, 4-norm), then for each
# the SSIM term, the ringing term and the blur term.
WEIGHTS = (
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0, 0.0004371155730107379, 0.0,
    1.1041726426657346, 0.00066284834129271, 0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0,
    1.8422455520539298, 11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833, 0.0,
    0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0,
    0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
    0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296, 1.027889937768264,
    225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
    176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0,
    0.0, 34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437,
    0.0, 0.0, 8.826982764996862, 23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682,
    0.9834382792465353, 0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
    0.0005130064588990679, 0.0, 0.00010854057858411537,
)
_TINY = 1e-36  # above float32's smallest normal number: where a 4-norm or the final power's base is this small, its gradient stops


def _gauss(sigma: float = 1.5) -> torch.Tensor:
    r = int(3.33 * sigma + 0.5)  # scipy's truncate=3.33, as the package calls it
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


_KERNEL = _gauss()


def _blur(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) Gaussian blur, sigma 1.5, padded as the package pads: zeros left and right,
    the edge mirrored above and below (its XYB planes are transposed, W x H, so its "vertical"
    zero padding runs along the width)."""
    k = _KERNEL.to(x)
    r, c = len(k) // 2, x.shape[1]
    x = F.pad(x, (r, r, 0, 0))  # zeros left and right
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = torch.cat([x[..., :r, :].flip(-2), x, x[..., -r:, :].flip(-2)], -2)  # scipy's "reflect": the edge repeats
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _xyb(lin: torch.Tensor) -> torch.Tensor:
    """Linear RGB (N, 3, H, W) to the metric's positive XYB."""
    m = torch.einsum("ij,njhw->nihw", OPSIN.to(lin), lin) + OPSIN_BIAS
    m = m.clamp_min(_TINY) ** (1 / 3) - OPSIN_BIAS ** (1 / 3)
    x, y = 0.5 * (m[:, 0] - m[:, 1]), 0.5 * (m[:, 0] + m[:, 1])
    return torch.stack([x * 14.0 + 0.42, y + 0.01, (m[:, 2] - y) + 0.55], 1)


def _linear(srgb01: torch.Tensor) -> torch.Tensor:
    small = srgb01 / 12.92
    big = ((srgb01.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(srgb01 <= 0.04045, small, big)


def _norms(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per picture and channel: the mean and the 4-norm of a non-negative map (N, C)."""
    return d.mean((2, 3)), (d ** 4).mean((2, 3)).clamp_min(_TINY) ** 0.25


def distortion(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The metric's weighted sum before its final mapping, per picture: (N,). x is the source and y
    the picture, both sRGB in [0, 1], (N, 3, H, W); computed in their dtype (float64 reproduces the
    package to 1e-6; float32, which training uses, to about 0.01)."""
    lx, ly = _linear(x), _linear(y.to(x.dtype))
    terms = []  # terms[scale] = (N, C, 6): ssim mean, ssim 4-norm, ring mean, ring 4-norm, blur mean, blur 4-norm
    for s in range(SCALES):
        if min(lx.shape[-2:]) < 8:
            break
        a, b = _xyb(lx), _xyb(ly)
        mu1, mu2 = _blur(a), _blur(b)
        s11, s22, s12 = _blur(a * a), _blur(b * b), _blur(a * b)
        num_m = 1.0 - (mu1 - mu2) ** 2
        num_s = 2.0 * (s12 - mu1 * mu2) + C2
        den_s = (s11 - mu1 * mu1) + (s22 - mu2 * mu2) + C2
        ssim = (1.0 - num_m * num_s / den_s).clamp_min(0)
        ratio = (1.0 + (b - mu2).abs()) / (1.0 + (a - mu1).abs()) - 1.0
        parts = [*_norms(ssim), *_norms(ratio.clamp_min(0)), *_norms((-ratio).clamp_min(0))]
        terms.append(torch.stack(parts, -1))
        if s < SCALES - 1:
            h, w = lx.shape[-2] // 2 * 2, lx.shape[-1] // 2 * 2
            lx, ly = F.avg_pool2d(lx[..., :h, :w], 2), F.avg_pool2d(ly[..., :h, :w], 2)
    w = torch.tensor(WEIGHTS, dtype=x.dtype, device=x.device).view(3, SCALES, 2, 3)
    total = x.new_zeros(x.shape[0])
    for s, t in enumerate(terms):
        # t[n, c, 2*k + norm] for k in (ssim, ring, blur); the weights run (norm, k) per scale
        t = t.view(t.shape[0], 3, 3, 2).transpose(2, 3)  # (N, C, norm, k)
        total = total + (t * w[:, s]).sum((1, 2, 3))
    return total


def score(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIMULACRA2 per picture (N,): 100 is identical, lower is worse."""
    d = distortion(x, y) * 0.9562382616834844
    d = 2.326765642916932 * d - 0.020884521182843837 * d * d + 6.248496625763138e-05 * d ** 3
    return 100.0 - 10.0 * d.clamp_min(_TINY) ** 0.6276336467831387


def layer_score(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIMULACRA2 per picture (float32) of pictures in [-1, 1] as the layer makes them (y clamped,
    as the codec clamps its output)."""
    return score((x.float() + 1) / 2, (y.float().clamp(-1, 1) + 1) / 2)


def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """100 - SSIMULACRA2 per picture, for pictures in [-1, 1]: the objective's term."""
    return 100.0 - layer_score(x, y)
