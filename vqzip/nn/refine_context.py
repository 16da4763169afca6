"""The refinement symbols' learned entropy model: a distribution for every symbol, predicted from
what the decoder already has.

The first refinement layer coded each symbol with one of 25 static tables per channel, picked by
buckets of the base prior's surprise and of four neighbours' magnitudes. That layer carries about
four fifths of a default file's bits, and learned codecs gain most from exactly this part: a
context model that predicts each symbol's mean and scale (Minnen et al. 2018; He et al. 2021/2022
for checkerboard and channel-group contexts; Cool-chic for doing it in exact integer arithmetic).

Coding order. Positions are split into passes (`RefineConfig.context_passes`: four, one position
of every 2 x 2 cell each, as in He et al. 2022; or the two of a checkerboard) and channels into
groups (`RefineConfig.context_groups`, low frequencies first, chroma last). Step t = (pass,
group) codes that group's channels at that pass's positions; everything coded in an earlier step
is context:

- the base layer: the 20 bits of the covering base token, the base prior's surprise there (an
  integer the exact prior gives while it codes), and where the position sits inside its token;
- the rate level and the step;
- at the same position, the symbols of earlier groups (value and magnitude);
- around it (3 x 3), the sums of the already coded symbols of every channel (value and magnitude),
  from the neighbours that earlier passes (all groups) and this pass (earlier groups) coded;
- optionally (`context_dir`), the first channels' eight neighbours one by one rather than summed:
  the lowest frequencies' gradients across the block grid (a left neighbour brighter than the
  right one predicts the sign of the first horizontal coefficient), which sums cancel out;
- optionally (`context_ring`), the eight neighbouring base tokens' bits and surprise: what the
  base layer drew around the block, e.g. an edge leaving its token.

Measured offline on symbols of the same layer (benchmarks/results/refine_entropy/README.md): four
passes fitted 3 % fewer bits than two; eight channel groups instead of four, or adding the ring
two positions out, under 0.3 %.

A small MLP maps these integer features to a mean and log-scale per channel;
the symbol's probability is a logistic's mass on its unit interval, the outermost symbols taking
the tails, as before. Training uses this float model. Coding uses its integer twin
(refine_entropy.ExactContext), whose mean and log-scale are rounded onto a grid (MU_STEP,
LOG_SCALE_STEP) indexing a fixed set of integer tables stored with the weights.

`step_features` is the one function that builds the features, for training (all steps at once)
and for coding (one step, one band of rows), so the two cannot drift apart.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TOKEN_BITS = 20                  # bits of a base token read as features
SURPRISE_CLIP = 63               # the surprise (bits) is clipped to this
# the rounding grid of the coder's tables: means in quarter steps, log-scales in eighths (natural log)
MU_RANGE, MU_STEP_BITS = 3, 3            # mu in [-3, 3] by 1/8
LOG_SCALE_RANGE, LS_STEP_BITS = (-4.5, 3.5), 4   # scale 0.011..33 by 1/16 in log
# features are integers; the float model divides each kind by a power of two (folded into the
# integer model's first layer), so that its inputs are of order one
OWN_SHIFT, NEIGHBOUR_SHIFT, SURPRISE_SHIFT = 2, 4, 4
NEIGHBOURS = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 1, 1]])
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if NEIGHBOURS[dy + 1, dx + 1]]
# the static tables' contexts (entropy "tables", the first refinement layer)
NEIGHBOUR_BUCKETS = 4
NEIGHBOUR_EDGES = torch.tensor([1, 3, 7])  # summed |symbol| of four neighbours: 0, 1-2, 3-6, 7+


def group_of_channel(channels: int, bounds: tuple) -> torch.Tensor:
    """(C,) each channel's group index; `bounds` are the first channels of groups 1, 2, ..."""
    return torch.bucketize(torch.arange(channels), torch.tensor(bounds, dtype=torch.long), right=True)


def n_steps(cfg) -> int:
    return cfg.context_passes * (len(cfg.context_groups) + 1)


# the pass of each position of a 2 x 2 cell: two passes are a checkerboard; four code one
# position of every cell, then the diagonal one, then the other two (He et al. 2022)
PASS_OF = {2: torch.tensor([[0, 1], [1, 0]]), 4: torch.tensor([[0, 2], [3, 1]])}


def order_key(cfg, h: int, w: int, y0: int = 0, device=None) -> torch.Tensor:
    """(C, h, w) the step at which each symbol is coded: pass * groups + group. The passes' phase
    follows the absolute row y0 + i, so a band of rows keeps the whole grid's."""
    G = len(cfg.context_groups) + 1
    yy = torch.arange(y0, y0 + h, device=device)[:, None] % 2
    xx = torch.arange(w, device=device)[None, :] % 2
    passes = PASS_OF[cfg.context_passes].to(device)[yy, xx]
    return passes[None] * G + group_of_channel(cfg.channels, cfg.context_groups).to(device)[:, None, None]


def n_features(cfg, stride_ratio: int, rates: int) -> int:
    base = 4 * cfg.channels + TOKEN_BITS + 1 + stride_ratio ** 2 + rates + n_steps(cfg)
    return base + len(_OFFSETS) * (cfg.context_dir + (TOKEN_BITS + 1) * cfg.context_ring)


def step_onehot_at(cfg, stride_ratio: int) -> int:
    """The index of the first of the step's one-hot features (step_features' order)."""
    return 4 * cfg.channels + TOKEN_BITS + 1 + stride_ratio ** 2 + len(cfg.rates)


def group_steps_share_features(cfg) -> bool:
    """Whether a pass's steps differ only in the position's own earlier groups and the step's one-hot.
    With four passes no position has one of its eight neighbours in its own pass, so nothing else
    changes from one group step of a pass to the next (training and the coder reuse the rest); a
    checkerboard's diagonal neighbours share its pass."""
    return cfg.context_passes == 4


def step_features(cfg, symbols: torch.Tensor, key: torch.Tensor, step: int, tokens: torch.Tensor,
                  surprise: torch.Tensor, rate: torch.Tensor, stride_ratio: int, rows: slice | None = None,
                  at: torch.Tensor | None = None) -> torch.Tensor:
    """Integer features (B, F, h', w') of every position, as coding step `step` sees them.

    symbols (B, C, h, w) int64, with anything not yet coded free to hold any value (it is masked);
    key (C, h, w) from order_key; tokens and surprise (B, hb, wb) on the base grid, h = hb *
    stride_ratio; rate (B,) int64. `rows` restricts the output to a band of rows (the decoder's
    memory bound), which reads one row of symbols beyond it on each side. `at`, a (h', w) mask
    of the band, gives only those positions' features, (B, F, n): what the coder needs of a step
    (its pass's positions), gathered before the features are stacked."""
    B, C, h, w = symbols.shape
    r0, r1 = (0, h) if rows is None else (rows.start, rows.stop)
    a0, a1 = max(0, r0 - 1), min(h, r1 + 1)
    band = symbols[:, :, a0:a1] * (key[:, a0:a1] < step)  # what is known, in the band and a row around it
    # known values and magnitudes, zero-padded: rows a0 - 1 .. a1, so that zero stands for off the grid
    pair = F.pad(torch.cat([band, band.abs()], 1), (1, 1, 1, 1))
    k, dev = stride_ratio, symbols.device
    if at is not None and int(at.sum()) * 8 < at.numel():
        # a few positions (an inter frame's coded blocks): everything gathered at them alone
        py, px = torch.nonzero(at, as_tuple=True)
        py = py + r0  # absolute rows
        near = lambda dy, dx: pair[:, :, py - a0 + 1 + dy, px + 1 + dx]
        take = lambda t: t  # gathered already
        on_base = lambda t: t[..., py // k, px // k]  # the base grid at each position's token
        sub = F.one_hot((py % k) * k + px % k, k * k).T
    else:
        # the whole band, shifted; `take` then picks the positions asked for, once per feature kind
        take = (lambda t: t[..., at]) if at is not None else (lambda t: t)  # (..., h', w) -> (..., n) or as is
        near = lambda dy, dx: pair[:, :, r0 - a0 + 1 + dy:r1 - a0 + 1 + dy, 1 + dx:w + 1 + dx]
        hb0, hb1 = r0 // k, -(-r1 // k)
        on_base = lambda t: take(t[..., hb0:hb1, :].repeat_interleave(k, -2).repeat_interleave(k, -1)[..., r0 - hb0 * k:r1 - hb0 * k, :w])
        yy = torch.arange(r0, r1, device=dev)[:, None] % k
        xx = torch.arange(w, device=dev)[None, :] % k
        sub = take(F.one_hot(yy * k + xx, k * k).movedim(-1, 0))
    # neighbour sums in integers: exact, and the same in both branches
    nb = take(sum(near(dy, dx) for dy, dx in _OFFSETS))
    own = take(near(0, 0)[:, :C])
    tok, surp = on_base(tokens), on_base(surprise)
    extra: list[torch.Tensor] = []  # the optional features (context_dir, context_ring), appended last
    if cfg.context_dir:
        extra.append(take(torch.cat([near(dy, dx)[:, :cfg.context_dir] for dy, dx in _OFFSETS], 1)))
    if cfg.context_ring:
        ring = _token_ring(tokens, surprise)  # padded by one token
        hb, wb = tokens.shape[-2:]
        extra.append(on_base(torch.cat([ring[..., 1 + dy:1 + dy + hb, 1 + dx:1 + dx + wb] for dy, dx in _OFFSETS], 1)))
    shape = tok.shape[1:]  # (h', w) or (n,)
    bits = (tok[:, None] >> torch.arange(TOKEN_BITS, device=dev).view(-1, *[1] * len(shape))) & 1
    surp = surp.clamp(0, SURPRISE_CLIP)[:, None]
    sub = sub[None].expand(B, *[-1] * (1 + len(shape)))
    onehot = lambda i, size: F.one_hot(i, size).view(B, size, *[1] * len(shape)).expand(-1, -1, *shape)
    rates = onehot(rate, len(cfg.rates))
    st = onehot(torch.full((B,), step, device=dev), n_steps(cfg))
    return torch.cat([own, own.abs(), nb, bits, surp, sub, rates, st, *extra], 1)


def _token_ring(tokens: torch.Tensor, surprise: torch.Tensor) -> torch.Tensor:
    """(B, TOKEN_BITS + 1, hb + 2, wb + 2): each base token's bits as -1 / +1 and its clipped
    surprise, with a ring of zeros around the grid (a zero bit is no token, not token 0)."""
    bits = (tokens[:, None] >> torch.arange(TOKEN_BITS, device=tokens.device).view(-1, 1, 1)) & 1
    both = torch.cat([2 * bits - 1, surprise.clamp(0, SURPRISE_CLIP)[:, None]], 1)
    return F.pad(both, (1, 1, 1, 1))


def feature_shifts(cfg, stride_ratio: int) -> torch.Tensor:
    """(F,) the power of two each feature is divided by in the float model."""
    C = cfg.channels
    rest = stride_ratio ** 2 + len(cfg.rates) + n_steps(cfg)
    ring = ([0] * TOKEN_BITS + [SURPRISE_SHIFT]) * len(_OFFSETS) * cfg.context_ring
    return torch.tensor([OWN_SHIFT] * 2 * C + [NEIGHBOUR_SHIFT] * 2 * C + [0] * TOKEN_BITS + [SURPRISE_SHIFT] + [0] * rest
                        + [OWN_SHIFT] * len(_OFFSETS) * cfg.context_dir + ring)


class RefineContext(nn.Module):
    """The float entropy model: features -> (mu, log_scale) of every channel at every position.
    An MLP plus a linear path from the features straight to the outputs: most of what predicts a
    channel's scale is that channel's own coded neighbours and the rate, each a plain linear term,
    which through the MLP's narrow hidden layer alone fitted 1 % worse (offline, 4-pass contexts)."""

    def __init__(self, cfg, stride_ratio: int):
        super().__init__()
        self.cfg, self.stride_ratio = cfg, stride_ratio
        F_in, W, C = n_features(cfg, stride_ratio, len(cfg.rates)), cfg.context_width, cfg.channels
        self.fc1, self.fc2, self.out = nn.Linear(F_in, W), nn.Linear(W, W), nn.Linear(W, 2 * C)
        self.skip = nn.Linear(F_in, 2 * C, bias=False)
        self.register_buffer("scale", 2.0 ** -feature_shifts(cfg, stride_ratio).float(), persistent=False)
        with torch.no_grad():  # start where a symbol of 0 costs under a bit, as most of them will
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()
            self.out.bias[C:] = -1.0
            self.skip.weight.zero_()

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, F, h, w) -> mu, log_scale (B, C, h, w)."""
        # channels first throughout ((B, F, n) times weights): moving the features' axis last
        # copied them once more than the matrix products cost
        B, shape = feats.shape[0], feats.shape[2:]
        x = feats.reshape(B, feats.shape[1], -1).float() * self.scale[:, None]
        y = _linear(self.out, F.relu(_linear(self.fc2, F.relu(_linear(self.fc1, x))))) + _linear(self.skip, x)
        mu, log_scale = y.reshape(B, -1, *shape).chunk(2, 1)
        return mu, log_scale.clamp(*LOG_SCALE_RANGE)

    def params(self, symbols: torch.Tensor, tokens: torch.Tensor, surprise: torch.Tensor, rate: torch.Tensor):
        """Training: mu and log_scale (B, C, h, w) of every symbol, each as its coding step sees
        it (symbols: rounded, int64). Each step runs at its pass's positions alone, as the coder
        does (a quarter of the grid with four passes), and each symbol takes its own group's."""
        B, C, h, w = symbols.shape
        cfg, dev = self.cfg, symbols.device
        key = order_key(cfg, h, w, device=dev)
        G = len(cfg.context_groups) + 1
        passes = key[0] // G  # (h, w) the pass of each position
        group = group_of_channel(C, cfg.context_groups).to(dev)
        mu = torch.zeros(B, C, h * w, device=dev)
        ls = torch.zeros(B, C, h * w, device=dev)
        for t in range(n_steps(cfg)):
            at = passes == t // G
            pi = torch.nonzero(at.reshape(-1))[:, 0]
            if t % G == 0 or not group_steps_share_features(cfg):
                feats = step_features(cfg, symbols, key, t, tokens, surprise, rate, self.stride_ratio, at=at)
                values = symbols.reshape(B, C, -1)[:, :, pi]
            else:
                # the rest of the pass's first step's features is reused (the same integers as
                # step_features; tests/test_refine.py checks it), a quarter of the feature work
                own = values * (group < t % G)[None, :, None]
                feats = feats.clone()
                feats[:, :C], feats[:, C:2 * C] = own, own.abs()
                st = step_onehot_at(cfg, self.stride_ratio)
                feats[:, st + t - 1], feats[:, st + t] = 0, 1
            m, l = self(feats)
            ci = torch.nonzero(group == t % G)[:, 0]
            mu = _put(mu, ci, pi, m[:, ci].float())  # float32, as the whole grid (autocast may give bf16)
            ls = _put(ls, ci, pi, l[:, ci].float())
        return mu.view(B, C, h, w), ls.view(B, C, h, w)


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """layer applied to x (B, in, n), channels first."""
    y = torch.bmm(layer.weight.expand(x.shape[0], -1, -1), x)  # (matmul copied x into rows first)
    return y if layer.bias is None else y + layer.bias[:, None]


def _put(t: torch.Tensor, ci: torch.Tensor, pi: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """t (B, C, n) with values (B, len(ci), len(pi)) written at channels ci and positions pi."""
    return t.index_put((torch.arange(t.shape[0], device=t.device)[:, None, None], ci[None, :, None], pi[None, None, :]), values)


def logistic_bits(y: torch.Tensor, mu: torch.Tensor, scale: torch.Tensor, levels: int) -> torch.Tensor:
    """Code length in bits of (noisy) symbols y under a logistic: the mass of the unit interval
    around y, the outermost symbols taking the tails."""
    hi = torch.where(y + 0.5 >= levels, torch.ones_like(y), torch.sigmoid((y + 0.5 - mu) / scale))
    lo = torch.where(y - 0.5 <= -levels, torch.zeros_like(y), torch.sigmoid((y - 0.5 - mu) / scale))
    return -torch.log2((hi - lo).clamp_min(1e-9))


def logistic_tables(mu: torch.Tensor, log_scale: torch.Tensor, levels: int, table_bits: int) -> torch.Tensor:
    """Integer frequency tables (..., 2L+1) of discretized logistics, computed once in float64 and
    stored as integers, so that coding never depends on float rounding. Every symbol keeps a count."""
    edges = torch.arange(-levels, levels + 2, dtype=torch.float64, device=mu.device) - 0.5
    cdf = torch.sigmoid((edges - mu.double()[..., None]) / log_scale.double().exp()[..., None])
    cdf[..., 0], cdf[..., -1] = 0.0, 1.0
    p = cdf[..., 1:] - cdf[..., :-1]
    return torch.round(p * 2 ** table_bits).clamp_min(1).to(torch.int32)


def grid_tables(levels: int, table_bits: int) -> torch.Tensor:
    """The coder's tables (n_mu, n_log_scale, 2L+1) on the rounding grid of (mu, log_scale)."""
    mus = torch.arange(-MU_RANGE << MU_STEP_BITS, (MU_RANGE << MU_STEP_BITS) + 1, dtype=torch.float64) / (1 << MU_STEP_BITS)
    lo, hi = LOG_SCALE_RANGE
    lss = torch.arange(math.floor(lo * (1 << LS_STEP_BITS)), math.ceil(hi * (1 << LS_STEP_BITS)) + 1,
                       dtype=torch.float64) / (1 << LS_STEP_BITS)
    return logistic_tables(mus[:, None], lss[None, :], levels, table_bits)


# -- the static tables' contexts (entropy "tables": the first refinement layer, kept to decode its files)

def first_pass_contexts(cfg, surprise: torch.Tensor, base_stride: int, channels: int) -> torch.Tensor:
    """Base-grid surprise (B, hb, wb) in bits -> every refinement position's first-pass context
    (B, C, h, w), h = hb * base_stride / stride."""
    k = base_stride // cfg.stride
    bucket = torch.bucketize(surprise, torch.tensor(cfg.surprise_edges, device=surprise.device), right=True)
    ctx = bucket.repeat_interleave(k, -2).repeat_interleave(k, -1) * (1 + NEIGHBOUR_BUCKETS)
    return ctx[:, None].expand(-1, channels, -1, -1)


def second_pass(h: int, w: int, device=None) -> torch.Tensor:
    """(h, w) bool: the checkerboard's second pass."""
    yy, xx = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return (yy + xx) % 2 == 1


def second_pass_contexts(ctx_first: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """Contexts of all positions (B, C, h, w): the first pass's as given, the second pass's refined by
    the magnitude of their four neighbours, which the first pass has coded."""
    mag = symbols.abs()
    mag = mag * ~second_pass(*mag.shape[-2:], mag.device)  # only first-pass neighbours count
    kernel = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=mag.dtype, device=mag.device)
    B, C, h, w = mag.shape
    m = F.conv2d(mag.reshape(B * C, 1, h, w).double(), kernel.double()[None, None], padding=1)
    nb = torch.bucketize(m.round().long().reshape(B, C, h, w), NEIGHBOUR_EDGES.to(mag.device), right=True)
    return torch.where(second_pass(h, w, mag.device), ctx_first + 1 + nb, ctx_first)
