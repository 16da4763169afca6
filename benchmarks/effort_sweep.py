"""The encoder-side search's effort levels on Kodak: BD-rate against effort 0 and encode seconds.

For each effort, image and quality level: the real .vqz file (exact coder, header and CRC
included), decoded by today's decoder, scored on PSNR, MS-SSIM and SSIMULACRA2, and the encode's
wall and CPU seconds. AVIF (Pillow, speed 6, quality 0) encodes the same image just before each
vqzip encode, as a yardstick: on a shared machine its time shows how busy the cores were.

Rows are appended to OUT/rows.jsonl as they are made, so a long sweep can be split across
processes (--shard K/N) or resumed; every run rewrites OUT/summary.json from all rows present.

usage: python benchmarks/effort_sweep.py --efforts 0,3,9 [--qualities 1,2,3,4,5] [--shard 0/2]
       [--out benchmarks/results/effort_refine] [KODAK_DIR]
"""
import argparse
from dataclasses import asdict
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import codec, search, zoo  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402
from vqzip.bench import metrics as M  # noqa: E402
from vqzip.bench.bdrate import bd_rate_info  # noqa: E402
from vqzip.devices import pick_device, tokenizer_precision  # noqa: E402
from report import Rows, shard  # noqa: E402

METRICS = ("psnr", "ms_ssim", "ssimulacra2")


def one(path: Path, quality: int, effort: int) -> dict:
    src = Image.open(path).convert("RGB")
    t = time.perf_counter()
    src.save(io.BytesIO(), "AVIF", quality=0, speed=6)
    avif_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    data = codec.encode_image(src, quality=quality, effort=effort)
    enc_s, enc_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    out = codec.decode(data)
    dec_s = time.perf_counter() - t
    return {"image": path.name, "quality": quality, "effort": effort, "bytes": len(data),
            "bpp": len(data) * 8 / (src.width * src.height), "psnr": M.psnr(src, out),
            "ms_ssim": M.ms_ssim(src, out), "ssimulacra2": M.ssimulacra2(src, out),
            "enc_s": enc_s, "enc_cpu_s": enc_cpu, "dec_s": dec_s, "avif_enc_s": avif_s,
            "load1": os.getloadavg()[0]}


def summarize(rows: list[dict], images: int) -> dict:
    """Per effort: means over the images of each quality level, BD-rate against effort 0 on each
    metric (MS-SSIM in dB, as `vqzip bench` does), and encode seconds. Only levels that every
    image has are used, so a partial sweep cannot pass for a whole one."""
    by: dict[int, dict[int, list[dict]]] = {}
    for r in rows:
        by.setdefault(r["effort"], {}).setdefault(r["quality"], []).append(r)
    curves = {}
    for e, qs in sorted(by.items()):
        pts = []
        for q, rs in sorted(qs.items()):
            mean = {k: float(np.mean([r[k] for r in rs])) for k in ("bpp", *METRICS, "enc_s", "enc_cpu_s", "dec_s",
                                                                     "avif_enc_s")}
            pts.append({"quality": q, "images": len(rs), "complete": len(rs) == images} | mean)
        curves[e] = pts
    out = {}
    base = [p for p in curves.get(0, []) if p["complete"]]
    for e, pts in curves.items():
        full = [p for p in pts if p["complete"]]
        entry = {"points": pts, "qualities_complete": [p["quality"] for p in full]}
        if e and base and len(full) == len(base):
            for k in METRICS:
                tr = (lambda p: M.ms_ssim_db(p[k])) if k == "ms_ssim" else (lambda p: p[k])
                val, why = bd_rate_info([p["bpp"] for p in base], [tr(p) for p in base],
                                        [p["bpp"] for p in full], [tr(p) for p in full])
                entry[f"bd_rate_{k}"] = val if val is not None else why
        out[str(e)] = entry
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kodak", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/kodak"))
    ap.add_argument("--efforts", default="0,3,9")
    ap.add_argument("--qualities", default=",".join(str(p.quality) for p in zoo.list_points()))
    ap.add_argument("--shard", default="0/1", help="K/N: this process takes every N-th image from the K-th")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results/effort_refine"))
    a = ap.parse_args()
    files = sorted(Path(a.kodak).glob("*.png"))
    out = Path(a.out)
    rows = Rows(out, lambda r: (r["image"], r["quality"], r["effort"]))
    efforts = [int(e) for e in a.efforts.split(",")]
    qualities = [int(q) for q in a.qualities.split(",")]
    for f in shard(files, a.shard):
        for q in qualities:
            for e in efforts:  # interleaved, so each effort's time sees the same machine
                if (f.name, q, e) not in rows.done:
                    rows.add(one(f, q, e))
    rows = rows.all()  # other shards' rows too
    dev = pick_device()
    summary = {
        "command": "python benchmarks/effort_sweep.py " + " ".join(sys.argv[1:]),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch threads "
                   f"{torch.get_num_threads()}",
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "tokenizer_precision": tokenizer_precision(dev),
        "schedule": {str(e): asdict(search.schedule(e)) for e in search.EFFORTS},
        "default_effort": search.DEFAULT_EFFORT,
        "images": len(files),
        "efforts": summarize(rows, len(files)),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "tables.md").write_text(tables(summary))
    print(tables(summary))


def tables(summary: dict) -> str:
    """The README's table: per effort, BD-rate against effort 0 and mean seconds per image."""
    fmt = lambda v: f"{v:+.1f} %" if isinstance(v, float) else "n/a"
    lines = ["| effort | base steps | refinement steps | BD-rate PSNR | BD-rate MS-SSIM | BD-rate SSIMULACRA2 | encode s (mean over the levels run) "
             "| decode s | AVIF q0 encode s, same run |", "|---|---|---|---|---|---|---|---|---|"]
    for e, s in summary["efforts"].items():
        pts = [p for p in s["points"] if p["complete"]]
        if not pts:
            continue
        mean = lambda k: sum(p[k] for p in pts) / len(pts)
        bd = [fmt(s.get(f"bd_rate_{m}")) if e != "0" else "anchor" for m in METRICS]
        sched = summary["schedule"][e]
        lines.append(f"| {e} | {sched['steps']} | {sched['refine_steps']} | {' | '.join(bd)} | {mean('enc_s'):.2f} | "
                     f"{mean('dec_s'):.2f} | {mean('avif_enc_s'):.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
