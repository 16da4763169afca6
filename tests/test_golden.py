"""Golden files: .vqz files made once and committed must decode the same way forever.

Exact parts are checked exactly (payload bytes of a fixed token grid, decoded tokens); pixels come
from float convolutions whose last bits may differ between CPU kinds, so they are checked against
the recorded decode to within one level.

Regenerate (only with a format-version bump or new shipped weights): python tests/test_golden.py --write
(images) or --write-video (the video files, added later; the image files stay as they are). Before
that, keep the files being replaced under a versioned name, as below, so that they go on being
decoded.

pan.vqz (with golden_video.json and its decoded picture) is the video golden file as format 1
wrote it (base tokens, the temporal token coder), kept when format 4 (refined key frames, the inter
layer: pan_v3.vqz, golden_video_v3.json) came: old videos must keep decoding. Never regenerate it;
--write-video writes the format 4 files alone.

kodim23_crop_v2.vqz (with golden_v2.json and its decoded picture) is the image golden file as
format version 2 and the first refinement layer wrote it, kept when version 3 and the learned
refinement entropy model came: old files must keep decoding. Never regenerate it.

kodim23_crop_v4.vqz (with golden_v4.json and its decoded picture) is the image golden file as the
refinement layer's fourth version wrote it (format 3), kept when the fifth (five rate levels)
came (a vqzip with a newer layer must keep decoding it, through refine_v4.safetensors). Never
regenerate it. pan_v3.vqz's key frames are that layer's too, so it checks the same for videos.
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent / "golden"
RECORD = HERE / "golden.json"
RECORD_VIDEO = HERE / "golden_video.json"
RECORD_VIDEO_V3 = HERE / "golden_video_v3.json"


def fixed_grid(bits: int) -> np.ndarray:
    """A token grid that is the same on every platform (PCG64 is a stable generator)."""
    return np.random.default_rng(2026).integers(0, 2 ** bits, (5, 7))


def current():
    from vqzip import codec, zoo
    from vqzip.coding.entropy import encode_tokens
    point = zoo.resolve()
    m = zoo.get_model(point.model)
    src = Image.open(Path(__file__).resolve().parents[2] / "shared/data/kodak/kodim23.png").crop((300, 100, 428, 196))
    return m, codec, encode_tokens, point, src


def test_fixed_tokens_give_the_recorded_bitstream():
    rec = json.loads(RECORD.read_text())
    from vqzip import zoo
    from vqzip.coding.entropy import decode_tokens, encode_tokens
    m = zoo.get_model(rec["model"])
    grid = fixed_grid(m.tokenizer.cfg.token_bits)
    data = encode_tokens(m.prior, grid)
    assert hashlib.sha256(data).hexdigest() == rec["grid_payload_sha256"]
    assert (decode_tokens(m.prior, *grid.shape, data) == grid).all()


@pytest.mark.parametrize("name, record", [("kodim23_crop", RECORD), ("kodim23_crop_v2", HERE / "golden_v2.json"),
                                          ("kodim23_crop_v4", HERE / "golden_v4.json")])
def test_golden_file_decodes_as_recorded(monkeypatch, name, record):
    monkeypatch.setenv("VQZIP_PRECISION", "fp32")  # the recorded pixels are the fp32 decode
    rec = json.loads(record.read_text())
    from vqzip import codec
    data = (HERE / f"{name}.vqz").read_bytes()
    header, tokens = codec.decode_tokens_of(data)
    assert hashlib.sha256(tokens.astype("<i8").tobytes()).hexdigest() == rec["tokens_sha256"]
    got = np.asarray(codec.decode(data), np.int16)
    want = np.asarray(Image.open(HERE / f"{name}.decoded.png"), np.int16)
    assert got.shape == want.shape
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def test_fast_precision_stays_within_a_level_of_fp32(monkeypatch):
    """Where bf16 runs natively it is the default; its pixels are the fp32 ones to within a level or two."""
    from vqzip import codec
    data = (HERE / "kodim23_crop.vqz").read_bytes()
    fast = np.asarray(codec.decode(data), np.int16)
    monkeypatch.setenv("VQZIP_PRECISION", "fp32")
    diff = np.abs(fast - np.asarray(codec.decode(data), np.int16))
    assert diff.max() <= 2 and diff.mean() < 0.3


def drifting_grids(bits: int, frames: int = 4) -> list[np.ndarray]:
    """Token grids in which each frame changes some tokens of the last by a few bits (PCG64)."""
    rng = np.random.default_rng(2027)
    grids = [rng.integers(0, 2 ** bits, (6, 9))]
    for _ in range(frames - 1):
        g = grids[-1].copy()
        flips = ((rng.random((6, 9, bits)) < 0.2) << np.arange(bits)).sum(-1)
        where = rng.random((6, 9)) < 0.3
        g[where] ^= flips[where]
        grids.append(g)
    return grids


def test_fixed_frames_give_the_recorded_temporal_bitstream():
    from vqzip.coding.temporal import TemporalState, encode_predicted
    rec = json.loads(RECORD_VIDEO.read_text())
    grids = drifting_grids(rec["token_bits"])
    s = TemporalState(rec["token_bits"])
    data = b"".join(encode_predicted(a, b, s) for a, b in zip(grids, grids[1:]))
    assert hashlib.sha256(data).hexdigest() == rec["temporal_payload_sha256"]


def test_golden_video_decodes_as_recorded(monkeypatch):
    monkeypatch.setenv("VQZIP_PRECISION", "fp32")
    from vqzip import video
    rec = json.loads(RECORD_VIDEO.read_text())
    p = video.parse((HERE / "pan.vqz").read_bytes())
    tokens = np.stack([t for _, t in video.decode_tokens_of(p)])
    assert hashlib.sha256(tokens.astype("<i8").tobytes()).hexdigest() == rec["tokens_sha256"]
    got = np.concatenate(list(video.decode_frames(p, "cpu"))).astype(np.int16)
    want = np.asarray(Image.open(HERE / "pan.decoded.png"), np.int16)
    assert got.shape == want.shape
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def lossless_v3(data: bytes) -> str:
    """sha256 of everything a format 4 video's entropy coders decode: key frames' base tokens and
    refinement symbols, predicted frames' symbols and block flags."""
    import torch
    from vqzip import video
    from vqzip.model_check import model_for
    from vqzip.video_layers import FrameDecoder
    p = video.parse(data)
    dec = FrameDecoder(model_for(p.header), p.header, torch.device("cpu"))
    h = hashlib.sha256()
    for _, frames in p.gops:
        for kind, d in frames:
            for part in dec.symbols(kind, d)[1]:
                h.update(np.asarray(part).astype("<i8").tobytes())
    return h.hexdigest()


def test_golden_video_v3_decodes_as_recorded(monkeypatch):
    monkeypatch.setenv("VQZIP_PRECISION", "fp32")
    from vqzip import video
    rec = json.loads(RECORD_VIDEO_V3.read_text())
    data = (HERE / "pan_v3.vqz").read_bytes()
    assert lossless_v3(data) == rec["lossless_sha256"]
    got = np.concatenate(list(video.decode_frames(video.parse(data), "cpu"))).astype(np.int16)
    want = np.asarray(Image.open(HERE / "pan_v3.decoded.png"), np.int16)
    assert got.shape == want.shape
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def write_video():
    """The format 4 golden video (pan_v3.*): the default video point; pan.vqz stays as format 1 wrote it."""
    from fractions import Fraction
    from vqzip import video, zoo
    point = zoo.resolve(kind="video")
    m = zoo.get_model(point.model)
    im = Image.open(Path(__file__).resolve().parents[2] / "shared/data/kodak/kodim23.png").convert("RGB")
    frames = [np.asarray(im.crop((300 + 2 * i, 100, 364 + 2 * i, 148))) for i in range(5)]
    data = video.encode_frames(frames, 64, 48, Fraction(30000, 1001), point, "cpu", gop=3)
    (HERE / "pan_v3.vqz").write_bytes(data)
    p = video.parse(data)
    Image.fromarray(np.concatenate(list(video.decode_frames(p, "cpu")))).save(HERE / "pan_v3.decoded.png")
    RECORD_VIDEO_V3.write_text(json.dumps({
        "model": point.model, "quality": point.quality, "weights_hash": m.weights_hash.hex(),
        "video": point.as_dict(), "lossless_sha256": lossless_v3(data),
    }, indent=2) + "\n")
    print(f"wrote format 4 golden video files for {point.model} q{point.quality}")


def write():
    m, codec, encode_tokens, point, src = current()
    src.save(HERE / "kodim23_crop.png")
    data = codec.encode_image(HERE / "kodim23_crop.png")
    (HERE / "kodim23_crop.vqz").write_bytes(data)
    header, tokens = codec.decode_tokens_of(data)
    codec.decode(data).save(HERE / "kodim23_crop.decoded.png")
    grid = fixed_grid(m.tokenizer.cfg.token_bits)
    RECORD.write_text(json.dumps({
        "model": point.model, "quality": point.quality, "weights_hash": m.weights_hash.hex(),
        "tokens_sha256": hashlib.sha256(tokens.astype("<i8").tobytes()).hexdigest(),
        "grid_payload_sha256": hashlib.sha256(encode_tokens(m.prior, grid)).hexdigest(),
    }, indent=2) + "\n")
    print(f"wrote golden files for {point.model} q{point.quality}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ["VQZIP_PRECISION"] = "fp32"  # the recorded pixels are the fp32 decode
    if sys.argv[1:] == ["--write"]:
        write()
    elif sys.argv[1:] == ["--write-video"]:
        write_video()
