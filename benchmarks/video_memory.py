"""Peak memory of `vqzip encode` and `vqzip decode` on a short and a long clip: streaming means the
long clip should need about as much memory as the short one.

The clips are carphone_pristine.mp4 (176x144, 30000/1001 fps) looped to N frames, with a stereo
sine tone as AAC audio, written as x264 .mp4. Each command runs in its own process; its peak RSS
comes from the kernel (wait4's ru_maxrss).

    python benchmarks/video_memory.py --frames 200 2000 --out benchmarks/results/video/memory.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from report import emit

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "video" / "carphone_pristine.mp4"


def make_clip(path: Path, frames: int) -> None:
    with av.open(str(SOURCE)) as src:
        base = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
        fps = Fraction(src.streams.video[0].average_rate)
    h, w = base[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"crf": "18"})
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        aus = out.add_stream("aac", rate=48000, layout="stereo")
        seconds = frames / fps
        t = np.arange(int(48000 * seconds)) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for i in range(frames):
            out.mux(vs.encode(av.VideoFrame.from_ndarray(base[i % len(base)], format="rgb24")))
        out.mux(vs.encode())
        for i in range(0, len(tone), 1024):
            chunk = np.stack([tone[i:i + 1024]] * 2)
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, i
            out.mux(aus.encode(af))
        out.mux(aus.encode())


def peak_rss(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of `python -m vqzip ARGS` in a child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "vqzip", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    if status:
        raise SystemExit(f"vqzip {' '.join(args)} failed: {p.stderr.read().decode()}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[200, 2000])
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.frames:
            clip, vqz, back = (Path(tmp) / f"clip{n}{ext}" for ext in (".mp4", ".vqz", ".out.mp4"))
            make_clip(clip, n)
            enc_mib, enc_s = peak_rss(["encode", str(clip), "-o", str(vqz)])
            dec_mib, dec_s = peak_rss(["decode", str(vqz), "-o", str(back)])
            with av.open(str(back)) as c:
                got = sum(1 for _ in c.decode(video=0))
            rows.append({"frames": n, "frames_decoded": got, "vqz_bytes": vqz.stat().st_size,
                         "encode_peak_rss_mib": round(enc_mib, 1), "encode_s": round(enc_s, 1),
                         "decode_peak_rss_mib": round(dec_mib, 1), "decode_s": round(dec_s, 1)})
            print(json.dumps(rows[-1]), flush=True)
    first, last = rows[0], rows[-1]
    res = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "clip": "carphone_pristine.mp4 looped, 176x144, AAC stereo tone; default quality", "runs": rows,
           "encode_rss_growth": last["encode_peak_rss_mib"] / first["encode_peak_rss_mib"] - 1,
           "decode_rss_growth": last["decode_peak_rss_mib"] / first["decode_peak_rss_mib"] - 1}
    emit(res, a.out)


if __name__ == "__main__":
    main()
