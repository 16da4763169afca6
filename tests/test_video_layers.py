"""Refined video (format 4, video_layers.py): refined key frames, inter-layer predicted frames with
skipped blocks. Clips are small crops so that the networks run in moments."""
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import KODAK
from vqzip.coding import container
from vqzip import inter, video, zoo
from vqzip.errors import FormatError
from vqzip.video_layers import INTER, RKEY

POINT = zoo.Point(0, "f16-lfq20", Fraction(1, 2), refine=1, inter=1)


def _crop(name: str, box) -> np.ndarray:
    return np.asarray(Image.open(KODAK / name).convert("RGB").crop(box))


def _pan(n=6, w=128, h=96, step=4, name="kodim23.png"):
    """A crop of a Kodak picture panning `step` pixels a frame."""
    im = Image.open(KODAK / name).convert("RGB")
    return [np.asarray(im.crop((200 + step * i, 80, 200 + step * i + w, 80 + h))) for i in range(n)]


def _encode(frames, point=POINT, gop=64):
    h, w = frames[0].shape[:2]
    return video.encode_frames(iter(frames), w, h, Fraction(25), point, "cpu", gop=gop)


def _psnr(a, b):
    return 10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b) ** 2))


@pytest.fixture(scope="module")
def pan_file():
    frames = _pan()
    return frames, _encode(frames)


def test_round_trip_is_format_3_with_refined_frames(pan_file):
    frames, data = pan_file
    assert int.from_bytes(data[4:6], "little") == container.VIDEO_VERSION
    p = video.parse(data)
    assert video.refined(p.header)
    assert [k for _, gop in p.gops for k, _ in gop] == [RKEY] + [INTER] * (len(frames) - 1)
    out = list(video.decode_frames(p, "cpu"))
    assert len(out) == len(frames) and out[0].shape == frames[0].shape
    # every frame about as good as the key frame: the predicted ones do not drift away
    ps = [_psnr(a, b) for a, b in zip(frames, out)]
    assert min(ps) > ps[0] - 1.5, ps
    info = video.info(data)
    assert info["key_frames"] == 1 and info["predicted_frames"] == len(frames) - 1
    assert info["bits_per_predicted_frame"] < info["bits_per_key_frame"]


def test_decoder_gives_the_encoders_reference(pan_file):
    """The encoder predicts from what the decoder will have: decoding the file and re-encoding
    with the encoder's FrameEncoder must agree frame by frame (pixels of the same process)."""
    from vqzip.pixels import resized, to_tensor
    from vqzip.video_layers import FrameEncoder
    frames, data = pan_file
    m = zoo.get_model(POINT.model)
    enc = FrameEncoder(m, POINT, torch.device("cpu"), 0)
    size = (frames[0].shape[1] // 2, frames[0].shape[0] // 2)
    refs = []
    for i, f in enumerate(frames):
        x = to_tensor(resized(Image.fromarray(f), size), 16)
        _, y = enc.key(x) if i == 0 else enc.predicted(x)
        enc.accept(y)
        refs.append(np.asarray(resized(Image.fromarray(((y[0, :, :size[1], :size[0]] + 1) * 127.5).round().byte()
                                                       .permute(1, 2, 0).numpy()), frames[0].shape[1::-1])))
    out = list(video.decode_frames(video.parse(data), "cpu"))
    for a, b in zip(refs, out):
        np.testing.assert_array_equal(a, b)


def test_decode_is_identical_at_1_and_2_threads(pan_file):
    _, data = pan_file
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = np.stack(list(video.decode_frames(video.parse(data), "cpu")))
        torch.set_num_threads(2)
        two = np.stack(list(video.decode_frames(video.parse(data), "cpu")))
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_still_noisy_clip_predicted_frames_cost_a_quarter_of_the_key():
    rng = np.random.default_rng(0)
    still = _crop("kodim05.png", (200, 100, 328, 196)).astype(float)
    frames = [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).round().astype(np.uint8) for _ in range(5)]
    p = video.parse(_encode(frames))
    sizes = [len(d) for _, gop in p.gops for _, d in gop]
    assert len(p.gops) == 1
    assert max(sizes[1:]) <= sizes[0] / 4, sizes


def test_scene_cut_starts_a_gop():
    a = _pan(4, name="kodim23.png")
    b = _pan(3, step=1, name="kodim05.png")
    p = video.parse(_encode(a + b))
    assert [first for first, _ in p.gops] == [0, 4]


def test_gop_length_and_seeking_by_gop():
    frames = _pan(5)
    data = _encode(frames, gop=2)
    p = video.parse(data)
    assert [first for first, _ in p.gops] == [0, 2, 4]
    out = list(video.decode_frames(p, "cpu"))
    # a GOP decodes on its own: the last one alone gives the same frame
    alone = video.Parsed(p.header, p.fps, p.frames, p.audio, p.gops[-1:], [(0, 4)], p.frames)
    np.testing.assert_array_equal(list(video.decode_frames(alone, "cpu"))[-1], out[-1])


def test_skip_flags_round_trip():
    rng = np.random.default_rng(1)
    for shape in ((1, 1), (3, 5), (18, 24)):
        for p in (0.0, 0.1, 0.9):
            flags = rng.random(shape) < p
            np.testing.assert_array_equal(inter.decode_flags(shape, inter.encode_flags(flags)), flags)
    # an all-skipped frame's flags cost a few bytes
    assert len(inter.encode_flags(np.zeros((36, 48), bool))) <= 8


def test_damaged_inter_frame_is_a_format_error(pan_file):
    _, data = pan_file
    p = video.parse(data)
    first, gop = p.gops[0]
    kind, d = gop[1]
    for bad in (d[:1], b"\xff" * 5, d[:len(d) // 2]):
        broken = video.Parsed(p.header, p.fps, p.frames, p.audio, [(first, [gop[0], (kind, bad)] + gop[2:])], [], p.frames)
        try:
            frames = list(video.decode_frames(broken, "cpu"))
        except FormatError as e:
            assert "\n" not in str(e)
        else:  # the range coder may read garbage as some symbols: the frames still come out whole
            assert len(frames) == p.frames


def test_a_missing_inter_layer_is_a_one_line_error(pan_file):
    _, data = pan_file
    p = video.parse(data)
    extra = dict(p.header.extra, inter={"rate": 1, "weights": "00" * 8})
    forged = replace(p, header=replace(p.header, extra=extra))
    with pytest.raises(Exception) as e:
        list(video.decode_frames(forged, "cpu"))
    assert "not installed" in str(e.value) and "\n" not in str(e.value)


def test_motion_vectors_cut_a_pans_predicted_frames():
    from vqzip.pixels import to_tensor
    from vqzip.video_layers import FrameEncoder
    frames = _pan(4, w=160, h=128, step=3, name="kodim05.png")
    m = zoo.get_model(POINT.model)
    point = replace(POINT, scale=Fraction(1))
    sizes = {}
    for use in (False, True):
        enc = FrameEncoder(m, point, torch.device("cpu"), 0)
        enc.motion = use
        out = []
        for i, f in enumerate(frames):
            x = to_tensor(Image.fromarray(f), 16)
            d, y = enc.key(x) if i == 0 else enc.predicted(x)
            enc.accept(y)
            out.append(len(d))
        sizes[use] = sum(out[1:])
    assert sizes[True] < 0.8 * sizes[False], sizes


def test_motion_vectors_round_trip_and_compensate_exactly():
    from vqzip import motion
    rng = np.random.default_rng(3)
    mv = torch.from_numpy(rng.integers(-motion.RANGE, motion.RANGE + 1, (5, 7, 2)))
    np.testing.assert_array_equal(motion.decode_vectors((5, 7), motion.encode_vectors(mv)), mv)
    assert motion.encode_vectors(torch.zeros(5, 7, 2, dtype=torch.int64)) == b""
    ref = torch.rand(1, 3, 80, 112)
    shifted = torch.roll(ref, (2, -3), (2, 3))
    found = motion.search(shifted, ref)
    # away from the edges every block finds the shift, and fetching by it is exact
    assert (found[1:-1, 1:-1] == torch.tensor([-2, 3])).all()
    pred = motion.compensate(ref, found)
    assert torch.equal(pred[..., 16:-16, 16:-16], shifted[..., 16:-16, 16:-16])


def test_salvage_skips_a_damaged_gop():
    frames = _pan(5)
    data = bytearray(_encode(frames, gop=2))
    p = video.parse(bytes(data))
    # a byte inside the second GOP's body: its CRC fails, and only it is lost
    at = bytes(data).index(b"VQG1", bytes(data).index(b"VQG1") + 1) + 20
    data[at] ^= 0xFF
    with pytest.raises(FormatError, match="salvage"):
        video.parse(bytes(data))
    s = video.parse(bytes(data), salvage=True)
    assert s.lost == [(2, 4)] and [first for first, _ in s.gops] == [0, 4]
    out = list(video.decode_frames(s, "cpu"))
    full = list(video.decode_frames(p, "cpu"))
    assert len(out) == 5
    np.testing.assert_array_equal(out[4], full[4])       # the last GOP decodes on its own
    np.testing.assert_array_equal(out[2], out[1])        # lost frames repeat the last good one


def test_heatmap_of_refined_frames_accounts_for_their_bits(pan_file):
    """`vqzip info --heatmap --frame N` on a format 4 video: the map of a key frame (base tokens and
    refinement symbols) and of a predicted one (inter symbols, motion vectors and flags) adds up to
    the frame's coded bits, less the range coders' rounding and the key frame's 4-byte base length,
    and shows the frame as the decoder outputs it."""
    from vqzip import heatmap
    frames, data = pan_file
    p = video.parse(data)
    out = list(video.decode_frames(p, "cpu"))
    for f in (0, 1, len(frames) - 1):
        bm = heatmap.of_file(data, f)
        assert bm.what == f"{'key' if f == 0 else 'predicted'} frame {f}"
        assert np.array_equal(np.asarray(bm.picture), out[f])
        assert bm.bits.shape == (-(-96 // heatmap.BLOCK), -(-128 // heatmap.BLOCK)) and (bm.bits >= 0).all()
        # each coded stream rounds up to 32-bit words (two for a key frame, one or two for a predicted one)
        assert bm.coded_bits - 3 * 32 - 32 <= bm.bits.sum() <= bm.coded_bits, (f, bm.bits.sum(), bm.coded_bits)
    # the predicted frames' maps hold their motion vectors and flags, and their symbols too
    extra = [heatmap.of_file(data, f).bits.sum() - 8 * inter.side_bytes(d) for f, (_, d) in enumerate(p.gops[0][1]) if f]
    assert min(extra) > -1e-9 and max(extra) > 16, extra
