"""Encode and decode time per image through the command line, folder in and folder out, against
Pillow's AVIF encode of the same images in the same run (issue 29's yardstick).

Each round times, one after the other: AVIF (speed 6, quality 0, as benchmarks/speed.py always
has) encoding every image; `vqzip encode IN -o VQZ`; `vqzip decode VQZ -o PNG`. The vqzip times
are whole commands (interpreter start, imports and model loading included), divided by the
number of images; per-image means go over the rounds' medians, so a burst of load on a shared
machine moves both sides alike. The one-minute load average is recorded around every step, and
the CPU seconds of every step beside its wall time (AVIF and vqzip's default both use every core:
Pillow's AVIF encoder runs one thread a core, vqzip one file a core).

Every round also runs both commands on the first two images alone (two files, so one a core and
one torch thread each, as in the whole folder), and `python -c "import torch"`: an image's
marginal cost is what the other images add, (T(n) - T(2)) / (n - 2), and a command's fixed cost
(interpreter, imports, model loading, first-call warm-up) is T(2) less two images' share. A
folder of n images takes fixed / n + marginal an image; the fixed part is the same for any n, so
it decides short folders and the marginal part long ones.

usage: python benchmarks/speed_cli.py [KODAK_DIR] [--images 8] [--rounds 3] [--jobs J] [--effort E]
       [--quality Q] [--out results.json]
"""
import argparse
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import PIL
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from report import emit  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402


def load() -> float:
    return os.getloadavg()[0]


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def command(*args) -> tuple[float, float]:
    """Wall and CPU seconds (all its threads) of one command, which must succeed."""
    t, c = time.perf_counter(), children_cpu()
    subprocess.run(list(map(str, args)), check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t, children_cpu() - c


def vqzip(*args) -> tuple[float, float]:
    return command(sys.executable, "-m", "vqzip", *args)


def avif(images: list[Image.Image]) -> tuple[list[float], float]:
    """Wall seconds of each image's encode, and CPU seconds of them all."""
    out, c = [], time.process_time()
    for im in images:
        t = time.perf_counter()
        im.save(io.BytesIO(), format="AVIF", quality=0, speed=6)
        out.append(time.perf_counter() - t)
    return out, time.process_time() - c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kodak", nargs="?", type=Path, default=ROOT.parent / "shared/data/kodak")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=None, help="vqzip --jobs (default: vqzip's)")
    ap.add_argument("--effort", type=int, default=None, help="vqzip --effort (default: vqzip's)")
    ap.add_argument("--quality", type=int, default=None, help="vqzip -q (default: vqzip's)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    files = sorted(a.kodak.glob("*.png"))[:a.images]
    images = [Image.open(f).convert("RGB") for f in files]
    dec_opts = ["--jobs", a.jobs] if a.jobs else []
    enc_opts = [*dec_opts, *(["--effort", a.effort] if a.effort is not None else []),
                *(["-q", a.quality] if a.quality else [])]
    work = Path(tempfile.mkdtemp(prefix="vqzip_speed_"))
    src, vqz, png = work / "in", work / "vqz", work / "png"
    two, two_vqz, two_png = work / "two", work / "two_vqz", work / "two_png"
    src.mkdir()
    two.mkdir()
    for f in files:
        shutil.copy(f, src / f.name)
    for f in files[:2]:
        shutil.copy(f, two / f.name)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # at the start: what the rounds run
    rounds = []
    try:
        for r in range(a.rounds):
            row = {"load_start": load()}
            row["avif_s"], row["avif_cpu_s"] = avif(images)
            row["load_after_avif"] = load()
            row["encode_s"], row["encode_cpu_s"] = vqzip("encode", src, "-o", vqz, "-f", *enc_opts)
            row["load_after_encode"] = load()
            row["decode_s"], row["decode_cpu_s"] = vqzip("decode", vqz, "-o", png, "-f", *dec_opts)
            row["load_after_decode"] = load()
            row["encode_two_s"], row["encode_two_cpu_s"] = vqzip("encode", two, "-o", two_vqz, "-f", *enc_opts)
            row["decode_two_s"], row["decode_two_cpu_s"] = vqzip("decode", two_vqz, "-o", two_png, "-f", *dec_opts)
            row["import_torch_s"], row["import_torch_cpu_s"] = command(sys.executable, "-c", "import torch")
            row["load_end"] = load()
            rounds.append(row)
            print(json.dumps({k: [round(x, 3) for x in v] if isinstance(v, list) else round(v, 3)
                              for k, v in row.items()}), flush=True)
        sizes = {f.name: (vqz / f.with_suffix(".vqz").name).stat().st_size for f in files}
    finally:
        shutil.rmtree(work)
    n = len(files)
    avif_img = statistics.mean(statistics.median(r["avif_s"][i] for r in rounds) for i in range(n))
    med = lambda k: statistics.median(r[k] for r in rounds)
    enc_img, dec_img = med("encode_s") / n, med("decode_s") / n
    cpu = {k: med(f"{k}_cpu_s") / n for k in ("avif", "encode", "decode")}
    split = {}  # fixed seconds a command, marginal seconds an image
    for step in ("encode", "decode"):
        for unit in ("s", "cpu_s"):
            whole, pair = med(f"{step}_{unit}"), med(f"{step}_two_{unit}")
            marginal = (whole - pair) / (n - 2) if n > 2 else float("nan")
            split[f"{step}_{unit}"] = {"fixed": pair - 2 * marginal, "marginal_per_image": marginal}
    loads = [v for r in rounds for k, v in r.items() if k.startswith("load")]
    res = {
        "command": "python benchmarks/speed_cli.py " + " ".join(sys.argv[1:]),
        "vqzip_encode": f"vqzip encode IN -o VQZ -f {' '.join(map(str, enc_opts))}".strip(),
        "vqzip_decode": f"vqzip decode VQZ -o PNG -f {' '.join(map(str, dec_opts))}".strip(),
        "machine": cpu_name(), "cores": len(os.sched_getaffinity(0)),
        "env_OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "pillow": PIL.__version__,
                     "vqzip_commit": commit},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "images": [f.name for f in files],
        "load_average_1min": {"min": min(loads), "max": max(loads)},
        "bpp": sum(sizes.values()) * 8 / sum(im.width * im.height for im in images),
        "seconds_per_image": {"avif_encode": avif_img, "vqzip_encode": enc_img, "vqzip_decode": dec_img},
        "encode_over_avif": enc_img / avif_img, "decode_over_avif": dec_img / avif_img,
        # CPU seconds (every thread's) per image: the work, which load moves less than the wall time
        "cpu_seconds_per_image": {"avif_encode": cpu["avif"], "vqzip_encode": cpu["encode"], "vqzip_decode": cpu["decode"]},
        "encode_over_avif_cpu": cpu["encode"] / cpu["avif"], "decode_over_avif_cpu": cpu["decode"] / cpu["avif"],
        "fixed_and_marginal": split,
        "import_torch": {"s": med("import_torch_s"), "cpu_s": med("import_torch_cpu_s")},
        "marginal_encode_over_avif": split["encode_s"]["marginal_per_image"] / avif_img,
        "marginal_decode_over_avif": split["decode_s"]["marginal_per_image"] / avif_img,
        "marginal_encode_over_avif_cpu": split["encode_cpu_s"]["marginal_per_image"] / cpu["avif"],
        "marginal_decode_over_avif_cpu": split["decode_cpu_s"]["marginal_per_image"] / cpu["avif"],
        "rounds": rounds,
    }
    emit(res, a.out, not_printed=("rounds",))


if __name__ == "__main__":
    main()
