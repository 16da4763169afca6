"""Tests for the benchmark engine (vqzip.bench). Fast: small images only."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqzip.bench import bdrate, codecs, metrics

_ROOT = Path(__file__).resolve().parents[1]
_CANDS = [d / "shared" / "data" / "kodak" / "kodim23.png" for d in (_ROOT, _ROOT.parent)]
KODIM23 = next((c for c in _CANDS if c.exists()), _CANDS[-1])  # else: synthetic images are used


def _synthetic(w: int = 192, h: int = 192, seed: int = 0) -> Image.Image:
    """Smooth gradients + a few edges + mild texture: compresses like a photo, not like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 90 * np.sin(x / 23.0) * np.cos(y / 31.0)
    g = 40 + 170 * (x + y) / (w + h)
    b = np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2, 200.0, 60.0)
    img = np.stack([r, g, b], axis=2) + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _test_image(w: int = 192, h: int = 192) -> Image.Image:
    if KODIM23.exists():
        with Image.open(KODIM23) as im:
            return im.convert("RGB").crop((300, 100, 300 + w, 100 + h))
    return _synthetic(w, h)


# ---------------------------------------------------------------- BD-rate
RATES = [0.05, 0.1, 0.2, 0.4, 0.8]
QUAL = [26.0, 28.5, 31.0, 33.0, 35.5]


def test_bd_rate_identity_is_zero():
    assert bdrate.bd_rate(RATES, QUAL, RATES, QUAL) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_double_and_half():
    double = [2 * r for r in RATES]
    half = [r / 2 for r in RATES]
    assert bdrate.bd_rate(RATES, QUAL, double, QUAL) == pytest.approx(100.0, abs=1e-6)
    assert bdrate.bd_rate(RATES, QUAL, half, QUAL) == pytest.approx(-50.0, abs=1e-6)
    # symmetric: the anchor needs 2x the test's rate
    assert bdrate.bd_rate(half, QUAL, RATES, QUAL) == pytest.approx(100.0, abs=1e-6)


def test_bd_rate_shifted_quality_points_partial_overlap():
    # Same underlying curve (log-rate linear in quality), test sampled at other
    # qualities and 2x the rate; overlap is only part of the range.
    def lr(q):
        return math.log(0.01) + 0.25 * (q - 20.0)

    qa = [24.0, 27.0, 30.0, 33.0]
    qt = [29.0, 31.0, 34.0, 37.0]
    ra = [math.exp(lr(q)) for q in qa]
    rt = [2 * math.exp(lr(q)) for q in qt]
    assert bdrate.bd_rate(ra, qa, rt, qt) == pytest.approx(100.0, abs=1e-3)


def test_bd_rate_no_overlap_is_none():
    val, why = bdrate.bd_rate_info([0.1, 0.2], [20.0, 22.0], [0.1, 0.2], [30.0, 32.0])
    assert val is None and "overlap" in why
    assert bdrate.bd_rate([0.1, 0.2], [20.0, 22.0], [0.1, 0.2], [30.0, 32.0]) is None
    # touching ranges are not an overlap either; too few points -> None
    assert bdrate.bd_rate([0.1, 0.2], [20.0, 22.0], [0.3, 0.4], [22.0, 24.0]) is None
    assert bdrate.bd_rate([0.1], [20.0], [0.1, 0.2], [20.0, 22.0]) is None


def test_bd_rate_unsorted_and_duplicates():
    perm = [3, 0, 4, 1, 2]
    r = [RATES[i] for i in perm] + [RATES[1] * 1.5]  # duplicate quality, higher rate -> dropped
    q = [QUAL[i] for i in perm] + [QUAL[1]]
    assert bdrate.bd_rate(RATES, QUAL, r, q) == pytest.approx(0.0, abs=1e-9)
    assert bdrate.bd_quality(RATES, QUAL, RATES, [x + 1 for x in QUAL]) == pytest.approx(1.0, abs=1e-9)


# ---------------------------------------------------------------- metrics
def test_metrics_identical_and_noisy():
    img = _test_image(192, 192)
    a = np.asarray(img)
    assert metrics.psnr(a, a) == metrics.PSNR_CAP == 100.0
    v, method = metrics.ms_ssim_ex(a, a)
    assert method == "ms-ssim" and v == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(1)
    noisy = np.clip(a.astype(np.int16) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    p = metrics.psnr(a, noisy)
    assert 20.0 < p < 40.0
    assert metrics.ms_ssim(a, noisy) < 0.99
    assert metrics.bpp(1000, 100, 80) == pytest.approx(1.0)


def test_metrics_small_image_falls_back_to_ssim():
    img = _test_image(120, 96)
    a = np.asarray(img)
    v, method = metrics.ms_ssim_ex(img, img)
    assert method == "ssim" and v == pytest.approx(1.0, abs=1e-6)
    noisy = np.clip(a.astype(np.int16) + 15, 0, 255).astype(np.uint8)
    assert metrics.ms_ssim(a, noisy) < 1.0


def test_ssimulacra2_identical_is_100():
    pytest.importorskip("ssimulacra2")
    img = _test_image(64, 64)
    assert metrics.ssimulacra2(img, img) == pytest.approx(100.0, abs=1e-6)


def test_metric_names():
    assert metrics.normalize_metric("MS-SSIM") == "ms_ssim"
    with pytest.raises(KeyError):
        metrics.normalize_metric("vmaf")


# ---------------------------------------------------------------- codecs
def test_jpeg_q1_roundtrip():
    c = codecs.get_codec("jpeg")
    assert c.available()[0]
    assert c.settings[0] == 1
    img = _synthetic(97, 65)  # odd size
    n, dec, te, td = c.roundtrip(img, 1)
    assert n > 0 and dec.size == img.size and dec.mode == "RGB"
    assert te >= 0 and td >= 0


def test_registry_never_crashes():
    status = codecs.list_codecs()
    assert set(status) >= {"jpeg", "webp", "avif", "av1", "jxl", "vqzip"}
    for ok, reason in status.values():
        assert isinstance(ok, bool) and isinstance(reason, str)
    with pytest.raises(KeyError):
        codecs.get_codec("nope")


@pytest.mark.parametrize("name", ["webp", "avif", "av1", "jxl"])
def test_other_codecs_roundtrip_odd_size(name):
    c = codecs.get_codec(name)
    ok, reason = c.available()
    if not ok:
        pytest.skip(reason)
    img = _synthetic(67, 45)
    n, dec, _, _ = c.roundtrip(img, c.settings[len(c.settings) // 2])
    assert n > 0 and dec.size == img.size
    assert metrics.psnr(img, dec) > 20.0


def test_vqzip_setting_interpretation():
    from vqzip.zoo import list_points
    c = codecs.get_codec("vqzip")
    p = list_points()[0]
    assert c._quality(p) == c._quality(p.quality) == p.quality
    assert c.setting_label(p).startswith(f"q{p.quality} (")
    with pytest.raises(TypeError):
        c._quality("fast")


# ---------------------------------------------------------------- runner
def test_vqzip_codec_in_a_real_bench(tmp_path):
    from vqzip.bench.runner import run_bench

    c = codecs.get_codec("vqzip")
    assert c.available() == (True, "")
    _synthetic(64, 48).save(tmp_path / "x.png")
    res = run_bench([tmp_path / "x.png"], ["vqzip", "jpeg"], ["psnr"], None, progress=False,
                    settings={"jpeg": [5, 30], "vqzip": [1, 3]})
    assert [p["setting"] for p in res["averages"]["vqzip"]] == ["q1", "q3"]
    assert all(p["bpp"] > 0 and p["psnr"] > 10 for p in res["averages"]["vqzip"])
    assert "vqzip" in res["bd_rate"]["jpeg"]["psnr"]


def test_run_bench_end_to_end(tmp_path, monkeypatch):
    from rich.console import Console

    # make the vqzip API unimportable, whatever state it is in: the bench must skip it
    monkeypatch.setitem(sys.modules, "vqzip.codec", None)
    codecs.CODECS["vqzip"].reset()

    from vqzip.bench.runner import format_bd_table, format_table, run_bench

    src = tmp_path / "imgs"
    src.mkdir()
    _test_image(192, 192).save(src / "a.png")
    _synthetic(150, 120, seed=3).save(src / "b.png")  # < 161 px: SSIM fallback
    out = tmp_path / "out"
    res = run_bench(
        [src],
        ["jpeg", "webp", "vqzip"],
        ["psnr", "ms-ssim"],
        out,
        progress=False,
        settings={"jpeg": [1, 5, 20, 45], "webp": [0, 20, 60]},
        command="vqzip bench test",
    )
    for f in ("points.csv", "summary.json", "rd.png"):
        assert (out / f).stat().st_size > 0
    s = json.loads((out / "summary.json").read_text())
    for key in ("images", "n_images", "codecs", "metrics", "skipped", "errors", "averages", "bd_rate", "notes", "how"):
        assert key in s, key
    assert s["n_images"] == 2
    assert s["errors"] == []
    assert set(s["averages"]) == {"jpeg", "webp"}
    pt = s["averages"]["jpeg"][0]
    for key in ("setting", "bpp", "psnr", "ms_ssim", "ssimulacra2", "enc_s", "dec_s", "n_images"):
        assert key in pt, key
    assert pt["setting"] == "q1" and pt["n_images"] == 2 and pt["ssimulacra2"] is None
    assert pt["ms_ssim_method"] == "mixed"
    # BD tables: against jpeg for both metrics; avif not run -> None with a reason
    assert set(s["bd_rate"]["jpeg"]) == {"psnr", "ms_ssim"}
    assert "webp" in s["bd_rate"]["jpeg"]["psnr"]
    assert s["bd_rate"]["avif"] is None and "avif" in s["bd_rate_reasons"]
    # vqzip unavailable: never a crash, the skip is recorded
    assert s["codecs"]["vqzip"]["available"] is False
    assert any(x["name"] == "vqzip" and x["reason"] for x in s["skipped"])
    assert any("vqzip" in n for n in s["notes"])
    assert s["how"]["command"] == "vqzip bench test"
    assert {"platform", "cpu_count"} <= set(s["how"]["machine"])
    assert "pillow" in s["how"]["versions"]
    lines = (out / "points.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 2 * (4 + 3)
    assert lines[0].startswith("image,width,height,codec,setting,bytes,bpp")
    assert len(res["points"]) == 14
    console = Console(width=140, record=True)
    console.print(format_table(res))
    console.print(format_bd_table(res))
    text = console.export_text()
    assert "jpeg" in text and "webp" in text


def test_run_bench_rejects_unknown():
    from vqzip.bench.runner import run_bench

    with pytest.raises(ValueError):
        run_bench([KODIM23], ["nope"], ["psnr"], None, progress=False)
    with pytest.raises(ValueError):
        run_bench([KODIM23], ["jpeg"], ["vmaf"], None, progress=False)
