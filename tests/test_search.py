"""The encoder-side search (vqzip/search.py): every effort makes a file today's decoder reads, its
tokens decode bit-exactly whatever the thread count, and it never ends worse than it started."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from vqzip import codec, search, zoo
from vqzip.errors import InputError
from vqzip.nn.quant import LFQ
from vqzip.nn.tokenizer import Tokenizer, TokenizerConfig

from conftest import SEARCHED, SMALL, macaw, run_cli


@pytest.fixture(scope="module")
def crop():
    return macaw(SMALL)


@pytest.fixture(scope="module")
def model():
    return zoo.get_model(zoo.resolve().model)


def searched_base_point():
    """A base-only point whose tokens are searched: the image ladder has none (its q1 was made
    worse per bit by the search), but a caller's own point may, as video key frames do."""
    return dataclasses.replace(zoo.resolve(quality=1), search_lambda=1600.0)


@pytest.fixture(scope="module")
def big_crop():
    return macaw(SEARCHED)


@pytest.mark.parametrize("effort", list(search.EFFORTS))
@pytest.mark.parametrize("quality", [1, 3])  # the base tokens' search, and the refinement's
def test_every_effort_round_trips(crop, big_crop, effort, quality):
    img, point = (crop, searched_base_point()) if quality == 1 else (big_crop, zoo.resolve(quality=3))
    data = codec.encode_image(img, point=point, effort=effort)
    assert codec.info(data)["effort"] == effort
    out = codec.decode(data)
    assert out.size == img.size
    err = np.abs(np.asarray(out, np.float64) - np.asarray(img, np.float64)).mean()
    assert err < 20  # a picture of the crop, not noise


def test_effort_zero_is_the_single_pass(crop, model):
    x = codec.to_tensor(crop, model.tokenizer.stride)
    assert torch.equal(search.find_tokens(model.tokenizer, model.float_prior, x, 0, 2000.0), model.tokenizer.encode(x))
    # and its files record no effort
    data = codec.encode_image(crop, effort=0)
    assert "effort" not in codec.container.unpack(data)[0].extra


def test_searched_tokens_decode_exactly_at_one_and_two_threads(crop, model):
    point = zoo.resolve(quality=3)
    img = codec.resized(crop, codec.scaled_size(crop.width, crop.height, point.scale))
    x = codec.to_tensor(img, model.tokenizer.stride)
    found = search.find_tokens(model.tokenizer, model.float_prior, x, 4, 1600.0)[0].numpy()
    assert (found != model.tokenizer.encode(x)[0].numpy()).any()  # the search did move some tokens
    data = codec.pack_tokens(found, point, crop.width, crop.height, effort=4)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert (codec.decode_tokens_of(data)[1] == found).all()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("lr", [search.LR, 3.0])  # 3.0: steps that overshoot and must be refused
def test_search_never_ends_worse_than_it_started(crop, model, lr, monkeypatch):
    monkeypatch.setattr(search, "LR", lr)
    x = codec.to_tensor(crop, model.tokenizer.stride)
    z = model.tokenizer.latent(x).clone()
    start = z.clone()
    h, w = z.shape[-2:]
    core = (1, h - 1, 1, w - 1)
    j_start, j_end = search._search_tile(model.tokenizer, model.float_prior, x, z, core, search.schedule(6), 2000.0)
    assert j_end <= j_start
    # outside the core the tokens are context, held fixed
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[1:h - 1, 1:w - 1] = True
    assert torch.equal((z > 0)[..., ~inside], (start > 0)[..., ~inside])


def test_tiles_cover_the_grid_once():
    tiles = search.tiles(130, 70, search.TILE)
    cover = np.zeros((130, 70), int)
    for y0, y1, x0, x1 in tiles:
        assert y1 - y0 <= search.TILE and x1 - x0 <= search.TILE
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()


def test_a_grid_searched_in_tiles_round_trips(crop, model, monkeypatch):
    monkeypatch.setattr(search, "TILE", 3)  # the crop's 6x5 grid at x3/4 becomes four tiles
    data = codec.encode_image(crop, point=searched_base_point(), effort=2)
    assert codec.decode(data).size == crop.size


def test_ladder_points_without_a_price_of_a_bit_are_not_searched(crop):
    assert zoo.resolve(quality=1).refine is None and zoo.resolve(quality=1).search_lambda is None
    plain, asked = (codec.encode_image(crop, quality=1, effort=e) for e in (0, 9))
    assert asked == plain and codec.info(asked)["effort"] == 0  # the file says what was done
    assert codec.info(codec.encode_image(crop, model=zoo.resolve().model, effort=9))["effort"] == 0


def test_bad_effort_is_one_line(crop):
    with pytest.raises(InputError, match="effort must be one of 0..9"):
        codec.encode_image(crop, effort=10)


def test_vq_tokenizers_are_not_searched():
    assert search.effort_for(zoo.get_model(zoo.resolve().model).tokenizer, 5, 1600.0) == 5
    assert search.effort_for(zoo.get_model(zoo.resolve().model).tokenizer, 5, None) == 0  # no price of a bit
    assert search.effort_for(Tokenizer(TokenizerConfig(quantizer="vq", codebook_size=16)), 5, 1600.0) == 0
    assert isinstance(zoo.get_model(zoo.resolve().model).tokenizer.quant, LFQ)


def test_cli_effort(tmp_path, crop):
    src = tmp_path / "crop.png"
    crop.save(src)
    run = run_cli
    r = run("encode", str(src), "-o", str(tmp_path / "a.vqz"), "--effort", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["effort"] == 2
    r = run("info", str(tmp_path / "a.vqz"), "--json")
    assert json.loads(r.stdout)["effort"] == 2
    r = run("encode", str(src), "-o", str(tmp_path / "b.vqz"), "--effort", "12")
    assert r.returncode == 1 and r.stderr.strip() == "error: effort must be one of 0..9 (got 12)"


def test_video_key_frames_take_the_effort():
    from fractions import Fraction
    from vqzip import video
    # a crop where effort 3 finds better tokens at the video ladder's scale (on the smaller test
    # crop every step there is refused: its tokens are already a local optimum)
    crop = macaw((200, 60, 456, 220))
    frames = [np.asarray(crop)] * 3
    point = zoo.resolve(quality=1, kind="video_tokens")
    plain, searched = (video.encode_frames(iter(frames), crop.width, crop.height, Fraction(10), point, effort=e)
                       for e in (0, 3))
    assert video.info(plain)["effort"] == 0 and video.info(searched)["effort"] == 3
    key = lambda data: next(video.decode_tokens_of(video.parse(data)))[1]
    assert (key(plain) != key(searched)).any()
    out = list(video.decode_frames(video.parse(searched)))
    assert len(out) == 3 and out[0].shape == (crop.height, crop.width, 3)


def test_video_key_frames_default_to_effort_zero_whatever_the_image_default(monkeypatch):
    from fractions import Fraction
    from vqzip import video
    monkeypatch.setattr(search, "DEFAULT_EFFORT", 5)
    crop = macaw(SMALL)
    data = video.encode_frames(iter([np.asarray(crop)] * 2), crop.width, crop.height, Fraction(10),
                               zoo.resolve(quality=1, kind="video_tokens"))
    assert video.info(data)["effort"] == search.VIDEO_DEFAULT_EFFORT == 0
