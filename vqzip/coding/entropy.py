"""Range coding of token grids with constriction, driven by the exact prior.

Grids larger than TILE x TILE tokens are cut into tiles coded one after another in one stream;
each tile is coded on its own, so memory stays bounded for any image size.
"""
from __future__ import annotations

import constriction
import numpy as np

from ..devices import host
from ..errors import FormatError
from .exact import ExactPrior

TILE = 64
FAMILY = constriction.stream.model.Categorical(perfect=False)


def new_encoder():
    return constriction.stream.queue.RangeEncoder()


def finish(enc) -> bytes:
    return enc.get_compressed().astype("<u4").tobytes()  # little-endian words on every machine


def new_decoder(data: bytes):
    if len(data) % 4:
        raise FormatError("file is corrupted (payload is not a whole number of 32-bit words)")
    return constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))


def decode_symbols(dec, freqs: np.ndarray) -> np.ndarray:
    """One symbol per row of `freqs` (unnormalized integer probabilities)."""
    try:
        return dec.decode(FAMILY, freqs.astype(np.float64)).astype(np.int64)
    # constriction asserts on payload words that no encoder could have written (found by
    # benchmarks/fuzz.py): a corrupted file, not a bug
    except AssertionError:
        raise FormatError("file is corrupted (payload is not a valid token stream)") from None


def _tiles(h: int, w: int):
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            yield slice(y, min(h, y + TILE)), slice(x, min(x + TILE, w))


def surprise_bits(freqs: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """floor(log2(total / freq)) of each row's coded symbol, from the integer tables alone, so
    encoder and decoder agree exactly: frexp of an integer below 2^53 is exact. The refinement
    layer's contexts are made of it (refine_entropy.py)."""
    ratio = freqs.sum(1) // freqs[np.arange(len(sym)), sym]
    return np.frexp(ratio.astype(np.float64))[1].astype(np.int64) - 1


def code_bits(freqs: np.ndarray, sym: np.ndarray) -> np.ndarray:
    """-log2(freq / total) of each row's coded symbol: what the range coder spends on it, up to
    its own rounding (constriction rounds each probability to fixed point, and a stream ends on
    whole 32-bit words)."""
    f = freqs.astype(np.float64)
    return np.log2(f.sum(1)) - np.log2(f[np.arange(len(sym)), sym])


def encode_tokens(prior: ExactPrior, tokens: np.ndarray, surprise: np.ndarray | None = None) -> bytes:
    """(h, w) int tokens -> compressed bytes. `surprise`, an (h, w) int64 array of zeros if
    given, receives each token's surprise_bits summed over its two sub-symbols. `tokens` may be a
    tensor on any device (devices.host)."""
    tokens = host(tokens)
    enc = new_encoder()
    lo_bits = prior.cfg.lo_bits
    for ys, xs in _tiles(*tokens.shape):
        flat = np.ascontiguousarray(tokens[ys, xs]).reshape(-1).astype(np.int64)
        seen = np.zeros(len(flat), np.int64)

        def code(part, pos, freqs):
            sym = flat[pos] >> lo_bits if part == "hi" else flat[pos] & ((1 << lo_bits) - 1)
            enc.encode(sym.astype(np.int32), FAMILY, freqs.astype(np.float64))
            seen[pos] += surprise_bits(freqs, sym)
            return sym

        # the encoder knows every token, so it takes the batched pass; decode_tokens walks the
        # schedule step by step and gets the same tables (see ExactPrior.run_batched)
        prior.run_batched(flat.reshape(-1, xs.stop - xs.start), code)
        if surprise is not None:
            surprise[ys, xs] = seen.reshape(ys.stop - ys.start, -1)
    return finish(enc)


def decode_tokens(prior: ExactPrior, h: int, w: int, data: bytes, surprise: np.ndarray | None = None,
                  bits: np.ndarray | None = None) -> np.ndarray:
    """Inverse of encode_tokens for an h x w grid (and the same `surprise`). `bits`, an (h, w)
    float array of zeros if given, receives each token's code length (see code_lengths)."""
    dec = new_decoder(data)
    out = np.zeros((h, w), np.int64)
    for ys, xs in _tiles(h, w):
        n = (ys.stop - ys.start) * (xs.stop - xs.start)
        seen, spent = np.zeros(n, np.int64), np.zeros(n)

        def code(part, pos, freqs):
            sym = decode_symbols(dec, freqs)
            seen[pos] += surprise_bits(freqs, sym)
            if bits is not None:
                spent[pos] += code_bits(freqs, sym)
            return sym
        out[ys, xs] = host(prior.run(ys.stop - ys.start, xs.stop - xs.start, code))
        if surprise is not None:
            surprise[ys, xs] = seen.reshape(ys.stop - ys.start, -1)
        if bits is not None:
            bits[ys, xs] = spent.reshape(ys.stop - ys.start, -1)
    return out


def code_lengths(prior: ExactPrior, h: int, w: int, data: bytes,
                 surprise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The decoded (h, w) token grid and each token's code length in bits, both sub-symbols, read
    off the exact prior's integer tables as the decoder walks them (`vqzip info --heatmap`)."""
    bits = np.zeros((h, w))
    return decode_tokens(prior, h, w, data, surprise, bits), bits
