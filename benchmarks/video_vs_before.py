"""vqzip video against an earlier vqzip video, from two `vqzip bench` runs of the same clip:
BD-rate (kbps against PSNR, MS-SSIM in dB and VMAF) over q1-q5, vqzip's PSNR interpolated at a
reference codec's rate (x264 CRF 45 by default) and the VMAF of vqzip's lowest point.

    python benchmarks/video_vs_before.py benchmarks/results/video/before_decisions/bench_vtest \\
        benchmarks/results/video/bench_vtest --out benchmarks/results/video/vs_before_vtest.json
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np
from report import emit

from vqzip.bench.bdrate import bd_rate_info


def points(folder: Path) -> list[dict]:
    with open(folder / "video_points.csv") as f:
        return list(csv.DictReader(f))


def _db(ssim: float) -> float:
    return -10 * math.log10(max(1e-10, 1 - ssim))


def compare(before: list[dict], after: list[dict], ref: str) -> dict:
    old = sorted((r for r in before if r["codec"] == "vqzip"), key=lambda r: float(r["kbps"]))
    new = sorted((r for r in after if r["codec"] == "vqzip"), key=lambda r: float(r["kbps"]))
    out = {"bd_rate_percent": {}, "bd_rate_reasons": {}}
    for metric, f in (("psnr", float), ("ms_ssim", lambda v: _db(float(v))), ("vmaf", float)):
        if any(r[metric] in ("", None) for r in old + new):
            continue
        bd, why = bd_rate_info([float(r["kbps"]) for r in old], [f(r[metric]) for r in old],
                               [float(r["kbps"]) for r in new], [f(r[metric]) for r in new])
        out["bd_rate_percent"][metric] = bd
        if why:
            out["bd_rate_reasons"][metric] = why
    codec, setting = ref.split(":")
    at = next(r for r in after if r["codec"] == codec and r["setting"] == setting)
    rate = float(at["kbps"])
    k = np.log([float(r["kbps"]) for r in new])
    psnr = [float(r["psnr"]) for r in new]
    inside = k[0] <= math.log(rate) <= k[-1]
    out[f"psnr_at_{codec}_{setting}"] = {
        "kbps": rate, f"{codec}_psnr": float(at["psnr"]),
        "vqzip_psnr": float(np.interp(math.log(rate), k, psnr)) if inside else None,
        "note": "" if inside else f"{rate:.1f} kbps is outside vqzip's {new[0]['kbps']}..{new[-1]['kbps']} kbps"}
    out["lowest_point"] = _row(new[0])
    out["before"], out["after"] = [_row(r) for r in old], [_row(r) for r in new]
    return out


def _row(r: dict) -> dict:
    return {"setting": r["setting"]} | {k: float(r[k]) for k in ("kbps", "psnr", "ms_ssim", "vmaf", "enc_s", "dec_s")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path, help="folder of the earlier `vqzip bench --out`")
    ap.add_argument("after", type=Path, help="folder of the new one")
    ap.add_argument("--ref", default="x264:crf=45", help="codec:setting whose rate to read vqzip's PSNR at")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    res = {"command": "python " + " ".join(sys.argv), "before_dir": str(a.before), "after_dir": str(a.after),
           **compare(points(a.before), points(a.after), a.ref)}
    emit(res, a.out)


if __name__ == "__main__":
    main()
