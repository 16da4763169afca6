"""Cross-device checks of the codec (models/recipes/gpu_refine.sh runs them on a GPU lease; they run
on any CPU):

1. every image is encoded on each device and decoded on each (CUDA to the host and the host to
   CUDA): each pair decodes, the lossless stage gives the same tokens and refinement symbols on
   every device, and the decodes' pixels differ by at most a few levels (the tokenizer may run in
   bf16 on one device and fp32 on the other; the coded integers are exact either way);
2. the exact prior on each device gives the golden bytes recorded in tests/golden (a fixed token
   grid's payload) and decodes the golden file to its recorded tokens; its fp32 pixels are within
   a level of the recorded decode.

Without CUDA the CUDA parts are skipped, and the result says so. The models are those VQZIP_MODELS
names (a folder with another refinement layer, for instance). Exit status 1 if a check failed.

usage: python benchmarks/cross_device.py IMAGES_DIR OUT.json [--quality 1,3] [--images 2] [--side 512]
"""
import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]
from report import emit  # noqa: E402
from test_golden import HERE as GOLDEN, RECORD, fixed_grid  # noqa: E402
from vqzip import codec, zoo  # noqa: E402
from vqzip.coding.entropy import encode_tokens  # noqa: E402

PIXEL_LEVELS = 8  # decodes on two devices may differ this much in 0-255 levels (bf16 against fp32)


def devices() -> list[torch.device]:
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def timed(fn, dev):
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    t = time.perf_counter()
    out = fn()
    sync()
    return out, round(time.perf_counter() - t, 3)


def lossless(data: bytes, dev: torch.device):
    """Tokens and refinement symbols of a file, the exact prior on `dev` (codec.decode's first half)."""
    got = codec.lossless(data, dev)
    return got.tokens, got.symbols


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b) ** 2))), 3)


def images(folder: Path, n: int, side: int) -> list[tuple[str, Image.Image]]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    out = []
    for p in files:
        im = Image.open(p).convert("RGB")
        w, h = min(side, im.width), min(side, im.height)
        x, y = (im.width - w) // 2, (im.height - h) // 2
        out.append((str(p.relative_to(folder)), im.crop((x, y, x + w, y + h))))
    return out


def image_checks(pictures, qualities: list[int]) -> list[dict]:
    rows = []
    for name, im in pictures:
        src = np.asarray(im)
        for q in qualities:
            for enc in devices():
                data, t_enc = timed(lambda: codec.encode_image(im, quality=q, device=enc.type), enc)
                row = {"image": name, "size": list(im.size), "quality": q, "encoded_on": enc.type,
                       "bytes": len(data), "bpp": round(len(data) * 8 / (im.width * im.height), 4),
                       "encode_s": t_enc, "decoded_on": {}}
                pixels, coded = {}, {}
                for dec in devices():
                    img, t_dec = timed(lambda: codec.decode(data, device=dec.type), dec)
                    pixels[dec.type] = np.asarray(img.convert("RGB"))
                    coded[dec.type] = lossless(data, dec)
                    row["decoded_on"][dec.type] = {"psnr": psnr(pixels[dec.type], src), "decode_s": t_dec}
                host_tokens, host_symbols = coded["cpu"]
                row["lossless_equal_across_devices"] = all(
                    np.array_equal(t, host_tokens) and (s is None or np.array_equal(s, host_symbols))
                    for t, s in coded.values())
                row["pixels_max_diff_across_devices"] = max(
                    int(np.abs(p.astype(np.int16) - pixels["cpu"]).max()) for p in pixels.values())
                # the exact prior on every device writes the host's bytes for the same tokens
                point = zoo.resolve(quality=q)
                row["base_bytes_equal_across_devices"] = len({
                    codec.pack_tokens(host_tokens, point, im.width, im.height, None, 0, d) for d in devices()}) == 1
                row["ok"] = (row["lossless_equal_across_devices"] and row["base_bytes_equal_across_devices"]
                             and row["pixels_max_diff_across_devices"] <= PIXEL_LEVELS)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def golden_checks() -> dict:
    rec = json.loads(RECORD.read_text())
    m = zoo.get_model(rec["model"])
    grid = fixed_grid(m.tokenizer.cfg.token_bits)
    data = (GOLDEN / "kodim23_crop.vqz").read_bytes()
    want = np.asarray(Image.open(GOLDEN / "kodim23_crop.decoded.png"), np.int16)
    out = {}
    asked = os.environ.get("VQZIP_PRECISION")
    os.environ["VQZIP_PRECISION"] = "fp32"  # the recorded pixels are the fp32 decode
    try:
        for d in devices():
            tokens = lossless(data, d)[0]
            pixels = np.asarray(codec.decode(data, device=d.type), np.int16)
            r = {"grid_payload_matches": hashlib.sha256(encode_tokens(m.exact_prior(d), grid)).hexdigest()
                 == rec["grid_payload_sha256"],
                 "file_tokens_match": hashlib.sha256(tokens.astype("<i8").tobytes()).hexdigest() == rec["tokens_sha256"],
                 "file_pixels_max_diff_fp32": int(np.abs(pixels - want).max())}
            r["ok"] = r["grid_payload_matches"] and r["file_tokens_match"] and r["file_pixels_max_diff_fp32"] <= 1
            out[d.type] = r
    finally:
        if asked is None:
            del os.environ["VQZIP_PRECISION"]
        else:
            os.environ["VQZIP_PRECISION"] = asked
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--quality", default="1,3")
    ap.add_argument("--images", type=int, default=2, dest="count")
    ap.add_argument("--side", type=int, default=512)
    a = ap.parse_args()
    pictures = images(a.images, a.count, a.side)
    if not pictures:
        raise SystemExit(f"error: no JPEG or PNG images in {a.images}")
    cuda = torch.cuda.is_available()
    res = {"how": {"command": " ".join(sys.argv), "torch": torch.__version__, "models": str(zoo.models_dir()),
                   "device": torch.cuda.get_device_name() if cuda else "cpu",
                   "cuda": "present" if cuda else "skipped: no CUDA on this machine"},
           "golden": golden_checks(),
           "images": image_checks(pictures, [int(q) for q in a.quality.split(",")])}
    res["ok"] = all(r["ok"] for r in res["golden"].values()) and all(r["ok"] for r in res["images"])
    emit(res, a.out)
    sys.exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    main()
