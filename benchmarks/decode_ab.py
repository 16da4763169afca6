"""Decode time of two sets of .vqz files of the same images, interleaved in one process, with
Pillow's AVIF encode (speed 6) of each image timed in the same loop as the yardstick.

A and B are folders of NAME.vqz (e.g. today's default files, made by an earlier vqzip, and this
vqzip's). For every image both files are decoded and the original encoded to AVIF, one after the
other, `--rounds` times; per image the median of its rounds counts, so a burst of load on the
shared machine hits both sides alike. Both decode with this vqzip: an old file decodes through its
own refinement layer (kept as refine_vN.safetensors), so what is compared is the layers' decoders.

usage: python benchmarks/decode_ab.py A_DIR B_DIR [KODAK_DIR] [--rounds 3] [--out results.json]
"""
import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import codec  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit  # noqa: E402


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("kodak", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/kodak")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    names = sorted(p.stem for p in args.a.glob("*.vqz") if (args.b / p.name).exists())
    rows = []
    load = [os.getloadavg()[0]]
    for name in names:
        a, b = (d.joinpath(name + ".vqz").read_bytes() for d in (args.a, args.b))
        rgb = Image.open(args.kodak / f"{name}.png").convert("RGB")
        codec.decode(a), codec.decode(b)  # warm: models loaded, first-call costs paid
        t = {"a": [], "b": [], "avif": []}
        for _ in range(args.rounds):
            t["a"].append(timed(lambda: codec.decode(a)))
            t["b"].append(timed(lambda: codec.decode(b)))
            t["avif"].append(timed(lambda: rgb.save(io.BytesIO(), format="AVIF", quality=0, speed=6)))
        row = {"image": name, "a_bytes": len(a), "b_bytes": len(b)} | {k: statistics.median(v) for k, v in t.items()}
        rows.append(row)
        load.append(os.getloadavg()[0])
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    mean = {k: statistics.mean(r[k] for r in rows) for k in ("a", "b", "avif")}
    res = {"command": "python benchmarks/decode_ab.py " + " ".join(sys.argv[1:]),
           "machine": cpu_name(), "cores": os.cpu_count(),
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "load_average_1min": {"min": min(load), "max": max(load)}, "date": time.strftime("%Y-%m-%d %H:%M"),
           "images": len(rows), "mean_seconds": mean, "b_over_a": mean["b"] / mean["a"],
           "a_over_avif": mean["a"] / mean["avif"], "b_over_avif": mean["b"] / mean["avif"], "per_image": rows}
    emit(res, args.out, not_printed=("per_image",))


if __name__ == "__main__":
    main()
