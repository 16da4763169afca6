"""Measure every operating point of the zoo on Kodak and write models/NAME/metrics.json, which
`vqzip models` and the model cards show.

For each point: mean bpp of the whole .vqz file, PSNR (RGB), MS-SSIM, SSIMULACRA2, the prior's
payload over the raw index bits, and, at full resolution, codebook use: the share of codes seen,
and the empirical entropy of the tokens and of each half (the sub-symbols the coder uses).

usage: python benchmarks/eval_models.py [KODAK_DIR] [--points Q,Q,...] [--no-ssimulacra2]
       python benchmarks/eval_models.py --from-bench benchmarks/results/kodak_X/points.csv

--from-bench takes bpp, PSNR, MS-SSIM, SSIMULACRA2, the effort and the seconds (encode plus
decode) of every ladder point from a `vqzip bench` run on Kodak instead of coding the images again
(the bench runs the same codec and metric code); the base layer's payload / raw bits and the
codebook use are kept from the last full run, which is right only when the base layer did not
change (a new refinement layer, a new header).
"""
import csv
import re
import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import codec, zoo  # noqa: E402
from vqzip.bench import metrics as M  # noqa: E402


def entropy_bits(values: np.ndarray) -> float:
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kodak", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared/data/kodak"))
    ap.add_argument("--points", default="")
    ap.add_argument("--no-ssimulacra2", action="store_true")
    ap.add_argument("--from-bench", type=Path, default=None)
    a = ap.parse_args()
    if a.from_bench:
        return from_bench(a.from_bench)
    files = sorted(Path(a.kodak).glob("*.png"))
    want = {int(q) for q in a.points.split(",") if q}
    per_model: dict[str, dict] = defaultdict(lambda: {"points": {}})
    for p in zoo.list_points():
        if want and p.quality not in want:
            continue
        rows, tokens = [], []
        codec_seconds = 0.0
        for f in files:
            src = Image.open(f).convert("RGB")
            t0 = time.perf_counter()
            data = codec.encode_image(f, quality=p.quality)
            out = codec.decode(data)
            codec_seconds += time.perf_counter() - t0  # the codec alone: metrics and info() not counted
            inf = codec.info(data)
            r = {"bpp": len(data) * 8 / (src.width * src.height), "psnr": M.psnr(src, out),
                 "ms_ssim": M.ms_ssim(src, out), "payload_over_raw": inf["payload_over_raw"],
                 "effort": inf["effort"]}  # the default effort, as the file records it
            if not a.no_ssimulacra2:
                r["ssimulacra2"] = M.ssimulacra2(src, out)
            rows.append(r)
            if p.scale == 1:
                tokens.append(codec.decode_tokens_of(data)[1].reshape(-1))
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        mean["seconds_per_image"] = codec_seconds / len(files)
        print(p.as_dict(), {k: round(v, 4) for k, v in mean.items()}, flush=True)
        card = per_model[p.model]
        card["points"][p.key] = mean | {"quality": p.quality}
        if tokens:
            t = np.concatenate(tokens)
            m = zoo.get_model(p.model)
            bits = m.tokenizer.cfg.token_bits
            lo = m.prior.cfg.lo_bits
            card["codebook"] = {
                "tokens": int(t.size), "token_bits": bits, "codes_used": int(np.unique(t).size),
                "share_of_codes_used": float(np.unique(t).size / 2 ** bits),
                "empirical_entropy_bits": entropy_bits(t),
                "entropy_bound_bits": float(np.log2(t.size)),
                "hi_entropy_bits": entropy_bits(t >> lo), "lo_entropy_bits": entropy_bits(t & ((1 << lo) - 1)),
            }
    for name, card in per_model.items():
        path = zoo.get_model(name).path / "metrics.json"
        old = json.loads(path.read_text()) if path.exists() else {"points": {}}
        old["points"].update(card["points"])
        now = {p.key: p.quality for p in zoo.list_points() if p.model == name}
        old["points"] = {s: r | {"quality": now[s]} for s, r in old["points"].items() if s in now}  # as numbered today
        if "codebook" in card:
            old["codebook"] = card["codebook"]
        old["measured_on"] = f"Kodak ({len(files)} images)"
        path.write_text(json.dumps(old, indent=2) + "\n")
        print(f"wrote {path}")
        write_card_table(path.parent / "card.md", old, " ".join(sys.argv))


def from_bench(points_csv: Path):
    """metrics.json's ladder rows from a Kodak bench's points.csv (see the module docstring)."""
    rows = [r for r in csv.DictReader(open(points_csv)) if r["codec"] == "vqzip"]
    by_q: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_q[int(re.match(r"q(\d+) ", r["setting"]).group(1))].append(r)
    points = zoo.list_points()
    paths = {name: zoo.get_model(name).path / "metrics.json" for name in {q.model for q in points}}
    metrics = {name: json.loads(path.read_text()) for name, path in paths.items()}  # each file read once
    before = {name: dict(m["points"]) for name, m in metrics.items()}
    touched = set()
    for p in points:
        got = by_q.get(p.quality)
        if not got:
            continue
        m = metrics[p.model]
        mean = lambda k: float(np.mean([float(r[k]) for r in got]))
        # the bench labels every point with the effort asked for; a point that is not searched
        # (q1: no refinement, no search_lambda) records 0 in its files
        effort = re.search(r"effort (\d+)", got[0]["setting"]) if p.refine is not None or p.search_lambda else None
        # the base layer's payload depends on the scale alone: a point new to the ladder (a new
        # refinement level) takes it from a point of the same scale
        same_scale = [v for k, v in before[p.model].items() if k.split("+")[0] == str(p.scale) and "payload_over_raw" in v]
        old = {"payload_over_raw": same_scale[0]["payload_over_raw"]} if same_scale else {}
        m["points"][p.key] = old | {"bpp": mean("bpp"), "psnr": mean("psnr"), "ms_ssim": mean("ms_ssim"),
                                    "ssimulacra2": mean("ssimulacra2"), "effort": float(effort.group(1)) if effort else 0.0,
                                    "seconds_per_image": mean("enc_s") + mean("dec_s"), "quality": p.quality}
        m["measured_on"] = f"Kodak ({len(got)} images)"
        touched.add(p.model)
    for name in touched:
        # points no longer on the ladder go: a key names a rate level, whose lambda a new layer may change
        keys = {q.key for q in points if q.model == name}
        metrics[name]["points"] = {k: v for k, v in metrics[name]["points"].items() if k in keys}
        paths[name].write_text(json.dumps(metrics[name], indent=2) + "\n")
        write_card_table(paths[name].parent / "card.md", metrics[name], " ".join(sys.argv))
        print(f"wrote {paths[name]}")


def write_card_table(card: Path, m: dict, command: str):
    """Replace the measured-results block of a model card with the numbers just measured."""
    rows = ["| point | quality | effort | bpp | PSNR (dB) | MS-SSIM | SSIMULACRA2 | payload / raw index bits | s per image |",
            "|---|---|---|---|---|---|---|---|---|"]
    for key, r in sorted(m["points"].items(), key=lambda kv: kv[1]["quality"]):
        rows.append(f"| {key} | {r['quality']} | {r.get('effort', 0):.0f} | {r['bpp']:.4f} | {r['psnr']:.2f} | {r['ms_ssim']:.4f} | "
                    f"{r.get('ssimulacra2', float('nan')):.2f} | {r['payload_over_raw']:.3f} | {r['seconds_per_image']:.2f} |")
    cb = m.get("codebook")
    if cb:
        rows += ["", f"Codebook use at scale 1 ({cb['tokens']} Kodak tokens of {cb['token_bits']} bits): "
                 f"{cb['codes_used']} distinct codes ({100 * cb['share_of_codes_used']:.2f} % of 2^{cb['token_bits']}); "
                 f"empirical token entropy {cb['empirical_entropy_bits']:.2f} bits (at most {cb['entropy_bound_bits']:.2f} "
                 f"can be seen in this many tokens); high/low halves {cb['hi_entropy_bits']:.2f} / {cb['lo_entropy_bits']:.2f} bits."]
    block = "\n".join(["<!-- measured -->", f"Measured on {m['measured_on']} with `{command}` "
                        "(2-core CPU; s per image: encode plus decode, from the file to the image and back). "
                        "A point with alternatives in models/points.json is each image's choice among them "
                        "(vqzip/choice.py), named by the ladder's own point.", "", *rows, "<!-- /measured -->"])
    text = card.read_text() if card.exists() else "<!-- measured -->\n<!-- /measured -->\n"
    a, b = text.index("<!-- measured -->"), text.index("<!-- /measured -->") + len("<!-- /measured -->")
    card.write_text(text[:a] + block + text[b:])


if __name__ == "__main__":
    main()
