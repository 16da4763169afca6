"""The refinement tokens' exact prior, and their range coding.

Each symbol is coded with an integer frequency table chosen by its context, so encoder and decoder
use the same integers on every machine and thread count (no float enters a probability):

- **The base layer.** Where the exact base prior found a base token surprising, the picture is
  busy there and the base layer likely missed more. The surprise is an integer, floor(log2(total /
  freq)) summed over the token's two sub-symbols, read off the exact prior's own tables while the
  base layer is coded or decoded (entropy.encode_tokens / decode_tokens), and bucketed by
  RefineConfig.surprise_edges.
- **Coded neighbours.** Positions are coded in two passes over a checkerboard. The first pass sees
  the surprise only; the second also sees, per channel, the summed magnitude of its four
  first-pass neighbours, bucketed (a zero among zeros is nearly free).

Contexts are computed by one torch function for training and coding alike.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .entropy import FAMILY, decode_symbols, finish, new_decoder, new_encoder
from .refine import NEIGHBOUR_BUCKETS, RefineConfig

NEIGHBOUR_EDGES = torch.tensor([1, 3, 7])  # summed |symbol| of four neighbours: 0, 1-2, 3-6, 7+
CHUNK = 1 << 16  # symbols per range-coder call: bounds the memory of the frequency rows


def first_pass_contexts(cfg: RefineConfig, surprise: torch.Tensor, base_stride: int, channels: int) -> torch.Tensor:
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


def _chunks(n: int):
    for a in range(0, n, CHUNK):
        yield slice(a, min(n, a + CHUNK))


def encode_refinement(tables: np.ndarray, levels: int, symbols: np.ndarray, ctx_first: torch.Tensor) -> bytes:
    """symbols (C, h, w) in [-levels, levels]; tables (K, C, 2L+1) of the chosen rate; ctx_first
    (C, h, w) from first_pass_contexts -> bytes."""
    enc = new_encoder()
    s = torch.as_tensor(symbols, dtype=torch.int64)
    ctx_all = second_pass_contexts(ctx_first[None], s[None])[0]
    second = second_pass(*s.shape[-2:])
    for mask in (~second, second):  # the decoder's order: every channel of a pass, then the next pass
        for c in range(s.shape[0]):
            sym, cx = (s[c][mask] + levels).numpy(), ctx_all[c][mask].numpy()
            for part in _chunks(len(sym)):
                enc.encode(sym[part].astype(np.int32), FAMILY, tables[cx[part], c].astype(np.float64))
    return finish(enc)


def decode_refinement(tables: np.ndarray, levels: int, ctx_first: torch.Tensor, data: bytes) -> np.ndarray:
    """Inverse of encode_refinement: the (C, h, w) symbols."""
    dec = new_decoder(data)
    s = torch.zeros(ctx_first.shape, dtype=torch.int64)
    second = second_pass(*s.shape[-2:])
    _decode_pass(dec, tables, levels, s, ~second, ctx_first)
    _decode_pass(dec, tables, levels, s, second, second_pass_contexts(ctx_first[None], s[None])[0])
    return s.numpy()


def _decode_pass(dec, tables, levels, s, mask, ctx):
    for c in range(s.shape[0]):
        cx = ctx[c][mask].numpy()
        out = [decode_symbols(dec, tables[cx[part], c]) for part in _chunks(len(cx))]
        s[c][mask] = torch.from_numpy(np.concatenate(out) - levels) if out else s[c][mask]


def code_lengths(tables: np.ndarray, levels: int, ctx_first: torch.Tensor, data: bytes) -> np.ndarray:
    """Each refinement symbol's code length in bits, (C, h, w): -log2(freq / total) in the table of
    the context it was coded in. It takes decode_refinement's inputs and reads the symbols and the
    contexts from it and second_pass_contexts, so it follows the coder wherever that goes; a new
    entropy model for the layer needs only a new version of this function (`vqzip info --heatmap`)."""
    s = decode_refinement(tables, levels, ctx_first, data)
    ctx = second_pass_contexts(ctx_first[None], torch.from_numpy(s)[None])[0].numpy()
    chan = np.arange(s.shape[0])[:, None, None]
    t = tables.astype(np.float64)
    return np.log2(t.sum(-1)[ctx, chan]) - np.log2(t[ctx, chan, s + levels])
