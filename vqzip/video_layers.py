"""Refined video frames (video format 4): key frames on the image ladder's refined points,
predicted frames by the inter layer (inter.py).

Up to format 2, a video frame was its base tokens alone, at x3/2 to x2, and a predicted frame could
only keep or change tokens of the frame before (temporal.py). Images moved to a small base (x1/2
or x3/4) plus the refinement layer, which is where the bits pay most; videos follow:

- a key frame (type RKEY) is coded as a refined image is: base tokens (exact prior), then the
  refinement symbols at the point's rate (layered.py). Its bytes: the base part's length (u32),
  the base part, the refinement layer.
- a predicted frame (type INTER) is the inter layer's symbols against the previous decoded frame,
  moved by a vector per 16 x 16 block (motion.py), with skipped blocks.

Every frame is decoded at the coded size (the point's scale, sides padded to the base stride),
rounded to 8 bits, and that is both the output (resized to the video's size) and the next frame's
reference. Which is exact: the tokens and symbols (every entropy coder reads integers only, so
the bytes decode the same on any machine); the pixels are float convolutions, whose last-bit
differences between machines the 8-bit rounding mostly absorbs and a GOP bounds (measured:
tests/test_video_layers.py decodes the same at 1 and 2 threads).

This module codes frames; video.py holds the file (GOPs, audio, salvage) and the GOP decisions.
"""
from __future__ import annotations

import struct

import numpy as np
import torch

from . import inter, motion
from .devices import host
from .coding.entropy import decode_tokens
from .errors import FormatError
from .layered import decode_refinement, encode_layers
from .coding.refine_entropy import Side

RKEY, INTER = 2, 3
_BASE_LEN = struct.Struct("<I")


def _spec(header_extra: dict, name: str) -> tuple[int, str]:
    spec = header_extra.get(name)
    # bool is an int in Python, but JSON's true is not a rate level
    if not (isinstance(spec, dict) and type(spec.get("rate")) is int and isinstance(spec.get("weights"), str)):
        raise FormatError(f"file is corrupted (unreadable {name} header)")
    return spec["rate"], spec["weights"]


def header_extra(m, point) -> dict:
    """What a refined video's header records of its layers: rate levels and weights."""
    return {"refine": {"rate": point.refine, "weights": m.refine_hash.hex()},
            "inter": {"rate": point.inter, "weights": list(m.inter_layers)[-1]}}


def _split_key(data: bytes) -> tuple[bytes, bytes]:
    """A key frame's bytes -> its base part and its refinement layer."""
    if len(data) < _BASE_LEN.size:
        raise FormatError("file is corrupted (key frame too short)")
    (n,) = _BASE_LEN.unpack_from(data)
    base, layer = data[_BASE_LEN.size:_BASE_LEN.size + n], data[_BASE_LEN.size + n:]
    if len(base) != n:
        raise FormatError("file is corrupted (key frame's base layer runs past it)")
    return base, layer


class FrameEncoder:
    """Codes frames (1, 3, H, W) at the coded size, keeping the decoder's reference. `key` and
    `predicted` return (bytes, decoded frame) and change nothing; `accept` makes a decoded frame
    the reference (the encoder tries a predicted frame first, and may code a key frame instead)."""

    def __init__(self, m, point, dev: torch.device, refine_steps: int):
        self.m, self.tok = m, m.tokenizer.to(dev)
        self.key_coder, self.inter_coder = m.refine_coder(), m.inter_coder()
        self.key_coder.ref.to(dev)
        self.inter_coder.ref.to(dev)
        self.rate, self.inter_rate, self.steps = point.refine, point.inter, refine_steps
        rates = self.inter_coder.ref.cfg.rates
        if not (0 <= self.rate < len(self.key_coder.ref.cfg.rates) and 0 <= self.inter_rate < len(rates)):
            raise ValueError(f"point {point} names a rate level the layers do not have")
        self.lam = rates[self.inter_rate] if point.lam is None else point.lam
        self.motion = True  # False: predicted frames with zero motion (the tests' comparison)
        self.reference: torch.Tensor | None = None
        self.skipped = 0

    @torch.inference_mode()
    def key(self, x: torch.Tensor) -> tuple[bytes, torch.Tensor]:
        tokens = host(self.tok.encode(x)[0])
        coded = encode_layers(self.m, tokens, x, self.rate, self.steps)
        y = decode_refinement(self.key_coder, coded.base, coded.symbols, self.rate)
        return _BASE_LEN.pack(len(coded.base_payload)) + coded.base_payload + coded.layer, inter.to_reference(y)

    @torch.inference_mode()
    def predicted(self, x: torch.Tensor) -> tuple[bytes, torch.Tensor]:
        data, y, skipped = inter.encode(self.inter_coder, x, self.reference, self.inter_rate, self.lam, self.motion)
        self.skipped += skipped
        return data, inter.to_reference(y)

    def accept(self, y: torch.Tensor):
        self.reference = y


class FrameDecoder:
    """Decodes a refined video's frames: `symbols` is the lossless half of a frame (it needs no
    pixels, so it can run ahead), `frame` the rest, in order within a GOP."""

    def __init__(self, m, header, dev: torch.device):
        self.m, self.dev, self.header = m, dev, header
        rate, weights = _spec(header.extra, "refine")
        inter_rate, inter_weights = _spec(header.extra, "inter")
        self.key_coder, self.inter_coder = m.refine_coder(weights), m.inter_coder(inter_weights)
        self.key_coder.ref.to(dev)
        self.inter_coder.ref.to(dev)
        for coder, r in ((self.key_coder, rate), (self.inter_coder, inter_rate)):
            if not 0 <= r < len(coder.ref.cfg.rates):
                raise FormatError(f"file is corrupted (refinement rate level {r})")
        self.rate, self.inter_rate = rate, inter_rate
        self.tok = m.tokenizer.to(dev)
        self.grid = (header.grid_h, header.grid_w)
        k = self.key_coder.ref.cfg.stride_ratio
        self.key_shape = (self.key_coder.ref.cfg.channels, header.grid_h * k, header.grid_w * k)
        k = self.inter_coder.ref.cfg.stride_ratio
        self.inter_shape = (self.inter_coder.ref.cfg.channels, header.grid_h * k, header.grid_w * k)
        self.reference: torch.Tensor | None = None

    def symbols(self, kind: int, data: bytes):
        """(kind, what `frame` takes): for a key frame its base tokens and refinement symbols, for
        a predicted one its inter symbols."""
        if kind == INTER:
            return kind, inter.decode_symbols(self.inter_coder, self.inter_shape, self.inter_rate, data)
        tokens, side, layer = self._key_base(data)
        return kind, (tokens, torch.from_numpy(self.key_coder.decode(self.key_shape, side, layer)))

    def _key_base(self, data: bytes, token_bits: np.ndarray | None = None):
        """A key frame's base tokens, the refinement's side information from them, and the
        refinement layer's bytes; `token_bits` (grid, zeros) receives each token's code length."""
        base, layer = _split_key(data)
        surprise = np.zeros(self.grid, np.int64)
        tokens = decode_tokens(self.m.prior, *self.grid, base, surprise, token_bits)
        return tokens, Side(torch.from_numpy(tokens), torch.from_numpy(surprise), self.rate), layer

    def bits(self, kind: int, data: bytes) -> tuple[tuple, list[tuple[np.ndarray, int]]]:
        """What `symbols` gives, and where the frame's bits went (`vqzip info --heatmap`): a list
        of (bits (h, w), the coded pixels one cell spans), each symbol's exact code length in the
        table it was coded with. A key frame: its base tokens, its refinement symbols. A predicted
        frame: its inter symbols and, shared evenly among its 16 x 16 blocks (they are one small
        adaptive stream each, not a cost of any one block), its motion vectors and block flags."""
        if kind == INTER:
            symbols, flags, mv = coded = inter.decode_symbols(self.inter_coder, self.inter_shape, self.inter_rate, data)
            k, cfg = self.inter_coder.ref.cfg.stride_ratio, self.inter_coder.ref.cfg
            side_bits = np.full(tuple(flags.shape), 8.0 * inter.side_bytes(data) / flags.numel())
            parts = [(side_bits, motion.BLOCK)]
            if flags.any():
                coded_at = inter.coded_positions(flags, k, symbols.shape)
                lengths = self.inter_coder.symbol_lengths(symbols, inter.side(tuple(symbols.shape), k, self.inter_rate, coded_at))
                parts.append((lengths.sum(0).numpy(), cfg.stride))
            return (kind, coded), parts
        token_bits = np.zeros(self.grid)
        tokens, side, layer = self._key_base(data, token_bits)
        symbols, symbol_bits = self.key_coder.symbol_bits(self.key_shape, side, layer)
        parts = [(token_bits, self.m.tokenizer.stride), (symbol_bits.sum(0), self.key_coder.ref.cfg.stride)]
        return (kind, (tokens, torch.from_numpy(symbols))), parts

    @torch.inference_mode()
    def frame(self, kind: int, coded) -> torch.Tensor:
        """The decoded frame (1, 3, H, W) in [-1, 1], 8-bit, which becomes the reference."""
        if kind == INTER:
            if self.reference is None:
                raise FormatError("file is corrupted (a predicted frame before any key frame)")
            y = inter.decode(self.inter_coder, self.reference, coded, self.inter_rate)
        else:
            tokens, symbols = coded
            base = self.tok.decode(torch.from_numpy(tokens)[None].to(self.dev))
            y = decode_refinement(self.key_coder, base, symbols, self.rate)
        self.reference = inter.to_reference(y)
        return self.reference
