"""Compare candidate weights with the shipped ones on Kodak before shipping them.

For each NAME=TOKENIZER[:PRIOR] and each scale: the mean PSNR, MS-SSIM and SSIMULACRA2 of the
reconstruction (resized by the scale, tokenized, decoded, resized back, as `vqzip encode` does),
and, when a prior is given, the mean payload bpp that the exact prior and range coder produce for
those tokens (the container's few header bytes are not counted).

usage: python benchmarks/compare_tokenizers.py NAME=TOK[:PRIOR] ... [--scales 3/4,1,5/4]
           [--images N] [--kodak DIR] [--out OUT.json]
"""
import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip.bench import metrics as M  # noqa: E402
from vqzip.codec import resized, scaled_size, to_image, to_tensor  # noqa: E402
from vqzip.coding.entropy import encode_tokens  # noqa: E402
from vqzip.coding.exact import ExactPrior  # noqa: E402
from vqzip.nn.prior import load_prior  # noqa: E402
from vqzip.nn.tokenizer import load_tokenizer  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("candidates", nargs="+")
    ap.add_argument("--scales", default="3/4,1,5/4")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--kodak", default=str(Path(__file__).resolve().parents[2] / "shared/data/kodak"))
    ap.add_argument("--out")
    a = ap.parse_args()
    files = sorted(Path(a.kodak).glob("*.png"))[:a.images]
    scales = [Fraction(s) for s in a.scales.split(",")]
    res = {"command": "python benchmarks/compare_tokenizers.py " + " ".join(sys.argv[1:]),
           "images": len(files), "results": {}}
    for spec in a.candidates:
        name, paths = spec.split("=", 1)
        tok_path, _, prior_path = paths.partition(":")
        tok = load_tokenizer(tok_path)
        prior = ExactPrior(load_prior(prior_path)) if prior_path else None
        for s in scales:
            rows = []
            for f in files:
                im = Image.open(f).convert("RGB")
                small = resized(im, scaled_size(im.width, im.height, s))
                tokens = tok.encode(to_tensor(small, tok.stride))
                out = resized(to_image(tok.decode(tokens), *small.size), im.size)
                r = {"psnr": M.psnr(im, out), "ms_ssim": M.ms_ssim(im, out), "ssimulacra2": M.ssimulacra2(im, out)}
                if prior:
                    r["payload_bpp"] = len(encode_tokens(prior, tokens[0].numpy())) * 8 / (im.width * im.height)
                rows.append(r)
            mean = {k: round(float(np.mean([r[k] for r in rows])), 5) for k in rows[0]}
            res["results"][f"{name} x{s}"] = mean
            print(name, f"x{s}", mean, flush=True)
    emit(res, Path(a.out) if a.out else None)


if __name__ == "__main__":
    main()
