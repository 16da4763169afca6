"""The restoration filter (vqzip/nn/restore.py) on Kodak: the same files decoded with and without it.

The filter costs no bits, so for every image and ladder point one real .vqz file is made (the
installed refinement layer, which must carry a filter) and decoded twice, with and without it;
both are scored on PSNR, MS-SSIM and SSIMULACRA2. The filter's own time is measured on the
decoded picture (one call of codec.restored), beside the whole decode's.

Rows go to OUT/rows.jsonl as they are made (resumable, --shard K/N); every run rewrites
OUT/summary.json and OUT/tables.md: per point, the mean change of each metric; over the ladder,
the BD-rate of the filtered points against the same points unfiltered (bits at equal quality).

usage: python benchmarks/restore_eval.py [--qualities 2,3,4,5,6,7,8,9] [--effort 0] [--shard 0/1]
       [--out benchmarks/results/restore] [KODAK_DIR]
"""
import argparse
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
from vqzip.nn.restore import macs_per_pixel  # noqa: E402
from refine_eval import METRICS, bd  # noqa: E402
from report import Rows, emit, shard  # noqa: E402


def scores(src: Image.Image, out: Image.Image) -> dict:
    return {"psnr": M.psnr(src, out), "ms_ssim": M.ms_ssim(src, out), "ssimulacra2": M.ssimulacra2(src, out)}


def one(path: Path, point: zoo.Point, effort: int) -> dict:
    src = Image.open(path).convert("RGB")
    data = codec.encode_image(src, point=point, effort=effort)
    t = time.perf_counter()
    plain = codec.decode(data, restore=False)
    dec_s = time.perf_counter() - t
    ref = zoo.get_model(point.model).refiner
    t = time.perf_counter()
    filtered = codec.restored(plain, ref.restorer, point.scale, point.refine, torch.device("cpu"))
    filter_s = time.perf_counter() - t
    assert np.array_equal(np.asarray(filtered), np.asarray(codec.decode(data)))  # what the decoder gives
    return {"image": path.name, "quality": point.quality, "point": point.key, "bytes": len(data),
            "bpp": len(data) * 8 / (src.width * src.height), "plain": scores(src, plain),
            "filtered": scores(src, filtered), "decode_s": dec_s, "filter_s": filter_s}


def summarize(rows: list[dict], images: int) -> dict:
    by: dict[int, list[dict]] = {}
    for r in rows:
        by.setdefault(r["quality"], []).append(r)
    points = []
    for q, rs in sorted(by.items()):
        if len(rs) != images:
            continue
        mean = lambda f: float(np.mean([f(r) for r in rs]))
        points.append({"quality": q, "point": rs[0]["point"], "bpp": mean(lambda r: r["bpp"]),
                       "plain": {m: mean(lambda r: r["plain"][m]) for m in METRICS},
                       "filtered": {m: mean(lambda r: r["filtered"][m]) for m in METRICS},
                       "decode_s": mean(lambda r: r["decode_s"]), "filter_s": mean(lambda r: r["filter_s"])})
    out = {"points": points}
    if len(points) >= 2:
        curve = lambda k: [{"bpp": p["bpp"]} | p[k] for p in points]
        out["bd_rate_filtered_vs_plain"] = {m: bd(curve("plain"), curve("filtered"), m) for m in METRICS}
    return out


def tables(s: dict) -> str:
    lines = ["| q | point | bpp | PSNR plain -> filtered | MS-SSIM | SSIMULACRA2 | decode s | filter s |",
             "|---|---|---|---|---|---|---|---|"]
    for p in s["points"]:
        a, b = p["plain"], p["filtered"]
        lines.append(f"| q{p['quality']} | {p['point']} | {p['bpp']:.4f} | {a['psnr']:.2f} -> {b['psnr']:.2f} "
                     f"({b['psnr'] - a['psnr']:+.2f}) | {a['ms_ssim']:.4f} -> {b['ms_ssim']:.4f} | "
                     f"{a['ssimulacra2']:.2f} -> {b['ssimulacra2']:.2f} | {p['decode_s']:.2f} | {p['filter_s']:.3f} |")
    if "bd_rate_filtered_vs_plain" in s:
        pct = lambda v: f"{v:+.1f} %" if isinstance(v, float) else f"undefined ({v})"
        lines += ["", "BD-rate of the filtered ladder against the same files unfiltered: " +
                  ", ".join(f"{m} {pct(v)}" for m, v in s["bd_rate_filtered_vs_plain"].items())]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kodak", nargs="?", default=str(ROOT.parent / "shared/data/kodak"))
    ap.add_argument("--qualities", default=None, help="ladder qualities (default: every refined point)")
    ap.add_argument("--effort", type=int, default=0)
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/restore"))
    a = ap.parse_args()
    points = [p for p in zoo.list_points() if p.refine is not None]
    if a.qualities:
        points = [p for p in points if p.quality in {int(q) for q in a.qualities.split(",")}]
    m = zoo.get_model(points[0].model)
    if m.refiner.restorer is None:
        sys.exit("error: the installed refinement layer has no restoration filter")
    files = sorted(Path(a.kodak).glob("*.png"))
    out = Path(a.out)
    rows = Rows(out, lambda r: (r["image"], r["quality"]))
    for p in points:
        for f in shard(files, a.shard):
            if (f.name, p.quality) not in rows.done:
                rows.add(one(f, p, a.effort))
    cfg = m.refiner.cfg
    summary = {
        "command": "python benchmarks/restore_eval.py " + " ".join(sys.argv[1:]),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch threads "
                   f"{torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}",
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "refine_weights": m.refine_hash.hex(), "effort": a.effort, "images": len(files),
        "filter": {"width": cfg.restore_width, "blocks": cfg.restore_blocks,
                   "macs_per_pixel": macs_per_pixel(cfg.restore_width, cfg.restore_blocks, len(cfg.rates)),
                   "parameters": sum(p.numel() for p in m.refiner.restorer.parameters())},
    } | summarize(rows.all(), len(files))
    (out / "tables.md").write_text(tables(summary))
    emit(summary, out / "summary.json")
    print(tables(summary))


if __name__ == "__main__":
    main()
