"""The inter layer's trainer: the refinement trainer fed frame pairs (train/pairs.py)."""
import shutil
from fractions import Fraction

import pytest
import torch

from conftest import SHARED
from vqzip import zoo
from vqzip.nn.refine import RefineConfig, load_refiner
from vqzip.train.pairs import PairSource, find_clips
from vqzip.train.refine import RefineRecipe, train_refine


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos") / "set"
    d.mkdir()
    for p in sorted((SHARED / "train" / "photos").iterdir())[:2]:
        shutil.copy(p, d / p.name)
    return d.parent


def test_benchmark_clips_are_left_out():
    names = {p.stem for p in find_clips(str(SHARED / "video"), ("vtest", "carphone_pristine"))}
    assert names and not names & {"vtest", "carphone_pristine"}


def test_pairs_are_frames_and_8_bit_predictions(photos):
    m = zoo.get_model("f16-lfq20")
    src = PairSource(photos, [], 64, [Fraction(1)], m.refiner, m.tokenizer, m.float_prior, seed=0)
    x, pred, tokens, surprise = src.batch(3)
    assert x.shape == pred.shape == (3, 3, 64, 64)
    assert tokens.shape == surprise.shape == (3, 4, 4) and not tokens.any()
    levels = (pred + 1) * 127.5  # the previous frame as the decoder has it: 8-bit
    assert (levels - levels.round()).abs().max() < 1e-4


def test_trainer_takes_a_prediction_source(photos, tmp_path):
    m = zoo.get_model("f16-lfq20")
    recipe = RefineRecipe(minutes=0.03, batch=2, crop=64, fresh=1, scales="1", init=str(m.refine_path),
                          prediction="previous", save_every_s=1e9)
    files = train_refine(photos, m.tokenizer, m.float_prior, tmp_path, RefineConfig(**m.refiner.cfg.to_dict()), recipe, "cpu")
    assert load_refiner(files[0]).cfg.rates == m.refiner.cfg.rates
    with pytest.raises(ValueError, match="--init"):
        RefineRecipe(prediction="previous")
