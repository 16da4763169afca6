"""Keep-or-change decisions for predicted frames: the encoder keeps the previous frame's token
wherever taking the new one is not worth its bits.

Every frame is tokenized on its own, so in a still scene noise and small changes flip tokens that
buy nothing once decoded; the temporal coder would pay for every flip. For each token the encoder
compares, on decoded pixels against the frame it is coding, the block distortion of keeping the
decoder's previous token with that of the new one, and changes it only where the gain exceeds
lambda times the bits the change costs under the temporal model's current counts:

    change where  MSE(keep) - MSE(new)  >  lambda * bits(change)      (per token's pixel block)

A token's decoded block also depends on its neighbours (the decoder's receptive field), so the
decisions are then checked on the decoded mixed grid: a kept token whose block came out worse than
the rule allows is changed after all. The encoder always refers to
what the decoder will have (the mixed grid and its pixels), never to the freshly tokenized frame.
Only the encoder changes: the decoder and the format do not know that decisions were made.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from .devices import host
from .coding.temporal import TemporalState
from .nn.tokenizer import MARGIN


def block_mse(pixels: torch.Tensor, target: torch.Tensor, stride: int) -> np.ndarray:
    """Mean squared error (0-255 units) over each token's stride x stride block, as an (h, w)
    array; pixels and target are (1, 3, H, W) in [-1, 1]."""
    err = ((pixels.float() - target.float()) * 127.5).square().mean(1, keepdim=True)
    return host(torch.nn.functional.avg_pool2d(err, stride)[0, 0].double())


def change_bits(prev: np.ndarray, new: np.ndarray, state: TemporalState) -> np.ndarray:
    """Estimated bits of changing each token from `prev` to `new` under `state`'s counts: the
    XOR's bits at their per-bit probabilities plus what a change flag costs over a keep flag.
    An estimate (the flags' contexts are left out); the coded bits are whatever the coder spends."""
    p1 = state.xor[:, 1] / state.xor.sum(1)
    xor = (prev ^ new).astype(np.int64)
    flips = (xor[..., None] >> np.arange(state.bits)) & 1
    bits = np.where(flips == 1, -np.log2(p1), -np.log2(1 - p1)).sum(-1)
    zeros, ones = state.flags1.sum(0) + state.flags2.sum(0)
    return bits + np.log2(zeros / ones)


class Decider:
    """Makes the decisions for one clip; `lam` is MSE (0-255 units, per block) per bit."""

    def __init__(self, tokenizer, lam: float, lock=contextlib.nullcontext()):
        self.tok, self.lam, self.lock = tokenizer, lam, lock  # the lock: see video.encode_frames

    def decode(self, tokens: np.ndarray, device) -> torch.Tensor:
        with self.lock:
            return self.tok.decode(torch.from_numpy(tokens)[None].to(device))

    def decode_near(self, grid: np.ndarray, changed: np.ndarray, base: torch.Tensor) -> torch.Tensor:
        """The decoded `grid`, given `base`, the decode of a grid that differs from it only where
        `changed`: only the changed tokens' bounding box is decoded, with MARGIN tokens of
        context, and its pixels within MARGIN / 2 tokens of a change replace base's. (Further
        out a change moves the pixels little; a still scene with a few changes decodes a sliver.)"""
        s, h, w = self.tok.stride, *grid.shape
        ys, xs = np.nonzero(changed)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        crop = max(0, y0 - MARGIN), min(h, y1 + MARGIN), max(0, x0 - MARGIN), min(w, x1 + MARGIN)
        keep = max(0, y0 - MARGIN // 2), min(h, y1 + MARGIN // 2), max(0, x0 - MARGIN // 2), min(w, x1 + MARGIN // 2)
        part = self.decode(np.ascontiguousarray(grid[crop[0]:crop[1], crop[2]:crop[3]]), base.device)
        out = base.clone()
        out[..., keep[0] * s:keep[1] * s, keep[2] * s:keep[3] * s] = part[
            ..., (keep[0] - crop[0]) * s:(keep[1] - crop[0]) * s, (keep[2] - crop[2]) * s:(keep[3] - crop[2]) * s]
        return out

    def decide(self, target: torch.Tensor, new: np.ndarray, new_pixels: torch.Tensor,
               ref: np.ndarray, ref_pixels: torch.Tensor, state: TemporalState) -> tuple[np.ndarray, torch.Tensor]:
        """The grid to code for a frame whose target pixels are `target` and fresh tokens `new`
        (decoded: `new_pixels`), given the decoder's previous grid `ref` (decoded: `ref_pixels`).
        Returns the grid and its decoded pixels, the next frame's reference."""
        s = self.tok.stride
        d_new = block_mse(new_pixels, target, s)
        allowed = d_new + self.lam * np.maximum(change_bits(ref, new, state), 0)
        keep = (new == ref) | (block_mse(ref_pixels, target, s) <= allowed)
        if keep.all():
            return ref.copy(), ref_pixels
        if not keep.any():
            return new.copy(), new_pixels
        mixed = np.where(keep, ref, new)
        pixels = self.decode_near(mixed, mixed != ref, ref_pixels)
        # the receptive field: a kept token next to changed ones decodes differently than alone,
        # so one whose block came out worse than the rule allows is changed after all. Its block
        # then takes the fresh decode's pixels instead of a second decode: the reference pixels
        # are an estimate there (as they are beyond decode_near's margin); the reference tokens
        # stay exact.
        spoiled = keep & (new != ref) & (block_mse(pixels, target, s) > allowed)
        if spoiled.any():
            mixed[spoiled] = new[spoiled]
            up = torch.from_numpy(spoiled).to(pixels.device).repeat_interleave(s, 0).repeat_interleave(s, 1)
            pixels = torch.where(up, new_pixels, pixels)
        return mixed, pixels
