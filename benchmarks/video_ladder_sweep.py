"""Points of the refined video ladder on a clip: each SPEC is scale:key_rate:inter_rate:lambda (lambda - for
the inter rate's training lambda). Prints kbps, mean and last-frame PSNR, bits per key and predicted
frame, encode fps. usage: python benchmarks/video_ladder_sweep.py CLIP FRAMES SPEC..."""
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import video, video_io, zoo  # noqa: E402
src, n = sys.argv[1], int(sys.argv[2])
frames = list(video_io.read_frames(src, n))
v = video_io.probe(src)
for spec in sys.argv[3:]:
    sc, r, ir, lam = spec.split(":")
    p = zoo.Point(0, "f16-lfq20", Fraction(sc), None if lam == "-" else float(lam), refine=int(r), inter=int(ir))
    t = time.time()
    data = video.encode_frames(iter(frames), v.width, v.height, v.fps, p, "cpu")
    te = time.time() - t
    out = list(video.decode_frames(video.parse(data), "cpu"))
    ps = [10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b) ** 2)) for a, b in zip(frames, out)]
    inf = video.info(data)
    print(json.dumps({"point": spec, "frames": n, "kbps": round(inf["kbps"], 2), "psnr": round(float(np.mean(ps)), 3),
                      "key_bits": inf["bits_per_key_frame"], "p_bits": inf["bits_per_predicted_frame"], "keys": inf["key_frames"],
                      "enc_fps": round(n / te, 2), "last_psnr": round(float(ps[-1]), 2)}), flush=True)
