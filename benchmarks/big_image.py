"""Peak memory (RSS) and time to encode and decode one large photo-like image.

Each run is a fresh process, so ru_maxrss is the peak of that run alone.
usage: python benchmarks/big_image.py [WIDTH HEIGHT] [--quality Q] [--effort E]   (default 4000 3000)
"""
import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import codec, devices, search  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("size", nargs="*", type=int, default=[4000, 3000])
ap.add_argument("--quality", type=int, default=None)
ap.add_argument("--effort", type=int, default=search.DEFAULT_EFFORT)
a = ap.parse_args()
w, h = a.size
# a photo-like test image: Kodak photos tiled and mirrored up to the size asked for
src = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(Path(__file__).resolve().parents[2].glob("shared/data/kodak/kodim0[1235].png"))]
tile = np.concatenate([np.concatenate(src[:2], 1), np.concatenate(src[2:4], 1)], 0)
reps = (-(-h // tile.shape[0]), -(-w // tile.shape[1]), 1)
img = Image.fromarray(np.tile(tile, reps)[:h, :w])
print(f"big image: {w}x{h}, quality {a.quality or 'default'}, effort {a.effort}, torch threads {torch.get_num_threads()}, "
      f"tokenizer {devices.tokenizer_precision(torch.device('cpu'))}, {devices.cpu_name()}")
t0 = time.time()
data = codec.encode_image(img, quality=a.quality, effort=a.effort)
t1 = time.time()
rss_enc = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
out = codec.decode(data)
t2 = time.time()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
res = {"width": w, "height": h, "effort": a.effort, "bytes": len(data), "bpp": len(data) * 8 / (w * h), "encode_s": round(t1 - t0, 1),
       "decode_s": round(t2 - t1, 1), "peak_rss_gib_after_encode": round(rss_enc, 2), "peak_rss_gib": round(rss, 2),
       "size_ok": out.size == (w, h)}
print(json.dumps(res))
