"""Crops of Kodak pictures as the previous ladder and this one code them at a quality, beside the
source: the variant each chose (the simulation's picks, which the bench's files equal), encoded at
effort 5 by point spec, decoded, scored with the bench's metrics.

usage: python pictures.py OUT.png IMAGE:Q:BEFORE:NOW:X,Y,W,H ...   (run from the repository root)"""
import sys
from fractions import Fraction

from PIL import Image, ImageDraw

sys.path.insert(0, ".")
from vqzip import codec, zoo  # noqa: E402
from vqzip.bench import metrics as M  # noqa: E402


def coded(src, spec):
    scale, rate, layer = zoo.parse_point_spec(spec)
    data = codec.encode_image(src, point=zoo.Point(0, "f16-lfq20", Fraction(scale), refine=rate, layer=layer), effort=5)
    out = codec.decode(data)
    return out, (f"{spec}: {len(data) * 8 / (src.width * src.height):.3f} bpp, {M.psnr(src, out):.2f} dB, "
                 f"SSIMULACRA2 {M.ssimulacra2(src, out):.1f}")


rows = []
for arg in sys.argv[2:]:
    name, q, before, now, box = arg.split(":")
    x, y, w, h = map(int, box.split(","))
    src = Image.open(f"../shared/data/kodak/{name}").convert("RGB")
    tiles = [(src, f"{name} source")] + [(img, f"q{q} {lab}: {cap}") for lab, (img, cap) in
                                         zip(("before", "now"), (coded(src, before), coded(src, now)))]
    rows.append([(img.crop((x, y, x + w, y + h)), cap) for img, cap in tiles])
    print(*(c for _, c in tiles), sep="\n", flush=True)
W, H, pad = rows[0][0][0].width, rows[0][0][0].height, 18
sheet = Image.new("RGB", (3 * W, len(rows) * (H + pad)), "white")
draw = ImageDraw.Draw(sheet)
for r, row in enumerate(rows):
    for c, (img, cap) in enumerate(row):
        sheet.paste(img, (c * W, r * (H + pad) + pad))
        draw.text((c * W + 2, r * (H + pad) + 3), cap, fill="black")
sheet.save(sys.argv[1])
