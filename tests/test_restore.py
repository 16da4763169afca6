"""The restoration filter (vqzip/nn/restore.py), its place in decoding and its trainer."""
import json
import os
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SEARCHED, SMALL, macaw, read_log, resume_budget, run_cli
from vqzip import codec, zoo
from vqzip.nn.restore import Restorer, macs_per_pixel
from vqzip.train.restore import reconstruct
from vqzip.weights import export_weights, load_weights


def busy(width=8, blocks=1, rates=3, seed=0) -> Restorer:
    """A filter with every weight random, the last layer included (a trained one is not identity)."""
    torch.manual_seed(seed)
    net = Restorer(width, blocks, rates)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval()


def test_an_untrained_filter_changes_nothing():
    y = torch.rand(1, 3, 40, 56) * 2 - 1
    assert torch.equal(Restorer(8, 1, 3).eval().restore(y, Fraction(1, 2), 1), y)


def test_tiles_join_without_seams_and_odd_sides_keep_their_size():
    net = busy()
    y = torch.rand(1, 3, 301, 333) * 2 - 1
    whole = net.restore(y, Fraction(3, 4), 2, tile=64)   # one tile
    tiles = net.restore(y, Fraction(3, 4), 2, tile=4)    # 64-pixel tiles with 128 pixels of context
    assert whole.shape == y.shape
    assert (whole - tiles).abs().max() < 1e-5
    assert not torch.equal(whole, y)


def test_the_point_conditions_the_filter():
    net = busy()
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    outs = [net.restore(y, s, r) for s, r in ((Fraction(1, 2), 0), (Fraction(1, 2), 1), (Fraction(1), 0))]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_cost_per_pixel_counts_every_convolution():
    # per 4x4 cell: in (48 + 3 rates + 1 scale) x 32, two blocks of two 32 x 32, out 32 x 48; 3x3 each
    assert macs_per_pixel(32, 2, 3) == (52 * 32 + 4 * 32 * 32 + 32 * 48) * 9 // 16


@pytest.mark.parametrize("quality", [2, 5])
def test_the_trainer_sees_what_the_decoder_hands_the_filter(quality):
    src = macaw(SEARCHED)
    point = zoo.resolve(quality=quality)
    m = zoo.get_model(point.model)
    decoded = codec.decode(codec.encode_image(src, point=point, effort=0), restore=False)
    assert np.array_equal(np.asarray(decoded), np.asarray(reconstruct(m.tokenizer, m.refiner, src, point.scale, point.refine)))


def install(folder, with_filter: bool):
    """A models folder whose refinement layer is the shipped one without any filter, or (with_filter)
    with a random one added, that layer without it being kept as refine_v9 so that its files decode
    (the same weights export to the same bytes, hence the same hash: test_train.py)."""
    from vqzip.nn.refine import RefineConfig, Refiner
    src, name = zoo.models_dir(), zoo.resolve().model
    (folder / name).mkdir(parents=True)
    for f in (src / name).iterdir():
        if not f.name.startswith("refine"):
            os.symlink(f, folder / name / f.name)
    # the ladder without its alternatives: files of these folders are made by refine.safetensors
    # alone, the layer whose filter is tested (the other layers are not installed here)
    spec = json.loads((src / "points.json").read_text())
    for row in spec["points"]:
        row.pop("alternatives", None)
        row.pop("choice_lambda", None)
    (folder / "points.json").write_text(json.dumps(spec))
    layer, meta = load_weights(src / name / "refine.safetensors")
    layer = {k: v.float() for k, v in layer.items() if not k.startswith("restorer.")}
    meta = {k: v for k, v in meta.items() if k != "shards"}
    names = ("refine_v9", "refine") if with_filter else ("refine",)
    for f, width in zip(names, (0, 8)):
        cfg = RefineConfig.from_saved(meta["config"] | {"restore_width": width, "restore_blocks": 1})
        ref = Refiner(cfg)
        ref.load_state_dict(layer, strict=False)
        if width:
            ref.restorer = busy(width, 1, len(cfg.rates))
        export_weights(folder / name / f"{f}.safetensors", ref, meta | {"config": cfg.to_dict()})
    return folder


def test_a_layer_with_a_filter_runs_it_on_the_decoded_picture(tmp_path, monkeypatch):
    monkeypatch.setenv("VQZIP_MODELS", str(install(tmp_path / "models", with_filter=True)))
    src = macaw(SMALL)
    m = zoo.get_model(zoo.resolve().model)
    assert m.refiner.restorer is not None
    data = codec.encode_image(src, quality=3)
    plain, filtered = codec.decode(data, restore=False), codec.decode(data)
    point = zoo.resolve(quality=3)
    expect = codec.restored(plain, m.refiner.restorer, point.scale, point.refine, torch.device("cpu"))
    assert np.array_equal(np.asarray(filtered), np.asarray(expect))
    assert not np.array_equal(np.asarray(filtered), np.asarray(plain))
    assert filtered.size == src.size


def test_files_of_a_layer_without_a_filter_decode_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("VQZIP_MODELS", str(install(tmp_path / "plain", with_filter=False)))
    data = codec.encode_image(macaw(SMALL), quality=3)
    before = np.asarray(codec.decode(data))
    (tmp_path / "a.vqz").write_bytes(data)
    run_cli("decode", tmp_path / "a.vqz", "-o", tmp_path / "a.png", check=True,
            env={"VQZIP_MODELS": str(install(tmp_path / "filtered", with_filter=True))})
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png").convert("RGB")), before)


def test_train_restore_makes_a_layer_with_a_filter_and_resumes(tmp_path):
    data = tmp_path / "data" / "set"
    data.mkdir(parents=True)
    macaw((0, 0, 400, 300)).save(data / "a.png")
    macaw((300, 200, 700, 500)).save(data / "b.png")
    run = tmp_path / "run"
    args = ("train", "restore", tmp_path / "data", "-o", run, "--pictures", "2", "--crop", "64", "--batch", "2", "--width", "8", "--blocks", "1")
    run_cli(*args, "--minutes", "0.05", check=True)
    steps = [r["step"] for r in read_log(run / "restore_log.jsonl")]
    run_cli(*args, "--minutes", resume_budget(run / "restore_log.jsonl"), check=True)  # resumes: the same pictures, more steps
    steps2 = [r["step"] for r in read_log(run / "restore_log.jsonl")]
    assert len(list((run / "pictures").glob("*.npz"))) == 2
    assert steps2[-1] > steps[-1]
    layer, meta = load_weights(run / "refine.safetensors")
    shipped, _ = load_weights(zoo.get_model(zoo.resolve().model).refine_path)
    assert meta["config"]["restore_width"] == 8 and meta["restore"]["steps"] == steps2[-1]
    # the layer itself is untouched (a shipped filter, if any, is replaced by the new one)
    assert all(torch.equal(layer[k], v) for k, v in shipped.items() if not k.startswith("restorer."))
    assert any(k.startswith("restorer.") for k in layer)
