"""The encoder's per-image choice of a ladder point among its variants (vqzip/choice.py)."""
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SEARCHED, macaw
from vqzip import choice, codec, zoo
from vqzip.coding import container
from vqzip.errors import ModelError

MODELS = ROOT / "models"


def install_q6(tmp_path, monkeypatch, **row):
    """The shipped models with a points.json whose q6 row is changed by `row`."""
    (tmp_path / "f16-lfq20").symlink_to(MODELS / "f16-lfq20")
    spec = json.loads((MODELS / "points.json").read_text())
    next(p for p in spec["points"] if p["quality"] == 6).update(row)
    (tmp_path / "points.json").write_text(json.dumps(spec))
    monkeypatch.setenv("VQZIP_MODELS", str(tmp_path))


@pytest.fixture
def ladder_with_choice(tmp_path, monkeypatch):
    """q6 with two alternatives (set here, not the shipped ones, so that the tests do not move with them)."""
    install_q6(tmp_path, monkeypatch, alternatives=["3/4+r1", "1+r2"], choice_lambda=50.0)
    return zoo.resolve(quality=6)


def test_points_json_alternatives_are_parsed(ladder_with_choice):
    p = ladder_with_choice
    assert p.alternatives == ((Fraction(3, 4), 1), (Fraction(1), 2)) and p.choice_lambda == 50.0
    assert [(v.scale, v.refine) for v in p.variants()] == [(Fraction(1), 1), (Fraction(3, 4), 1), (Fraction(1), 2)]
    assert all(not v.alternatives for v in p.variants())
    assert p.as_dict()["alternatives"] == ["3/4+r1", "1+r2"]
    assert zoo.parse_point_spec("3/4+r1") == (Fraction(3, 4), 1) and zoo.point_spec(Fraction(5, 4), None) == "5/4"


def test_best_prefers_the_ladder_point_on_a_tie():
    assert choice.best([1.0, 1.0, 0.5]) == 2 and choice.best([1.0, 1.0]) == 0


def test_choice_scores_the_decoded_pictures_and_keeps_the_cheapest(ladder_with_choice, monkeypatch):
    """The pictures the encoder scores are the ones the decoder shows for each variant's file, and
    the file is the variant of least cost, searched at the asked effort."""
    src = macaw(SEARCHED)
    seen = []
    real = choice.cost
    monkeypatch.setattr(choice, "cost", lambda s, pic, n, lam: seen.append((pic, n)) or real(s, pic, n, lam))
    data = codec.encode_image(src, quality=6, effort=1)
    variants = ladder_with_choice.variants()
    assert len(seen) == len(variants)
    costs = []
    for v, (pic, n) in zip(variants, seen):
        single = codec.encode_image(src, point=v, effort=0)
        assert n == len(single)
        assert (np.asarray(codec.decode(single)) == np.asarray(pic)).all()
        costs.append(real(src, pic, n, ladder_with_choice.choice_lambda))
    pick = variants[choice.best(costs)]
    header = container.read_header(data[:container.HEADER_PREFIX_BYTES], verify=False)
    assert Fraction(header.scale_num, header.scale_den) == pick.scale
    assert header.extra["refine"]["rate"] == pick.refine and header.extra["effort"] == 1
    assert data == codec.encode_image(src, point=pick, effort=1)


@pytest.mark.parametrize("price, pick", [(1e-6, "best picture"), (1e6, "smallest file")])
def test_the_price_of_a_bit_decides(tmp_path, monkeypatch, price, pick):
    """Bits nearly free: the variant with the best picture wins; bits dear: the smallest file."""
    install_q6(tmp_path, monkeypatch, alternatives=["3/4+r1", "1+r2"], choice_lambda=price)
    src = macaw(SEARCHED)
    singles = [codec.encode_image(src, point=v, effort=0) for v in zoo.resolve(quality=6).variants()]
    key = (lambda d: choice.distortion(src, codec.decode(d))) if pick == "best picture" else len
    want = zoo.resolve(quality=6).variants()[min(range(3), key=lambda i: key(singles[i]))]
    header = container.read_header(codec.encode_image(src, quality=6, effort=1)[:container.HEADER_PREFIX_BYTES], verify=False)
    assert (Fraction(header.scale_num, header.scale_den), header.extra["refine"]["rate"]) == (want.scale, want.refine)


def test_effort_0_codes_the_ladder_point_itself(ladder_with_choice):
    src = macaw(SEARCHED)
    assert codec.encode_image(src, quality=6, effort=0) == codec.encode_image(src, point=ladder_with_choice.variants()[0], effort=0)


def test_distortion_of_a_tiny_picture_is_psnr_alone():
    a, b = Image.new("RGB", (8, 8), (10, 20, 30)), Image.new("RGB", (8, 8), (12, 20, 30))
    assert choice.distortion(a, b) == pytest.approx(-10 * math.log10(255 ** 2 / (4 / 3)))


@pytest.mark.parametrize("row", [{"alternatives": ["3/4"], "choice_lambda": 50.0},
                                 {"alternatives": ["3/4+r1"], "choice_lambda": None},
                                 {"alternatives": ["3/4+r1"], "choice_lambda": -1}])
def test_a_points_file_with_unusable_alternatives_is_refused(tmp_path, monkeypatch, row):
    install_q6(tmp_path, monkeypatch, **row)
    with pytest.raises(ModelError, match="quality 6's alternatives"):
        zoo.list_points()
