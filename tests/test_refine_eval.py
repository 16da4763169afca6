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


def test_ladder_choice_scores_a_partial_sweep_on_the_images_it_has(tmp_path):
    """--common-images: a shard's sweep is compared with AVIF and the bench's own ladder on the
    images every point of the ladders has, not with their means over all 24."""
    import json
    import subprocess
    bench = ROOT / "benchmarks/results/kodak_refine5/points.csv"
    both, one = ("kodim01.png", "kodim03.png"), ("kodim01.png",)
    rows = (rows_for("1/2+r0", 0.04, 24.0, both) + rows_for("1/2+r1", 0.07, 25.0, both)
            + rows_for("1+r1", 0.27, 28.5, both) + rows_for("1+r3", 0.45, 30.0, one))
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ladders.json"
    subprocess.run([sys.executable, ROOT / "benchmarks/ladder_choice.py", tmp_path, bench, "--common-images",
                    "--ladders", "1/2+r0,1/2+r1,1+r1;1/2+r0,1/2+r1,1+r1,1+r3", "--out", out], check=True,
                   capture_output=True)
    got = json.loads(out.read_text())["ladders"]
    assert got[0]["ladder"] == "the bench's own" and got[0]["images"] == ["kodim01.png"]
    avif, vq = (re_.codec_curve(c, bench, {"kodim01.png"}) for c in ("avif", "vqzip"))
    assert got[0]["bd_rate_vs_avif"]["psnr"] == pytest.approx(re_.bd(avif, vq, "psnr"))
    assert re_.bd(avif, vq, "psnr") != pytest.approx(re_.bd(re_.codec_curve("avif", bench), re_.codec_curve("vqzip", bench), "psnr"))
    assert [g["ladder"] for g in got[1:]] == ["1/2+r0,1/2+r1,1+r1", "1/2+r0,1/2+r1,1+r1,1+r3"]
