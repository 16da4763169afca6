"""A tuning set of training photos, never Kodak: three from each of the training sets, spread through
each set's sorted file list, each scaled to cover 768 x 512 (Lanczos) and cut to it at the centre,
so that its pictures are Kodak-sized. What the encoder's constants are set on
(benchmarks/results/point_choice).

usage: python benchmarks/tune_set.py [TRAIN_DIR] OUT_DIR [--per-set 3]
"""
import argparse
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train", nargs="?", default=str(ROOT.parent / "shared/data/train"))
    ap.add_argument("out")
    ap.add_argument("--per-set", type=int, default=3)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    k = a.per_set
    for d in sorted(p for p in Path(a.train).iterdir() if p.is_dir()):
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for i in range(k):
            p = files[(i * 2 + 1) * len(files) // (2 * k)]  # the middles of k equal parts of the list
            im = Image.open(p).convert("RGB")
            s = max(768 / im.width, 512 / im.height)
            im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
            left, top = (im.width - 768) // 2, (im.height - 512) // 2
            im.crop((left, top, left + 768, top + 512)).save(out / f"{d.name}__{p.stem}.png")
            print(out / f"{d.name}__{p.stem}.png")


if __name__ == "__main__":
    main()
