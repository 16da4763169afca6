"""Issue-level guarantees on the public evaluation set, with the shipped default model: every
Kodak image's tokens, coded with the encoder's batched pass, decode step by step to the same
tokens, and the bytes do not depend on the thread count."""
import pytest
import torch

from vqzip import codec, zoo
from vqzip.coding.entropy import decode_tokens, encode_tokens

from conftest import KODAK

FILES = sorted(KODAK.glob("*.png"))


@pytest.fixture(scope="module")
def model():
    return zoo.get_model(zoo.resolve().model)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_kodak_tokens_survive_batched_encode_and_stepwise_decode(model, path):
    rgb, _ = codec._open(path)
    tokens = model.tokenizer.encode(codec.to_tensor(rgb, model.tokenizer.stride))[0].numpy()
    before = torch.get_num_threads()
    try:
        payloads, decoded = [], []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            payloads.append(encode_tokens(model.prior, tokens))
            decoded.append(decode_tokens(model.prior, *tokens.shape, payloads[-1]))
    finally:
        torch.set_num_threads(before)
    assert payloads[0] == payloads[1]
    assert all((d == tokens).all() for d in decoded)
    raw_bits = tokens.size * model.tokenizer.cfg.token_bits
    assert len(payloads[0]) * 8 < raw_bits  # the prior must earn its keep on real photos
