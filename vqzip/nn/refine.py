"""The refinement layer: a second set of tokens that codes what the base tokens missed.

A 16x, 20-bit base token carries a fixed amount of information, so enlarging the image before
tokenizing stops paying near 24 dB. The refinement adds integer tokens (vqzip/nn/quant/scalar.py) at
stride 8 or 16 whose cost follows the content, as the residual layers of scalable codecs and of
RQ-VAE / VAR do:

    base tokens --base decoder--> base reconstruction b
    (pixels, b) --RefineEncoder--> latent y --x gain[rate], round--> symbols s (C per position)
    b + RefineDecoder(s / gain[rate], b) --> pixels

- The base tokenizer and prior are frozen and untouched: base tokens, old files and the golden
  files stay valid, and a file cut after its base layer decodes to the same pixels as before.
- Only the new parts train, and they are small (about 2 M parameters): the base layer runs
  without gradients, so a step costs a fraction of a tokenizer's, which a 2-core CPU can carry.
  (Injecting the refinement into a trainable copy of the base decoder was measured first: a step
  took several times as long, for lack of bf16 on this CPU.)
- Both halves see the base reconstruction: the encoder codes a residual, not the image, and the
  decoder draws it in the light of what the base layer drew.
- Each half is a linear path plus a network. The linear paths start as the 8x8 (or 16x16) DCT of
  the residual in YCbCr and its inverse, keeping the lowest frequencies (zigzag), as JPEG does,
  and the networks' last layers start at zero: training starts from a working transform coder of
  the residual instead of from nothing. (From nothing, 500 CPU steps gave +1.75 dB for 0.19 bpp
  on four Kodak images at x3/2, about a third of JPEG's slope there.)
- One model serves several rates: `rates` lists the training lambdas (MSE in 0-255 units per bit
  per pixel), each with its own per-channel gain and probability tables (Cui et al. 2021).
- The rate model (`entropy`):
  - "context" (this version's): a learned context model (refine_context.py) predicts every
    symbol's logistic from the base tokens and the symbols coded before it; coding uses its
    integer twin and a fixed set of integer tables (refine_entropy.py).
  - "tables" (the first layer, kept so that its files decode): a logistic per (rate, context,
    channel), the contexts being buckets of the base prior's surprise and of coded neighbours'
    magnitudes, frozen into integer tables (`tables`) at export.
- A layer may carry a restoration filter (restore.py) that the decoder runs on the final picture,
  after it is brought back to the image's size.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..devices import autocast
from .quant.scalar import ScalarQuantizer
from .refine_context import (NEIGHBOUR_BUCKETS, RefineContext, first_pass_contexts, grid_tables, logistic_bits,
                             logistic_tables, second_pass_contexts)
from .restore import Restorer
from .tokenizer import TILE, ChannelNorm, ResBlock, tiled

TABLE_BITS = 16  # each integer table sums to about 2^16


# what a saved configuration that lacks a field had (RefineConfig.from_saved)
LEGACY = {"entropy": "tables", "context_width": 64, "context_dir": 0, "context_ring": False, "ssim2_weight": 0.0}


@dataclass
class RefineConfig:
    stride: int = 8                  # 8 or 16: where the refinement tokens live
    channels: int = 48               # symbols per position
    levels: int = 15                 # symbols are -levels..levels
    widths: tuple = (32, 64, 96, 128)         # encoder and decoder channels at 1/2, 1/4, 1/8 (and 1/16)
    rates: tuple = (2500.0, 1000.0, 630.0, 400.0, 160.0)  # training lambdas, one per rate level
    # the weight of 1 - MS-SSIM in the layer's objective (train/refine.py's refine_loss, 0-255
    # units), which the encoder search (refine_search.py) also minimizes: it belongs to the layer,
    # so a layer trained to favour structure is searched for the same
    msssim_weight: float = 1500.0
    # the weight of 100 - SSIMULACRA2 in the same objective (train/ssimulacra2.py), searched for too;
    # 0 for every layer up to version 5
    ssim2_weight: float = 0.0
    init_steps: tuple = ()                    # each rate's initial DCT quantization step; () spaces them from 0.35 to 0.14
    surprise_edges: tuple = (6, 10, 14, 20)     # "tables": base-token code lengths (bits) that split the contexts
    entropy: str = "context"         # the rate model: "context" (learned, refine_context.py) or "tables" (static)
    context_groups: tuple = ()       # "context": first channels of the 2nd, 3rd, ... channel group; () quarters
    context_passes: int = 4          # "context": spatial passes, 4 (2 x 2 cells) or 2 (a checkerboard)
    context_width: int = 192         # "context": the MLP's width
    context_dir: int = 24            # "context": the first N channels' eight neighbours each as a feature (not only summed)
    context_ring: bool = True        # "context": the eight neighbouring base tokens' bits and surprise as features
    base_stride: int = 16            # the base tokenizer's stride (the context model reads its tokens)
    restore_width: int = 0           # the restoration filter on the decoded picture (restore.py); 0: none
    restore_blocks: int = 2          # its residual blocks

    def __post_init__(self):
        self.widths, self.rates, self.init_steps = tuple(self.widths), tuple(self.rates), tuple(self.init_steps)
        if not self.init_steps:
            n = len(self.rates)
            self.init_steps = tuple(round(0.35 * (0.14 / 0.35) ** (i / max(1, n - 1)), 4) for i in range(n))
        if len(self.init_steps) != len(self.rates):
            raise ValueError("init_steps needs one step per rate level")
        self.surprise_edges, self.context_groups = tuple(self.surprise_edges), tuple(self.context_groups)
        if not self.context_groups:  # 48 channels: 12, 24, 36 (the last group, 36-47, is the chroma)
            self.context_groups = tuple(sorted({self.channels * i // 4 for i in (1, 2, 3)} - {0}))
        if self.stride not in (8, 16):
            raise ValueError("refinement stride must be 8 or 16")
        if self.context_dir < 0:
            raise ValueError("context_dir must not be negative")
        self.context_dir = min(self.context_dir, self.channels)  # "the first N channels": all of them, at most
        if self.context_passes not in (2, 4):
            raise ValueError("context_passes must be 2 or 4")
        if self.entropy not in ("context", "tables"):
            raise ValueError(f"unknown refinement entropy model {self.entropy!r}")
        if list(self.context_groups) != sorted(set(self.context_groups)) or not all(0 < g < self.channels for g in self.context_groups):
            raise ValueError("context_groups must be increasing channel indices inside 1..channels-1")

    @property
    def net_levels(self) -> int:
        return {8: 3, 16: 4}[self.stride]

    @property
    def contexts(self) -> int:
        # surprise buckets x (the first pass, or one of NEIGHBOUR_BUCKETS on the second)
        return (len(self.surprise_edges) + 1) * (1 + NEIGHBOUR_BUCKETS)

    @property
    def stride_ratio(self) -> int:
        return self.base_stride // self.stride

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_saved(cls, saved: dict) -> "RefineConfig":
        """The configuration a layer's weights (or a run's checkpoint) recorded. Fields added after
        a layer was made take the value that layer had, not today's default: the first layer
        predates the choice of rate model and had static tables, and the layers before the fourth
        read no single neighbours and no ring of base tokens with a 64-wide context model, and none
        before the sixth had SSIMULACRA2 in its objective."""
        return cls(**(LEGACY | saved))


def dct_basis(cfg: RefineConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (C, 3, s, s) of a JPEG-like transform of s x s blocks, and of its inverse: the C
    lowest-frequency coefficients of the orthonormal 2-D DCT of each of Y, Cb and Cr (zigzag
    order; one eighth of the channels to each chroma plane)."""
    n = cfg.stride
    i = torch.arange(n, dtype=torch.float64)
    basis = torch.stack([torch.cos((2 * i + 1) * u * math.pi / (2 * n)) * math.sqrt((1 if u else 0.5) * 2 / n)
                         for u in range(n)])                                  # (u, i), orthonormal rows
    zigzag = sorted(((u, v) for u in range(n) for v in range(n)), key=lambda uv: (uv[0] + uv[1], uv[0]))
    chroma = max(1, cfg.channels // 8)
    comps = [(0, uv) for uv in zigzag[:cfg.channels - 2 * chroma]] + \
            [(k, uv) for k in (1, 2) for uv in zigzag[:chroma]]
    to_ycc = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
                          dtype=torch.float64)
    enc = torch.stack([to_ycc[k][:, None, None] * torch.outer(basis[u], basis[v]) for k, (u, v) in comps])
    from_ycc = torch.linalg.inv(to_ycc)
    dec = torch.stack([from_ycc[:, k][:, None, None] * torch.outer(basis[u], basis[v]) for k, (u, v) in comps])
    return enc.float(), dec.float()


class RefineEncoder(nn.Module):
    """(pixels, base reconstruction) -> latent at the refinement's stride: the DCT of the residual
    (a linear path, trainable) plus a network's correction, which starts at zero."""

    def __init__(self, cfg: RefineConfig):
        super().__init__()
        s = cfg.stride
        self.linear = nn.Conv2d(3, cfg.channels, s, stride=s, bias=False)
        ch = cfg.widths[:cfg.net_levels]
        # no residual blocks at 1/2 scale: there they would cost most of the time for little
        layers: list[nn.Module] = [nn.PixelUnshuffle(2), nn.Conv2d(24, ch[0], 3, padding=1), nn.SiLU()]
        for i in range(1, len(ch)):
            layers += [nn.Conv2d(ch[i - 1], ch[i], 4, stride=2, padding=1), ResBlock(ch[i])]
        layers += [ResBlock(ch[-1]), ChannelNorm(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], cfg.channels, 1)]
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            self.linear.weight.copy_(dct_basis(cfg)[0])
            self.net[-1].weight.zero_()
            self.net[-1].bias.zero_()

    def forward(self, x, base):
        return self.linear(x - base) + self.net(torch.cat([x, base], 1))


class RefineDecoder(nn.Module):
    """(symbols, base reconstruction) -> the residual to add to the base reconstruction: the inverse
    DCT of the symbols (a linear path, trainable) plus a network's correction. The base
    reconstruction enters every level of the network (pixel-unshuffled to it), so the refinement is
    decoded in the light of what the base layer drew. The network's last convolution starts at
    zero."""

    def __init__(self, cfg: RefineConfig):
        super().__init__()
        self.linear = nn.ConvTranspose2d(cfg.channels, 3, cfg.stride, stride=cfg.stride, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(dct_basis(cfg)[1])
        ch = cfg.widths[:cfg.net_levels][::-1]
        n = len(ch)
        self.inp = nn.Conv2d(cfg.channels, ch[0], 3, padding=1)
        self.base_in = nn.ModuleList(nn.Sequential(nn.PixelUnshuffle(cfg.stride >> i), nn.Conv2d(3 * (cfg.stride >> i) ** 2, ch[i], 1))
                                     for i in range(n))
        self.blocks = nn.ModuleList([*(ResBlock(c) for c in ch[:-1]), nn.Identity()])  # none at 1/2, as in the encoder
        self.up = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch[i], ch[i + 1], 3, padding=1))
                                for i in range(n - 1))
        self.out = nn.Sequential(ChannelNorm(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], 12, 3, padding=1), nn.PixelShuffle(2))
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    def forward(self, y, base):
        h = self.inp(y)
        for i, blk in enumerate(self.blocks):
            if i:
                h = self.up[i - 1](h)
            h = blk(h + self.base_in[i](base))
        return self.linear(y) + self.out(h)


class Refiner(nn.Module):
    """The refinement layer of a base tokenizer (see the module docstring)."""

    def __init__(self, cfg: RefineConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = RefineEncoder(cfg)
        self.decoder = RefineDecoder(cfg)
        self.quant = ScalarQuantizer(cfg.levels)
        R, K, C = len(cfg.rates), cfg.contexts, cfg.channels
        # symbols are the coefficients over a quantization step, from coarse (rate 0) to fine
        steps = torch.tensor(cfg.init_steps, dtype=torch.float32)
        self.log_gain = nn.Parameter(-steps.log()[:, None].expand(R, C).clone())
        if cfg.entropy == "context":
            self.context = RefineContext(cfg, cfg.stride_ratio)
            # the coder's integer tables, indexed by the integer model's rounded (mu, log_scale);
            # exported with the weights, but made from the grid alone, so checkpoints leave them out
            self.register_buffer("tables", grid_tables(cfg.levels, TABLE_BITS))
            self.derived_buffers = ("tables",)
        else:
            self.mu = nn.Parameter(torch.zeros(R, K, C))
            # start where a symbol of 0 costs under a bit, as most of them will be
            self.log_scale = nn.Parameter(torch.full((R, K, C), -1.0))
            # the coder's integer tables, frozen from mu and log_scale by freeze_tables() before export
            self.register_buffer("tables", torch.ones(R, K, C, self.quant.alphabet, dtype=torch.int32))
        # trained after the rest, which it leaves as it is (vqzip train restore)
        self.restorer = Restorer(cfg.restore_width, cfg.restore_blocks, R) if cfg.restore_width else None

    @property
    def stride(self) -> int:
        return self.cfg.stride

    def latent(self, x: torch.Tensor, base: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """Pixels and the base reconstruction -> the scaled latent whose rounding is the symbols."""
        return self.encoder(x, base) * self.log_gain[rate].exp()[:, :, None, None]

    def latents(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """latent at every rate level, (B, R, C, h, w): the encoder runs once, only the gains differ."""
        return self.encoder(x, base)[:, None] * self.log_gain.exp()[None, :, :, None, None]

    def reconstruct(self, base: torch.Tensor, s: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """The base reconstruction and (rounded) symbols -> pixels in about [-1, 1]."""
        y = s / self.log_gain[rate].exp()[:, :, None, None]
        return base + self.decoder(y.to(base.dtype), base)

    def forward(self, x, base, rate, tokens, surprise):
        """Training: (reconstruction, bits of each symbol (B, C, h, w)). `tokens` and `surprise`
        (B, hb, wb) are the base layer's tokens and their surprise (refine_context.py). The bits
        are those of the latent plus uniform noise, the usual differentiable stand-in for
        rounding. (The entropy model trained alone takes the rounded symbols' bits instead:
        train/refine.py's rate_loss.)"""
        hard, noisy = self.quant(self.latent(x, base, rate))
        symbols = hard.detach().round().long()
        return self.reconstruct(base, hard, rate), self.bits(noisy, symbols, rate, tokens, surprise)

    # -- coding -------------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, x: torch.Tensor, base: torch.Tensor, rate: int, tile: int = TILE) -> torch.Tensor:
        """Pixels and the base reconstruction (1, 3, H, W), sides multiples of the stride -> the
        symbols (C, H/s, W/s), int64. Large images go in tiles, so memory stays bounded."""
        r = torch.tensor([rate], device=x.device)

        def f(xt, bt):
            with autocast(xt.device):
                return self.quant.to_symbols(self.latent(xt, bt, r))
        s = self.stride
        return tiled(f, (x, base), (s, s), 1, tile)[0]

    @torch.inference_mode()
    def decode(self, base: torch.Tensor, symbols: torch.Tensor, rate: int, tile: int = TILE) -> torch.Tensor:
        """The base reconstruction (1, 3, H, W) and symbols (C, H/s, W/s) -> pixels in [-1, 1]."""
        r = torch.tensor([rate], device=base.device)

        def f(bt, st):
            with autocast(bt.device):
                return self.reconstruct(bt, self.quant.from_symbols(st), r).float().clamp(-1, 1)
        return tiled(f, (base, symbols[None].to(base.device)), (self.stride, 1), self.stride, tile)

    # -- the rate model -----------------------------------------------------------------------
    def bits(self, y: torch.Tensor, symbols: torch.Tensor, rate: torch.Tensor, tokens: torch.Tensor,
             surprise: torch.Tensor) -> torch.Tensor:
        """Code length in bits (B, C, h, w) of (noisy) symbols y, under the distributions their
        coding contexts give, the contexts being read off the rounded `symbols`."""
        if self.cfg.entropy == "context":
            mu, log_scale = self.context.params(symbols, tokens, surprise, rate)
        else:
            ctx = second_pass_contexts(first_pass_contexts(self.cfg, surprise, self.cfg.base_stride, self.cfg.channels), symbols)
            r = rate[:, None, None, None]
            c = torch.arange(ctx.shape[1], device=ctx.device)[None, :, None, None]
            mu, log_scale = self.mu[r, ctx, c], self.log_scale[r, ctx, c]
        return logistic_bits(y, mu, log_scale.exp(), self.cfg.levels)

    @torch.no_grad()
    def freeze_tables(self):
        """"tables": integer frequency tables (R, K, C, 2L+1) from the rate model, computed once when
        the weights are exported. ("context" keeps its fixed grid of tables, made at construction.)"""
        if self.cfg.entropy == "tables":
            self.tables.copy_(logistic_tables(self.mu, self.log_scale, self.cfg.levels, TABLE_BITS).to(self.tables.device))


def load_refiner(path) -> Refiner:
    """A refinement layer from shipped weights."""
    from ..weights import load_module
    model = load_module(path, lambda cfg: Refiner(RefineConfig.from_saved(cfg)), "refinement")
    return model.to(memory_format=torch.channels_last)
