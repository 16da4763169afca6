"""The refinement layer on Kodak: refined points against enlarging the image, JPEG and AVIF.

Each point is a base scale, alone ("7/4") or with a refinement rate level ("3/2+r1"). For every
image and point: the real .vqz file (exact coder, header, chunks and CRCs included), decoded by
today's decoder, scored on PSNR, MS-SSIM and SSIMULACRA2. Rows go to OUT/rows.jsonl as they are
made, so a run can be resumed or split (--shard K/N); every run rewrites OUT/summary.json and
OUT/tables.md from all rows present, using only points that every image has.

The yardsticks are JPEG and AVIF from benchmarks/results/kodak/points.csv (`vqzip bench` on the
same 24 images, the same metric code):
- JPEG at equal bpp: its per-setting means interpolated in log bpp, for each refined point;
- BD-rate against the scale-only points (PSNR, MS-SSIM in dB, SSIMULACRA2), over the overlap;
- BD-rate against AVIF on PSNR and SSIMULACRA2, where the curves overlap.

usage: python benchmarks/refine_eval.py --points 3/2,7/4,2,5/2,1+r0,5/4+r1 [--shard 0/2]
       [--effort E] [--anchors benchmarks/results/kodak_ctx/points.csv]
       [--out benchmarks/results/refine] [KODAK_DIR]
"""
import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vqzip import codec, zoo  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402
from vqzip.bench import metrics as M  # noqa: E402
from vqzip.bench.bdrate import bd_rate_info  # noqa: E402
from vqzip.devices import pick_device, tokenizer_precision  # noqa: E402
from report import Rows, shard  # noqa: E402

METRICS = ("psnr", "ms_ssim", "ssimulacra2")
KODAK_BENCH = ROOT / "benchmarks/results/kodak/points.csv"


def parse_point(spec: str, model: str) -> zoo.Point:
    """A point spec ("1+r1", "1+r0@perceptual": another installed layer's) of `model`."""
    scale, rate, layer = zoo.parse_point_spec(spec)
    return zoo.Point(0, model, scale, refine=rate, layer=layer)


def one(path: Path, spec: str, model: str, effort: int | None) -> dict:
    src = Image.open(path).convert("RGB")
    t = time.perf_counter()
    data = codec.encode_image(src, point=parse_point(spec, model), effort=effort)
    enc_s = time.perf_counter() - t
    t = time.perf_counter()
    out = codec.decode(data)
    dec_s = time.perf_counter() - t
    layers = codec.info(data)["layers"]
    return {"image": path.name, "point": spec, "pixels": src.width * src.height, "bytes": len(data),
            "bpp": len(data) * 8 / (src.width * src.height),
            "layer_bytes": [layer["bytes"] for layer in layers], "psnr": M.psnr(src, out),
            "ms_ssim": M.ms_ssim(src, out), "ssimulacra2": M.ssimulacra2(src, out), "enc_s": enc_s, "dec_s": dec_s}


def codec_curve(name: str, bench: Path = KODAK_BENCH, images: set[str] | None = None) -> list[dict]:
    """Per-setting means of a codec on Kodak from a committed bench, by bpp (over `images`, file
    names, where given)."""
    by: dict[str, list[dict]] = {}
    with open(bench) as f:
        for r in csv.DictReader(f):
            if r["codec"] == name and (images is None or Path(r["image"]).name in images):
                by.setdefault(r["setting"], []).append(r)
    pts = [{"setting": s, **{k: float(np.mean([float(r[k]) for r in rs])) for k in ("bpp", *METRICS)}}
           for s, rs in by.items()]
    return sorted(pts, key=lambda p: p["bpp"])


def at_bpp(curve: list[dict], bpp: float, metric: str) -> float | None:
    """The curve's metric at `bpp`, linear in log bpp between its neighbours; None outside it."""
    b = [p["bpp"] for p in curve]
    if not b[0] <= bpp <= b[-1]:
        return None
    return float(np.interp(np.log(bpp), np.log(b), [p[metric] for p in curve]))


def tr(metric: str, v: float) -> float:
    return M.ms_ssim_db(v) if metric == "ms_ssim" else v


def bd(anchor: list[dict], test: list[dict], metric: str):
    val, why = bd_rate_info([p["bpp"] for p in anchor], [tr(metric, p[metric]) for p in anchor],
                            [p["bpp"] for p in test], [tr(metric, p[metric]) for p in test])
    return val if val is not None else why


def summarize(rows: list[dict], images: int, bench: Path = KODAK_BENCH) -> dict:
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["point"], []).append(r)
    points = []
    for spec, rs in by.items():
        if len(rs) != images:
            continue
        mean = {k: float(np.mean([r[k] for r in rs])) for k in ("bpp", *METRICS, "enc_s", "dec_s")}
        layer_bpp = [float(np.mean([r["layer_bytes"][i] * 8 / r["pixels"] for r in rs]))
                     for i in range(len(rs[0]["layer_bytes"]))]
        points.append({"point": spec, "refined": "+r" in spec, "images": len(rs), "layer_bpp": layer_bpp} | mean)
    points.sort(key=lambda p: p["bpp"])
    jpeg, avif = codec_curve("jpeg", bench), codec_curve("avif", bench)
    for p in points:
        p["jpeg_at_equal_bpp"] = {m: at_bpp(jpeg, p["bpp"], m) for m in METRICS}
        p["beats_jpeg"] = {m: (v is not None and p[m] > v) for m, v in p["jpeg_at_equal_bpp"].items()}
    refined = [p for p in points if p["refined"]]
    scale_only = [p for p in points if not p["refined"]]
    hull = pareto(refined)
    out = {"points": points, "refined_pareto": [p["point"] for p in hull]}
    if len(hull) >= 2 and len(scale_only) >= 2:
        out["bd_rate_vs_scale_only"] = {m: bd(scale_only, hull, m) for m in METRICS}
    if len(hull) >= 2:
        out["bd_rate_vs_avif"] = {m: bd(avif, hull, m) for m in METRICS}
        out["bd_rate_vs_jpeg"] = {m: bd(jpeg, hull, m) for m in METRICS}
    if len(scale_only) >= 2:
        out["scale_only_bd_rate_vs_avif"] = {m: bd(avif, scale_only, m) for m in METRICS}
    in_range = [p for p in refined if 0.15 < p["bpp"] <= 0.45]
    out["refined_in_0.15_0.45_beating_jpeg_on_all_three"] = [p["point"] for p in in_range if all(p["beats_jpeg"].values())]
    return out


def pareto(points: list[dict]) -> list[dict]:
    """The points no other point beats on bpp and PSNR at once, by bpp (a curve for BD-rate)."""
    keep = [p for p in points if not any(q["bpp"] <= p["bpp"] and q["psnr"] > p["psnr"] and q is not p for q in points)]
    return sorted(keep, key=lambda p: p["bpp"])


def tables(s: dict) -> str:
    f = lambda v, d=2: f"{v:.{d}f}" if isinstance(v, float) else "n/a"
    lines = ["| point | bpp (base + refinement) | PSNR | MS-SSIM | SSIMULACRA2 | JPEG at equal bpp (PSNR / MS-SSIM / S2) "
             "| beats JPEG on all three | encode s | decode s |", "|---|---|---|---|---|---|---|---|---|"]
    for p in s["points"]:
        j = p["jpeg_at_equal_bpp"]
        lb = " + ".join(f"{b:.4f}" for b in p["layer_bpp"])
        lines.append(f"| {p['point']} | {p['bpp']:.4f} ({lb}) | {p['psnr']:.2f} | {p['ms_ssim']:.4f} | "
                     f"{p['ssimulacra2']:.2f} | {f(j['psnr'])} / {f(j['ms_ssim'], 4)} / {f(j['ssimulacra2'])} | "
                     f"{'yes' if all(p['beats_jpeg'].values()) else 'no'} | {p['enc_s']:.2f} | {p['dec_s']:.2f} |")
    pct = lambda v: f"{v:+.1f} %" if isinstance(v, float) else f"undefined ({v})"
    lines += ["", f"Refined points on the PSNR-bpp Pareto front: {', '.join(s['refined_pareto'])}", ""]
    for key, what in (("bd_rate_vs_scale_only", "scale-only points"), ("bd_rate_vs_jpeg", "JPEG"),
                      ("bd_rate_vs_avif", "AVIF"), ("scale_only_bd_rate_vs_avif", "AVIF (scale-only points)")):
        if key in s:
            lines.append(f"- BD-rate of the refined front against {what}: " +
                         ", ".join(f"{m} {pct(v)}" for m, v in s[key].items()))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kodak", nargs="?", default=str(ROOT.parent / "shared/data/kodak"))
    ap.add_argument("--points", default="3/2,7/4,2,5/2")
    ap.add_argument("--model", default=zoo.resolve().model)
    ap.add_argument("--shard", default="0/1", help="K/N: this process takes every N-th image from the K-th")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/refine"))
    ap.add_argument("--effort", type=int, default=None, help="the encoder's effort (default: the codec's)")
    ap.add_argument("--anchors", default=str(KODAK_BENCH), help="a `vqzip bench` points.csv with JPEG and AVIF")
    a = ap.parse_args()
    files = sorted(Path(a.kodak).glob("*.png"))
    out = Path(a.out)
    rows = Rows(out, lambda r: (r["image"], r["point"]))
    for spec in a.points.split(","):  # point by point, so that a run cut short leaves whole points
        for f in shard(files, a.shard):
            if (f.name, spec) not in rows.done:
                rows.add(one(f, spec, a.model, a.effort))
    m = zoo.get_model(a.model)
    summary = {
        "command": "python benchmarks/refine_eval.py " + " ".join(sys.argv[1:]),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch threads "
                   f"{torch.get_num_threads()}",
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "tokenizer_precision": tokenizer_precision(pick_device()),
        "refine_weights": m.refine_hash.hex() if m.refine_path.exists() else None,
        "images": len(files),
        "yardsticks": str(Path(a.anchors).resolve().relative_to(ROOT)),
    } | summarize(rows.all(), len(files), Path(a.anchors))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "tables.md").write_text(tables(summary))
    print(tables(summary))


if __name__ == "__main__":
    main()
