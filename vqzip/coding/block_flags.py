"""One flag per 16 x 16 block of a predicted frame, range coded under an exact adaptive model: the
inter layer's "this block is coded" flags (inter.py) and the motion field's "this block moved"
flags (motion.py)."""
from __future__ import annotations

import numpy as np

from .entropy import FAMILY, decode_symbols, finish, new_decoder, new_encoder

FLAG_STEP = 24          # an adaptive flag count grows by this per flag coded ...
FLAG_LIMIT = 1 << 12    # ... and is halved past this: it follows the frame's mix of set and clear flags


def _flag_models(flags_shape: tuple):
    """Coding order and adaptive counts of the block flags: row by row, each flag's context its
    left and upper neighbours (4 contexts), integer counts, so both sides agree exactly."""
    counts = np.ones((4, 2), np.int64) * FLAG_STEP
    bh, bw = flags_shape
    for y in range(bh):
        for x in range(bw):
            yield y, x, counts


def _flag_context(flags: np.ndarray, y: int, x: int) -> int:
    return int(x > 0 and flags[y, x - 1]) + 2 * int(y > 0 and flags[y - 1, x])


def _adapt(counts: np.ndarray, ctx: int, f: int):
    counts[ctx, f] += FLAG_STEP
    if counts[ctx].sum() > FLAG_LIMIT:
        counts[ctx] = (counts[ctx] + 1) >> 1


def encode_flags(flags: np.ndarray) -> bytes:
    """Block flags (bh, bw) bool (True: coded) -> bytes."""
    enc = new_encoder()
    for y, x, counts in _flag_models(flags.shape):
        ctx, f = _flag_context(flags, y, x), int(flags[y, x])
        enc.encode(np.array([f], np.int32), FAMILY, counts[ctx][None].astype(np.float64))
        _adapt(counts, ctx, f)
    return finish(enc)


def decode_flags(shape: tuple, data: bytes) -> np.ndarray:
    dec = new_decoder(data)
    flags = np.zeros(shape, bool)
    for y, x, counts in _flag_models(shape):
        ctx = _flag_context(flags, y, x)
        f = int(decode_symbols(dec, counts[ctx][None])[0])
        flags[y, x] = f
        _adapt(counts, ctx, f)
    return flags
