"""The exact prior: integer arithmetic that matches the float model and gives the same bits on
any thread count and device."""
from pathlib import Path

import numpy as np
import pytest
import torch

from vqzip.coding.entropy import decode_tokens, encode_tokens
from vqzip.coding.exact import ExactPrior, exp_table, layer_norm, A, CLAMP, LOGIT
from vqzip.nn.prior import PriorConfig, TokenPrior

ROOT = Path(__file__).resolve().parents[1]


def random_prior(seed=0, **kw):
    torch.manual_seed(seed)
    m = TokenPrior(PriorConfig(**({"d_model": 64, "n_layer": 2, "token_bits": 8} | kw)))
    for p in m.parameters():  # far from init, so that every term matters
        p.data.normal_(0, 0.2)
    return m.eval()


def collect(prior: ExactPrior, tokens: np.ndarray, batched: bool = False):
    """Every frequency table of the schedule, in order, with the symbols coded."""
    flat = tokens.reshape(-1)
    out = []

    def code(part, pos, freqs):
        sym = flat[pos] >> prior.cfg.lo_bits if part == "hi" else flat[pos] & ((1 << prior.cfg.lo_bits) - 1)
        out.append((part, pos.copy(), freqs.copy(), sym))
        return sym

    got = prior.run_batched(tokens, code) if batched else prior.run(*tokens.shape, code)
    assert (got.numpy() == tokens).all()
    return out


def test_exact_matches_float_model():
    m = random_prior()
    t = torch.randint(0, 256, (1, 9, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        lh, ll = m(t)
    float_bits = exact_bits = 0.0
    hi, lo = m.split(t.reshape(1, -1))
    for part, pos, freqs, sym in collect(ExactPrior(m), t[0].numpy()):
        ref = (lh if part == "hi" else ll)[0][pos].softmax(-1).numpy()
        p = freqs / freqs.sum(1, keepdims=True)
        # logits are kept to 1/32 nat, so probabilities agree to about 1.6 %
        assert np.allclose(p, ref, rtol=0.05, atol=1e-3)
        target = (hi if part == "hi" else lo)[0][pos].numpy()
        float_bits -= np.log2(ref[np.arange(len(pos)), target]).sum()
        exact_bits -= np.log2(p[np.arange(len(pos)), target]).sum()
    assert abs(exact_bits - float_bits) < 0.01 * float_bits


def test_integer_layer_norm_matches_float():
    x = torch.randn(7, 64, generator=torch.Generator().manual_seed(0)) * 3
    got = layer_norm(torch.round(x * 2 ** A).long()).double() / 2 ** A
    assert (got - torch.nn.functional.layer_norm(x.double(), (64,))).abs().max() < 3e-3


def test_exp_tables_are_fixed():
    # decimal arithmetic makes these tables the same everywhere; pin a few entries
    t = exp_table(16, 12, False)
    assert t[0] == 65536 and t[32] == 24109 and t[-1] == 0
    assert exp_table(24, 24, True).min() == 1


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (9, 70)])
def test_tokens_round_trip_through_the_coder(shape):
    prior = ExactPrior(random_prior(period=4))
    tok = np.random.default_rng(0).integers(0, 256, shape)
    data = encode_tokens(prior, tok)
    assert (decode_tokens(prior, *shape, data) == tok).all()


def test_thread_count_does_not_change_bytes():
    prior = ExactPrior(random_prior(d_model=128, n_layer=2))
    tok = np.random.default_rng(3).integers(0, 256, (24, 40))
    before = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 4):
            torch.set_num_threads(n)
            outs.append(encode_tokens(prior, tok))
    finally:
        torch.set_num_threads(before)
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize("shape,period", [((7, 13), 4), ((16, 16), 2), ((3, 40), 1), ((5, 6), 0)])
def test_batched_pass_equals_step_by_step(shape, period):
    """The encoder's one-pass evaluation and the decoder's group-by-group walk give identical tables."""
    prior = ExactPrior(random_prior(period=period, window=3))
    tok = np.random.default_rng(7).integers(0, 256, shape)
    step, batch = collect(prior, tok), collect(prior, tok, batched=True)
    assert len(step) == len(batch)
    for a, b in zip(step, batch):
        assert a[0] == b[0] and (a[1] == b[1]).all() and (a[2] == b[2]).all()


def _dense_attend(prior, blk, x, nb, valid, kbuf, vbuf, self_kv=None):
    """The attention of ExactPrior._attend written the plain way: gather each query's window."""
    n, d = x.shape
    H = blk.n_head
    q = blk.qkv(layer_norm(x))[:, :d].view(n, H, 1, -1)
    k, v = kbuf[nb].long().view(n, -1, H, d // H).transpose(1, 2), vbuf[nb].long().view(n, -1, H, d // H).transpose(1, 2)
    sh = 2 * A - LOGIT                                                        # scores in 1/32 nat, rounded
    s = ((q * k).sum(-1) + (1 << (sh - 1))) >> sh
    s = s + blk.bias[None]
    mask = valid[:, None].expand_as(s)
    if self_kv is not None:
        ks, vs = (t.view(n, H, 1, -1) for t in self_kv)
        centre = (blk.bias.shape[1] - 1) // 2
        s = torch.cat([s, (((q * ks).sum(-1) + (1 << (sh - 1))) >> sh) + blk.bias[None, :, centre, None]], -1)
        k, v = torch.cat([k, ks], 2), torch.cat([v, vs], 2)
        mask = torch.cat([mask, torch.ones(n, H, 1, dtype=torch.bool)], -1)
    top = s.masked_fill(~mask, -(1 << 40)).amax(-1, keepdim=True)
    p = prior.attn_exp[(top - s).clamp(0, prior.attn_exp.numel() - 1)] * mask
    out = torch.div((p[..., None] * v).sum(2), p.sum(-1, keepdim=True), rounding_mode="floor").reshape(n, d)
    return (x + blk.o(out)).clamp(-CLAMP, CLAMP)


@pytest.mark.parametrize("with_self", [False, True])
def test_sparse_attention_equals_gathered_windows(with_self):
    """_attend's sparse products give the same integers as gathering every window."""
    from vqzip.coding.exact import _Window
    prior = ExactPrior(random_prior(window=2))
    blk = prior.blocks[0]
    g = torch.Generator().manual_seed(5)
    n, N, d = 30, 50, prior.cfg.d_model
    kbuf, vbuf = (torch.randint(-2 ** 14, 2 ** 14, (N + 1, d), generator=g).double() for _ in range(2))
    x = torch.randint(-2 ** 12, 2 ** 12, (n, d), generator=g)
    nb = torch.randint(0, N + 1, (n, 25), generator=g).sort(1).values
    valid = torch.rand(n, 25, generator=g) < 0.5
    valid[:, 0] |= not with_self  # without its own (k, v) a query needs one valid key
    kv = tuple(torch.randint(-2 ** 14, 2 ** 14, (n, d), generator=g) for _ in range(2)) if with_self else None
    q = blk.qkv(layer_norm(x))[:, :d]
    got = prior._attend(blk, x, q, _Window(nb, valid, blk.n_head, N + 1), kbuf, vbuf, kv)
    assert torch.equal(got, _dense_attend(prior, blk, x, nb, valid, kbuf, vbuf, kv))


def test_every_partial_sum_of_the_shipped_prior_is_exact():
    """The bound behind 'exact in any order': in every product of the shipped prior, the bias plus
    any subset of the terms stays below 2^53, from the weights themselves and the largest
    activation each layer can be fed (the clamp, LayerNorm's sqrt(d) * 2^A, or the low half's
    input: a clamped output plus a clamped embedding, up to 2 * CLAMP)."""
    from vqzip import zoo
    from vqzip.coding.exact import ATTN_EXP, Linear
    prior = zoo.get_model(zoo.resolve().model).prior
    d = prior.cfg.d_model
    assert int(d ** 0.5 + 1) << A <= CLAMP  # LayerNorm's output: |c| <= sqrt(d * var) = sqrt(d) sd

    def worst(lin: Linear, x_max: int) -> float:
        return float((lin.b.abs() + x_max * lin.w.abs().sum(0)).max())

    layers = [(lin, CLAMP) for b in prior.blocks for lin in (b.qkv, b.kv, b.o, b.fc1, b.fc2)]
    layers += [(prior.heads, CLAMP), (prior.head_lo, 2 * CLAMP)]
    assert max(worst(lin, x) for lin, x in layers) < 2 ** 53
    # attention: a score sums head_dim products of a clamped query and key; an output sums, over the
    # window and the query itself, an exp-table weight times a clamped value
    window = (2 * prior.cfg.window + 1) ** 2 + 1
    assert d // prior.cfg.n_head * CLAMP ** 2 < 2 ** 53
    assert window * int(ATTN_EXP.max()) * CLAMP < 2 ** 53
