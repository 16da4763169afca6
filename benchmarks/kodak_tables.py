"""Markdown tables for the README from a `vqzip bench` summary.json: mean points per codec in the
low-rate range and the BD-rate of every codec against each anchor.

usage: python benchmarks/kodak_tables.py benchmarks/results/kodak/summary.json [MAX_BPP]
"""
import json
import sys

d = json.loads(open(sys.argv[1]).read())
max_bpp = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3
fmt = lambda v, s: "n/a" if v is None else format(v, s)  # noqa: E731
print(f"Mean over {d['n_images']} images; points up to {max_bpp} bpp.\n")
print("| codec | setting | bpp | PSNR (dB) | MS-SSIM | SSIMULACRA2 | encode s | decode s |")
print("|---|---|---|---|---|---|---|---|")
for codec, pts in d["averages"].items():
    for p in pts:
        if p["bpp"] <= max_bpp:
            print(f"| {codec} | {p['setting']} | {p['bpp']:.4f} | {fmt(p.get('psnr'), '.2f')} | {fmt(p.get('ms_ssim'), '.4f')} "
                  f"| {fmt(p.get('ssimulacra2'), '.2f')} | {p['enc_s']:.3f} | {p['dec_s']:.3f} |")
print("\nBD-rate (% bits at equal quality over the overlapping range; negative = fewer bits than the anchor):\n")
metrics = [m for m in ("psnr", "ms_ssim", "ssimulacra2") if m in d["metrics"]]
anchors = [a for a, t in d["bd_rate"].items() if t]
print("| codec | " + " | ".join(f"vs {a} {m}" for a in anchors for m in metrics) + " |")
print("|---|" + "---|" * (len(anchors) * len(metrics)))
for codec in d["averages"]:
    cells = []
    for a in anchors:
        for m in metrics:
            v = d["bd_rate"][a].get(m, {}).get(codec)
            cells.append("anchor" if codec == a else fmt(v, "+.1f"))
    print(f"| {codec} | " + " | ".join(cells) + " |")
