"""benchmarks/refine_eval.py and the resumable rows it shares with effort_sweep.py (benchmarks/report.py)."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import refine_eval as re_  # noqa: E402
from report import Rows, shard  # noqa: E402


def rows_for(point: str, bpp: float, psnr: float, images=("a.png", "b.png")):
    return [{"image": i, "point": point, "pixels": 100, "bpp": bpp, "layer_bytes": [bpp * 100 / 8],
             "psnr": psnr, "ms_ssim": 0.80 + psnr / 1000, "ssimulacra2": psnr * 2 - 80, "enc_s": 1.0,
             "dec_s": 1.0} for i in images]


def test_refined_points_are_compared_with_scaling_jpeg_and_avif():
    rows = (rows_for("3/2", 0.11, 23.3) + rows_for("2", 0.2, 24.0) + rows_for("5/2", 0.33, 24.4)
            + rows_for("1/2+r0", 0.06, 23.0) + rows_for("1+r0", 0.2, 26.5) + rows_for("1+r1", 0.3, 28.0)
            + rows_for("3/4+r1", 0.3, 27.0))  # 3/4+r1 is dominated by 1+r1
    s = re_.summarize(rows + rows_for("2+r2", 1.0, 30.0, images=("a.png",)), images=2)  # incomplete: ignored
    assert [p["point"] for p in s["points"]][:2] == ["1/2+r0", "3/2"]
    assert "2+r2" not in [p["point"] for p in s["points"]]
    assert s["refined_pareto"] == ["1/2+r0", "1+r0", "1+r1"]
    assert s["bd_rate_vs_scale_only"]["psnr"] < -50  # far fewer bits at the qualities both reach
    one = next(p for p in s["points"] if p["point"] == "1+r0")
    jpeg = one["jpeg_at_equal_bpp"]["psnr"]
    assert 23.85 < jpeg < 25.85  # between JPEG q5 (0.141 bpp) and q8 (0.210), interpolated in log bpp
    assert one["beats_jpeg"]["psnr"] == (26.5 > jpeg)
    assert isinstance(s["bd_rate_vs_avif"]["psnr"], float)
    assert "1+r0" in re_.tables(s)


def test_jpeg_is_not_extrapolated():
    curve = re_.codec_curve("jpeg")
    assert re_.at_bpp(curve, curve[0]["bpp"] / 2, "psnr") is None
    assert re_.at_bpp(curve, curve[1]["bpp"], "psnr") == pytest.approx(curve[1]["psnr"])


def test_rows_resume_and_shard(tmp_path):
    rows = Rows(tmp_path, lambda r: r["k"])
    rows.add({"k": 1})
    again = Rows(tmp_path, lambda r: r["k"])
    assert again.done == {1} and again.all() == [{"k": 1}]
    assert shard(list(range(7)), "1/3") == [1, 4]
