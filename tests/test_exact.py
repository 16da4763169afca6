"""The exact prior: integer arithmetic that matches the float model and gives the same bits on
any thread count and device."""
from pathlib import Path

import numpy as np
import pytest
import torch

from vqzip.entropy import decode_tokens, encode_tokens
from vqzip.exact import ExactPrior, exp_table, layer_norm, A
from vqzip.prior import PriorConfig, TokenPrior

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


def test_batched_pass_chunks_queries_without_changing_bits(monkeypatch):
    prior = ExactPrior(random_prior())
    tok = np.random.default_rng(9).integers(0, 256, (12, 12))
    whole = collect(prior, tok, batched=True)
    orig = ExactPrior._attend_chunked
    monkeypatch.setattr(ExactPrior, "_attend_chunked", lambda self, *a, **k: orig(self, *a, **(k | {"chunk": 5})))
    chunked = collect(prior, tok, batched=True)
    assert all((a[2] == b[2]).all() for a, b in zip(whole, chunked))
