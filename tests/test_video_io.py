"""vqzip.video_io: reading, probing and writing video files with PyAV. Fast: clips of a few
tiny frames, made here; the shared sample clips are only probed or read for a few frames."""
from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import TONE_SECONDS, make_clip
from vqzip import video_io
from vqzip.errors import InputError
from vqzip.video_io import (VIDEO_INPUT_EXTS, VIDEO_OUTPUT_EXTS, VideoWriter, audio_duration,
                            extract_audio, is_video, probe, read_frames)

SAMPLES = Path(__file__).parents[1] / ".." / "shared" / "data" / "video"
NTSC = Fraction(30000, 1001)
LOSSLESS = {".mkv", ".avi"}


def _frames(w=48, h=32, n=10):
    """Smooth moving gradients: what a lossy codec at a high quality keeps well."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return [np.stack([128 + 90 * np.sin((x + 2 * i) / 9), 40 + 160 * y / h, 200 - 4 * x - 3 * i], 2)
            .clip(0, 255).astype(np.uint8) for i in range(n)]


def _write(path, frames, fps=NTSC, audio=None, force=False):
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps, audio, force) as out:
        for f in frames:
            out.write(f)
    return path


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def _stream_info(path):
    """(audio codec name or None, video duration in seconds from the packet timestamps)."""
    with av.open(str(path)) as c:
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        v = c.streams.video[0]
        end = max(p.pts + p.duration for p in c.demux(v) if p.pts is not None)
        return audio, float(end * v.time_base)


@pytest.fixture(scope="module")
def tone_clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "tone.mkv", _frames(), Fraction(10), "stereo")


@pytest.fixture(scope="module")
def blob(tone_clip):
    return extract_audio(tone_clip)


# ------------------------------------------------------------------------------------------ reading

def test_probe_and_read(tone_clip):
    info = probe(tone_clip)
    assert (info.width, info.height, info.fps, info.has_audio) == (48, 32, Fraction(10), True)
    assert info.seconds == pytest.approx(1.0, abs=0.05)  # the container's own duration
    got = list(read_frames(tone_clip))
    assert len(got) == 10 and all(g.shape == (32, 48, 3) and g.dtype == np.uint8 for g in got)
    assert all(np.array_equal(a, b) for a, b in zip(got, _frames()))  # FFV1 is lossless
    assert len(list(read_frames(tone_clip, max_frames=3))) == 3


def test_shared_sample_clip_keeps_its_rational_rate():
    clip = SAMPLES / "carphone_pristine.mp4"
    if not clip.is_file():
        pytest.skip("shared sample clips not present")
    info = probe(clip)
    assert (info.width, info.height, info.fps, info.has_audio) == (176, 144, NTSC, False)
    frames = list(read_frames(clip, max_frames=3))
    assert len(frames) == 3 and frames[0].shape == (144, 176, 3) and frames[0].std() > 10


def test_is_video(tmp_path, tone_clip):
    still, anim = tmp_path / "still.gif", tmp_path / "anim.gif"
    Image.new("RGB", (8, 8), "red").save(still)
    Image.new("RGB", (8, 8), "red").save(anim, save_all=True,
                                         append_images=[Image.new("RGB", (8, 8), "blue")])
    (tmp_path / "dir.mp4").mkdir()
    assert is_video(tone_clip) and is_video(anim)
    assert not is_video(still) and not is_video(tmp_path / "dir.mp4") and not is_video(tmp_path / "no.mp4")
    assert ".gif" in VIDEO_INPUT_EXTS and ".mp4" in VIDEO_INPUT_EXTS


@pytest.mark.parametrize("make, match", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)), "not a readable video"),
])
def test_bad_inputs(tmp_path, make, match):
    path = tmp_path / "clip.mp4"
    make(path)
    for call in (probe, lambda p: list(read_frames(p)), extract_audio):
        with pytest.raises(InputError, match=match) as e:
            call(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_audio_only_file_has_no_video_stream(tmp_path, blob):
    path = tmp_path / "sound.mkv"
    path.write_bytes(blob)  # an Ogg file: FFmpeg probes the content, not the extension
    with pytest.raises(InputError, match="no video stream"):
        probe(path)


def test_too_large_is_refused(tone_clip, monkeypatch):
    monkeypatch.setattr(video_io, "MAX_PIXELS", 48 * 32 - 1)
    with pytest.raises(InputError, match="too large"):
        probe(tone_clip)


@pytest.fixture(scope="module")
def noise_mp4(tmp_path_factory):
    """Noise frames: every frame's data is essential, so damage cannot be concealed."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(10)]
    return _write(tmp_path_factory.mktemp("noise") / "noise.mp4", frames)


def test_truncated_mp4_is_an_input_error(tmp_path, noise_mp4):
    data = noise_mp4.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])  # MP4's index (moov) is at the end: lost
    with pytest.raises(InputError, match="not a readable video") as e:
        list(read_frames(cut))
    assert str(cut) in str(e.value) and "\n" not in str(e.value)


def test_damage_mid_stream_names_the_frame(tmp_path, noise_mp4):
    data = bytearray(noise_mp4.read_bytes())
    n = len(data)
    data[n // 2:3 * n // 4] = np.random.default_rng(2).bytes(3 * n // 4 - n // 2)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    got = []
    with pytest.raises(InputError, match=r"cannot decode video frame \d+") as e:
        for f in read_frames(bad):
            got.append(f)
    assert f"frame {len(got)} " in str(e.value) and 0 < len(got) < 10


# ------------------------------------------------------------------------------------------ audio

def test_extract_audio_is_opus_in_ogg(blob, tmp_path):
    with av.open(io.BytesIO(blob)) as c:
        a = c.streams.audio[0]
        assert (c.format.name, a.codec_context.name, a.rate, a.layout.name) == ("ogg", "opus", 48000, "stereo")
    assert audio_duration(blob) == pytest.approx(TONE_SECONDS, abs=0.03)
    mono = make_clip(tmp_path / "mono.mkv", _frames(n=2), Fraction(10), "mono")
    with av.open(io.BytesIO(extract_audio(mono))) as c:
        assert c.streams.audio[0].layout.name == "mono"


def test_extract_audio_none_without_audio(tmp_path):
    assert extract_audio(make_clip(tmp_path / "silent.mkv", _frames(n=2), Fraction(10))) is None


def test_audio_duration_of_garbage_is_an_input_error():
    with pytest.raises(InputError, match="audio blob"):
        audio_duration(b"not a media file at all" * 10)


@pytest.mark.parametrize("ext, codec", [(".mp4", "opus"), (".mkv", "opus"), (".webm", "opus"),
                                        (".mov", "aac"), (".m4v", "aac"), (".avi", "pcm_s16le")])
def test_audio_survives(tmp_path, blob, ext, codec):
    out = _write(tmp_path / f"out{ext}", _frames(n=10), Fraction(10), blob)
    assert probe(out).has_audio
    assert _stream_info(out)[0] == codec
    assert audio_duration(out.read_bytes()) == pytest.approx(audio_duration(blob), abs=0.1)
    assert len(list(read_frames(out))) == 10


def test_audio_is_interleaved_with_the_video(tmp_path, blob):
    out = _write(tmp_path / "out.mkv", _frames(n=10), Fraction(10), blob)
    with av.open(str(out)) as c:
        kinds = [p.stream.type for p in c.demux() if p.size]
    # sound for the first frames comes before the last frames, not all at the end
    assert kinds.index("audio") < len(kinds) - 1 - kinds[::-1].index("video")


def test_gif_drops_audio_with_a_warning(tmp_path, blob):
    with pytest.warns(UserWarning, match="cannot hold audio"):
        out = _write(tmp_path / "out.gif", _frames(n=3), Fraction(10), blob)
    assert not probe(out).has_audio and len(list(read_frames(out))) == 3


# ------------------------------------------------------------------------------------------ writing

@pytest.mark.parametrize("size", [(48, 32), (33, 17)], ids=["even", "odd"])
@pytest.mark.parametrize("ext", sorted(VIDEO_OUTPUT_EXTS))
def test_round_trip(tmp_path, ext, size):
    frames = _frames(*size)
    out = _write(tmp_path / f"out{ext}", frames)  # audio=None: the --no-audio path
    info = probe(out)
    assert (info.width, info.height, info.has_audio) == (*size, False)
    got = list(read_frames(out))
    assert len(got) == len(frames) and got[0].shape == frames[0].shape
    psnr = min(_psnr(a, b) for a, b in zip(frames, got))
    if ext in LOSSLESS:
        assert psnr == 100.0  # bit-exact RGB
    else:
        # 4:2:0 chroma alone costs these tiny, colourful frames ~39 dB; GIF has 256 colours
        assert psnr > (30 if ext == ".gif" else 35), psnr
    _, seconds = _stream_info(out)
    if ext == ".gif":
        # GIF delays are whole centiseconds: the rate is approximate, the total time within 10 ms
        assert info.fps == pytest.approx(NTSC, rel=0.01)
        assert seconds == pytest.approx(len(frames) / NTSC, abs=0.01)
    else:
        assert info.fps == NTSC
        assert seconds == pytest.approx(len(frames) / NTSC, abs=0.002)
    assert sorted(os.listdir(tmp_path)) == [out.name]  # no temporary file left


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".avi", ".mkv", ".webm"])
def test_odd_rational_rate(tmp_path, ext):
    fps = Fraction(1000000, 66667)  # tree.avi's rate
    out = _write(tmp_path / f"out{ext}", _frames(n=4), fps)
    got = probe(out).fps
    if ext in (".mkv", ".webm"):  # Matroska times are whole milliseconds: reads back as 15
        assert got == pytest.approx(fps, rel=1e-3)
    else:
        assert got == fps
    assert len(list(read_frames(out))) == 4


def test_unsupported_output_extension(tmp_path):
    with pytest.raises(InputError, match=r"unsupported video output format \.flv .*\.mp4"):
        VideoWriter(tmp_path / "out.flv", 48, 32, NTSC)
    assert not list(tmp_path.iterdir())


def test_refuses_to_overwrite_unless_forced(tmp_path):
    out = tmp_path / "out.mkv"
    out.write_bytes(b"keep me")
    with pytest.raises(InputError, match="exists"):
        VideoWriter(out, 48, 32, NTSC)
    assert out.read_bytes() == b"keep me"
    _write(out, _frames(n=2), force=True)
    assert len(list(read_frames(out))) == 2


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_nothing_left_behind_after_an_exception(tmp_path, blob, ext):
    out = tmp_path / f"out{ext}"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 48, 32, NTSC, blob) as w:
            w.write(_frames(n=1)[0])
            raise RuntimeError("boom")
    with pytest.raises(ValueError, match="48x3"):  # a frame of the wrong size is a caller's bug
        with VideoWriter(out, 48, 32, NTSC) as w:
            w.write(np.zeros((32, 47, 3), np.uint8))
    assert not list(tmp_path.iterdir())


def test_unwritable_destination_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot write"):
        _write(tmp_path / "missing" / "out.mp4", _frames(n=1))
