"""Keep-or-change decisions on predicted frames (vqzip/decisions.py): a still clip with sensor
noise costs a fraction of what it costs without them, the decoder gets exactly the grids the
encoder chose, and the video ladder carries the decisions' lambda."""
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import KODAK
from vqzip import video, zoo
from vqzip.decisions import Decider, block_mse, change_bits
from vqzip.errors import ModelError
from vqzip.coding.temporal import TemporalState

VIDEO = replace(zoo.resolve(kind="video_tokens"), scale=Fraction(1))  # the default decisions, tokens at the clip's size
OFF = replace(VIDEO, lam=None)


def _noisy_still(n=10, w=256, h=192, sigma=8.0, seed=0):
    """One picture held still, with fresh Gaussian sensor noise in every frame."""
    a = np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB").crop((200, 100, 200 + w, 100 + h)), float)
    rng = np.random.default_rng(seed)
    return [np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).round().astype(np.uint8) for _ in range(n)]


def _psnr(frames, out):
    err = np.mean([(o.astype(float) - f) ** 2 for o, f in zip(out, frames)])
    return 10 * np.log10(255 ** 2 / err)


@pytest.fixture(scope="module")
def noisy():
    frames = _noisy_still()
    on = video.encode_frames(frames, 256, 192, Fraction(25), VIDEO, "cpu")
    off = video.encode_frames(frames, 256, 192, Fraction(25), OFF, "cpu")
    return frames, on, off


def test_noise_on_a_still_clip_costs_a_quarter_of_the_bits_or_less(noisy):
    frames, on, off = noisy
    a, b = video.info(on), video.info(off)
    assert a["key_frames"] == b["key_frames"] == 1 and a["bits_per_key_frame"] == b["bits_per_key_frame"]
    assert b["bits_per_predicted_frame"] > 100  # the noise does flip tokens without the decisions
    assert a["bits_per_predicted_frame"] <= 0.25 * b["bits_per_predicted_frame"]
    # the bits saved bought (almost) nothing
    quality_on = _psnr(frames, video.decode_frames(video.parse(on), "cpu"))
    quality_off = _psnr(frames, video.decode_frames(video.parse(off), "cpu"))
    assert quality_on > quality_off - 0.3


def test_each_decoded_token_is_the_fresh_one_or_the_decoders_last(noisy):
    """The encoder refers to what the decoder has: every coded token is either the frame's own
    (tokenized alone) or the one the decoder held for the frame before."""
    frames, on, off = noisy
    fresh = [t for _, t in video.decode_tokens_of(video.parse(off))]  # no decisions: the tokenizer's own
    coded = [t for _, t in video.decode_tokens_of(video.parse(on))]
    np.testing.assert_array_equal(coded[0], fresh[0])
    kept = 0
    for i in range(1, len(frames)):
        assert ((coded[i] == fresh[i]) | (coded[i] == coded[i - 1])).all()
        kept += int(((coded[i] == coded[i - 1]) & (coded[i] != fresh[i])).sum())
    assert kept > 0


def test_change_bits_grow_with_the_bits_flipped():
    s = TemporalState(20)
    prev = np.zeros((1, 3), np.int64)
    new = np.array([[0b1, 0b111, 0b1111111]])
    bits = change_bits(prev, new, s)
    assert 0 < bits[0, 0] < bits[0, 1] < bits[0, 2]


def test_block_mse_is_per_token_block():
    target = torch.zeros(1, 3, 32, 48)
    pixels = target.clone()
    pixels[..., 16:, 32:] = 4 / 255  # two levels (of 2 / 255 each in [-1, 1]) off in one 16x16 block
    got = block_mse(pixels, target, 16)
    want = np.zeros((2, 3))
    want[1, 2] = 4
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_the_video_ladders_carry_lambda():
    images = [p.quality for p in zoo.list_points()]
    for kind in ("video", "video_tokens"):
        points = zoo.list_points(kind)
        assert [p.quality for p in points] == images[:len(points)]  # the image ladder goes on above video's
        assert all(p.lam is not None and p.lam > 0 for p in points)
    with pytest.raises(ModelError, match="no operating point with quality 6"):
        zoo.resolve(quality=6, kind="video_tokens")
    assert all(p.lam is None for p in zoo.list_points())
    # the video ladder is refined: key frames' and predicted frames' rate levels
    assert all(p.refine is not None and p.inter is not None for p in zoo.list_points("video"))
    # a model alone: the default video point with that model
    alone = zoo.resolve(model=VIDEO.model, kind="video")
    assert alone == replace(zoo.resolve(kind="video"), quality=0)


def test_decode_near_matches_a_full_decode():
    """Decoding only around the changed tokens comes close to the full decode (an estimate: on
    random tokens, the worst pixel near the edge of what it replaces is off by about 20 levels)."""
    m = zoo.get_model(VIDEO.model)
    d = Decider(m.tokenizer, 1.0)
    grid = np.random.default_rng(1).integers(0, 1 << 20, (20, 20))
    changed = np.zeros(grid.shape, bool)
    changed[2:4, 3:5] = True
    other = grid.copy()
    other[changed] ^= 0b1011
    full = d.decode(other, "cpu")
    near = d.decode_near(other, changed, d.decode(grid, "cpu"))
    base = d.decode(grid, "cpu")
    err, before = (near - full).abs() * 127.5, (base - full).abs() * 127.5
    assert err.mean() < 0.25 * before.mean() and err.max() < 0.25 * before.max()
    assert err[..., 32:64, 48:80].max() < 2  # the changed tokens' own blocks
