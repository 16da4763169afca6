"""vqzip's image ladder against an earlier one, from two `vqzip bench` runs on the same images:
BD-rate (bpp against PSNR, MS-SSIM in dB and SSIMULACRA2) of the whole new ladder against the
whole old one, over the quality range both cover, on the per-setting means of `summary.json`.

    python benchmarks/ladder_vs_before.py benchmarks/results/kodak/before_ladder \\
        benchmarks/results/kodak --out benchmarks/results/kodak/vs_before_ladder.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from report import emit

from vqzip.bench.bdrate import bd_rate_info
from vqzip.bench.metrics import ms_ssim_db

METRICS = {"psnr": float, "ms_ssim": ms_ssim_db, "ssimulacra2": float}


def ladder(folder: Path) -> list[dict]:
    return json.loads((folder / "summary.json").read_text())["averages"]["vqzip"]


def compare(before: list[dict], after: list[dict]) -> dict:
    out = {"bd_rate_percent": {}, "bd_rate_reasons": {}}
    for metric, f in METRICS.items():
        bd, why = bd_rate_info([p["bpp"] for p in before], [f(p[metric]) for p in before],
                               [p["bpp"] for p in after], [f(p[metric]) for p in after])
        out["bd_rate_percent"][metric] = bd
        if why:
            out["bd_rate_reasons"][metric] = why
    keep = ("setting", "bpp", *METRICS)
    out["before"], out["after"] = [{k: p[k] for k in keep} for p in before], [{k: p[k] for k in keep} for p in after]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path, help="folder of the earlier `vqzip bench --out` (its summary.json)")
    ap.add_argument("after", type=Path, help="folder of the new one")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    emit({"command": "python " + " ".join(sys.argv), "before_dir": str(a.before), "after_dir": str(a.after),
          **compare(ladder(a.before), ladder(a.after))}, a.out)


if __name__ == "__main__":
    main()
