"""Which refined points make the best -q ladder: BD-rate against AVIF of candidate ladders, each
built from the per-point means of a `refine_eval.py` sweep (real .vqz files, all images).

Every ladder keeps q1 (the base layer alone at x3/4, from the bench CSV: it is not searched, so
its row holds at any effort) and takes its refined points from the sweep; AVIF is the anchor from
the same bench CSV.

With --common-images (a sweep of some images only, e.g. one shard): every mean, the sweep's, AVIF's
and q1's, is over the images that every point of every ladder has, and the bench's own vqzip ladder
is scored on them too, as the reference.

usage: python benchmarks/ladder_choice.py SWEEP_DIR BENCH_POINTS_CSV --ladders "1/2+r0,1/2+r1;..."
       [--common-images] [--out OUT.json]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refine_eval import METRICS, bd, codec_curve  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sweep")
    ap.add_argument("bench")
    ap.add_argument("--ladders", required=True, help="ladders separated by ';', points by ','")
    ap.add_argument("--common-images", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    by: dict[str, list[dict]] = {}
    for line in (Path(a.sweep) / "rows.jsonl").read_text().splitlines():
        r = json.loads(line)
        by.setdefault(r["point"], []).append(r)
    images = None
    if a.common_images:
        used = {k for spec in a.ladders.split(";") for k in spec.split(",")}
        images = set.intersection(*({r["image"] for r in by[k]} for k in used))
        by = {k: [r for r in rs if r["image"] in images] for k, rs in by.items()}
    mean = {k: {m: float(np.mean([r[m] for r in rs])) for m in ("bpp", *METRICS)} for k, rs in by.items() if rs}
    vq = codec_curve("vqzip", Path(a.bench), images)
    q1 = next(p for p in vq if p["setting"].startswith("q1 "))
    avif = codec_curve("avif", Path(a.bench), images)
    out = []
    if images is not None:
        ref = {m: bd(avif, vq, m) for m in METRICS}
        out.append({"ladder": "the bench's own", "images": sorted(images), "bd_rate_vs_avif": ref})
        print(f"{len(images)} images; the bench's own ladder", " ".join(f"{m} {v:+.1f}" for m, v in ref.items()))
    for spec in a.ladders.split(";"):
        pts = [q1] + [mean[k] for k in spec.split(",")]
        out.append({"ladder": spec, "bd_rate_vs_avif": {m: bd(avif, pts, m) for m in METRICS}})
        print(spec, " ".join(f"{m} {v:+.1f}" if isinstance(v, float) else f"{m} {v}" for m, v in out[-1]["bd_rate_vs_avif"].items()))
    if a.out:
        Path(a.out).write_text(json.dumps({"command": "python benchmarks/ladder_choice.py " + " ".join(sys.argv[1:]),
                                           "ladders": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
