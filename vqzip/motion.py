"""Block motion for predicted video frames: one integer vector per 16 x 16 block of the coded frame.

The inter layer (inter.py) refines a prediction of the frame. With zero motion that is the
previous decoded frame; where the picture moves (a pan, a walker), a block's best match a few
pixels away leaves a residual far cheaper to code. So the encoder searches a vector per block
(`search`, encoder-side only: any choice decodes), and the prediction is the previous frame with
each block fetched from where its vector points (`compensate`): an integer gather, clamped at the
edges, exact on every machine. The vectors are sent with their own exact model (`encode_vectors`):
which blocks moved, then each moved block's vector against the previous one's, under adaptive
integer counts; a frame without motion sends none (an empty field).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .coding.block_flags import decode_flags, encode_flags
from .coding.entropy import FAMILY, decode_symbols, finish, new_decoder, new_encoder
from .errors import FormatError
from .coding.varint import read_varint as _read_varint, varint as _varint

BLOCK = 16       # pixels: a base token's area, the skip flags' block too
RANGE = 7        # vectors are -RANGE..RANGE pixels in each direction
COARSE = 3       # the search's first stage: every 2 pixels up to 2 * COARSE, on a half-size frame
ZERO_BIAS = 0.008  # a vector must lower the block's mean absolute error by this (in [-1, 1] units, about a level) to beat zero motion: at 0.004, vtest's noise drew 40-50 vectors a frame and its moved blocks cost a third more
STEP, LIMIT = 24, 1 << 12   # adaptive counts, as the skip flags'


def compensate(ref: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
    """ref (1, 3, H, W); mv (bh, bw, 2) int64 (dy, dx) per block -> the prediction (1, 3, H, W)."""
    H, W = ref.shape[-2:]
    if not mv.any():
        return ref
    per_px = mv.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[:H, :W].to(ref.device)
    yy = (torch.arange(H, device=ref.device)[:, None] + per_px[..., 0]).clamp_(0, H - 1)
    xx = (torch.arange(W, device=ref.device)[None, :] + per_px[..., 1]).clamp_(0, W - 1)
    idx = (yy * W + xx).reshape(1, 1, -1).expand(1, ref.shape[1], -1)
    return ref.reshape(1, ref.shape[1], -1).gather(2, idx).reshape(ref.shape)


def _block_error(x: torch.Tensor, p: torch.Tensor, block: int) -> torch.Tensor:
    return F.avg_pool2d((x - p).abs().mean(1, keepdim=True), block)[0, 0]


def search(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """The encoder's vectors (bh, bw, 2) int64: a full search of even vectors up to 2 * COARSE on
    half-size frames, then +-1 pixel around each block's best at full size, by mean absolute
    error; a block keeps zero motion unless a vector beats it by ZERO_BIAS."""
    H, W = x.shape[-2:]
    bh, bw = -(-H // BLOCK), -(-W // BLOCK)
    xs, rs = F.avg_pool2d(x, 2), F.avg_pool2d(ref, 2)
    r = COARSE
    pad = F.pad(rs, (r, r, r, r), mode="replicate")
    h, w = xs.shape[-2:]
    best = torch.full((bh, bw), float("inf"))
    mv = torch.zeros(bh, bw, 2, dtype=torch.int64)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            e = _block_error(xs, pad[..., r + dy:r + dy + h, r + dx:r + dx + w], BLOCK // 2).cpu()
            better = e < best
            best = torch.where(better, e, best)
            mv[better] = torch.tensor([2 * dy, 2 * dx])
    # refine at full size: each block's best of its 3 x 3 neighbours, zero motion as the reference
    zero = _block_error(x, ref, BLOCK).cpu()
    best, out = zero - ZERO_BIAS, torch.zeros_like(mv)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            cand = (mv + torch.tensor([oy, ox])).clamp(-RANGE, RANGE)
            e = _block_error(x, compensate(ref, cand), BLOCK).cpu()
            better = e < best
            best = torch.where(better, e, best)
            out[better] = cand[better]
    return out


def _counts() -> np.ndarray:
    counts = np.full((2, 4 * RANGE + 1), 1, np.int64)
    counts[:, 2 * RANGE] = STEP  # a moved block often moves as the one before it did
    return counts


def encode_vectors(mv: torch.Tensor) -> bytes:
    """(bh, bw, 2) vectors -> bytes; b"" when there is no motion at all. First which blocks moved
    (block_flags.py), then each moved block's vector as its difference from the previous moved
    block's in raster order (a walker's or a pan's blocks move alike), under adaptive counts. The
    moved flags' length comes first (varint)."""
    if not mv.any():
        return b""
    v = mv.numpy()
    moved = (v != 0).any(-1)
    flags = encode_flags(moved)
    counts, last = _counts(), np.zeros(2, np.int64)
    enc = new_encoder()
    for y, x in zip(*np.nonzero(moved)):
        for c in range(2):
            d = int(v[y, x, c] - last[c]) + 2 * RANGE
            enc.encode(np.array([d], np.int32), FAMILY, counts[c][None].astype(np.float64))
            _adapt(counts[c], d)
        last = v[y, x]
    return _varint(len(flags)) + flags + finish(enc)


def decode_vectors(shape: tuple, data: bytes) -> torch.Tensor:
    """Inverse of encode_vectors for (bh, bw) blocks."""
    v = np.zeros((*shape, 2), np.int64)
    if not data:
        return torch.from_numpy(v)
    n, at = _read_varint(data)
    if at + n > len(data):
        raise FormatError("file is corrupted (motion flags run past their frame)")
    moved = decode_flags(shape, data[at:at + n])
    counts, last = _counts(), np.zeros(2, np.int64)
    dec = new_decoder(data[at + n:])
    for y, x in zip(*np.nonzero(moved)):
        for c in range(2):
            d = int(decode_symbols(dec, counts[c][None])[0])
            _adapt(counts[c], d)
            v[y, x, c] = last[c] + d - 2 * RANGE
            if abs(v[y, x, c]) > RANGE:
                raise FormatError("file is corrupted (a motion vector out of range)")
        last = v[y, x]
    return torch.from_numpy(v)


def _adapt(counts: np.ndarray, d: int):
    counts[d] += STEP
    if counts.sum() > LIMIT:
        counts[:] = (counts + 1) >> 1
