"""Probe of a cheaper exact arithmetic for the prior (issue 29), not shipped: what int8 weights and
per-row integer activations, multiplied in float32, would cost in bits and save in time.

Every linear layer of the shipped exact prior (float64 products of 12-bit weights and 22-bit
activations) is swapped for: weights rounded to int8 with a power-of-two scale per output column;
each input row shifted right (round half up) until it fits in the most bits that keep every
partial sum of the product below 2^24 (K * 127 * xmax < 2^24: 9-bit activations for K = 256,
7-bit for K = 768), so float32 sums are exact in any order; the products rescaled to the layer's
fixed point in float64, as today. Attention and everything else are unchanged. Bits are the real
payload sizes of the ladder's base grids (each image at every scale the ladder uses); time is CPU
seconds of decode_tokens at the default point, one thread.

usage: python benchmarks/int8_prior_probe.py [--images 8] [--out results.json]
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import codec, zoo  # noqa: E402
from vqzip.coding import exact
from vqzip.coding.entropy import decode_tokens, encode_tokens  # noqa: E402

EXACT_FLOAT32 = 2 ** 24
W_MAX = 127


class Int8Linear:
    """An exact.Linear's integers through int8 weights and narrow activations, in float32."""

    def __init__(self, lin: exact.Linear):
        K = lin.w.shape[0]
        self.x_bits = int(math.log2((EXACT_FLOAT32 - 1) // (K * W_MAX) + 1))
        self.x_max = 2 ** self.x_bits - 1
        assert K * W_MAX * self.x_max < EXACT_FLOAT32  # the largest partial sum any input can make
        e = torch.frexp(lin.w.abs().amax(0).clamp(min=1))[1]  # each column's max < 2^e
        t = (7 - e).double()
        self.w = torch.round(lin.w * 2.0 ** t).clamp(-W_MAX, W_MAX).float()
        self.back = 2.0 ** -t  # to the layer's own weight scale
        self.b, self.scale = lin.b, lin.scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        top = torch.frexp(x.abs().amax(1, keepdim=True).double().clamp(min=1))[1]
        sh = (top - self.x_bits).clamp(min=0)
        half = torch.where(sh > 0, 1 << (sh - 1).clamp(min=0), 0)
        xq = ((x + half) >> sh).clamp(-self.x_max, self.x_max)
        acc = (xq.float() @ self.w).double() * 2.0 ** sh.double() * self.back + self.b
        return exact._clamp(acc.mul_(self.scale).floor_().long())


def int8_twin(m: zoo.Model) -> exact.ExactPrior:
    p = exact.ExactPrior(m.float_prior)
    for blk in p.blocks:
        for name in ("qkv", "kv", "o", "fc1", "fc2"):
            setattr(blk, name, Int8Linear(getattr(blk, name)))
    p.heads, p.head_lo = Int8Linear(p.heads), Int8Linear(p.head_lo)
    return p


def cpu_seconds(fn, n=3) -> float:
    fn()
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--kodak", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/kodak")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    point = zoo.resolve()
    m = zoo.get_model(point.model)
    twin = int8_twin(m)
    scales = sorted({p.scale for p in zoo.list_points()})
    rows, load = [], [os.getloadavg()[0]]
    for f in sorted(a.kodak.glob("*.png"))[:a.images]:
        rgb, _ = codec._open(f)
        for s in scales:
            x = codec.to_tensor(codec.resized(rgb, codec.scaled_size(rgb.width, rgb.height, s)), m.tokenizer.stride)
            tok = m.tokenizer.encode(x)[0].numpy()
            data = encode_tokens(twin, tok)
            assert (decode_tokens(twin, *tok.shape, data) == tok).all()
            rows.append({"image": f.name, "scale": str(s), "f64_bytes": len(encode_tokens(m.prior, tok)),
                         "int8_bytes": len(data)})
            print(json.dumps(rows[-1]), flush=True)
        load.append(os.getloadavg()[0])
    per_scale = {}
    for s in map(str, scales):
        a64, a8 = (sum(r[k] for r in rows if r["scale"] == s) for k in ("f64_bytes", "int8_bytes"))
        per_scale[s] = {"f64_bytes": a64, "int8_bytes": a8, "change": a8 / a64 - 1}
    rgb, _ = codec._open(a.kodak / "kodim23.png")
    x = codec.to_tensor(codec.resized(rgb, codec.scaled_size(rgb.width, rgb.height, point.scale)), m.tokenizer.stride)
    tok = m.tokenizer.encode(x)[0].numpy()
    d64, d8 = encode_tokens(m.prior, tok), encode_tokens(twin, tok)
    timing = {"f64": cpu_seconds(lambda: decode_tokens(m.prior, *tok.shape, d64)),
              "int8_float32": cpu_seconds(lambda: decode_tokens(twin, *tok.shape, d8))}
    load.append(os.getloadavg()[0])
    res = {"command": "python benchmarks/int8_prior_probe.py " + " ".join(sys.argv[1:]), "torch": torch.__version__,
           "threads": 1, "load_average_1min": {"min": min(load), "max": max(load)},
           "base_bytes_by_scale": per_scale, "decode_tokens_cpu_s_kodim23_default": timing, "rows": rows}
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
