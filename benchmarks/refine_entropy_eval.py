"""Two refinement layers' lossless stages on the same symbols: real .vqz files, refinement bits.

For each Kodak image and ladder point (-q), both layers encode at effort 0, where the symbols are
the refinement encoder's alone (no search), so two layers with the same encoder, decoder and gains
(e.g. a "tables" layer and the same transform with a learned context model, trained with
`vqzip train refine --init A --freeze-transform`) code the very same symbols; the script checks
that they do, and that each file decodes to them. Reported per point and overall: the refinement
chunk's bytes under A and under B, the whole files' bytes, and for a "context" layer the float
model's estimated bits against the bits the integer model really coded.

usage: python benchmarks/refine_entropy_eval.py A.safetensors B.safetensors [--qualities 2,3,4,5,6]
       [--images kodim01,...] [--shard K/N] [--out benchmarks/results/refine_entropy] [KODAK_DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vqzip import codec  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402
from vqzip.coding import container
from vqzip.nn.refine_context import logistic_bits  # noqa: E402
from report import Rows, shard  # noqa: E402


def models_with(refine: Path, into: Path) -> Path:
    """A models folder like models/ whose refinement layer is `refine` (models_with_refine.sh)."""
    subprocess.run(["bash", str(ROOT / "models/recipes/models_with_refine.sh"), str(refine), str(into)],
                   check=True, stdout=subprocess.DEVNULL)
    return into


def float_estimate(data: bytes) -> float | None:
    """The float context model's bits for the file's refinement symbols (None for a tables layer)."""
    got = codec.lossless(data)
    symbols, coder, rate, tokens, surprise = got.symbols, got.coder, got.rate, got.tokens, got.surprise
    ref = coder.ref
    if ref.cfg.entropy != "context":
        return None
    s = torch.from_numpy(symbols)[None]
    with torch.no_grad():
        mu, ls = ref.context.params(s, torch.from_numpy(tokens)[None], torch.from_numpy(surprise)[None], torch.tensor([rate]))
        return float(logistic_bits(s.float(), mu, ls.exp(), ref.cfg.levels).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("kodak", nargs="?", type=Path, default=ROOT.parent / "shared/data/kodak")
    ap.add_argument("--qualities", default="2,3,4,5,6")
    ap.add_argument("--images", default="")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/refine_entropy")
    ap.add_argument("--shard", default="0/1", help="K/N: this process's share of the images (rows.jsonl is shared)")
    args = ap.parse_args()
    images = sorted(args.kodak.glob("*.png"))
    if args.images:
        images = [p for p in images if p.stem in args.images.split(",")]
    images = shard(images, args.shard)
    qs = [int(q) for q in args.qualities.split(",")]
    rows = Rows(args.out, key=lambda r: (r["image"], r["quality"]))
    tmp = Path(tempfile.mkdtemp())
    dirs = {}
    for k, p in (("a", args.a), ("b", args.b)):
        dirs[k] = models_with(p, tmp / k)
    for img in images:
        for q in qs:
            if (img.name, q) in rows.done:
                continue
            row = {"image": img.name, "quality": q}
            syms = {}
            for k, d in dirs.items():
                os.environ["VQZIP_MODELS"] = str(d)
                t = time.perf_counter()
                data = codec.encode_image(img, quality=q, effort=0)
                row[f"{k}_encode_s"] = round(time.perf_counter() - t, 3)
                t = time.perf_counter()
                codec.decode(data)
                row[f"{k}_decode_s"] = round(time.perf_counter() - t, 3)
                syms[k] = codec.refinement_of(data)
                row[f"{k}_file_bytes"] = len(data)
                row[f"{k}_refine_bytes"] = len(container.layers(data)[0])
                est = float_estimate(data)
                if est is not None:
                    row[f"{k}_float_bits"] = round(est, 1)
            if (syms["a"] != syms["b"]).any():
                raise SystemExit(f"{img.name} q{q}: the two layers sent different symbols (not the same transform)")
            rows.add(row)
    summarize(rows.all(), args, qs)


def summarize(rows, args, qs):
    out = {"command": "python benchmarks/refine_entropy_eval.py " + " ".join(sys.argv[1:]),
           "a": str(args.a), "b": str(args.b), "machine": cpu_name(),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "per_quality": {}}
    lines = ["| -q | images | A refinement bytes | B refinement bytes | B vs A | A file bytes | B file bytes | float est. vs coded (B) |",
             "|---|---|---|---|---|---|---|---|"]
    for q in qs + ["all"]:
        sel = [r for r in rows if q == "all" or r["quality"] == q]
        if not sel:
            continue
        a, b = sum(r["a_refine_bytes"] for r in sel), sum(r["b_refine_bytes"] for r in sel)
        fa, fb = sum(r["a_file_bytes"] for r in sel), sum(r["b_file_bytes"] for r in sel)
        est = [r for r in sel if "b_float_bits" in r]
        gap = (sum(r["b_refine_bytes"] * 8 for r in est) / sum(r["b_float_bits"] for r in est) - 1) if est else None
        out["per_quality"][str(q)] = {"images": len(sel), "a_refine_bytes": a, "b_refine_bytes": b,
                                      "b_vs_a": b / a - 1, "a_file_bytes": fa, "b_file_bytes": fb,
                                      "coded_over_float_estimate": gap}
        lines.append(f"| {q} | {len(sel)} | {a} | {b} | {100 * (b / a - 1):+.1f} % | {fa} | {fb} | "
                     + (f"{100 * gap:+.2f} %" if gap is not None else "-") + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
    (args.out / "tables.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
