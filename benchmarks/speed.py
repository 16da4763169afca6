"""Encode and decode time per image, split into tokenizer, prior and range coder, with Pillow's
JPEG and AVIF (speed 6) timed on the same images in the same run as a yardstick.

usage: python benchmarks/speed.py [KODAK_DIR] [--quality Q] [--out results.json]
"""
import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import codec, devices, zoo  # noqa: E402
from vqzip.coding import container, entropy


class Clock:
    """Wall time of the prior's network (run/run_batched minus the time spent inside the coder)."""

    def __init__(self):
        self.coder = 0.0

    def wrap(self, fn):
        def timed(*a):
            t = time.perf_counter()
            r = fn(*a)
            self.coder += time.perf_counter() - t
            return r
        return timed


def timed_tokens(m, tokens, data=None):
    """Encode (data None) or decode tokens, returning (result, total seconds, coder seconds)."""
    clock = Clock()
    run, run_b = m.prior.run, m.prior.run_batched
    m.prior.run = lambda h, w, code: run(h, w, clock.wrap(code))
    m.prior.run_batched = lambda t, code: run_b(t, clock.wrap(code))
    try:
        t = time.perf_counter()
        out = entropy.encode_tokens(m.prior, tokens) if data is None else entropy.decode_tokens(m.prior, *tokens.shape, data)
        return out, time.perf_counter() - t, clock.coder
    finally:
        del m.prior.run, m.prior.run_batched


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kodak", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/kodak"))
    ap.add_argument("--quality", type=int, default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    point = zoo.resolve(quality=a.quality)
    m = zoo.get_model(point.model)
    files = sorted(Path(a.kodak).glob("*.png"))
    how = {"quality": point.quality, "model": point.model, "scale": str(point.scale), "device": "cpu",
           "torch_threads": torch.get_num_threads(),
           "tokenizer_dtype": devices.tokenizer_precision(torch.device("cpu")), "machine": devices.cpu_name(),
           "images": len(files), "date": time.strftime("%Y-%m-%d %H:%M")}
    print("speed:", json.dumps(how), flush=True)
    rows = []
    for f in files:
        rgb, info = codec._open(f)
        w, h = codec.scaled_size(rgb.width, rgb.height, point.scale)
        r = {}
        t0 = time.perf_counter()
        img = codec.resized(rgb, (w, h))
        tokens = m.tokenizer.encode(codec.to_tensor(img, m.tokenizer.stride))[0].numpy()
        r["enc_tokenizer"] = time.perf_counter() - t0
        payload, total, coder = timed_tokens(m, tokens)
        r["enc_prior"], r["enc_coder"] = total - coder, coder
        t0 = time.perf_counter()
        data = codec.encode_image(f, quality=point.quality)
        r["enc_total"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        codec.decode(data)
        r["dec_total"] = time.perf_counter() - t0
        header, body = container.unpack(data)
        decoded, total, coder = timed_tokens(m, tokens, body)
        assert (decoded == tokens).all()
        r["dec_prior"], r["dec_coder"] = total - coder, coder
        t0 = time.perf_counter()
        m.tokenizer.decode(torch.from_numpy(decoded)[None])
        r["dec_tokenizer"] = time.perf_counter() - t0
        for name, kw in [("jpeg_q1", {"format": "JPEG", "quality": 1, "optimize": True}),
                         ("avif_s6", {"format": "AVIF", "quality": 0, "speed": 6})]:
            t0 = time.perf_counter()
            rgb.save(io.BytesIO(), **kw)
            r[f"{name}_enc"] = time.perf_counter() - t0
        rows.append(r)
        print(f.name, {k: round(v, 3) for k, v in r.items()}, flush=True)
    mean = {k: statistics.mean(r[k] for r in rows) for k in rows[0]}
    res = {"how": how, "mean_seconds": mean, "per_image": rows,
           "encode_over_avif": mean["enc_total"] / mean["avif_s6_enc"],
           "decode_over_avif": mean["dec_total"] / mean["avif_s6_enc"]}
    print(json.dumps({"mean_seconds": {k: round(v, 3) for k, v in mean.items()},
                      "encode_over_avif": round(res["encode_over_avif"], 1),
                      "decode_over_avif": round(res["decode_over_avif"], 1)}, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
