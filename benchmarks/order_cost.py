"""What the parallel coding schedule costs in bits against raster order, on Kodak.

Two priors of the same architecture are trained with the same recipe and the same CPU budget by
`vqzip train prior`, one with the shipped 16-step schedule (--period 4) and one in raster order
(--period 0, one token per step), on the tokens the shipped tokenizer gives for
../shared/data/train. Both are then scored on the 24 Kodak images' tokens (default quality's
scale) by their teacher-forced cross-entropy, which is what range coding with them costs to within
the coder's overhead. The shipped prior (trained longer, on a GPU) is scored alongside for
reference; only the two equal-budget runs compare orders fairly.

    python benchmarks/order_cost.py --minutes 12 --out benchmarks/results/order/order_cost.json
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vqzip.codec import resized, scaled_size, to_tensor  # noqa: E402
from vqzip.nn.prior import load_prior  # noqa: E402
from vqzip.weights import load_weights  # noqa: E402
from vqzip.zoo import get_model, resolve  # noqa: E402
from report import emit  # noqa: E402

KODAK = ROOT.parent / "shared" / "data" / "kodak"
TRAIN = ROOT.parent / "shared" / "data" / "train"


def kodak_tokens(point) -> list[torch.Tensor]:
    tok = get_model(point.model).tokenizer
    out = []
    for f in sorted(KODAK.glob("*.png")):
        im = Image.open(f).convert("RGB")
        im = resized(im, scaled_size(im.width, im.height, point.scale))
        out.append(tok.encode(to_tensor(im, tok.stride))[0])
    return out


def tiles(grids: list[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Every whole k x k tile of the grids (the size the priors were trained on, for k = 16)."""
    return [g[y:y + k, x:x + k] for g in grids
            for y in range(0, g.shape[0] - k + 1, k) for x in range(0, g.shape[1] - k + 1, k)]


@torch.no_grad()
def bits_per_token(prior, tokens: list[torch.Tensor]) -> float:
    total = sum(float(prior.loss(t[None].long())) * t.numel() for t in tokens)
    return total / sum(t.numel() for t in tokens)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=12.0, help="training budget of each prior")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "order")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    point = resolve()
    model_dir = get_model(point.model).path
    # a smaller prior than the shipped one, so that a CPU budget trains it somewhere near convergence
    recipe = ["--minutes", str(a.minutes), "--d-model", "128", "--n-layer", "3", "--batch", "16", "--crop", "256",
              "--crops", "1500"]
    trained = {}
    for name, period in (("schedule16", 4), ("raster", 0)):
        run = a.runs / name
        if not (run / "prior.safetensors").exists():
            subprocess.run([sys.executable, "-m", "vqzip", "train", "prior", str(TRAIN), "--tokenizer",
                            str(model_dir / "tokenizer.safetensors"), "-o", str(run), "--period", str(period),
                            *recipe], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        trained[name] = run / "prior.safetensors"
    tokens = kodak_tokens(point)
    res = {"command": "python " + " ".join(sys.argv),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads",
           "kodak_scale": str(point.scale), "kodak_tokens": sum(t.numel() for t in tokens),
           "recipe": " ".join(recipe), "priors": {}}
    for name, path in trained.items():
        p, meta = load_prior(path), load_weights(path)[1]
        res["priors"][name] = {"period": p.cfg.period, "steps": meta["steps"], "train_seconds": meta["train_seconds"],
                               "bits_per_token": bits_per_token(p, tokens),
                               "bits_per_token_16x16_tiles": bits_per_token(p, tiles(tokens, 16)),
                               "bits_per_token_32x32_tiles": bits_per_token(p, tiles(tokens, 32))}
    shipped = load_prior(model_dir / "prior.safetensors")
    res["priors"]["shipped (GPU-trained, 16 steps)"] = {"period": shipped.cfg.period,
                                                        "bits_per_token": bits_per_token(shipped, tokens)}
    s, r = res["priors"]["schedule16"]["bits_per_token"], res["priors"]["raster"]["bits_per_token"]
    res["schedule_over_raster"] = s / r
    res["network_steps_per_image"] = {"schedule16": 16, "raster": int(np.mean([t.numel() for t in tokens]))}
    emit(res, a.out)


if __name__ == "__main__":
    main()
