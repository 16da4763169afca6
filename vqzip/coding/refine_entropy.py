"""The refinement symbols' range coding, driven by integer models only, so that encoder and decoder
use the same frequencies on every machine, thread count, batch shape and device.

Two rate models (RefineConfig.entropy):

- **"context"** (refine_context.py): `ExactContext` is the integer twin of the learned context
  model, built like the base prior's (exact.py): weights rounded to fixed point, products in
  float64 on integers whose sums stay far below 2^53 (exact in any summation order), integer
  rescaling and ReLU. Its mean and log-scale are rounded onto a grid that indexes the integer
  tables stored with the weights. Symbols are coded step by step (checkerboard pass x channel
  group), each step's features made by refine_context.step_features from what is already decoded.
- **"tables"** (the first refinement layer; kept so that its files decode): one integer table per
  (rate, context, channel), the context being a bucket of the base prior's surprise (an integer
  read off the exact prior's tables, entropy.surprise_bits) and, in the second checkerboard pass,
  of the four first-pass neighbours' summed magnitude.

Every function here takes host tensors and numpy arrays: the codec moves what it hands over.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..nn import refine_context as rc
from ..devices import host
from .entropy import FAMILY, decode_symbols, finish, new_decoder, new_encoder
from .exact import A, Linear, shift_round
from ..nn.refine import Refiner

CHUNK = 1 << 16  # symbols per range-coder call, and positions per band of rows: bounds the memory
REUSE_BYTES = 256 << 20  # at most this much is kept of a pass's first step for its later ones


@dataclass
class Side:
    """What the decoder knows before the refinement layer: the base tokens and their surprise
    (hb, wb) int64 on the base grid, and the rate level. `coded` (h, w) bool, if given, marks the
    positions whose symbols are coded; the others are zero and cost nothing (the inter layer's
    skipped blocks, inter.py)."""
    tokens: torch.Tensor
    surprise: torch.Tensor
    rate: int
    coded: torch.Tensor | None = None


class ExactContext:
    """Integer twin of a trained RefineContext: features -> indices of the coder's tables."""

    def __init__(self, ref: Refiner):
        ctx, cfg = ref.context, ref.cfg
        self.cfg, self.ratio = cfg, cfg.stride_ratio
        # the integer twin lives on the host, wherever the float model runs
        p = {k: torch.from_numpy(host(v)) for k, v in ctx.state_dict().items()}
        # the float model divides its integer inputs by powers of two: folded into the first layer
        # (exact), which then reads the integers in the fixed point of every activation (frac A)
        scale = torch.from_numpy(host(ctx.scale)).double()[None]
        self.layers = [Linear(p["fc1.weight"].double() * scale, p["fc1.bias"]), Linear(p["fc2.weight"], p["fc2.bias"]),
                       Linear(p["out.weight"], p["out.bias"])]
        self.skip = Linear(p["skip.weight"].double() * scale, None)
        self.tables = host(ref.tables)
        self.n_mu, self.n_ls = self.tables.shape[:2]
        self.ls_offset = -int(np.floor(rc.LOG_SCALE_RANGE[0] * (1 << rc.LS_STEP_BITS)))

    def indices(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (N, F) int64 -> (mu index, log-scale index), each (N, C) int64."""
        return self._rest(*self._inputs(feats << A))

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two layers that read the features (the MLP's first, the linear path), before their
        rescale: float64 integers, to which further inputs' products may be added exactly."""
        return self.layers[0].acc(x), self.skip.acc(x)

    def _rest(self, acc1: torch.Tensor, acc_skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.layers[0].finish(acc1).clamp_(min=0)
        h = self.layers[1](h).clamp_(min=0)
        h = self.layers[2](h)
        mu, ls = (h + self.skip.finish(acc_skip)).chunk(2, 1)  # both in the fixed point of activations: an integer sum
        mu_i = (shift_round(mu, A - rc.MU_STEP_BITS) + (self.n_mu >> 1)).clamp_(0, self.n_mu - 1)
        ls_i = (shift_round(ls, A - rc.LS_STEP_BITS) + self.ls_offset).clamp_(0, self.n_ls - 1)
        return mu_i, ls_i

    def _later_group(self, acc1, acc_skip, own: torch.Tensor, t0: int, t: int):
        """The first layers' accumulators at step t of a pass from those of its first step t0.
        Only the position's own earlier groups (zero at t0) and the step's one-hot differ
        (rc.group_steps_share_features); their products are added to the pass's first
        accumulators, the same integers as computing the step's whole features anew (sums of
        integers below 2^53), for a fraction of the work. own (N, C): the position's symbols of
        groups coded before t."""
        C = own.shape[1]
        st = rc.step_onehot_at(self.cfg, self.ratio)
        x = torch.cat([own, own.abs()], 1).double() * (1 << A)
        out = []
        for acc, layer in ((acc1, self.layers[0]), (acc_skip, self.skip)):
            w = layer.w
            out.append(torch.addmm(acc + (w[st + t] - w[st + t0]) * (1 << A), x, w[:2 * C]))
        return out

    def steps(self, symbols: torch.Tensor, side: Side):
        """For each coding step and band of rows, in coding order: (rows, the step's positions (h', w)
        and channels (C,) as masks, the frequency rows (n_pos, n_chans, 2L+1) of its symbols, taken
        position-major as _step_symbols orders them). `symbols` (C, h, w) is read as the decoder
        would have it: only what earlier steps coded matters, so the decoder passes its partly
        filled grid."""
        C, h, w = symbols.shape
        key = rc.order_key(self.cfg, h, w)
        rate = torch.tensor([side.rate])
        band = max(1, CHUNK // max(1, w))
        G = len(self.cfg.context_groups) + 1
        group = rc.group_of_channel(C, self.cfg.context_groups)
        # a pass's first accumulators are kept for its later steps (_later_group) where they fit
        row_bytes = 8 * (self.layers[0].w.shape[1] + self.skip.w.shape[1])
        reuse = rc.group_steps_share_features(self.cfg) and (h * w // 4 + w) * row_bytes <= REUSE_BYTES
        for t in range(rc.n_steps(self.cfg)):
            g = t % G
            if g == 0:
                kept = {}  # a new pass
            for r0 in range(0, h, band):
                rows = slice(r0, min(h, r0 + band))
                mine = key[:, rows] == t
                pos, chans = mine.any(0), mine.any(2).any(1)  # this step's positions in the band, and channels
                if side.coded is not None:
                    pos = pos & side.coded[rows]
                if not pos.any():
                    continue
                if r0 in kept:
                    own = symbols[:, rows][:, pos].T * (group < g)  # (n, C): the groups coded before t
                    acc = self._later_group(*kept[r0], own, t - g, t)
                else:
                    feats = rc.step_features(self.cfg, symbols[None], key, t, side.tokens[None], side.surprise[None],
                                             rate, self.ratio, rows, at=pos)[0]
                    acc = self._inputs(feats.T << A)
                    if reuse:
                        kept[r0] = acc
                mu_i, ls_i = self._rest(*acc)
                yield rows, pos, chans, self.tables[mu_i[:, chans].numpy(), ls_i[:, chans].numpy()]


def _step_symbols(symbols: torch.Tensor, rows: slice, pos: torch.Tensor, chans: torch.Tensor) -> torch.Tensor:
    """A step's symbols, position-major (n_pos, n_chans): the order its frequency rows come in."""
    return symbols[:, rows][chans][:, pos].T


def _set_step(grid: torch.Tensor, rows: slice, pos: torch.Tensor, chans: torch.Tensor, values: torch.Tensor):
    """The inverse of _step_symbols: writes a step's values (n_pos, n_chans, ...) into grid (C, h, w, ...)."""
    band = grid[:, rows]  # a view: writing it fills grid
    sub = band[chans]     # a copy (boolean index): written back whole
    sub[:, pos] = values.transpose(0, 1)
    band[chans] = sub


def encode_context(coder: ExactContext, symbols: np.ndarray, side: Side, levels: int) -> bytes:
    enc = new_encoder()
    s = torch.as_tensor(symbols, dtype=torch.int64)
    for rows, pos, chans, freqs in coder.steps(s, side):
        sym = (_step_symbols(s, rows, pos, chans) + levels).reshape(-1).numpy().astype(np.int32)
        freqs = freqs.reshape(-1, freqs.shape[-1])
        for part in _chunks(len(sym)):
            enc.encode(sym[part], FAMILY, freqs[part].astype(np.float64))
    return finish(enc)


def decode_context(coder: ExactContext, shape: tuple, side: Side, levels: int, data: bytes) -> np.ndarray:
    dec = new_decoder(data)
    s = torch.zeros(shape, dtype=torch.int64)
    for rows, pos, chans, freqs in coder.steps(s, side):
        freqs = freqs.reshape(-1, freqs.shape[-1])
        got = np.concatenate([decode_symbols(dec, freqs[part]) for part in _chunks(len(freqs))]) - levels
        _set_step(s, rows, pos, chans, torch.from_numpy(got).reshape(int(pos.sum()), int(chans.sum())))
    return s.numpy()


def context_code_lengths(coder: ExactContext, symbols: torch.Tensor, side: Side) -> torch.Tensor:
    """(C, h, w, 2L+1) the code length in bits of every value of every symbol, in the context the
    given symbols make (what the encoder's search prices moves with)."""
    out = torch.zeros(*symbols.shape, coder.tables.shape[-1], dtype=torch.float64)
    for rows, pos, chans, freqs in coder.steps(symbols, side):
        t = torch.from_numpy(freqs).double()
        _set_step(out, rows, pos, chans, -(t / t.sum(-1, keepdim=True)).log2())  # (n_pos, n_chans, 2L+1)
    return out


def context_symbol_lengths(coder: ExactContext, symbols: torch.Tensor, side: Side, levels: int) -> torch.Tensor:
    """(C, h, w) float64: the code length in bits of each of `symbols`, in the context they make
    (zero where side.coded leaves a position out): context_code_lengths at the coded values alone,
    a fraction of its work where the encoder only needs what its symbols cost."""
    out = torch.zeros(symbols.shape, dtype=torch.float64)
    for rows, pos, chans, freqs in coder.steps(symbols, side):
        sym = _step_symbols(symbols, rows, pos, chans).numpy() + levels          # (n_pos, n_chans)
        f = np.take_along_axis(freqs, sym[..., None], -1)[..., 0]
        _set_step(out, rows, pos, chans, torch.from_numpy(np.log2(freqs.sum(-1) / f)))
    return out


# -- "tables": the first refinement layer -------------------------------------------------------

def contexts_of(ref: Refiner, side: Side) -> torch.Tensor:
    """(C, h, w) every position's first-pass context under the static tables."""
    return rc.first_pass_contexts(ref.cfg, side.surprise[None], ref.cfg.base_stride, ref.cfg.channels)[0]


def _chunks(n: int):
    for a in range(0, n, CHUNK):
        yield slice(a, min(n, a + CHUNK))


def encode_tables(tables: np.ndarray, levels: int, symbols: np.ndarray, ctx_first: torch.Tensor) -> bytes:
    """symbols (C, h, w) in [-levels, levels]; tables (K, C, 2L+1) of the chosen rate; ctx_first
    (C, h, w) from first_pass_contexts -> bytes."""
    enc = new_encoder()
    s = torch.as_tensor(symbols, dtype=torch.int64)
    ctx_all = rc.second_pass_contexts(ctx_first[None], s[None])[0]
    second = rc.second_pass(*s.shape[-2:])
    for mask in (~second, second):  # the decoder's order: every channel of a pass, then the next pass
        for c in range(s.shape[0]):
            sym, cx = (s[c][mask] + levels).numpy(), ctx_all[c][mask].numpy()
            for part in _chunks(len(sym)):
                enc.encode(sym[part].astype(np.int32), FAMILY, tables[cx[part], c].astype(np.float64))
    return finish(enc)


def decode_tables(tables: np.ndarray, levels: int, ctx_first: torch.Tensor, data: bytes) -> np.ndarray:
    """Inverse of encode_tables: the (C, h, w) symbols."""
    dec = new_decoder(data)
    s = torch.zeros(ctx_first.shape, dtype=torch.int64)
    second = rc.second_pass(*s.shape[-2:])
    _decode_pass(dec, tables, levels, s, ~second, ctx_first)
    _decode_pass(dec, tables, levels, s, second, rc.second_pass_contexts(ctx_first[None], s[None])[0])
    return s.numpy()


def _decode_pass(dec, tables, levels, s, mask, ctx):
    for c in range(s.shape[0]):
        cx = ctx[c][mask].numpy()
        out = [decode_symbols(dec, tables[cx[part], c]) for part in _chunks(len(cx))]
        s[c][mask] = torch.from_numpy(np.concatenate(out) - levels) if out else s[c][mask]


def tables_code_lengths(ref: Refiner, symbols: torch.Tensor, side: Side) -> torch.Tensor:
    """The static tables' twin of context_code_lengths."""
    t = ref.tables[side.rate].double()
    lengths = -(t / t.sum(-1, keepdim=True)).log2()                      # (K, C, 2L+1)
    ctx = rc.second_pass_contexts(contexts_of(ref, side)[None], symbols[None])[0]
    return lengths[ctx, torch.arange(ctx.shape[0])[:, None, None].expand_as(ctx)]


# -- one entry point per direction, whichever the rate model --------------------------------------

class RefineCoder:
    """A refinement layer's lossless stage: its symbols to bytes and back, and their code lengths."""

    def __init__(self, ref: Refiner):
        self.ref = ref
        self.levels = ref.cfg.levels
        self.exact = ExactContext(ref) if ref.cfg.entropy == "context" else None

    def encode(self, symbols, side: Side) -> bytes:
        """symbols (C, h, w), a tensor on any device or an array -> bytes."""
        symbols = host(symbols)
        if self.exact:
            return encode_context(self.exact, symbols, side, self.levels)
        return encode_tables(host(self.ref.tables[side.rate]), self.levels, symbols, contexts_of(self.ref, side))

    def decode(self, shape: tuple, side: Side, data: bytes) -> np.ndarray:
        if self.exact:
            return decode_context(self.exact, shape, side, self.levels, data)
        return decode_tables(host(self.ref.tables[side.rate]), self.levels, contexts_of(self.ref, side), data)

    def code_lengths(self, symbols: torch.Tensor, side: Side) -> torch.Tensor:
        """(C, h, w, 2L+1) float64: each value's code length in the context `symbols` make."""
        if self.exact:
            return context_code_lengths(self.exact, symbols, side)
        return tables_code_lengths(self.ref, symbols, side)

    def symbol_lengths(self, symbols: torch.Tensor, side: Side) -> torch.Tensor:
        """(C, h, w) float64: each symbol's code length in the context `symbols` make."""
        if self.exact:
            return context_symbol_lengths(self.exact, symbols, side, self.levels)
        return self.code_lengths(symbols, side).gather(-1, (symbols + self.levels)[..., None])[..., 0]

    def symbol_bits(self, shape: tuple, side: Side, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """Decodes the layer, and gives each symbol's code length in bits (C, h, w), -log2(freq /
        total) in the table it was coded with (`vqzip info --heatmap`)."""
        symbols = self.decode(shape, side, data)
        s = torch.from_numpy(symbols)
        return symbols, self.code_lengths(s, side).gather(-1, (s + self.levels)[..., None])[..., 0].numpy()
