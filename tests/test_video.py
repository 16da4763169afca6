"""Video coding: the temporal model is lossless and exact, GOPs are independent, and hostile video
payloads are refused. Clips are tiny synthetic ones so that the tokenizer runs in moments."""
import struct
import zlib
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from conftest import KODAK
from vqzip.coding import container
from vqzip import video
from vqzip.errors import FormatError, VqzipError
from vqzip.coding.temporal import TemporalState, decode_predicted, encode_predicted
from vqzip.zoo import resolve

FULL_SIZE = replace(resolve(kind="video_tokens"), scale=Fraction(1))  # format 2: tokens at the clip's own size, with decisions


def _drifting_grids(frames=6, h=9, w=13, bits=20, p=0.2, seed=0):
    """Token grids where each frame changes a fraction p of the last one's tokens by a few bits."""
    rng = np.random.default_rng(seed)
    grids = [rng.integers(0, 1 << bits, (h, w))]
    for _ in range(frames - 1):
        g = grids[-1].copy()
        where = rng.random((h, w)) < p
        flips = (rng.random((h, w, bits)) < 0.15) << np.arange(bits)
        g[where] ^= flips.sum(-1)[where]
        grids.append(g)
    return grids


def test_predicted_frames_round_trip_and_adapt():
    grids = _drifting_grids(frames=8)
    enc, dec = TemporalState(20), TemporalState(20)
    sizes = []
    for prev, cur in zip(grids, grids[1:]):
        data = encode_predicted(prev, cur, enc)
        np.testing.assert_array_equal(decode_predicted(prev, data, dec), cur)
        sizes.append(len(data))
    # both sides hold the same adapted counts
    for a, b in ((enc.flags1, dec.flags1), (enc.flags2, dec.flags2), (enc.xor, dec.xor)):
        np.testing.assert_array_equal(a, b)
    # far below the 20 raw bits a token, and cheaper once the counts have adapted
    n = grids[0].size
    assert max(sizes) * 8 / n < 8
    assert sizes[-1] < sizes[0]


def test_an_unchanged_frame_costs_almost_nothing():
    g = _drifting_grids(frames=1, h=40, w=60)[0]
    s = TemporalState(20)
    for _ in range(4):
        data = encode_predicted(g, g, s)
    assert len(data) * 8 / g.size < 0.05
    assert (decode_predicted(g, data, TemporalState(20)) == g).all()


def test_wrong_state_gives_other_tokens_not_a_crash():
    """The counts are part of the model: a decoder that skipped a frame gets different tokens,
    which is why every GOP restarts them and the GOP CRC guards the bytes."""
    grids = _drifting_grids(frames=3, p=0.5)
    s = TemporalState(20)
    encode_predicted(grids[0], grids[1], s)
    data = encode_predicted(grids[1], grids[2], s)
    out = decode_predicted(grids[1], data, TemporalState(20))
    assert out.shape == grids[2].shape and not (out == grids[2]).all()


def _clip(n=7, w=70, h=50, cut_at=None):
    """A crop of kodim23 panning one pixel a frame; after `cut_at`, another picture (a scene cut)."""
    a = Image.open(KODAK / "kodim23.png").convert("RGB")
    b = Image.open(KODAK / "kodim05.png").convert("RGB")
    frames = []
    for i in range(n):
        src = b if cut_at is not None and i >= cut_at else a
        frames.append(np.asarray(src.crop((300 + i, 100, 300 + i + w, 100 + h))))
    return frames


@pytest.fixture(scope="module")
def clip_file():
    frames = _clip()
    return frames, video.encode_frames(frames, 70, 50, Fraction(30000, 1001), FULL_SIZE, "cpu", gop=3)


def test_video_round_trip(clip_file):
    frames, data = clip_file
    p = video.parse(data)
    assert (p.frames, p.fps, p.audio, p.lost) == (7, Fraction(30000, 1001), b"", [])
    assert [(first, len(g)) for first, g in p.gops] == [(0, 3), (3, 3), (6, 1)]
    assert [k for _, g in p.gops for k, _ in g] == [0, 1, 1, 0, 1, 1, 0]
    out = list(video.decode_frames(p, "cpu"))
    assert len(out) == 7 and all(o.shape == (50, 70, 3) and o.dtype == np.uint8 for o in out)
    err = np.mean([(o.astype(float) - f) ** 2 for o, f in zip(out, frames)])
    assert 10 * np.log10(255 ** 2 / err) > 20


def test_without_decisions_frames_reconstruct_as_the_images_do():
    """The prior is lossless: without the keep-or-change decisions a video's tokens are the
    tokenizer's tokens of each frame (test_decisions.py covers them with)."""
    frames = _clip()
    p = video.parse(video.encode_frames(frames, 70, 50, Fraction(25), replace(FULL_SIZE, lam=None), "cpu", gop=3))
    m = video.get_model(p.header.model_id)
    want = [t for t, _, _ in video._tokenize(frames, m.tokenizer, (70, 50), "cpu", False)]
    got = list(video.decode_tokens_of(p))
    assert [i for i, _ in got] == list(range(7))
    for (_, a), b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_predicted_frames_are_cheaper_and_info_reports_them(clip_file):
    _, data = clip_file
    i = video.info(data)
    assert (i["frames"], i["key_frames"], i["predicted_frames"], i["gops"]) == (7, 3, 4, 3)
    assert i["bits_per_predicted_frame"] < i["bits_per_key_frame"]
    assert i["fps"] == "30000/1001" and i["kbps"] > 0


def test_ahead_keeps_order_raises_in_place_and_stops_when_left():
    def gen(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise FormatError("broken here")
            yield i
    assert list(video._ahead(gen(50))) == list(range(50))
    got = []
    with pytest.raises(FormatError, match="broken here"):
        for i in video._ahead(gen(10, fail_at=6)):
            got.append(i)
    assert got == list(range(6))
    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)
    it = video._ahead(endless())
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()  # the consumer leaves: the producer stops and closes its generator
    assert closed == [True]


def test_scene_cut_starts_a_gop():
    frames = _clip(n=6, cut_at=3)
    data = video.encode_frames(frames, 70, 50, Fraction(25), FULL_SIZE, "cpu", gop=64)
    kinds = [k for _, g in video.parse(data).gops for k, _ in g]
    assert kinds[0] == 0 and kinds[3] == 0


def test_one_frame_and_no_frames():
    one = video.encode_frames(_clip(n=1), 70, 50, Fraction(1), FULL_SIZE, "cpu")
    assert len(list(video.decode_frames(video.parse(one), "cpu"))) == 1
    with pytest.raises(VqzipError, match="no frames"):
        video.encode_frames([], 70, 50, Fraction(1), FULL_SIZE, "cpu")
    with pytest.raises(VqzipError, match="--gop"):
        video.encode_frames(_clip(n=1), 70, 50, Fraction(1), FULL_SIZE, "cpu", gop=0)


def test_an_image_file_is_not_a_video(photo):
    from vqzip import codec
    with pytest.raises(FormatError, match="not a video"):
        video.parse(codec.encode_image(photo, quality=1))
    with pytest.raises(FormatError, match="not an image"):
        codec.decode(video.encode_frames(_clip(n=1), 70, 50, Fraction(1), FULL_SIZE, "cpu"))


def _reseal(data: bytes, payload: bytes | None = None, **extra) -> bytes:
    header, old = container.unpack(data)
    header = container.Header(**{**header.__dict__, "extra": {**header.extra, **extra}})
    return container.pack(header, old if payload is None else payload)


@pytest.mark.parametrize("edit, message", [
    (dict(frames=8), "7 frames, 8 declared"),
    (dict(frames=3), "more frames than the 3 declared"),
    (dict(frames=0), "bad frame count"),
    (dict(fps=[0, 1]), "bad frame rate"),
    (dict(fps="30"), "bad frame rate"),
])
def test_forged_header_fields(clip_file, edit, message):
    with pytest.raises(FormatError, match=message):
        video.parse(_reseal(clip_file[1], **edit))


def _gop_offsets(payload: bytes) -> list[int]:
    (alen,) = struct.unpack_from("<I", payload)
    pos, out = 8 + alen, []
    while pos < len(payload):
        out.append(pos)
        pos += 18 + struct.unpack_from("<I", payload, pos + 10)[0]
    return out


def test_forged_payload_structure(clip_file):
    data = clip_file[1]
    _, payload = container.unpack(data)
    g0, g1, _ = _gop_offsets(payload)
    first, count, size = struct.unpack_from("<IHI", payload, g0 + 4)
    body = bytearray(payload[g0 + 18:g0 + 18 + size])

    def chunk(first=first, count=count, body=bytes(body), size=None, marker=b"VQG1"):
        head = marker + struct.pack("<IHI", first, count, len(body) if size is None else size)
        return head + struct.pack("<I", zlib.crc32(head + body)) + body

    rest = payload[g1:]
    cases = {
        "audio runs past": struct.pack("<I", len(payload)) + payload[4:],
        "the audio fails its CRC": payload[:4] + b"\1\0\0\0" + payload[8:],
        "GOP runs past": payload[:g0] + chunk(size=size + 10 ** 6)[:18] + payload[g0 + 18:],
        "the GOP of frame 0 fails its CRC": payload[:g0 + 18] + bytes([body[0] ^ 1]) + payload[g0 + 19:],
        "more frames than the 7 declared": payload + payload[g1:],
        "no GOP marker": payload[:g0] + chunk(marker=b"XXXX") + rest,
        "GOP of frame 3 where frame 0 was due": payload[:g0] + chunk(first=3) + rest,
        "holds 3 frames, not 2": payload[:g0] + chunk(count=2) + rest,
        "frame 0 has type 1": payload[:g0] + chunk(body=b"\x01" + bytes(body[1:])) + rest,
    }
    for message, p in cases.items():
        with pytest.raises(FormatError, match=message):
            video.parse(_reseal(data, p))


def test_salvage_keeps_the_intact_gops(clip_file, tmp_path):
    frames, data = clip_file
    header, payload = container.unpack(data)
    g0, g1, g2 = _gop_offsets(payload)
    start = len(data) - 4 - len(payload)  # the payload's offset in the file
    bad = bytearray(data)
    bad[start + g1 + 30] ^= 0x10           # inside the second GOP's body
    with pytest.raises(FormatError, match="CRC mismatch.*--salvage"):
        video.parse(bytes(bad))
    p = video.parse(bytes(bad), salvage=True)
    assert [first for first, _ in p.gops] == [0, 6] and p.lost == [(3, 6)]
    out = list(video.decode_frames(p, "cpu"))
    assert len(out) == 7
    assert all((out[i] == out[2]).all() for i in (3, 4, 5))  # lost frames repeat the last good one
    good = list(video.decode_frames(video.parse(data), "cpu"))
    for i in (0, 1, 2, 6):
        assert (out[i] == good[i]).all()

    cut = data[:start + g2 + 10]           # the last GOP is cut short
    p = video.parse(cut, salvage=True)
    assert (p.lost, p.ends_at, p.frames) == ([], 6, 7) and len(list(video.decode_frames(p, "cpu"))) == 6
    with pytest.raises(FormatError, match="nothing to salvage"):
        video.parse(data[:start + g0 + 10], salvage=True)

    src, dst = tmp_path / "bad.vqz", tmp_path / "bad.mkv"
    src.write_bytes(bytes(bad))
    r = video.decode_file(src, dst, salvage=True)
    assert r["lost_frames"] == [(3, 6)] and "frames 3-5 were damaged" in r["warning"] and dst.is_file()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_hostile_video_payloads_fail_cleanly(clip_file, data):
    """Random edits to a video payload, resealed with a valid file CRC: parse and decode either
    work or raise a VqzipError."""
    _, payload = container.unpack(clip_file[1])
    b = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del b[at:at + data.draw(st.integers(1, 64))]
        else:
            b[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    try:
        p = video.parse(_reseal(clip_file[1], bytes(b)))
        for _ in video.decode_tokens_of(p):
            pass
    except VqzipError:
        pass
    # a salvage of the same bytes fails only for want of an intact GOP, and never yields more
    # frames than declared
    try:
        p = video.parse(_reseal(clip_file[1], bytes(b)), salvage=True)
    except FormatError as e:
        assert "nothing to salvage" in str(e) or "bad frame" in str(e) or "audio block" in str(e)
        return
    covered = sum(len(g) for _, g in p.gops) + sum(b - a for a, b in p.lost)
    assert covered == p.ends_at <= 7


def test_unreadable_audio_is_a_format_error(clip_file, tmp_path):
    _, payload = container.unpack(clip_file[1])
    junk = b"not an ogg file at all"
    forged = struct.pack("<II", len(junk), zlib.crc32(junk)) + junk + payload[8:]
    (tmp_path / "a.vqz").write_bytes(_reseal(clip_file[1], forged))
    with pytest.raises(FormatError, match="its audio is unreadable"):
        video.decode_file(tmp_path / "a.vqz", tmp_path / "a.mp4")
    assert not (tmp_path / "a.mp4").exists()
