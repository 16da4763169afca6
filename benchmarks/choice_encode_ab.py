"""Encode time of the per-image choice of a point (vqzip/choice.py) against coding the ladder's own
point alone, interleaved image by image in one process, with Pillow's AVIF (speed 6, the bench's
AVIF) timed on the same images in the same run as the yardstick. CPU seconds of this process are
recorded beside the wall seconds: on a loaded machine they are the steadier figure.

--before POINTS_JSON adds a third arm: the choice as an earlier points.json (e.g. `git show
48c1e97~1:models/points.json`) set it, with --before-searched and --before-ssim2-weight standing
for that version's choice.SEARCHED and SSIMULACRA2 weight (1 and 0 before both layers were
variants: the single-pass winner alone searched, no SSIMULACRA2 term).

usage: python benchmarks/choice_encode_ab.py [KODAK_DIR] [--images N] [--qualities 3,6]
       [--effort E] [--before POINTS_JSON --before-searched 1 --before-ssim2-weight 0] [--out results.json]
"""
import argparse
import io
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vqzip import choice, codec, search, zoo  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def avif(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "AVIF", quality=50, speed=6, subsampling="4:2:0")
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kodak", nargs="?", default=str(ROOT.parent / "shared/data/kodak"))
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--qualities", default="3,6")
    ap.add_argument("--effort", type=int, default=None)
    ap.add_argument("--before", default=None)
    ap.add_argument("--before-searched", type=int, default=1)
    ap.add_argument("--before-ssim2-weight", type=float, default=0.0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    before = {}
    if a.before:
        before = {p.quality: p for p in map(zoo.point_from_row, json.loads(Path(a.before).read_text())["points"])
                  if p.alternatives}

    def encode_before(img, q):
        """The earlier choice: its ladder row, and the choice's constants as they were."""
        now = choice.SEARCHED, choice.SSIMULACRA2_WEIGHT
        choice.SEARCHED, choice.SSIMULACRA2_WEIGHT = a.before_searched, a.before_ssim2_weight
        try:
            return codec.encode_image(img, point=before[q], effort=effort)
        finally:
            choice.SEARCHED, choice.SSIMULACRA2_WEIGHT = now
    effort = search.check_effort(a.effort)
    paths = sorted(Path(a.kodak).glob("*.png"))[: a.images]
    rows = []
    for q in map(int, a.qualities.split(",")):
        p = zoo.resolve(quality=q)
        for path in paths:
            img = Image.open(path).convert("RGB")
            # the order alternates image by image, so that a drifting load falls on both alike
            order = ["choice", "own", "avif"] if len(rows) % 2 == 0 else ["own", "choice", "avif"]
            if q in before:
                order.insert(len(rows) % 3, "before")
            r = {"image": path.name, "quality": q, "variants": len(p.variants())}
            for kind in order:
                fn = {"choice": lambda: codec.encode_image(img, quality=q, effort=effort),
                      "own": lambda: codec.encode_image(img, point=p.variants()[0], effort=effort),
                      "before": lambda: encode_before(img, q),
                      "avif": lambda: avif(img)}[kind]
                data, wall, cpu = timed(fn)
                r |= {f"{kind}_s": wall, f"{kind}_cpu_s": cpu, f"{kind}_bytes": len(data)}
            rows.append(r)
            print(json.dumps(r), flush=True)
    summary = {}
    for q in sorted({r["quality"] for r in rows}):
        rs = [r for r in rows if r["quality"] == q]
        kinds = ("choice_cpu_s", "own_cpu_s", "avif_cpu_s") + (("before_cpu_s",) if "before_cpu_s" in rs[0] else ())
        med = {k: statistics.median(r[k] for r in rs) for k in kinds}
        summary[f"q{q}"] = med | {"choice_over_own": med["choice_cpu_s"] / med["own_cpu_s"],
                                  "choice_over_avif": med["choice_cpu_s"] / med["avif_cpu_s"],
                                  "images": len(rs)} | (
            {"choice_over_before": med["choice_cpu_s"] / med["before_cpu_s"],
             "before_over_avif": med["before_cpu_s"] / med["avif_cpu_s"]} if "before_cpu_s" in med else {})
    out = {"command": "python benchmarks/choice_encode_ab.py " + " ".join(sys.argv[1:]),
           "machine": {"cpu": cpu_name(), "python": platform.python_version(), "torch": torch.__version__,
                       "threads": torch.get_num_threads()},
           "date": time.strftime("%Y-%m-%d"), "effort": effort, "summary": summary, "rows": rows}
    print(json.dumps(summary, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
