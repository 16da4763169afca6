"""The lossless stage's model: a small transformer over the token grid (nanoGPT-style).

Tokens are coded in a fixed parallel schedule rather than raster order: the grid is cut into
period x period cells and position (y, x) belongs to group schedule[y % p][x % p]; all tokens of a
group are coded together, conditioned on the groups before it. With period 4 that is 16 network
steps per image instead of one per token. Period 0 is raster order, one token per step: too slow
to code with, it exists to measure what the parallel schedule costs in bits.

Two streams, as in XLNet: the *content* stream embeds known tokens and attends to tokens of its
own and earlier groups; the *query* stream holds no token, only "which group am I", and attends to
earlier groups' content, so its output predicts the token at that position. Because content states
never depend on later groups, a decoder can cache them and process each group once.

Attention is local (a (2r+1)^2 window with a learned relative-position bias), so cost and context
do not depend on the image size. Each token of B bits is coded as two sub-symbols (high then low
half) so that the range coder works with alphabets of at most 2^ceil(B/2).

This float module is what trains; `exact.py` turns it into the integer model that coding uses.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict
from functools import lru_cache

import torch
from torch import nn
import torch.nn.functional as F

SCHEDULES = {
    1: [[0]],
    2: [[0, 2], [3, 1]],
    4: [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]],
}


@dataclass
class PriorConfig:
    token_bits: int = 20
    d_model: int = 256
    n_layer: int = 4
    n_head: int = 4
    mlp_ratio: int = 3
    window: int = 7        # attention radius in tokens
    period: int = 4        # schedule cell size; groups = period**2 (0: raster order)

    def __post_init__(self):
        if self.period not in (0, *SCHEDULES):
            raise ValueError(f"period must be one of 0, {', '.join(map(str, SCHEDULES))} (got {self.period})")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")

    @property
    def lo_bits(self) -> int:
        return self.token_bits // 2

    @property
    def hi_bits(self) -> int:
        return self.token_bits - self.lo_bits

    @property
    def groups(self) -> int:
        """Query embeddings: one per group of the schedule; raster order needs just one."""
        return self.period ** 2 if self.period else 1

    def to_dict(self):
        return asdict(self)


def group_map(h: int, w: int, period: int) -> torch.Tensor:
    """Group id of each grid position, (h, w) int64."""
    if period == 0:
        return torch.arange(h * w).view(h, w)
    sched = torch.tensor(SCHEDULES[period])
    ys, xs = torch.arange(h) % period, torch.arange(w) % period
    return sched[ys[:, None], xs[None, :]]


@lru_cache(maxsize=32)
def query_ids(groups: torch.Tensor, period: int) -> torch.Tensor:
    """Which query embedding each position uses."""
    return groups if period else torch.zeros_like(groups)


@lru_cache(maxsize=32)
def window_offsets(r: int) -> torch.Tensor:
    """(W, 2) offsets (dy, dx) of a (2r+1)^2 window; slot index = bias-table index."""
    d = torch.arange(-r, r + 1)
    return torch.stack(torch.meshgrid(d, d, indexing="ij"), -1).reshape(-1, 2)


class Block(nn.Module):
    def __init__(self, cfg: PriorConfig):
        super().__init__()
        d = cfg.d_model
        self.n_head = cfg.n_head
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, cfg.mlp_ratio * d), nn.Linear(cfg.mlp_ratio * d, d)
        self.rel_bias = nn.Parameter(torch.zeros(cfg.n_head, (2 * cfg.window + 1) ** 2))

    def forward(self, x, bias_idx, allowed):
        B, T, d = x.shape
        h = self.ln1(x)
        split = lambda t: t.view(B, T, self.n_head, -1).transpose(1, 2)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        mask = self.rel_bias[:, bias_idx].masked_fill(~allowed, float("-inf")).to(q.dtype)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(0))
        x = x + self.o(a.transpose(1, 2).reshape(B, T, d))
        return x + self.fc2(F.relu(self.fc1(self.ln2(x))))


class TokenPrior(nn.Module):
    def __init__(self, cfg: PriorConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.emb_hi = nn.Embedding(2 ** cfg.hi_bits, d)
        self.emb_lo = nn.Embedding(2 ** cfg.lo_bits, d)
        self.query = nn.Embedding(cfg.groups, d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.head_hi = nn.Linear(d, 2 ** cfg.hi_bits)
        self.lo_in = nn.Linear(d, d)
        self.lo_cond = nn.Embedding(2 ** cfg.hi_bits, d)
        self.head_lo = nn.Linear(d, 2 ** cfg.lo_bits)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def split(self, tokens):
        return tokens >> self.cfg.lo_bits, tokens & (2 ** self.cfg.lo_bits - 1)

    def layout(self, h: int, w: int, device):
        return _layout(h, w, self.cfg.window, self.cfg.period, str(device))

    def forward(self, tokens: torch.Tensor):
        """tokens (B, h, w) -> (logits_hi, logits_lo) for every position, teacher-forced."""
        B, h, w = tokens.shape
        n = h * w
        bias_idx, allowed, g = self.layout(h, w, tokens.device)
        hi, lo = self.split(tokens.reshape(B, n))
        content = self.emb_hi(hi) + self.emb_lo(lo)
        query = self.query(query_ids(g, self.cfg.period)).expand(B, n, -1)
        x = torch.cat([content, query], 1)
        for blk in self.blocks:
            x = blk(x, bias_idx, allowed)
        out = self.ln_f(x[:, n:])
        logits_hi = self.head_hi(out)
        logits_lo = self.head_lo(F.relu(self.lo_in(out) + self.lo_cond(hi)))
        return logits_hi, logits_lo

    def loss(self, tokens):
        """Mean code length in bits per token."""
        lh, ll = self(tokens)
        hi, lo = self.split(tokens.reshape(tokens.shape[0], -1))
        nats = F.cross_entropy(lh.float().flatten(0, 1), hi.flatten()) + \
            F.cross_entropy(ll.float().flatten(0, 1), lo.flatten())
        return nats / torch.log(torch.tensor(2.0))


@lru_cache(maxsize=16)
def _layout(h: int, w: int, r: int, period: int, device: str):
    """Attention structure of the two streams on an h x w grid: (bias index, allowed) of (2N, 2N), groups (N,)."""
    yx = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1).reshape(-1, 2)
    g = group_map(h, w, period).reshape(-1)
    dy = yx[None, :, 0] - yx[:, None, 0]
    dx = yx[None, :, 1] - yx[:, None, 1]
    win = (dy.abs() <= r) & (dx.abs() <= r)
    idx = (dy.clamp(-r, r) + r) * (2 * r + 1) + dx.clamp(-r, r) + r
    n = h * w
    allowed = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
    allowed[:n, :n] = win & (g[None, :] <= g[:, None])     # content -> content of own and earlier groups
    allowed[n:, :n] = win & (g[None, :] < g[:, None])      # query -> content of earlier groups
    allowed[n:, n:] = torch.eye(n, dtype=torch.bool)        # query -> itself
    return idx.repeat(2, 2).to(device), allowed.to(device), g.to(device)


def load_prior(path) -> TokenPrior:
    from ..weights import load_module
    return load_module(path, lambda cfg: TokenPrior(PriorConfig(**cfg)), "prior")
