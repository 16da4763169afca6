"""The encoder's per-image choice of a ladder point among its variants (vqzip/choice.py)."""
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, SEARCHED, macaw, torch_threads
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
    assert p.alternatives == ((Fraction(3, 4), 1, None), (Fraction(1), 2, None)) and p.choice_lambda == 50.0
    assert [(v.scale, v.refine) for v in p.variants()] == [(Fraction(1), 1), (Fraction(3, 4), 1), (Fraction(1), 2)]
    assert all(not v.alternatives for v in p.variants())
    assert p.as_dict()["alternatives"] == ["3/4+r1", "1+r2"]
    assert zoo.parse_point_spec("3/4+r1") == (Fraction(3, 4), 1, None) and zoo.point_spec(Fraction(5, 4), None) == "5/4"
    assert zoo.parse_point_spec("1+r0@perceptual") == (Fraction(1), 0, "perceptual")
    assert zoo.point_spec(Fraction(1), 0, "perceptual") == "1+r0@perceptual"


def test_best_prefers_the_ladder_point_on_a_tie():
    assert choice.best([1.0, 1.0, 0.5]) == 2 and choice.best([1.0, 1.0]) == 0


COST = choice.cost


def _scored(monkeypatch) -> list:
    """The (picture, file size) of every cost the encoder's choice computes, in its order."""
    seen = []
    monkeypatch.setattr(choice, "cost", lambda s, pic, n, lam: seen.append((pic, n)) or COST(s, pic, n, lam))
    return seen


def _picked(data: bytes) -> tuple:
    header = container.read_header(data[:container.HEADER_PREFIX_BYTES], verify=False)
    return Fraction(header.scale_num, header.scale_den), header.extra["refine"]["rate"], header.extra["refine"]["weights"]


def test_few_variants_are_all_searched_and_the_cheapest_kept(ladder_with_choice, monkeypatch):
    """With no more variants than choice.SEARCHED, each is searched at the asked effort and scored
    on the picture the decoder shows for its file; the file is the variant of least cost."""
    src, variants = macaw(SEARCHED), ladder_with_choice.variants()
    assert len(variants) <= choice.SEARCHED
    seen = _scored(monkeypatch)
    data = codec.encode_image(src, quality=6, effort=1)
    files = [codec.encode_image(src, point=v, effort=1) for v in variants]
    assert [n for _, n in seen] == [len(f) for f in files]
    assert all((np.asarray(codec.decode(f)) == np.asarray(pic)).all() for f, (pic, _) in zip(files, seen))
    costs = [COST(src, pic, n, ladder_with_choice.choice_lambda) for pic, n in seen[:len(variants)]]
    assert data == files[choice.best(costs)]
    assert _picked(data)[:2] == (variants[choice.best(costs)].scale, variants[choice.best(costs)].refine)


def test_many_variants_are_shortlisted_in_a_single_pass_then_searched(tmp_path, monkeypatch):
    """More variants than choice.SEARCHED, across two layers: each is coded in a single pass and
    scored, the SEARCHED cheapest are searched and scored again, and the cheapest searched file is
    the encoder's."""
    install_q6(tmp_path, monkeypatch, alternatives=["3/4+r1", "1+r2", "1+r0@perceptual", "3/4+r1@perceptual"],
               choice_lambda=40.0)
    point = zoo.resolve(quality=6)
    src, variants = macaw(SEARCHED), point.variants()
    seen = _scored(monkeypatch)
    data = codec.encode_image(src, quality=6, effort=1)
    quick = [codec.encode_image(src, point=v, effort=0) for v in variants]
    assert [n for _, n in seen[:len(variants)]] == [len(f) for f in quick]
    short = choice.shortlist([COST(src, pic, n, 40.0) for pic, n in seen[:len(variants)]], choice.SEARCHED)
    searched = [codec.encode_image(src, point=variants[i], effort=1) for i in short]
    assert [n for _, n in seen[len(variants):]] == [len(f) for f in searched]
    costs = [COST(src, pic, n, 40.0) for pic, n in seen[len(variants):]]
    assert data == searched[choice.best(costs)]


def test_searching_one_keeps_the_single_pass_winner(ladder_with_choice, monkeypatch):
    """choice.SEARCHED = 1 (the choice before the perceptual layer): the single-pass winner alone is
    searched, and not scored again."""
    monkeypatch.setattr(choice, "SEARCHED", 1)
    src, variants = macaw(SEARCHED), ladder_with_choice.variants()
    seen = _scored(monkeypatch)
    data = codec.encode_image(src, quality=6, effort=1)
    assert len(seen) == len(variants)
    pick = variants[choice.best([COST(src, pic, n, 50.0) for pic, n in seen])]
    assert data == codec.encode_image(src, point=pick, effort=1)


def test_a_point_codes_with_the_layer_it_names(tmp_path, monkeypatch):
    """"1+r1@perceptual" codes with refine_perceptual.safetensors: the file names that layer's weights
    and decodes; a layer that is not installed is a one-line ModelError."""
    m = zoo.get_model("f16-lfq20")
    src = macaw(SEARCHED)
    plain = codec.encode_image(src, point=zoo.Point(0, m.name, Fraction(1), refine=1), effort=0)
    named = codec.encode_image(src, point=zoo.Point(0, m.name, Fraction(1), refine=1, layer="perceptual"), effort=0)
    assert _picked(plain)[2] == m.refine_hash.hex() != _picked(named)[2] == m.layer_hash("perceptual")
    assert _picked(named)[2] in m.refine_layers
    assert codec.decode(named).size == src.size and named != plain
    assert codec.info(named)["refine_layer"] == "refine_perceptual.safetensors"  # vqzip info names it
    assert codec.info(plain)["refine_layer"] == "refine.safetensors"
    with pytest.raises(ModelError, match="no refinement layer 'nope'"):
        codec.encode_image(src, point=zoo.Point(0, m.name, Fraction(1), refine=1, layer="nope"), effort=0)
    with pytest.raises(ModelError, match="bad refinement layer name"):  # a name, never a path
        codec.encode_image(src, point=zoo.Point(0, m.name, Fraction(1), refine=1, layer="../refine"), effort=0)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_perceptual_layer_file_decodes_the_symbols_sent_at_any_thread_count(threads):
    """The second layer's symbols come back exactly, as the first layer's do (test_refine.py)."""
    from vqzip.layered import encode_layers
    src, point = macaw(SEARCHED), zoo.Point(0, "f16-lfq20", Fraction(1), refine=1, layer="perceptual")
    data = codec.encode_image(src, point=point, effort=0)  # the single pass: what was sent can be recomputed
    m = zoo.get_model(point.model)
    _, tokens = codec.decode_tokens_of(data)
    sent = encode_layers(m, tokens, codec.to_tensor(src, m.tokenizer.stride), 1, 0, "perceptual").symbols.numpy()
    with torch_threads(threads):
        got = codec.refinement_of(data)
    assert np.array_equal(got, sent) and np.abs(sent).sum() > 0


def test_shortlist_keeps_the_cheapest_in_their_order():
    assert choice.shortlist([3.0, 1.0, 2.0, 1.0, 5.0], 3) == [1, 2, 3]
    assert choice.shortlist([1.0, 1.0, 1.0, 1.0], 2) == [0, 1]


@pytest.mark.parametrize("price, pick", [(1e-6, "best picture"), (1e6, "smallest file")])
def test_the_price_of_a_bit_decides(tmp_path, monkeypatch, price, pick):
    """Bits nearly free: the variant with the best picture wins; bits dear: the smallest file."""
    install_q6(tmp_path, monkeypatch, alternatives=["3/4+r1", "1+r2"], choice_lambda=price)
    src, variants = macaw(SEARCHED), zoo.resolve(quality=6).variants()
    files = [codec.encode_image(src, point=v, effort=1) for v in variants]  # three variants: all searched
    key = (lambda d: choice.distortion(src, codec.decode(d))) if pick == "best picture" else len
    want = variants[min(range(3), key=lambda i: key(files[i]))]
    assert _picked(codec.encode_image(src, quality=6, effort=1))[:2] == (want.scale, want.refine)


def test_effort_0_codes_the_ladder_point_itself(ladder_with_choice):
    src = macaw(SEARCHED)
    assert codec.encode_image(src, quality=6, effort=0) == codec.encode_image(src, point=ladder_with_choice.variants()[0], effort=0)


def test_distortion_of_a_tiny_picture_is_psnr_alone():
    a, b = Image.new("RGB", (8, 8), (10, 20, 30)), Image.new("RGB", (8, 8), (12, 20, 30))
    assert choice.distortion(a, b) == pytest.approx(-10 * math.log10(255 ** 2 / (4 / 3)))


@pytest.mark.parametrize("row", [{"alternatives": ["3/4"], "choice_lambda": 50.0},
                                 {"alternatives": ["3/4+r1"], "choice_lambda": None},
                                 {"alternatives": ["3/4+r1"], "choice_lambda": -1},
                                 {"alternatives": ["3/4+r1@Bad name"], "choice_lambda": 50.0}])
def test_a_points_file_with_unusable_alternatives_is_refused(tmp_path, monkeypatch, row):
    install_q6(tmp_path, monkeypatch, **row)
    with pytest.raises(ModelError, match="quality 6's alternatives"):
        zoo.list_points()
