"""The whole image ladder at one effort, assembled from effort_sweep.py rows, against a `vqzip
bench` run: BD-rate on PSNR, MS-SSIM (dB) and SSIMULACRA2, as ladder_vs_before.py gives it.

A new default effort changes every searched point, and the sweep that picks it has the rows (real
.vqz sizes, today's decoder, all metrics) of the levels it ran; the other levels can come from a
second sweep folder. Both sides are averaged over the same images: those that the bench's
points.csv and the sweeps have at every level. Where the sweeps have effort 0 too, it also gives
what the bench's effort and this one gain on effort 0 over the levels effort 0 has: the share of
the search's gain the new effort keeps.

    python benchmarks/ladder_from_sweeps.py benchmarks/results/kodak_ctx 5 \\
        benchmarks/results/effort_default benchmarks/results/effort_default_high --out OUT.json
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np

from ladder_vs_before import compare
from report import emit

KEYS = ("bpp", "psnr", "ms_ssim", "ssimulacra2")


def bench_rows(folder: Path) -> list[dict]:
    """vqzip's rows of a bench's points.csv, with the quality level read off the setting."""
    with open(folder / "points.csv") as f:
        return [{"image": Path(r["image"]).name, "quality": int(re.match(r"q(\d+)", r["setting"])[1])}
                | {k: float(r[k]) for k in KEYS} for r in csv.DictReader(f) if r["codec"] == "vqzip"]


def sweep_rows(folders: list[Path], effort: int) -> list[dict]:
    rows = [json.loads(line) for f in folders for line in (f / "rows.jsonl").read_text().splitlines()]
    return [r for r in rows if r["effort"] == effort]


def levels_of(rows: list[dict]) -> set[int]:
    return {r["quality"] for r in rows}


def complete_images(rows: list[dict], levels: set[int]) -> set[str]:
    have = {(r["image"], r["quality"]) for r in rows}
    return {i for i in {r["image"] for r in rows} if all((i, q) in have for q in levels)}


def curve(rows: list[dict], images: set[str], levels: set[int], label: str) -> list[dict]:
    out = []
    for q in sorted(levels):
        rs = {r["image"]: r for r in rows if r["quality"] == q and r["image"] in images}
        out.append({"setting": f"q{q} ({label})", "n_images": len(rs)} |
                   {k: float(np.mean([r[k] for r in rs.values()])) for k in KEYS})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench", type=Path, help="folder of a `vqzip bench --out` (its points.csv): the anchor")
    ap.add_argument("effort", type=int)
    ap.add_argument("sweeps", type=Path, nargs="+", help="effort_sweep.py --out folders")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    bench, new, zero = bench_rows(a.bench), sweep_rows(a.sweeps, a.effort), sweep_rows(a.sweeps, 0)
    levels = levels_of(bench) & levels_of(new)
    images = complete_images(bench, levels) & complete_images(new, levels)
    out = {"command": "python " + " ".join(sys.argv), "anchor": str(a.bench), "effort": a.effort,
           "levels": sorted(levels), "images": sorted(images),
           **compare(curve(bench, images, levels, "bench"), curve(new, images, levels, f"effort {a.effort}"))}
    if zero:
        low = levels & levels_of(zero)
        imgs = complete_images(bench, low) & complete_images(new, low) & complete_images(zero, low)
        base = curve(zero, imgs, low, "effort 0")
        out["gain_over_effort0"] = {
            "levels": sorted(low), "images": len(imgs),
            "bench": compare(base, curve(bench, imgs, low, "bench"))["bd_rate_percent"],
            f"effort {a.effort}": compare(base, curve(new, imgs, low, f"effort {a.effort}"))["bd_rate_percent"]}
    emit(out, a.out)


if __name__ == "__main__":
    main()
