"""Encoder-side search for the refinement layer's symbols: rate-distortion optimized quantization
against the real refinement decoder and the exact integer tables.

The refinement encoder rounds its latent to the nearest symbol, one position at a time, blind to
what a symbol costs and to what the decoder draws from it. Codecs with a transform stage gain by
choosing the quantized values for their rate-distortion cost instead (RDOQ in HEVC, trellis
quantization in JPEG encoders); here the "transform" is a small network, so the choice is guided
by its gradient. The objective is the one the layer was trained on (train/refine.py), with the
exact code lengths of the integer model the range coder uses (in the contexts of the encoder's
own symbols, read once a tile):

    J = MSE + w * (1 - MS-SSIM) + lambda[rate] * bits / pixels      (0-255 units)

with the layer's own weight w (RefineConfig.msssim_weight, 1500 for every layer shipped so far).

Each step predicts, for every symbol, the change in J of moving it by +1 or -1: the decoder's
gradient (first order), the curvature of the MSE along the decoder's linear path (second order;
the network's own correction is left out), and the exact change of its code length in its
context. The best-predicted moves are tried together and the true J of the result decides: a
step that lowers J is kept, and one that does not is undone and halves the share of moves tried,
so every step's J is exact and the search never ends worse than it started.

Why the refinement and not the base tokens: on the ladder's refined points, searching the base
tokens (search.py) at up to 16 steps moved BD-rate by under 1 % against the single pass (the
refinement re-codes whatever the base layer changes; benchmarks/results/effort_base_on_refined),
while this search lowered J by 3-9 % in as many steps (three Kodak images, q2-q5).

Large grids are searched in tiles, with a margin of fixed symbols around each, as search.py does.
"""
from __future__ import annotations

import torch

from .devices import autocast
from .nn.refine import Refiner
from .coding.refine_entropy import RefineCoder, Side
from .search import tiles
from .train.refine import refine_loss

TILE = 64     # refinement positions per tile side: bounds the memory of one step
MARGIN = 4    # positions of fixed context around a tile; even, so the checkerboard keeps its phase
HALO = 2      # positions past the tile whose pixels the distortion counts
MIN_SIDE = 64  # pixels: MS-SSIM's five scales need a tile at least this big; smaller ones are not searched
# of the moves predicted to help, the share tried at first and at most: starting at 0.5, the first
# steps were mostly undone (4 steps lowered J by 0.1-1.3 % on three Kodak crops; from 0.1, 1.5-4 %)
START_SHARE, SHARE = 0.1, 0.5


def find_symbols(coder: RefineCoder, x: torch.Tensor, base: torch.Tensor, side: Side, steps: int) -> torch.Tensor:
    """x, base: (1, 3, H, W), sides multiples of the stride; side: the base layer, on the host, and
    the rate level -> symbols (C, h, w). 0 steps is exactly `coder.ref.encode(x, base, side.rate)`."""
    symbols = coder.ref.encode(x, base, side.rate)
    if not steps:
        return symbols
    s = symbols[None].float()  # a copy made outside inference mode, which the search may write to
    with torch.inference_mode(False):
        for core in tiles(*s.shape[-2:], TILE):
            search_tile(coder, x, base, side, s, core, steps)
    return s[0].long()


def search_tile(coder: RefineCoder, x, base, side: Side, s, core, steps: int) -> tuple[float, float]:
    """Search the symbols of `core` (y0, y1, x0, x1) in place in s (1, C, h, w), those within MARGIN
    around it held fixed. Returns J of the starting symbols and of the ones kept."""
    ref, rate = coder.ref, side.rate
    st, (h, w) = ref.stride, s.shape[-2:]
    y0, y1, x0, x1 = core
    # the window starts on even positions, so its checkerboard (refine_entropy) is the grid's
    a0, b0 = max(0, y0 - MARGIN) & ~1, max(0, x0 - MARGIN) & ~1
    a1, b1 = min(h, y1 + MARGIN), min(w, x1 + MARGIN)
    l0, l1, m0, m1 = max(a0, y0 - HALO), min(a1, y1 + HALO), max(b0, x0 - HALO), min(b1, x1 + HALO)
    if min(l1 - l0, m1 - m0) * st < MIN_SIDE:
        return 0.0, 0.0
    px = lambda t: t[..., a0 * st:a1 * st, b0 * st:b1 * st].float().clone()  # out of inference mode
    xw, bw = px(x), px(base)
    k = ref.cfg.stride_ratio  # the window starts on a base token: a0 and b0 are even, and k is 1 or 2
    base_grid = lambda t: t[a0 // k:-(-a1 // k), b0 // k:-(-b1 // k)]
    side_w = Side(base_grid(side.tokens), base_grid(side.surprise), rate)
    window = s[..., a0:a1, b0:b1].clone()
    cy, cx = slice(y0 - a0, y1 - a0), slice(x0 - b0, x1 - b0)
    # pixels whose loss counts, and the positions whose bits can change (the core, and the ring
    # of second-pass neighbours whose context reads the core's magnitudes)
    loss_px = (slice((l0 - a0) * st, (l1 - a0) * st), slice((m0 - b0) * st, (m1 - b0) * st))
    ry, rx = slice(max(0, y0 - a0 - 1), y1 - a0 + 1), slice(max(0, x0 - b0 - 1), x1 - b0 + 1)
    target = xw[..., loss_px[0], loss_px[1]]
    pixels = target.shape[-2] * target.shape[-1]
    r = torch.tensor([rate], device=x.device)
    lam = ref.cfg.rates[rate]
    lams = torch.tensor([lam], device=x.device)
    L = ref.cfg.levels
    curvature = _mse_curvature(ref, rate, pixels)

    # every value's code length in the contexts the encoder's own symbols make, read once a tile:
    # the integer context model costs tens of milliseconds a window, and the symbols a search
    # moves shift their neighbours' contexts little, so reading them again for every candidate
    # (as the static tables once allowed) would multiply the search's time for little
    lengths = coder.code_lengths(window[0].long().cpu(), side_w).float().to(x.device)[None]

    def score(core_symbols: torch.Tensor, need_grad: bool):
        """J of the window with `core_symbols` in its core, and the window's symbols (the graph's
        input, for the gradient when `need_grad`)."""
        sym = window.clone()
        sym[..., cy, cx] = core_symbols
        sym.requires_grad_(need_grad)
        with torch.set_grad_enabled(need_grad):
            with autocast(x.device):  # the decoder's own precision (refine.Refiner.decode)
                y = ref.reconstruct(bw, sym, r)
            y = y.float()[..., loss_px[0], loss_px[1]]
            bits = _at(lengths, sym.detach() + L)[..., ry, rx]
            # refine_loss is the training loss over 1000; J is in the search's 0-255 units
            loss = refine_loss(target, y, bits, lams, ref.cfg.msssim_weight, ref.cfg.ssim2_weight)[0] * 1000
        return loss, sym

    best = window[..., cy, cx].clone()
    j_best, sym = score(best, True)
    j_start = j_best.item()
    grad = torch.autograd.grad(j_best, [sym])[0][..., cy, cx]
    share = START_SHARE
    core_lengths = lengths[:, :, cy, cx]
    for step in range(steps):
        last = step == steps - 1
        cand = best + _moves(best, grad, core_lengths, curvature, lam / pixels, share, L)
        j, sym = score(cand, not last)
        if j.item() < j_best.item():
            best, j_best = cand, j
            share = min(SHARE, share * 2)
            if not last:
                grad = torch.autograd.grad(j, [sym])[0][..., cy, cx]
        else:
            share /= 2
    s[..., y0:y1, x0:x1] = best
    return j_start, j_best.item()


def _at(lengths: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """lengths (..., 2L+1) read at integer-valued `index` (...)."""
    return lengths.gather(-1, index.long()[..., None])[..., 0]


def _moves(s, grad, lengths, curvature, price, share: float, levels: int) -> torch.Tensor:
    """The step: +1, -1 or 0 for every symbol. Each symbol's best move by its predicted change in J
    (gradient, MSE curvature, exact change in code length at price `price` a bit, its context held);
    of the moves predicted to lower J, the best `share` are taken."""
    now = _at(lengths, s + levels)
    move, change = torch.zeros_like(s), torch.zeros_like(s)  # the best move so far and its predicted change
    for d in (1.0, -1.0):
        to = s + d
        inside = to.abs() <= levels
        pred = grad * d + curvature / 2 + price * (_at(lengths, to.clamp(-levels, levels) + levels) - now)
        better = inside & (pred < change)
        move, change = torch.where(better, d, move), torch.where(better, pred, change)
    helps = change < 0
    n = int(helps.sum())
    if not n:
        return move
    cut = torch.kthvalue(change[helps], max(1, int(n * share))).values
    return move * (helps & (change <= cut))


def _mse_curvature(ref: Refiner, rate: int, pixels: int) -> torch.Tensor:
    """Second derivative of the MSE (0-255 units, over `pixels` RGB pixels) along each channel's
    symbol, through the decoder's linear path: (1, C, 1, 1)."""
    with torch.no_grad():
        norm = (ref.decoder.linear.weight.float() ** 2).sum((1, 2, 3))
        gain = ref.log_gain[rate].float().exp()
    # pixels are in [-1, 1]: 127.5 to 0-255 units; the MSE is a mean over 3 planes
    return (2 * 127.5 ** 2 * norm / gain ** 2 / (3 * pixels))[None, :, None, None]
