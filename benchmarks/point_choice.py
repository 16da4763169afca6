"""The per-image choice of an operating point (vqzip/choice.py), simulated from sweeps of real .vqz
files: which weight of MS-SSIM and which price of a bit (lambda) each ladder point should have.

Each ladder point is a set of variants, the ladder's own point first ("1/2+r3,3/4+r1,1+r1").
For every image the encoder codes each variant at effort 0, keeps the K of least
J = -(PSNR + W * MS-SSIM + W2 * SSIMULACRA2) + lambda * bpp, searches those at the point's effort,
and takes the searched file of least J (K = 1: the single-pass winner). So the shortlist is made
on an effort-0 sweep's rows (CHOOSE), the choice and the score on a sweep at the bench's effort
(SCORE); both are `refine_eval.py` folders (their rows.jsonl) or rows files, over the same images.

--fit: each point's lambda is set so that the chosen files' mean bpp on these images equals the
ladder point's own (a rate calibration: the ladder's points stay where they were), for each W of
--weights; the lambdas go to OUT. Without --fit the lambdas come from --lambdas (a JSON file this
wrote, at the W it names).

BD-rate of the chosen ladder against the fixed one (the ladder's own points, on the same images)
on PSNR, MS-SSIM (in dB) and SSIMULACRA2; with --bench (a bench points.csv of the same images),
also against AVIF there, q1 (the base layer alone, which has no variants) taken from the bench.

--ssim2-weight adds SSIMULACRA2 to the cost (the encoder's choice.SSIMULACRA2_WEIGHT), --keep K
rescores the K cheapest variants on the SCORE rows before choosing (the encoder's
choice.SEARCHED: it searches those K), and --fixed names the fixed ladder's points where they are
not each set's first (rows of two layers merged, "1+r1" and "1+r1@perceptual":
benchmarks/results/layer_choice/rows.py).

usage: python benchmarks/point_choice.py CHOOSE SCORE --ladder "1/2+r0;1/2+r0,1/2+r1;..."
       (--fit --weights 50,100,200 | --lambdas FILE.json --weight 100) [--ssim2-weight 0.03] [--keep 3]
       [--fixed "1/2+r0,1/2+r1,..."] [--bench points.csv] [--out OUT.json]
"""
import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refine_eval import METRICS, bd, codec_curve  # noqa: E402
from vqzip.choice import best, shortlist  # noqa: E402 (refine_eval put the repository on the path)


def load(where: str) -> dict:
    """A sweep's rows by (image, point): `where` is a rows file or a folder holding rows.jsonl."""
    f = Path(where) if Path(where).is_file() else Path(where) / "rows.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    return {(r["image"], r["point"]): r for r in rows}


def chosen(choose: dict, score: dict, images: list[str], variants: list[str], w: float, lam: float,
           w2: float = 0.0, keep: int = 1):
    """The variant each image gets, and the means of the SCORE rows of those variants. `w2` weighs
    SSIMULACRA2 in the cost. keep > 1: the `keep` variants of least cost on the CHOOSE rows are
    scored again on the SCORE rows and the least of those is chosen (the encoder's choice.SEARCHED)."""
    picks = []
    for im in images:
        def cost(rows, v):
            r = rows[(im, v)]
            return -(r["psnr"] + w * r["ms_ssim"] + w2 * r["ssimulacra2"]) + lam * r["bpp"]
        costs = [cost(choose, v) for v in variants]
        if keep > 1:
            short = [variants[i] for i in shortlist(costs, keep)]  # all of them if there are no more than `keep`
            picks.append(short[best([cost(score, v) for v in short])])
        else:
            picks.append(variants[best(costs)])  # the encoder's own tie rule
    means = {k: float(np.mean([score[(im, v)][k] for im, v in zip(images, picks)])) for k in ("bpp", *METRICS)}
    return picks, means


def fit(choose, score, images, variants, w, target, w2=0.0, keep=1):
    """The lambda whose chosen files' mean bpp is nearest `target` (bisection in log lambda: a higher
    price of a bit never picks a bigger file, so the mean bpp falls with it)."""
    lo, hi = np.log(1e-2), np.log(1e4)
    for _ in range(60):
        mid = (lo + hi) / 2
        if chosen(choose, score, images, variants, w, float(np.exp(mid)), w2, keep)[1]["bpp"] > target:
            lo = mid
        else:
            hi = mid
    cands = [float(np.exp(lo)), float(np.exp(hi))]
    return min(cands, key=lambda lam: abs(chosen(choose, score, images, variants, w, lam, w2, keep)[1]["bpp"] - target))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("choose")
    ap.add_argument("score")
    ap.add_argument("--ladder", required=True)
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--weights", default="100")
    ap.add_argument("--lambdas", default=None)
    ap.add_argument("--weight", type=float, default=None)
    ap.add_argument("--ssim2-weight", type=float, default=0.0, help="weight of SSIMULACRA2 in the cost")
    ap.add_argument("--fixed", default=None, help="the fixed ladder's points, if not each set's first (e.g. another "
                    "layer's rows, named with a prefix)")
    ap.add_argument("--keep", type=int, default=1, help="the variants of least cost on CHOOSE rescored on SCORE "
                    "(the encoder's choice.SEARCHED); 1: chosen on CHOOSE alone")
    ap.add_argument("--bench", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    choose, score = load(a.choose), load(a.score)
    ladder = [spec.split(",") for spec in a.ladder.split(";")]
    used = {v for vs in ladder for v in vs}
    images = sorted(set.intersection(*({im for im, p in d if p == v} for d in (choose, score) for v in used)))
    own = a.fixed.split(",") if a.fixed else [vs[0] for vs in ladder]
    fixed = [{k: float(np.mean([score[(im, o)][k] for im in images])) for k in ("bpp", *METRICS)} for o in own]
    anchors = None
    if a.bench:
        names = {Path(im).name for im in images}
        vq = codec_curve("vqzip", Path(a.bench), names)
        anchors = (next(p for p in vq if p["setting"].startswith("q1 ")), codec_curve("avif", Path(a.bench), names))
    if a.fit:
        runs = [(float(w), None) for w in a.weights.split(",")]
    else:
        given = json.loads(Path(a.lambdas).read_text())
        w = a.weight if a.weight is not None else given["weight"]
        runs = [(w, next(r["lambdas"] for r in given["runs"] if r["weight"] == w))]
    out = {"command": "python benchmarks/point_choice.py " + " ".join(sys.argv[1:]), "images": images, "runs": []}
    if anchors:
        q1, avif = anchors
        ref = {m: bd(avif, [q1] + fixed, m) for m in METRICS}
        out["fixed_vs_avif"] = ref
        print(f"{len(images)} images; the fixed ladder against AVIF:", " ".join(f"{m} {v:+.1f}" for m, v in ref.items()))
    for w, lams in runs:
        if lams is None:
            lams = [fit(choose, score, images, vs, w, f["bpp"], a.ssim2_weight, a.keep) if len(vs) > 1 else None
                    for vs, f in zip(ladder, fixed)]
        pts, picks = [], []
        for vs, lam, f in zip(ladder, lams, fixed):
            if len(vs) == 1:
                pts.append(f)
                picks.append({vs[0]: len(images)})
                continue
            p, m = chosen(choose, score, images, vs, w, lam, a.ssim2_weight, a.keep)
            pts.append(m)
            picks.append(dict(collections.Counter(p)))
        run = {"weight": w, "ssim2_weight": a.ssim2_weight, "keep": a.keep, "lambdas": lams, "picks": picks, "points": pts,
               "bd_rate_vs_fixed": {m: bd(fixed, pts, m) for m in METRICS}}
        if anchors:
            run["bd_rate_vs_avif"] = {m: bd(anchors[1], [anchors[0]] + pts, m) for m in METRICS}
        out["runs"].append(run)
        print(f"W {w:g}: vs fixed", " ".join(f"{m} {v:+.2f}" for m, v in run["bd_rate_vs_fixed"].items()),
              *(["| vs AVIF", *(f"{m} {v:+.1f}" for m, v in run["bd_rate_vs_avif"].items())] if anchors else []))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
