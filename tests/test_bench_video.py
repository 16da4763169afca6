"""Tests for the video part of `vqzip bench` (vqzip.bench.video). Fast: a tiny synthetic clip."""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from conftest import run_cli  # noqa: E402
from vqzip.bench.video import (format_video_table, read_clip,  # noqa: E402
                               run_video_bench)


def _make_clip(path, n=24, w=128, h=96, fps=25):
    """Moving gradient + a moving disc + mild fixed texture, coded near-losslessly with libx264."""
    rng = np.random.default_rng(0)
    texture = rng.normal(0, 6, (h, w, 3))
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "8", "preset": "veryfast"}
        for i in range(n):
            r = 128 + 100 * np.sin((x + 3 * i) / 17.0)
            g = 30 + 190 * (x + y + 2 * i) / (w + h + 2 * n)
            b = np.where((x - 20 - 3 * i) ** 2 + (y - h / 2) ** 2 < 18 ** 2, 220.0, 50.0)
            img = np.clip(np.stack([r, g, b], 2) + texture, 0, 255).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return _make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def result(clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("vbench")
    return run_video_bench(clip, ("x264", "av1", "vqzip"), max_frames=20, out_dir=out, progress=False), out


def test_read_clip_keeps_fraction_fps(clip):
    frames, fps = read_clip(clip, max_frames=5)
    assert len(frames) == 5 and frames[0].shape == (96, 128, 3) and frames[0].dtype == np.uint8
    assert isinstance(fps, Fraction) and fps == 25


def test_rates_and_quality_monotone(result):
    s, _ = result
    assert s["clip"]["n_frames"] == 20 and s["clip"]["fps"] == "25/1"
    assert not s["errors"], s["errors"]
    for name in ("x264", "av1"):
        assert s["codecs"][name]["available"], s["codecs"][name]
        pts = s["points"][name]
        assert len(pts) == 4
        # settings go from low to high quality (CRF falling): kbps must rise with quality
        by_setting = sorted(pts, key=lambda p: -p["crf"])
        kbps = [p["kbps"] for p in by_setting]
        assert all(a < b for a, b in zip(kbps, kbps[1:])), kbps
        psnr = [p["psnr"] for p in by_setting]
        assert all(math.isfinite(v) for v in psnr)
        assert all(a < b for a, b in zip(psnr, psnr[1:])), psnr
        for p in pts:
            assert p["kbps"] == pytest.approx(p["bytes"] * 8 / (20 / 25) / 1000)
            assert 0 < p["ms_ssim"] <= 1 and p["ms_ssim_method"] == "ssim"  # 96 px < 161: SSIM fallback
            assert p["enc_s"] > 0 and p["dec_s"] > 0


def test_vqzip_row_and_bd_rate(result):
    s, _ = result
    assert s["codecs"]["vqzip"]["available"] is True
    pts = s["points"]["vqzip"]
    assert [p["q"] for p in sorted(pts, key=lambda p: p["kbps"])] == [1, 2, 3, 4, 5]
    for p in pts:
        assert p["kbps"] == pytest.approx(p["bytes"] * 8 / (20 / 25) / 1000)
        assert 15 < p["psnr"] < 60 and 0 < p["ms_ssim"] <= 1
    assert "vqzip" in s["bd_rate"]["psnr"] or "vqzip" in s["bd_rate_reasons"].get("psnr", {})
    assert s["anchor"] == "x264"
    assert set(s["bd_rate"]) >= {"psnr", "ms_ssim"}
    v = s["bd_rate"]["psnr"]["av1"]
    assert v is None or math.isfinite(v)
    assert s["vmaf"]["available"] or s["vmaf"]["reason"]
    if s["vmaf"]["available"]:
        assert all(0 <= p["vmaf"] <= 100 for p in s["points"]["x264"])


def test_outputs_written(result):
    s, out = result
    for name in ("video_points.csv", "video_summary.json", "video_rd.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    rows = list(csv.DictReader(open(out / "video_points.csv")))
    assert len(rows) == 13 and {r["codec"] for r in rows} == {"x264", "av1", "vqzip"}
    j = json.loads((out / "video_summary.json").read_text())
    assert j["how"]["command"] and j["how"]["date"] and j["how"]["versions"]["av"]
    assert "machine" in j["how"]
    table = format_video_table(s)
    assert table.row_count == 13


def test_unknown_codec_raises(clip):
    with pytest.raises(ValueError):
        run_video_bench(clip, ("x264", "mpeg2"), max_frames=2, progress=False)


def test_cli_video_json(clip):
    r = run_cli("bench", clip, "--codecs", "x264", "--max-frames", "10", "--json", check=True)
    d = json.loads(r.stdout)
    assert d["images"] is None and isinstance(d["videos"], list) and len(d["videos"]) == 1
    v = d["videos"][0]
    assert v["clip"]["n_frames"] == 10 and list(v["points"]) == ["x264"] and len(v["points"]["x264"]) == 4
