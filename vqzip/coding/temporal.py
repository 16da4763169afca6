"""Predicted frames: a frame's tokens coded against the previous frame's tokens.

Consecutive frames mostly tokenize alike: on vtest.avi 60-80 % of positions keep their token, and
a token that changes flips about 2.7 of its 20 bits. So a predicted frame is coded as

1. a change map, one flag per position, in two checkerboard passes: the first half in the context
   of where the previous frame changed (changes in the 3x3 window), the second half also in the
   context of its four neighbours from the first pass;
2. for each changed position, the XOR of the new and the old token, bit by bit, with one
   probability per bit position.

The probabilities are integer counts that adapt from frame to frame and restart from fixed priors
at every key frame, so encoder and decoder derive the same tables with integer arithmetic alone
(exact on any machine), no side information is sent, and a group of pictures decodes on its own.
Every step is vectorized over the frame; no network runs for a predicted frame.
"""
from __future__ import annotations

import numpy as np

from ..devices import host
from .entropy import FAMILY, code_bits, decode_symbols, finish, new_decoder, new_encoder

_CTX1 = 5             # changes in the previous frame's 3x3 window, capped at 4
_CTX2 = _CTX1 * 5     # ... times changed 4-neighbours from the first pass (0..4)
_XOR_PRIOR = (28, 4)  # a changed token flips 1 bit in 8 before anything is seen
_DECAY = 2            # counts keep 1 - 2^-_DECAY of their weight per frame


class TemporalState:
    """The adaptive counts of one group of pictures, as (zeros, ones) pairs per context."""

    def __init__(self, token_bits: int):
        self.bits = token_bits
        self.flags1 = np.ones((_CTX1, 2), np.int64)
        self.flags2 = np.ones((_CTX2, 2), np.int64)
        self.xor = np.tile(np.array(_XOR_PRIOR, np.int64), (token_bits, 1))
        self.last_change: np.ndarray | None = None


def _adapt(counts: np.ndarray, seen: np.ndarray) -> None:
    """Decay `counts` and add this frame's `seen`, in place; no count falls below 1."""
    counts[:] = np.maximum(1, counts - (counts >> _DECAY) + seen)


def _seen(ctx: np.ndarray, flags: np.ndarray, contexts: int) -> np.ndarray:
    """(zeros, ones) counts of `flags` per context."""
    return np.bincount(ctx * 2 + flags, minlength=2 * contexts).reshape(contexts, 2)


def _checkerboard(h: int, w: int) -> np.ndarray:
    return (np.add.outer(np.arange(h), np.arange(w)) % 2) == 0


def _neighbourhood_sum(a: np.ndarray, cross: bool = False) -> np.ndarray:
    """Sum over the 3x3 window around each position, or over its 4 neighbours if `cross`."""
    h, w = a.shape
    p = np.pad(a.astype(np.int64), 1)
    offsets = ((-1, 0), (1, 0), (0, -1), (0, 1)) if cross else [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return sum(p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in offsets)


def _walk(prev: np.ndarray, state: TemporalState, code) -> np.ndarray:
    """The coding steps of one predicted frame, shared by encoder and decoder: for each step it
    calls code(step, freqs) -> symbols, with freqs an (n, 2) array of counts. Returns the frame's
    token grid and moves `state` on to the next frame."""
    h, w = prev.shape
    black = _checkerboard(h, w)
    last = state.last_change if state.last_change is not None else np.zeros((h, w), bool)
    ctx1 = np.minimum(_neighbourhood_sum(last), _CTX1 - 1)
    changed = np.zeros((h, w), bool)
    changed[black] = code("flags1", state.flags1[ctx1[black]]).astype(bool)
    ctx2 = ctx1 * 5 + _neighbourhood_sum(changed, cross=True)
    changed[~black] = code("flags2", state.flags2[ctx2[~black]]).astype(bool)
    n = int(changed.sum())
    bits = code("xor", np.tile(state.xor, (n, 1))).reshape(n, state.bits)
    cur = prev.copy()
    cur[changed] ^= (bits << np.arange(state.bits)).sum(1)

    _adapt(state.flags1, _seen(ctx1[black], changed[black], _CTX1))
    _adapt(state.flags2, _seen(ctx2[~black], changed[~black], _CTX2))
    ones = bits.sum(0)
    _adapt(state.xor, np.stack([n - ones, ones], 1))
    state.last_change = changed
    return cur


def encode_predicted(prev: np.ndarray, cur: np.ndarray, state: TemporalState) -> bytes:
    """The tokens `cur` given the previous frame's `prev` (both (h, w) ints, on any device) -> bytes."""
    prev, cur = host(prev), host(cur)
    changed = cur != prev
    black = _checkerboard(*cur.shape)
    xor = (cur ^ prev)[changed].astype(np.int64)
    truth = {"flags1": changed[black], "flags2": changed[~black],
             "xor": ((xor[:, None] >> np.arange(state.bits)) & 1).reshape(-1)}
    enc = new_encoder()

    def code(step, freqs):
        sym = truth[step].astype(np.int32)
        if len(sym):
            enc.encode(sym, FAMILY, freqs.astype(np.float64))
        return sym.astype(np.int64)

    _walk(prev.astype(np.int64), state, code)
    return finish(enc)


def _decoding(data: bytes, seen: dict | None = None):
    """_walk's `code` for a decoder; `seen`, if given, gets each step's (symbols, code lengths in bits)."""
    dec = new_decoder(data)

    def code(step, freqs):
        sym = decode_symbols(dec, freqs) if len(freqs) else np.zeros(0, np.int64)
        if seen is not None:
            seen[step] = sym, code_bits(freqs, sym)
        return sym
    return code


def decode_predicted(prev: np.ndarray, data: bytes, state: TemporalState) -> np.ndarray:
    """Inverse of encode_predicted."""
    return _walk(host(prev).astype(np.int64), state, _decoding(data))


def code_lengths(prev: np.ndarray, data: bytes, state: TemporalState) -> tuple[np.ndarray, np.ndarray]:
    """decode_predicted, and each position's code length in bits: its change flag, plus its XOR's
    bits where the flag says it changed (`vqzip info --heatmap --frame N`)."""
    seen: dict = {}
    cur = _walk(host(prev).astype(np.int64), state, _decoding(data, seen))
    black = _checkerboard(*cur.shape)
    bits, changed = np.zeros(cur.shape), np.zeros(cur.shape, bool)
    (changed[black], bits[black]), (changed[~black], bits[~black]) = seen["flags1"], seen["flags2"]
    bits[changed] += seen["xor"][1].reshape(-1, state.bits).sum(1)
    return cur, bits
