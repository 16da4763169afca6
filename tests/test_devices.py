"""The device rule, checked on a machine without a GPU: the lossless stage's integer tables, symbols
and token grids live on the host, and its entry functions take them there themselves
(devices.host), so tensors may come from any device; the exact prior follows the codec's device
when it is CUDA; the refinement's tables freeze on the device its rate model trained on."""
import numpy as np
import pytest
import torch
from PIL import Image

from vqzip import codec, zoo
from vqzip.devices import host
from vqzip.coding.entropy import decode_tokens, encode_tokens
from vqzip.coding.exact import ExactPrior
from vqzip.nn.refine import RefineConfig, Refiner
from vqzip.coding.refine_entropy import RefineCoder
from vqzip.coding.temporal import TemporalState, decode_predicted, encode_predicted

from conftest import SEARCHED, SMALL, macaw
from test_exact import random_prior
from test_refine import random_refiner, random_side


class OnAccelerator(torch.Tensor):
    """Stands in for a tensor on a GPU: its .numpy() raises as a CUDA tensor's does ("can't convert
    cuda:0 device type tensor to numpy"), operations on it give OnAccelerator again, as they keep a
    CUDA tensor on its device (Module.to(cpu) included), and only .cpu() brings it to the host."""

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert an OnAccelerator tensor to numpy: bring it to the host first")

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor)


def away(x) -> OnAccelerator:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).as_subclass(OnAccelerator)


def test_the_stand_in_fails_where_a_gpu_tensor_does():
    t = away(np.arange(4))
    with pytest.raises(TypeError):
        t.numpy()
    with pytest.raises(TypeError):
        (t[1:] + 1).numpy()  # operations keep it off the host
    assert np.array_equal(host(t), np.arange(4)) and np.array_equal(host(np.arange(4)), np.arange(4))


@pytest.mark.parametrize("entropy", ["tables", "context"])
def test_the_refinement_coder_takes_tables_and_symbols_from_any_device(entropy):
    r = random_refiner(8, entropy)
    side, symbols = random_side(8)
    want = RefineCoder(r).encode(symbols, side)
    r.tables = away(r.tables)  # the layer's buffers, as a refiner moved to a GPU has them
    if entropy == "context":
        for lin in (r.context.fc1, r.context.fc2, r.context.out):
            lin.weight.data = away(lin.weight.data)
    coder = RefineCoder(r)
    assert coder.encode(away(symbols), side) == want
    back = coder.decode(symbols.shape, side, want)
    assert isinstance(back, np.ndarray) and np.array_equal(back, symbols)


def test_the_token_coders_take_grids_from_any_device():
    prior = ExactPrior(random_prior(period=4))
    tokens = np.random.default_rng(0).integers(0, 256, (5, 7))
    assert encode_tokens(prior, away(tokens)) == encode_tokens(prior, tokens)
    prev = tokens ^ (np.random.default_rng(1).random(tokens.shape) < 0.3)
    want = encode_predicted(prev, tokens, TemporalState(8))
    assert encode_predicted(away(prev), away(tokens), TemporalState(8)) == want
    assert np.array_equal(decode_predicted(away(prev), want, TemporalState(8)), tokens)
    assert np.array_equal(decode_tokens(prior, 5, 7, encode_tokens(prior, tokens)), tokens)


def test_the_codec_codes_with_a_refiner_that_sits_on_an_accelerator():
    """The CUDA crash of issue 27: the refiner follows the codec to the GPU, its tables with it, and
    the codec read them with .numpy(). Encoding at effort 1 also runs the refinement search."""
    img = macaw(SEARCHED)
    want = {e: codec.encode_image(img, quality=2, effort=e) for e in (0, 1)}
    pixels = codec.decode(want[1]).tobytes()
    ref = zoo.get_model(zoo.resolve(quality=2).model).refiner
    tables = ref.tables
    ref.tables = away(tables)  # a buffer: pytest's monkeypatch would delete it on undo
    try:
        for effort, data in want.items():
            assert codec.encode_image(img, quality=2, effort=effort) == data
        assert isinstance(ref.tables, OnAccelerator)  # still away after the codec moved the refiner
        assert codec.decode(want[1]).tobytes() == pixels
    finally:
        ref.tables = tables


def test_freezing_the_tables_follows_the_rate_model_device():
    """The trainer's crash at its end on CUDA: edges made on the host, the rate model on the GPU.
    The meta device computes shapes alone and refuses to mix with the host as CUDA does."""
    r = Refiner(RefineConfig(channels=4, levels=3, widths=(8, 8, 8, 8), entropy="tables")).to("meta")
    r.freeze_tables()
    assert r.tables.device.type == "meta" and r.tables.shape == (len(r.cfg.rates), r.cfg.contexts, 4, 7)
    assert r.tables.dtype == torch.int32


def test_the_exact_prior_follows_a_cuda_device_and_the_host_stays_the_reference(monkeypatch):
    m = zoo.get_model(zoo.resolve().model)
    assert m.exact_prior(None) is m.prior and m.exact_prior(torch.device("cpu")) is m.prior
    made = []

    class Recorded:
        def __init__(self, model, device="cpu"):
            made.append(device)
    monkeypatch.setattr("vqzip.coding.exact.ExactPrior", Recorded)
    fresh = zoo.Model(m.name, m.path)  # an empty cache of priors
    cuda = torch.device("cuda", 0)
    first = fresh.exact_prior(cuda)
    assert fresh.exact_prior(cuda) is first and made == [cuda]  # built once, on that device


def test_the_codec_asks_for_the_exact_prior_on_its_own_device(monkeypatch):
    asked = []
    real = zoo.Model.exact_prior
    monkeypatch.setattr(zoo.Model, "exact_prior", lambda self, device=None: asked.append(device) or real(self, device))
    img = Image.fromarray(np.asarray(macaw(SMALL))[:40, :56])
    for q in (1, 2):  # a base layer alone, and one with the refinement
        data = codec.encode_image(img, quality=q, effort=0, device="cpu")
        codec.decode(data, device="cpu")
    assert asked and all(d == torch.device("cpu") for d in asked)
