"""The token prior in integer arithmetic, so that its probabilities are the same bits everywhere.

Why this is exact: every value is an int64 in fixed point. Matrix products run in float64 on
integer operands whose partial sums stay below 2^53, so every addition is exact and the result does
not depend on summation order, BLAS, thread count, batch shape or device. Rescaling is an integer
shift; LayerNorm uses integer mean/variance and floor(sqrt()) of a float64 integer (IEEE sqrt is
correctly rounded on every platform); softmax and the output distribution use exp lookup tables
computed with Python's `decimal` module (pure software, the same on every machine). ReLU is the
only non-linearity. Clamps keep every intermediate inside the bounds that make the above hold.

The engine runs the prior's coding schedule group by group with a key/value cache, and the same
`run` drives both encoding and decoding (the caller supplies or receives the tokens).
"""
from __future__ import annotations

import copy
import math
import warnings
from decimal import Decimal, getcontext
from functools import lru_cache

import numpy as np
import torch

from ..devices import host
from ..nn.prior import TokenPrior, group_map, query_ids, window_offsets

# the sparse CSR kernels used here have been stable for years; "beta" refers to the wider API
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

A = 10                 # fractional bits of activations
CLAMP = 2 ** 22 - 1    # |activation| <= 4096.0: keeps q.k sums of 64 terms under 2^53
W_BITS = 12            # |quantized weight| < 2^(W_BITS - 1)
LOGIT = 5              # logits and attention scores in units of 1/32 nat


@lru_cache(maxsize=None)
def exp_table(scale_bits: int, nats: int, floor_one: bool) -> torch.Tensor:
    """round(2^scale_bits * exp(-i/32)) for i in [0, 32*nats), computed with decimal arithmetic."""
    getcontext().prec = 40
    vals = [int((Decimal(-i) / (1 << LOGIT)).exp().scaleb(0) * (1 << scale_bits) + Decimal("0.5"))
            for i in range(nats << LOGIT)]
    if floor_one:
        vals = [max(1, v) for v in vals]
    return torch.tensor(vals, dtype=torch.int64)


ATTN_EXP = exp_table(16, 12, False)   # attention weights; far keys weigh exactly 0
PROB_EXP = exp_table(24, 24, True)    # output distributions; every symbol keeps a nonzero count


def shift_round(a: torch.Tensor, k: int) -> torch.Tensor:
    """Round-half-up a / 2^k on integers."""
    return (a + (1 << (k - 1))) >> k if k > 0 else a << -k


def _clamp(a):
    return a.clamp_(-CLAMP, CLAMP)


def _fdiv(a, b):
    return torch.div(a, b, rounding_mode="floor")


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalizes int activations (frac A) to zero mean, unit variance (frac A); gain and bias are
    folded into the next linear layer."""
    d = x.shape[-1]
    c = x - _fdiv(x.sum(-1, keepdim=True), d)
    var = _fdiv((c * c).sum(-1, keepdim=True), d)
    sd = torch.sqrt(var.double()).floor().long() + 1
    return _fdiv(c << A, sd)


class Linear:
    """y = x W^T + b with W quantized to a per-tensor power-of-two scale."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, out_frac: int = A,
                 ln: torch.nn.LayerNorm | None = None):
        w = weight.detach().double()
        if ln is not None:  # fold LayerNorm gain (elementwise, exact in float64) and bias (integer product below)
            w_plain = w
            w = w * ln.weight.detach().double()
        m = float(w.abs().max())
        e = math.frexp(m)[1] if m > 0 else 0
        self.s = W_BITS - 1 - e
        self.w = torch.round(w * 2.0 ** self.s).T.contiguous()              # (in, out), float64 integers
        b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.detach().double()
        self.b = torch.round(b * 2.0 ** (A + self.s)).long()
        if ln is not None:
            wq = torch.round(w_plain * 2.0 ** self.s).long()
            bq = torch.round(ln.bias.detach().double() * 2.0 ** A).long()
            self.b = self.b + (wq * bq).sum(1)  # int64: exact in any order
        shift = A + self.s - out_frac
        # the output rescale (round half up, then >> shift) done in float64: the half folds into the
        # bias, and scaling by 2^-shift and flooring are exact on integers below 2^53
        self.b = (self.b + (1 << (shift - 1)) if shift > 0 else self.b).double()
        self.scale = 2.0 ** -shift
        if float(self.b.abs().max()) + self.w.shape[0] * 2.0 ** (W_BITS - 1) * CLAMP >= 2.0 ** 53:
            raise ValueError("a bias too large for exact float64 sums (weights far smaller than biases)")

    @classmethod
    def side_by_side(cls, *parts: "Linear") -> "Linear":
        """One layer whose output is the parts' outputs concatenated, the same integers in one
        product instead of several: each column keeps its own power-of-two rescale."""
        out = cls.__new__(cls)
        out.w = torch.cat([p.w for p in parts], 1)
        out.b = torch.cat([p.b for p in parts])
        out.scale = torch.cat([torch.full((p.w.shape[1],), p.scale, dtype=torch.float64) for p in parts])
        return out

    def to(self, device):
        self.w, self.b = self.w.to(device), self.b.to(device)
        if isinstance(self.scale, torch.Tensor):
            self.scale = self.scale.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(self.acc(x), in_place=True)

    def acc(self, x: torch.Tensor) -> torch.Tensor:
        """The bias plus x W, before the rescale: integers below 2^53, exact in any summation order,
        so a caller may also add further rows' products to it (ExactContext's reuse)."""
        return torch.addmm(self.b, x.double(), self.w)

    def finish(self, acc: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """acc rescaled to the output's fixed point (floor) and clamped."""
        return _clamp((acc.mul_(self.scale) if in_place else acc * self.scale).floor_().long())


def _emb(e: torch.nn.Embedding) -> torch.Tensor:
    return torch.round(e.weight.detach().double() * 2.0 ** A).long().clamp(-CLAMP, CLAMP)


class ExactBlock:
    def __init__(self, blk, n_head: int):
        dh = blk.q.weight.shape[0] // n_head
        self.n_head = n_head
        q = Linear(blk.q.weight / math.sqrt(dh), blk.q.bias / math.sqrt(dh), ln=blk.ln1)
        k, v = (Linear(lin.weight, lin.bias, ln=blk.ln1) for lin in (blk.k, blk.v))
        # q, k and v read the same normalized input: one product for the three (the query stream
        # and the content stream's inner layers), one for k and v (its last layer)
        self.qkv, self.kv = Linear.side_by_side(q, k, v), Linear.side_by_side(k, v)
        self.o = Linear(blk.o.weight, blk.o.bias)
        self.fc1 = Linear(blk.fc1.weight, blk.fc1.bias, ln=blk.ln2)
        self.fc2 = Linear(blk.fc2.weight, blk.fc2.bias)
        self.bias = torch.round(blk.rel_bias.detach().double() * (1 << LOGIT)).long()  # (H, W)


class ExactPrior:
    """Integer twin of a trained TokenPrior. `run` codes one token grid group by group. It computes
    on `device` (the same integers on CUDA and the host, faster there) and hands its tables and
    tokens to the coder on the host."""

    def __init__(self, model: TokenPrior, device: str | torch.device = "cpu"):
        # the integer weights are derived from a host copy, so they are the host's integers
        # wherever the float prior sits (the encoder's search moves it to the GPU)
        if any(p.device.type != "cpu" for p in model.parameters()):
            model = copy.deepcopy(model).cpu()
        cfg = model.cfg
        self.device = dev = torch.device(device)
        self.cfg = cfg
        self.emb_hi, self.emb_lo, self.query = _emb(model.emb_hi), _emb(model.emb_lo), _emb(model.query)
        self.blocks = [ExactBlock(b, cfg.n_head) for b in model.blocks]
        # the high half's logits and the low half's input read the same output: one product
        self.heads = Linear.side_by_side(
            Linear(model.head_hi.weight, model.head_hi.bias, out_frac=LOGIT, ln=model.ln_f),
            Linear(model.lo_in.weight, model.lo_in.bias, ln=model.ln_f))
        self.lo_cond = _emb(model.lo_cond)
        self.head_lo = Linear(model.head_lo.weight, model.head_lo.bias, out_frac=LOGIT)
        self.offsets = window_offsets(cfg.window)
        self.attn_exp, self.prob_exp = ATTN_EXP.to(dev), PROB_EXP.to(dev)
        self.emb_hi, self.emb_lo, self.query, self.lo_cond = (
            t.to(dev) for t in (self.emb_hi, self.emb_lo, self.query, self.lo_cond))
        for lin in (self.heads, self.head_lo):
            lin.to(dev)
        for b in self.blocks:
            for lin in (b.qkv, b.kv, b.o, b.fc1, b.fc2):
                lin.to(dev)
            b.bias = b.bias.to(dev)

    # -- pieces -------------------------------------------------------------------------------
    def _attend(self, blk: ExactBlock, x, q, win: "_Window", kbuf, vbuf, self_kv=None):
        """x (n, d) at frac A, with its queries q (n, d), attends to the valid cached neighbours
        listed by `win`, and optionally to its own (k, v). Both products touch only those slots: a
        sampled dense-dense product gives the scores, a sparse matrix of weights times the value
        cache gives the output. Sums of integers in float64 are exact in any order, so the sparse
        kernels' order cannot change a bit."""
        n, d = x.shape
        H = blk.n_head
        q = q.double().reshape(n * H, -1)                                                   # (nH, dh)
        s = torch.sparse.sampled_addmm(win.pattern, q, kbuf.view(win.shape[1], -1).T, beta=0.0).values()
        s = shift_round(s.long(), 2 * A - LOGIT) + blk.bias.view(-1)[win.bias_idx]                 # (nnz,)
        top = torch.full((n * H,), -(1 << 40), dtype=torch.int64, device=x.device)
        top.scatter_reduce_(0, win.row, s, "amax")
        if self_kv is not None:
            ks, vs = (t.reshape(n * H, -1).double() for t in self_kv)
            centre = (self.offsets.shape[0] - 1) // 2
            s_self = shift_round((q * ks).sum(-1).long(), 2 * A - LOGIT) + blk.bias[:, centre].repeat(n)
            top = torch.maximum(top, s_self)
        top_max = self.attn_exp.numel() - 1
        p = self.attn_exp[(top[win.row] - s).clamp_(0, top_max)]
        den = torch.zeros(n * H, dtype=torch.int64, device=x.device).index_add_(0, win.row, p)
        num = win.matrix(p.double()) @ vbuf.view(win.shape[1], -1)                          # (nH, dh)
        if self_kv is not None:
            p_self = self.attn_exp[(top - s_self).clamp_(0, top_max)]
            den += p_self
            num += p_self[:, None].double() * vs
        out = _fdiv(num.long(), den[:, None]).view(n, d)
        return _clamp(x + blk.o(out))

    @staticmethod
    def _mlp(blk: ExactBlock, x):
        return _clamp(x + blk.fc2(blk.fc1(layer_norm(x)).clamp_(min=0)))

    def _probs(self, logits: torch.Tensor) -> np.ndarray:
        top = logits.amax(-1, keepdim=True)
        return host(self.prob_exp[(top - logits).clamp(0, self.prob_exp.numel() - 1)])

    # -- the two streams ----------------------------------------------------------------------
    def _query_stream(self, x, nb, valid, kb, vb):
        win = _Window(nb, valid, self.cfg.n_head, kb[0].shape[0])
        for i, blk in enumerate(self.blocks):
            q, k, v = blk.qkv(layer_norm(x)).chunk(3, 1)
            x = self._mlp(blk, self._attend(blk, x, q, win, kb[i], vb[i], self_kv=(k, v)))
        return layer_norm(x)

    def _content_stream(self, x, pos, nb, valid, kb, vb):
        """Writes the keys/values of the tokens at `pos` into the caches, layer by layer. The last
        layer's output feeds nothing, so its attention and MLP are skipped."""
        win = _Window(nb, valid, self.cfg.n_head, kb[0].shape[0])
        for i, blk in enumerate(self.blocks):
            h = layer_norm(x)
            if i == len(self.blocks) - 1:
                kb[i][pos], vb[i][pos] = blk.kv(h).double().chunk(2, 1)
                break
            q, k, v = blk.qkv(h).chunk(3, 1)
            kb[i][pos], vb[i][pos] = k.double(), v.double()
            x = self._mlp(blk, self._attend(blk, x, q, win, kb[i], vb[i]))

    def _code_group(self, n, pos, code):
        """Both halves of a group's tokens from its query-stream output n."""
        dev = self.device
        pos_np = host(pos)
        logits_hi, lo_in = self.heads(n).split([self.lo_cond.shape[0], self.cfg.d_model], 1)
        hi = torch.as_tensor(code("hi", pos_np, self._probs(logits_hi)), dtype=torch.int64, device=dev)
        u = (lo_in + self.lo_cond[hi]).clamp_(min=0)
        lo = torch.as_tensor(code("lo", pos_np, self._probs(self.head_lo(u))), dtype=torch.int64, device=dev)
        return hi, lo

    def _layout(self, h, w):
        N = h * w
        groups = group_map(h, w, self.cfg.period).reshape(-1).to(self.device)
        nb = _neighbours(h, w, self.cfg.window).to(self.device)
        inside = nb >= 0
        nb = torch.where(inside, nb, N)  # slot N of every cache stays zero: missing neighbours point there
        caches = [[torch.zeros(N + 1, self.cfg.d_model, dtype=torch.float64, device=self.device)
                   for _ in self.blocks] for _ in range(2)]  # float64 holding integers
        return groups, nb, inside, caches

    # -- the schedule -------------------------------------------------------------------------
    def run(self, h: int, w: int, code):
        """Walks the coding schedule of an h x w grid, as a decoder must: group by group. For each
        group and each half of the token it calls code(part, positions, freqs) -> symbols: `part`
        is "hi" or "lo", `positions` the flat grid indices (int64 numpy), `freqs` an (n, K) int64
        numpy array of unnormalized probabilities. Returns the (h, w) int64 token grid."""
        cfg = self.cfg
        groups, nb_all, _, (kb, vb) = self._layout(h, w)
        known = torch.zeros(h * w + 1, dtype=torch.bool, device=self.device)
        tokens = torch.zeros(h * w, dtype=torch.int64, device=self.device)
        n_groups = int(groups.max()) + 1
        for g in range(n_groups):
            pos = (groups == g).nonzero().squeeze(1)
            if len(pos) == 0:
                continue
            nb = nb_all[pos]
            q = self.query[query_ids(groups[pos], cfg.period)]
            n = self._query_stream(q, nb, known[nb], kb, vb)
            hi, lo = self._code_group(n, pos, code)
            tokens[pos] = (hi << cfg.lo_bits) | lo
            if g < n_groups - 1:
                known[pos] = True
                self._content_stream(self.emb_hi[hi] + self.emb_lo[lo], pos, nb, known[nb], kb, vb)
        return tokens.view(h, w).cpu()

    def run_batched(self, tokens: np.ndarray, code):
        """The same calls of `code`, with the same tables, as run() makes for these tokens, but
        computed in one pass over all positions (an encoder knows every token up front). Equal to
        run() bit for bit because every row is the same integer function of the same inputs."""
        cfg = self.cfg
        h, w = tokens.shape
        t = torch.as_tensor(tokens, dtype=torch.int64, device=self.device).reshape(-1)
        hi_all, lo_all = t >> cfg.lo_bits, t & ((1 << cfg.lo_bits) - 1)
        groups, nb, inside, (kb, vb) = self._layout(h, w)
        g_nb = torch.cat([groups, groups.new_tensor([h * w])])[nb]  # the missing-neighbour slot: after everything
        every = torch.arange(h * w, device=self.device)
        self._content_stream(self.emb_hi[hi_all] + self.emb_lo[lo_all], every, nb,
                             inside & (g_nb <= groups[:, None]), kb, vb)
        n = self._query_stream(self.query[query_ids(groups, cfg.period)], nb, inside & (g_nb < groups[:, None]),
                               kb, vb)
        for g in range(int(groups.max()) + 1):
            pos = (groups == g).nonzero().squeeze(1)
            if len(pos):
                self._code_group(n[pos], pos, lambda part, p, f: code(part, p, f))
        return t.view(h, w).cpu()


class _Window:
    """The valid window slots of n queries as the pattern of an (n*H, rows*H) sparse matrix over a
    cache viewed as (rows*H, dh): row (i, head) holds query i's valid slots in that head's columns.
    Built once per stream and shared by its layers."""

    def __init__(self, nb: torch.Tensor, valid: torch.Tensor, H: int, cache_rows: int):
        n, W = nb.shape
        i, h, slot = valid[:, None, :].expand(n, H, W).nonzero(as_tuple=True)  # sorted by row (i, h)
        self.row = i * H + h
        self.col = nb[i, slot] * H + h
        self.bias_idx = h * W + slot
        counts = valid.sum(1).repeat_interleave(H)
        self.crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        self.shape = (n * H, cache_rows * H)
        self.pattern = self.matrix(torch.zeros(self.col.shape, dtype=torch.float64, device=nb.device))

    def matrix(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, values, size=self.shape, check_invariants=False)


@lru_cache(maxsize=8)
def _neighbours(h: int, w: int, r: int) -> torch.Tensor:
    """(N, (2r+1)^2) flat index of each window slot's position, -1 outside the grid."""
    off = window_offsets(r)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ny = yy.reshape(-1, 1) + off[None, :, 0]
    nx = xx.reshape(-1, 1) + off[None, :, 1]
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    return torch.where(inside, ny * w + nx, -1)
