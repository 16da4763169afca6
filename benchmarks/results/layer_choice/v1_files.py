"""Issue 26's decode baseline made again: every Kodak image at the first layer's default point
(x1/2 + r1 of refine_v1.safetensors, effort 8, the default when the issue was filed), coded by this
encoder. usage (repository root): python benchmarks/results/layer_choice/v1_files.py runs/ab7/v1"""
import sys
from fractions import Fraction
from pathlib import Path

from PIL import Image

sys.path.insert(0, ".")
from vqzip import codec, zoo  # noqa: E402

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
point = zoo.Point(0, "f16-lfq20", Fraction(1, 2), refine=1, layer="v1")
for f in sorted(Path("../shared/data/kodak").glob("*.png")):
    (out / f"{f.stem}.vqz").write_bytes(codec.encode_image(Image.open(f).convert("RGB"), point=point, effort=8))
