"""`--bpp` budgets at a searching effort: the codec's way (each point at effort 0 first, searched
only near the budget) against searching every point from the top until one fits, interleaved
image by image in one process, with AVIF (Pillow, speed 6, quality 0) timed in the same run as a
yardstick. Both must pick the same file, byte for byte.

usage: python benchmarks/budget_speed.py [KODAK_DIR] [--images kodim03,kodim23] [--bpp 0.07]
       [--effort 8] [--out benchmarks/results/speed/budget.json]
"""
import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import codec, zoo  # noqa: E402


def every_point_searched(img: Image.Image, bpp: float, effort: int) -> bytes:
    """The budget as a walk down the ladder, every point searched: what the codec's shortcut must
    match."""
    for p in sorted(zoo.list_points(), key=lambda p: -p.quality):
        data = codec.encode_image(img, point=p, effort=effort)
        if len(data) * 8 <= bpp * img.width * img.height:
            return data
    raise SystemExit("no point fits the budget")


def timed(fn, *a):
    t = time.perf_counter()
    r = fn(*a)
    return r, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kodak", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/kodak"))
    ap.add_argument("--images", default="kodim03,kodim23")
    ap.add_argument("--bpp", type=float, default=0.07)
    ap.add_argument("--effort", type=int, default=8)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    rows = []
    for name in a.images.split(","):
        img = Image.open(Path(a.kodak) / f"{name}.png").convert("RGB")
        _, avif_s = timed(lambda: img.save(io.BytesIO(), "AVIF", quality=0, speed=6))
        fast, fast_s = timed(codec.encode_image, img, None, None, "auto", a.bpp, a.effort)
        slow, slow_s = timed(every_point_searched, img, a.bpp, a.effort)
        rows.append({"image": name, "bytes": len(fast), "same_file": fast == slow, "codec_s": fast_s,
                     "every_point_searched_s": slow_s, "avif_s": avif_s})
        print(json.dumps(rows[-1]), flush=True)
    out = {"command": " ".join(["python", *sys.argv]), "bpp": a.bpp, "effort": a.effort, "rows": rows,
           "machine": {"platform": platform.platform(), "threads": torch.get_num_threads()},
           "versions": {"python": platform.python_version(), "torch": torch.__version__}}
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
