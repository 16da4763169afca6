"""`vqzip encode/decode/info` on video files and folders, through the real entry point."""
import json
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from conftest import KODAK, TONE_SECONDS, make_clip, run_cli
from vqzip.video_io import audio_duration


def _pan(n=12, w=72, h=40, x0=300):
    im = Image.open(KODAK / "kodim23.png").convert("RGB")
    return [np.asarray(im.crop((x0 + i, 100, x0 + i + w, 100 + h))) for i in range(n)]


def _streams(path):
    """(frames, fps, audio seconds or None) of a video file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        fps = Fraction(v.average_rate)
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return frames, fps, None
        a = c.streams.audio[0]
        end = max(p.pts + p.duration for p in c.demux(a) if p.pts is not None and p.duration)
        return frames, fps, float(end * a.time_base)


@pytest.fixture(scope="module")
def talkie(tmp_path_factory):
    """A 12-frame clip at 30000/1001 fps with a one-second stereo tone."""
    return make_clip(tmp_path_factory.mktemp("src") / "talkie.mkv", _pan(n=30), Fraction(30000, 1001), "stereo")


def test_encode_decode_keeps_frames_rate_and_audio(talkie, tmp_path):
    vqz, out = tmp_path / "t.vqz", tmp_path / "t.mp4"
    r = run_cli("encode", talkie, "-o", vqz, "-q", "2", "--gop", "8", "--json", check=True)
    enc = json.loads(r.stdout)
    # --gop 8 makes at least 4 GOPs of 30 frames; the scene-cut rule (video.KEY_SHARE_REFINED) may
    # start one more where a predicted frame of this tiny synthetic pan costs nearly a key frame
    assert (enc["frames"], enc["fps"]) == (30, "30000/1001") and 4 <= enc["gops"] <= 5
    assert enc["audio_bytes"] > 0 and enc["predicted_frames"] == 30 - enc["gops"]
    assert enc["bits_per_predicted_frame"] < enc["bits_per_key_frame"]

    info = json.loads(run_cli("info", vqz, "--json", check=True).stdout)
    assert info["kind"] == "video" and info["frames"] == 30

    r = run_cli("decode", vqz, "-o", out, "--json", check=True)
    assert json.loads(r.stdout)["frames"] == 30
    frames, fps, audio = _streams(out)
    assert (frames, fps) == (30, Fraction(30000, 1001))
    assert audio == pytest.approx(TONE_SECONDS, abs=0.05)


def test_no_audio_and_lossless_output(talkie, tmp_path):
    vqz, out = tmp_path / "t.vqz", tmp_path / "t.mkv"
    run_cli("encode", talkie, "-o", vqz, "-q", "1", "--no-audio", check=True)
    assert json.loads(run_cli("info", vqz, "--json", check=True).stdout)["audio_bytes"] == 0
    run_cli("decode", vqz, "-o", out, check=True)
    assert _streams(out)[2] is None


def test_decode_defaults_to_mp4_beside_the_input(talkie, tmp_path):
    vqz = tmp_path / "clip.vqz"
    run_cli("encode", talkie, "-o", vqz, "-q", "1", check=True)
    r = run_cli("decode", vqz, check=True)
    assert (tmp_path / "clip.mp4").is_file(), r.stdout
    assert "30 frames at 30000/1001 fps" in r.stdout


def test_refuses_to_overwrite_and_bad_options(talkie, tmp_path):
    vqz = tmp_path / "t.vqz"
    vqz.write_bytes(b"precious")
    r = run_cli("encode", talkie, "-o", vqz)
    assert r.returncode == 1 and "exists (use --force" in r.stderr and vqz.read_bytes() == b"precious"
    r = run_cli("encode", talkie, "-o", tmp_path / "u.vqz", "--bpp", "0.1")
    assert r.returncode == 1 and "--bpp is for images" in r.stderr
    r = run_cli("encode", talkie, "-o", tmp_path / "u.vqz", "--gop", "0")
    assert r.returncode == 1 and "--gop" in r.stderr and not (tmp_path / "u.vqz").exists()


def test_damaged_video_vqz_is_refused(talkie, tmp_path):
    vqz = tmp_path / "t.vqz"
    run_cli("encode", talkie, "-o", vqz, "-q", "1", "--no-audio", check=True)
    data = vqz.read_bytes()
    for name, bad in (("cut.vqz", data[:len(data) // 2]), ("flip.vqz", data[:60] + bytes([data[60] ^ 4]) + data[61:])):
        (tmp_path / name).write_bytes(bad)
        r = run_cli("decode", tmp_path / name, "-o", tmp_path / (name + ".mp4"))
        assert r.returncode == 1 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
        assert "truncated" in r.stderr or "corrupted" in r.stderr
        assert not (tmp_path / (name + ".mp4")).exists()


def test_folder_with_a_corrupt_clip(tmp_path):
    """The must-show: 3 clips, one corrupt -> 2 outputs, a summary naming the bad one, exit 1."""
    src = tmp_path / "footage"
    (src / "day2").mkdir(parents=True)
    make_clip(src / "a.mkv", _pan(n=6), Fraction(25))
    make_clip(src / "day2" / "b.mkv", _pan(n=6, x0=200), Fraction(24000, 1001))
    make_clip(tmp_path / "whole.mp4", _pan(n=6), Fraction(25))
    good = (tmp_path / "whole.mp4").read_bytes()
    (src / "broken.mp4").write_bytes(good[:len(good) // 2])  # MP4 keeps its index at the end
    out = tmp_path / "packed"
    r = run_cli("encode", src, "-o", out, "-r", "-q", "1", "--jobs", "2", "--json")
    assert r.returncode == 1
    s = json.loads(r.stdout)
    assert s["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    assert s["failed"][0]["input"].endswith("broken.mp4") and s["failed"][0]["error"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.vqz", "day2/b.vqz"]

    r = run_cli("encode", src, "-o", out, "-r", "-q", "1")  # up-to-date outputs are skipped
    assert r.returncode == 1 and "encoded 0, skipped 2 up to date, failed 1" in r.stdout
    assert "broken.mp4" in r.stderr

    back = tmp_path / "back"
    r = run_cli("decode", out, "-o", back, "-r", "--json", check=True)
    assert json.loads(r.stdout)["counts"]["done"] == 2
    assert _streams(back / "a.mp4")[:2] == (6, Fraction(25))
    assert _streams(back / "day2" / "b.mp4")[:2] == (6, Fraction(24000, 1001))


def test_audio_blob_is_opus_of_the_source_length(talkie, tmp_path):
    from vqzip import video
    vqz = tmp_path / "t.vqz"
    run_cli("encode", talkie, "-o", vqz, "-q", "1", check=True)
    p = video.parse(vqz.read_bytes())
    assert audio_duration(p.audio) == pytest.approx(TONE_SECONDS, abs=0.05)


def test_a_cut_matroska_file_is_coded_with_a_warning(tmp_path):
    """Matroska has no index to miss: a cut file decodes fine, only shorter, so vqzip says so."""
    make_clip(tmp_path / "long.mkv", _pan(n=60), Fraction(25))
    data = (tmp_path / "long.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[:len(data) // 3])
    r = run_cli("encode", tmp_path / "cut.mkv", "-q", "1", "--json", check=True)
    assert "truncated file?" in r.stderr and "declares 2.40 s" in r.stderr
    assert json.loads(r.stdout)["frames"] < 30


def test_salvage_from_the_command_line(talkie, tmp_path):
    vqz = tmp_path / "t.vqz"
    run_cli("encode", talkie, "-o", vqz, "-q", "1", "--gop", "8", check=True)
    data = bytearray(vqz.read_bytes())
    at = data.index(b"VQG1", data.index(b"VQG1") + 1) + 40   # inside the second GOP (frames 8-15)
    data[at] ^= 0x01
    (tmp_path / "bad.vqz").write_bytes(bytes(data))
    r = run_cli("decode", tmp_path / "bad.vqz", "-o", tmp_path / "a.mp4")
    assert r.returncode == 1 and "--salvage" in r.stderr
    r = run_cli("decode", tmp_path / "bad.vqz", "-o", tmp_path / "b.mp4", "--salvage", "--json", check=True)
    assert "frames 8-15 were damaged" in r.stderr and json.loads(r.stdout)["lost_frames"] == [[8, 16]]
    frames, fps, audio = _streams(tmp_path / "b.mp4")
    assert (frames, fps) == (30, Fraction(30000, 1001)) and audio == pytest.approx(TONE_SECONDS, abs=0.05)
