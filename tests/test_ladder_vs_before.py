"""benchmarks/ladder_vs_before.py: one vqzip image ladder against an earlier one."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import ladder_vs_before as lb  # noqa: E402

BEFORE = ROOT / "benchmarks" / "results" / "kodak" / "before_ladder"


def test_the_same_ladder_is_zero_and_two_thirds_the_rate_is_minus_a_third():
    old = lb.ladder(BEFORE)
    same = lb.compare(old, old)
    assert set(same["bd_rate_percent"]) == {"psnr", "ms_ssim", "ssimulacra2"}
    assert all(v == pytest.approx(0, abs=1e-9) for v in same["bd_rate_percent"].values())
    cheaper = [p | {"bpp": p["bpp"] * 2 / 3} for p in old]
    assert all(v == pytest.approx(-100 / 3) for v in lb.compare(old, cheaper)["bd_rate_percent"].values())


def test_ladders_that_do_not_overlap_give_a_reason_not_a_number():
    old = lb.ladder(BEFORE)
    better = [p | {"psnr": p["psnr"] + 10} for p in old]
    out = lb.compare(old, better)
    assert out["bd_rate_percent"]["psnr"] is None and "do not overlap" in out["bd_rate_reasons"]["psnr"]
