"""The inter layer: a predicted video frame as a refinement of the frame before it.

The refinement layer (refine.py) codes what a picture misses of the image, given that picture
(the base reconstruction) on both sides. A predicted frame is the same problem with the previous
decoded frame as the picture: so the inter layer is a Refiner, trained on pairs of frames
(train/pairs.py) with the prediction in place of the base reconstruction, and coded by the same
RefineCoder. What differs:

- The side information. The context model reads the base tokens and their surprise; a predicted
  frame has no base layer, so both are zeros (`side`). The symbols' own neighbours carry the
  context, and everything the coder reads is integers: the symbols decode the same everywhere,
  whatever the pixels of the prediction came out as on that machine.
- Skipped blocks. Per 16 x 16 block (a base token's area) a flag says whether its symbols are
  coded (`choose_blocks`: a block is skipped where its symbols are all zero, or cost more than
  they save by MSE + lambda * bits with the exact code lengths). A skipped block is the prediction
  copied, and its symbols are not coded at all: the flags cost a fraction of a bit a block under
  an adaptive model, where coding 48 zeros a position under the context model cost 4.6-17 kbit a
  frame of vtest at x3/4 (before the inter layer was trained). Copying also keeps a still
  background exactly still, instead of passing it through the decoder frame after frame.
- The prediction is the previous frame's reconstruction rounded to 8 bits, as the decoder outputs
  it (`to_reference`): the reference is the decoder's own frame, not the encoder's float one.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import motion
from .coding.block_flags import decode_flags, encode_flags
from .errors import FormatError
from .coding.varint import read_varint as _read_varint, varint as _varint
from .coding.refine_entropy import RefineCoder, Side


def side(shape: tuple, ratio: int, rate: int, coded: torch.Tensor | None = None) -> Side:
    """The side information of an inter frame whose symbols are `shape` (C, h, w): no base layer;
    `coded` (h, w) the positions of the blocks that are not skipped."""
    grid = torch.zeros(-(-shape[1] // ratio), -(-shape[2] // ratio), dtype=torch.int64)
    return Side(grid, grid, rate, coded)


def to_reference(y: torch.Tensor) -> torch.Tensor:
    """A decoded frame in [-1, 1] as the decoder outputs it, 8-bit, back in [-1, 1]: what the next
    frame is predicted from."""
    return ((y.float().clamp(-1, 1) + 1) * 127.5).round_() / 127.5 - 1


def _positions(flags: torch.Tensor, k: int) -> torch.Tensor:
    """Block flags (bh, bw) -> the flags of the refinement positions (bh * k, bw * k)."""
    return flags.repeat_interleave(k, 0).repeat_interleave(k, 1)


def _sse(x: torch.Tensor, y: torch.Tensor, block: int) -> torch.Tensor:
    """Per block of block x block pixels: the squared error summed over pixels, averaged over the
    three planes (0-255 units), so that with lam in MSE per bit per pixel, SSE + lam * bits is
    the layer's training objective times the pixels."""
    return F.avg_pool2d(((x - y) * 127.5).square().mean(1, keepdim=True), block)[0, 0].cpu() * block * block


def choose_blocks(coder: RefineCoder, x: torch.Tensor, pred: torch.Tensor, symbols: torch.Tensor, rate: int,
                  lam: float) -> torch.Tensor:
    """Block flags (bh, bw): which blocks of ratio x ratio positions (a base token's area) are
    coded. A block whose symbols are all zero is skipped; one whose symbols cost more than they
    save, SSE + lam * bits against the prediction copied, too. The bits are the exact code lengths
    in the contexts the encoder's symbols make (the flags' own cost is left out); the distortion
    is the decoder's output with the symbols (its reach past a block is left out)."""
    ref, k = coder.ref, coder.ref.cfg.stride_ratio
    pool = lambda t: F.avg_pool2d(t[None, None].double(), k)[0, 0] * k * k
    flags = pool(symbols.abs().sum(0).cpu()) > 0
    if not flags.any() or lam is None:
        return flags
    s = side(tuple(symbols.shape), k, rate, _positions(flags, k))
    bits = pool(coder.symbol_lengths(symbols.cpu(), s).sum(0))  # zero where not coded
    block = ref.stride * k
    full = ref.decode(pred, symbols, rate)
    return flags & (_sse(x, full, block).double() + lam * bits < _sse(x, pred, block).double())


def reconstruct(coder: RefineCoder, pred: torch.Tensor, symbols: torch.Tensor, flags: torch.Tensor,
                rate: int) -> torch.Tensor:
    """The decoded frame: the layer's output in coded blocks, the prediction as it is in skipped
    ones (so that a still background stays exactly as it was, frame after frame)."""
    if not flags.any():
        return pred.clone()
    block = coder.ref.stride * coder.ref.cfg.stride_ratio
    y = coder.ref.decode(pred, symbols.to(pred.device), rate)
    px = _positions(flags, block)[:pred.shape[-2], :pred.shape[-1]].to(pred.device)
    return torch.where(px, y, pred)


def encode(coder: RefineCoder, x: torch.Tensor, ref: torch.Tensor, rate: int, lam: float | None, use_motion: bool = True):
    """Pixels x and the previous decoded frame (1, 3, H, W) -> (bytes, decoded frame (1, 3, H, W)
    in [-1, 1], blocks skipped). `lam` None: only the blocks whose symbols are all zero are
    skipped; `use_motion` False: zero motion. The bytes: the motion vectors' length (varint) and the
    vectors (motion.py), the flags' length and the flags, the coded blocks' symbols."""
    k = coder.ref.cfg.stride_ratio
    mv = motion.search(x, ref) if use_motion else torch.zeros(-(-x.shape[-2] // motion.BLOCK), -(-x.shape[-1] // motion.BLOCK), 2, dtype=torch.int64)
    pred = motion.compensate(ref, mv)
    mv_bytes = motion.encode_vectors(mv)
    symbols = coder.ref.encode(x, pred, rate)
    flags = choose_blocks(coder, x, pred, symbols, rate, lam)
    coded = _positions(flags, k)
    symbols = symbols * coded.to(symbols.device)
    flag_bytes = encode_flags(flags.numpy())
    data = _varint(len(mv_bytes)) + mv_bytes + _varint(len(flag_bytes)) + flag_bytes
    if flags.any():
        data += coder.encode(symbols, side(tuple(symbols.shape), k, rate, coded))
    return data, reconstruct(coder, pred, symbols, flags, rate), int((~flags).sum())


def _part(data: bytes, at: int) -> tuple[bytes, int]:
    n, used = _read_varint(data[at:])
    at += used
    if at + n > len(data):
        raise FormatError("file is corrupted (an inter frame's part runs past it)")
    return data[at:at + n], at + n


def side_bytes(data: bytes) -> int:
    """How many of a predicted frame's bytes are its motion vectors and block flags, with their
    lengths: everything before the symbols."""
    at = 0
    for _ in range(2):
        at = _part(data, at)[1]
    return at


def coded_positions(flags: torch.Tensor, k: int, shape: tuple) -> torch.Tensor:
    """(h, w) which refinement positions of symbols `shape` (C, h, w) are coded, from the flags."""
    return _positions(flags, k)[:shape[1], :shape[2]]


def decode_symbols(coder: RefineCoder, shape: tuple, rate: int, data: bytes):
    """The lossless half: bytes -> (symbols (C, h, w), block flags, motion vectors). It reads no
    pixels, so it can run ahead of the frames' reconstruction."""
    k = coder.ref.cfg.stride_ratio
    blocks = (-(-shape[1] // k), -(-shape[2] // k))
    mv_bytes, at = _part(data, 0)
    mv = motion.decode_vectors(blocks, mv_bytes)
    flag_bytes, at = _part(data, at)
    flags = torch.from_numpy(decode_flags(blocks, flag_bytes))
    if not flags.any():
        return torch.zeros(shape, dtype=torch.int64), flags, mv
    coded = coded_positions(flags, k, shape)
    return torch.from_numpy(coder.decode(shape, side(shape, k, rate, coded), data[at:])), flags, mv


def decode(coder: RefineCoder, ref: torch.Tensor, coded: tuple, rate: int) -> torch.Tensor:
    """The decoded frame from the previous one and what decode_symbols gave."""
    symbols, flags, mv = coded
    return reconstruct(coder, motion.compensate(ref, mv), symbols, flags, rate)
