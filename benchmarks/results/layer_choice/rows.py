"""Both layers' sweep rows in one file, the perceptual layer's points named as points.json names
them ("1+r1@perceptual"): the input of benchmarks/point_choice.py for a choice between layers.

usage: python rows.py OUT_DIR   (writes tune_e0, tune_e5, kodak_e0, kodak_e5 .jsonl)"""
import json
import sys
from pathlib import Path

R = Path(__file__).resolve().parents[1]
SOURCES = {  # (layer v5's rows, the perceptual layer's rows)
    "tune_e0": ("point_choice/tune_e0_rows.jsonl", "ssim2_objective/sweep_jointS2_tune_e0_rows.jsonl"),
    "tune_e5": ("point_choice/tune_e5_rows.jsonl", "ssim2_objective/sweep_jointS2_tune_e5_rows.jsonl"),
    "kodak_e0": ("point_choice/kodak_e0_rows.jsonl", "ssim2_objective/sweep_jointS2_kodak_e0_rows.jsonl"),
    "kodak_e5": ("joint_v5/sweep_rows.jsonl", "ssim2_objective/sweep_jointS2_kodak_e5_rows.jsonl"),
}
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for name, files in SOURCES.items():
    lines = []
    for suffix, f in zip(("", "@perceptual"), files):
        for line in (R / f).read_text().splitlines():
            r = json.loads(line)
            lines.append(json.dumps(r | {"point": r["point"] + suffix}) + "\n")
    (out / f"{name}.jsonl").write_text("".join(lines))
