"""benchmarks/video_vs_before.py: one vqzip video bench against an earlier one."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import video_vs_before as vb  # noqa: E402

BEFORE = ROOT / "benchmarks" / "results" / "video" / "before_decisions" / "bench_vtest"


def test_the_same_bench_is_zero_and_half_the_rate_is_minus_half():
    rows = vb.points(BEFORE)
    same = vb.compare(rows, rows, "x264:crf=45")
    assert set(same["bd_rate_percent"]) == {"psnr", "ms_ssim", "vmaf"}
    assert all(v == pytest.approx(0, abs=1e-9) for v in same["bd_rate_percent"].values())
    half = [r | {"kbps": str(float(r["kbps"]) / 2)} if r["codec"] == "vqzip" else r for r in rows]
    out = vb.compare(rows, half, "x264:crf=45")
    assert all(v == pytest.approx(-50) for v in out["bd_rate_percent"].values())
    assert out["lowest_point"]["setting"] == "q=1" and out["lowest_point"]["kbps"] == pytest.approx(28.084 / 2)
    # x264 CRF 45 (29.1 kbps) lies between the halved q2 (27.1) and q3 (44.6): PSNR between theirs
    at = out["psnr_at_x264_crf=45"]
    assert 22.23 < at["vqzip_psnr"] < 22.92 and at["note"] == ""
    # below the lowest point nothing is made up
    low = vb.compare(rows, [r | {"kbps": str(float(r["kbps"]) * 2)} if r["codec"] == "vqzip" else r for r in rows],
                     "x264:crf=45")
    assert low["psnr_at_x264_crf=45"]["vqzip_psnr"] is None and "outside" in low["psnr_at_x264_crf=45"]["note"]
