"""BD-rate of one refinement layer against another from two `refine_eval.py` sweeps of the same
points (real .vqz files, every image of both sweeps): the per-point means side by side, and the
BD-rate of the candidate's curve against the anchor's on PSNR, MS-SSIM and SSIMULACRA2 over the
range where they overlap (negative: fewer bits at equal quality).

usage: python benchmarks/refine_vs.py ANCHOR_ROWS.jsonl CANDIDATE_ROWS.jsonl
       [--points 1/2+r1,1/2+r2,1+r1,1+r2] [--out result.json]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refine_eval import METRICS, bd  # noqa: E402


def means(path: Path) -> dict:
    by: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        by.setdefault(r["point"], []).append(r)
    return {k: {m: float(np.mean([r[m] for r in v])) for m in ("bpp", *METRICS)} | {"images": len(v)}
            for k, v in by.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("anchor", type=Path)
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--points", default="1/2+r1,1/2+r2,1+r1,1+r2")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    pts = a.points.split(",")
    anchor, cand = means(a.anchor), means(a.candidate)
    for k in pts:
        if anchor[k]["images"] != cand[k]["images"]:
            raise SystemExit(f"{k}: {anchor[k]['images']} images in the anchor, {cand[k]['images']} in the candidate")
    res = {"command": "python benchmarks/refine_vs.py " + " ".join(sys.argv[1:]),
           "points": {k: {"anchor": anchor[k], "candidate": cand[k]} for k in pts},
           "bd_rate": {m: bd([anchor[k] for k in pts], [cand[k] for k in pts], m) for m in METRICS}}
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
