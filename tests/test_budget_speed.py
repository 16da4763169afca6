"""benchmarks/budget_speed.py: the codec's budget shortcut against searching every point."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import SEARCHED, macaw

ROOT = Path(__file__).resolve().parents[1]


def test_it_times_both_ways_and_checks_they_pick_the_same_file(tmp_path):
    macaw(SEARCHED).save(tmp_path / "macaw.png")
    out = tmp_path / "budget.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/budget_speed.py"), str(tmp_path), "--images", "macaw",
                    "--bpp", "0.3", "--effort", "1", "--out", str(out)], check=True, capture_output=True)
    r = json.loads(out.read_text())
    (row,) = r["rows"]
    assert r["effort"] == 1 and row["image"] == "macaw" and row["same_file"]
    assert 0 < row["bytes"] * 8 <= 0.3 * 256 * 192
    assert row["codec_s"] > 0 and row["every_point_searched_s"] > 0 and row["avif_s"] > 0
