"""Encoder-side search: choose the tokens against the real decoder and prior, not by one forward pass.

The decoder and the prior are fixed, but the encoder may send any tokens. The tokenizer's encoder
is an amortized guess (one pass, trained on average over photos); for a given image, tokens found
by descending the rate-distortion objective through the frozen decoder reconstruct it better for
the same bits (Campos et al. 2019; Yang, Bamler & Mandt 2020, "Improving Inference for Neural
Image Compression").

The search starts from the encoder's latent z (one channel per token bit, token bit = z > 0) and
descends on z. The decoder always sees the hard bits, sign(z); gradients pass straight through
the sign. The objective, per pixel of the coded (scaled) image, in 0-255 units:

    J = MSE + W_MSSSIM * (1 - MS-SSIM) + lambda * bits / pixels

- MSE alone raised PSNR but lost on MS-SSIM (measured with throwaway code before this module),
  so MS-SSIM's structural term rides along; SSIMULACRA2 follows both.
- bits are the float prior's code lengths of the tokens being scored, read again for every
  candidate. Read once, for the starting tokens, they undercounted the tokens that flip: a
  flipped high half left its low half priced in the context of the old one, and neighbours in
  the context of the old token. At q1 with 20 times its lambda, that search sent 51-62 % more
  bits for -0.35 to +0.58 dB on three Kodak images; read again, +0.7 to +2 % for +0.04 to
  +0.08 dB, in the same 12-14 s an image (effort 8, one thread)
  (benchmarks/results/effort_refine/q1_fresh_rate_probe.jsonl). A bit's gradient is half the
  difference in code length between its two values (both read off the same table), the discrete
  twin of the straight-through sign.
- lambda follows the quality level (`Point.search_lambda`): a bit is worth what the ladder's
  slope says it buys by enlarging the image instead.

The decoder sees hard tokens in every step, so each step's J is the true objective of those
tokens, and the best ones seen are kept: the search never ends worse than it started. Large
grids are searched in tiles (with a margin of context that is held fixed), so memory is bounded
by the tile, not the image.

This search runs at points without a refinement layer (and on video key frames). At refined
points an effort searches the refinement's symbols instead (refine_search.py): there the base
tokens' search moved BD-rate by under 1 % (benchmarks/results/effort_base_on_refined).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim

from .devices import autocast
from .errors import InputError
from .nn.prior import TokenPrior
from .nn.quant import LFQ
from .nn.tokenizer import Tokenizer
from .train.losses import msssim_window

EFFORTS = range(10)
STEPS = [0, 1, 2, 3, 4, 6, 8, 10, 12, 16]  # base decoder steps per effort level
# refinement steps (refine_search.py) per effort level: one costs about a seventh of a base step,
# and the search levels off by 32 (64 lowered J by under 0.2 % more on three Kodak images)
REFINE_STEPS = [0, 2, 4, 6, 8, 12, 16, 20, 24, 32]
LR = 0.2
# issue 29: the default encode within 8x AVIF's time on the 2-core CPU, keeping at least half of
# effort 8's gain. With the learned refinement entropy model, effort 5 (12 steps) keeps 80-83 %
# of it on Kodak q1-q5 for half the search time (benchmarks/results/effort_default); effort 8,
# the default until then, followed issue 14's rule (every Kodak image within 3 s at -q 3)
DEFAULT_EFFORT = 5
# video key frames: base-only points at x3/2-x2, where a base step costs several times a Kodak
# image's, and the search has not been measured on video
VIDEO_DEFAULT_EFFORT = 0
TILE = 64          # tokens per tile side: bounds the memory of one search step
MARGIN = 4         # tokens of fixed context around a tile (the decoder's receptive field is ~3 tokens)
W_MSSSIM = 6000.0  # weight of (1 - MS-SSIM) against MSE in 0-255 units
MSSSIM_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]  # the metric's own, per scale
PRIOR_TILE = 16    # tokens a side per float-prior call (its attention is dense)
LN2 = 0.6931471805599453


@dataclass(frozen=True)
class Schedule:
    steps: int         # of the base tokens' search, at points without a refinement layer
    lr: float
    refine_steps: int  # of the refinement symbols' search (refine_search.py)


def check_effort(effort: int | None, default: int | None = None) -> int:
    """The effort to use: `default` (DEFAULT_EFFORT if None) for None, else `effort` if it is a level."""
    if effort is None:
        return DEFAULT_EFFORT if default is None else default
    if effort not in EFFORTS:
        raise InputError(f"effort must be one of 0..9 (got {effort})")
    return effort


def schedule(effort: int) -> Schedule:
    """What each effort level does; 0 is the encoder's single pass."""
    e = check_effort(effort)
    return Schedule(steps=STEPS[e], lr=LR, refine_steps=REFINE_STEPS[e])


def effort_for(tok: Tokenizer, effort: int, rd_lambda: float | None) -> int:
    """The effort a point's base tokens are searched at: 0 where the point names no price of a bit
    (`Point.search_lambda` None), and for a VQ tokenizer, as the search moves LFQ latents across the
    sign (files searched at 0 record no effort)."""
    return effort if rd_lambda is not None and isinstance(tok.quant, LFQ) else 0


def find_tokens(tok: Tokenizer, prior: TokenPrior, x: torch.Tensor, effort: int, rd_lambda: float) -> torch.Tensor:
    """x: (1, 3, H, W) in [-1, 1], sides multiples of the stride -> tokens (1, H/s, W/s).
    Effort 0 is exactly `tok.encode(x)`."""
    z = tok.latent(x)
    sched = schedule(effort)
    if sched.steps:
        z = z.clone()  # out of inference mode: the search differentiates through the decoder
        for core in tiles(z.shape[-2], z.shape[-1], TILE):
            _search_tile(tok, prior, x, z, core, sched, rd_lambda)
    return tok.quant.to_indices(z)


def tiles(h: int, w: int, size: int):
    """Near-equal tiles of at most `size` a side covering an h x w grid, as (y0, y1, x0, x1)."""
    def cuts(n):
        k = -(-n // size)
        return [(i * n // k, (i + 1) * n // k) for i in range(k)]
    return [(y0, y1, x0, x1) for y0, y1 in cuts(h) for x0, x1 in cuts(w)]


def _search_tile(tok, prior, x, z, core, sched: Schedule, rd_lambda: float) -> tuple[float, float]:
    """Search the tokens of `core` in place in z, the rest of a MARGIN held fixed around it.
    Returns J of the starting tokens and of the ones kept."""
    s, (h, w) = tok.stride, z.shape[-2:]
    y0, y1, x0, x1 = core
    a0, a1, b0, b1 = max(0, y0 - MARGIN), min(h, y1 + MARGIN), max(0, x0 - MARGIN), min(w, x1 + MARGIN)
    # the loss looks a little past the core, where its tokens still shape the pixels, but not at
    # the window's outer edge, which depends on tokens outside the window
    l0, l1, m0, m1 = max(a0, y0 - 2), min(a1, y1 + 2), max(b0, x0 - 2), min(b1, x1 + 2)
    target = x[..., l0 * s:l1 * s, m0 * s:m1 * s]
    region = (l0 - a0, l1 - a0, m0 - b0, m1 - b0)
    window = torch.where(z[..., a0:a1, b0:b1] > 0, 1.0, -1.0)
    cy, cx = slice(y0 - a0, y1 - a0), slice(x0 - b0, x1 - b0)

    def score(zc: torch.Tensor, need_grad: bool):
        zc = zc.detach().requires_grad_(need_grad)
        hard = torch.where(zc > 0, 1.0, -1.0)
        idx = tok.quant.to_indices(hard)
        tables = _code_lengths(prior, idx)
        with torch.set_grad_enabled(need_grad):
            bits = window.clone()
            bits[..., cy, cx] = zc + (hard - zc).detach()  # straight through the sign
            return _objective(tok, bits, target, region, hard, zc, idx, tables, rd_lambda), zc

    # signed gradient descent with backtracking: a step moves every latent by lr against its
    # gradient's sign (Adam's first step), so the bits that flip are those the encoder was least
    # sure of and the decoder wants flipped. A step that does not lower J is undone and halves lr;
    # only accepted points pay for a backward pass.
    best = z[..., y0:y1, x0:x1].clone()
    (j_best, surrogate), zc = score(best, True)
    j_start = j_best.item()
    grad, = torch.autograd.grad(surrogate, [zc])
    lr = sched.lr
    for step in range(sched.steps):
        cand = best - lr * grad.sign()
        last = step == sched.steps - 1
        (j, surrogate), zc = score(cand, not last)
        if j.item() < j_best.item():
            best, j_best = cand, j
            if not last:
                grad, = torch.autograd.grad(surrogate, [zc])
        else:
            lr /= 2
    z[..., y0:y1, x0:x1] = torch.where(best > 0, 1.0, -1.0)
    return j_start, j_best.item()


def _objective(tok, bits, target, region, hard, soft, idx, tables, rd_lambda):
    """(J of the hard tokens, the differentiable surrogate whose gradient moves `soft`); the two
    differ only in the rate, whose surrogate is linear in the bits. `idx` are the hard tokens'
    indices, for which `tables` were read."""
    r0, r1, q0, q1 = region
    s = tok.stride
    with autocast(bits.device):
        y = tok.decoder(bits).float()
    y = y[..., r0 * s:r1 * s, q0 * s:q1 * s].clamp(-1, 1)
    dist = ((y - target) ** 2).mean() * 127.5 ** 2 + W_MSSSIM * (1 - _ms_ssim(y, target))
    rate, slope = _rate(tables, hard, idx)
    per_pixel = rd_lambda / (target.shape[-1] * target.shape[-2])
    return dist + per_pixel * rate, dist + per_pixel * (soft * slope).sum()


def _ms_ssim(y, target):
    """MS-SSIM from its second scale on: the first weighs 4 % of the metric, and skipping it makes
    the term four times cheaper. fp32, as bf16 variances cancel. Tiles too small for it score MSE
    alone."""
    y, target = F.avg_pool2d(y, 2), F.avg_pool2d(target, 2)
    side = min(y.shape[-2:])
    if side <= 32:  # pytorch_msssim wants a side over (window - 1) * 16, whatever the scales
        return y.new_ones(())
    return ms_ssim((y + 1) / 2, (target + 1) / 2, data_range=1.0, win_size=msssim_window(side),
                   weights=MSSSIM_WEIGHTS[1:])


@torch.no_grad()
def _code_lengths(prior: TokenPrior, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Code lengths in bits of every value of each token's two halves, given the other tokens:
    (hi, lo) tables of shape (h*w, 2^half), from the float prior in pieces of PRIOR_TILE tokens
    (its attention is dense, so a whole tile at once would not fit; the exact coder cuts its own
    tiles the same way)."""
    idx = idx[0]
    h, w = idx.shape
    hi = torch.empty(h, w, 2 ** prior.cfg.hi_bits)
    lo = torch.empty(h, w, 2 ** prior.cfg.lo_bits)
    for y0 in range(0, h, PRIOR_TILE):
        for x0 in range(0, w, PRIOR_TILE):
            piece = idx[y0:y0 + PRIOR_TILE, x0:x0 + PRIOR_TILE]
            with autocast(idx.device):
                lh, ll = prior(piece[None])
            ph, pw = piece.shape
            hi[y0:y0 + ph, x0:x0 + pw] = -F.log_softmax(lh[0].float(), -1).view(ph, pw, -1) / LN2
            lo[y0:y0 + ph, x0:x0 + pw] = -F.log_softmax(ll[0].float(), -1).view(ph, pw, -1) / LN2
    return hi.view(h * w, -1), lo.view(h * w, -1)


def _rate(tables, hard: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(bits of the hard tokens, and per token bit half the change in bits when it flips), read
    off their own tables. A flip of the high half is priced with the low half's table for the
    high half it has now: the exact J that decides each step counts it right."""
    hi_t, lo_t = tables
    nb = hard.shape[1]
    idx = idx.view(-1)
    lo_bits = nb // 2
    parts = ((lo_t, idx & ((1 << lo_bits) - 1), range(lo_bits)), (hi_t, idx >> lo_bits, range(nb - lo_bits)))
    rate = hard.new_zeros(())
    slope = []
    for table, val, bits in parts:
        rate = rate + table.gather(1, val[:, None]).sum()
        for b in bits:
            one = table.gather(1, (val | (1 << b))[:, None])[:, 0]
            zero = table.gather(1, (val & ~(1 << b))[:, None])[:, 0]
            slope.append((one - zero) / 2)
    return rate, torch.stack(slope).view(1, nb, *hard.shape[-2:])

