"""Encode and decode speed of a refined (format 4) video: frames in memory to .vqz bytes and back,
after a warm-up (weights loaded, one short encode), with the machine's load recorded, since on a
shared CPU the load is most of the story. Also the time of each stage of a predicted frame
(motion search, inter encoder, skip decisions, entropy coding, reconstruction) on a few frames.

With --cli, the first N frames are cut losslessly (FFV1, .mkv, no audio) and `vqzip encode` and
`vqzip decode` (to FFV1 .mkv) are timed as whole commands: start-up, weights, reading and writing
the files included, which is what a user waits for. Each command runs `--rounds` times and the
fastest counts (the slower ones are recorded: on a shared machine they measure the neighbours).

usage: python benchmarks/video_speed.py CLIP OUT.json [--frames N] [--quality Q] [--threads T] [--cli [--rounds R]]
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import video, video_io, zoo  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit  # noqa: E402


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--quality", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 in process; with --cli, the command's own default, every core)")
    ap.add_argument("--cli", action="store_true", help="time vqzip encode and decode as whole commands")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    if a.cli:
        return cli(a)
    a.threads = a.threads or 1
    torch.set_num_threads(a.threads)
    frames = list(video_io.read_frames(a.clip, a.frames))
    v = video_io.probe(a.clip)
    point = zoo.resolve(None, a.quality, "video")
    video.encode_frames(iter(frames[:2]), v.width, v.height, v.fps, point, "cpu")  # warm-up
    load_before = load()
    t = time.perf_counter()
    data = video.encode_frames(iter(frames), v.width, v.height, v.fps, point, "cpu")
    enc = time.perf_counter() - t
    t = time.perf_counter()
    out = list(video.decode_frames(video.parse(data), "cpu"))
    dec = time.perf_counter() - t
    psnr = float(np.mean([10 * np.log10(255 ** 2 / np.mean((x.astype(float) - y) ** 2)) for x, y in zip(frames, out)]))
    info = video.info(data)
    result = {
        "how": {"command": "python " + " ".join(sys.argv), "machine": platform.machine(), "cpus": os.cpu_count(),
                "torch_threads": a.threads, "torch": torch.__version__, "load_before": load_before,
                "load_after": load(), "point": point.as_dict() | {"lambda": point.lam}},
        "frames": len(frames), "size": [v.width, v.height],
        "encode_s": round(enc, 2), "encode_fps": round(len(frames) / enc, 3),
        "decode_s": round(dec, 2), "decode_fps": round(len(frames) / dec, 3),
        "kbps": round(info["kbps"], 2), "psnr": round(psnr, 3), "key_frames": info["key_frames"],
        "bits_per_key_frame": info["bits_per_key_frame"], "bits_per_predicted_frame": info["bits_per_predicted_frame"],
    }
    emit(result, Path(a.out))


def cli(a):
    """Whole commands on the first a.frames frames, cut losslessly into a temporary .mkv."""
    v = video_io.probe(a.clip)
    env = os.environ | ({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {})
    q = ["-q", str(a.quality)] if a.quality else []
    with tempfile.TemporaryDirectory() as tmp:
        cut, vqz, back = Path(tmp, "cut.mkv"), Path(tmp, "cut.vqz"), Path(tmp, "back.mkv")
        frames = list(video_io.read_frames(a.clip, a.frames))
        with video_io.VideoWriter(cut, v.width, v.height, v.fps) as w:
            for f in frames:
                w.write(f)
        commands = {"encode": ["vqzip", "encode", str(cut), "-o", str(vqz), "--force", *q],
                    "decode": ["vqzip", "decode", str(vqz), "-o", str(back), "--force"]}
        times = {k: [] for k in commands}
        load_before = load()
        for _ in range(a.rounds):
            for k, cmd in commands.items():  # interleaved: encode, decode, encode, ...
                t = time.perf_counter()
                subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
                times[k].append(round(time.perf_counter() - t, 2))
        out = list(video_io.read_frames(back))
        psnr = float(np.mean([10 * np.log10(255 ** 2 / np.mean((x.astype(float) - y) ** 2)) for x, y in zip(frames, out)]))
        info = video.info(vqz.read_bytes())
    result = {
        "how": {"command": "python " + " ".join(sys.argv), "commands": {k: " ".join(c[:2]) + " CUT" for k, c in commands.items()},
                "machine": platform.machine(), "processor": cpu_name(), "cpus": os.cpu_count(),
                "OMP_NUM_THREADS": a.threads or "unset (every core)", "torch": torch.__version__, "load_before": load_before, "load_after": load()},
        "frames": len(frames), "size": [v.width, v.height], "times_s": times,
        "encode_s": min(times["encode"]), "encode_fps": round(len(frames) / min(times["encode"]), 3),
        "decode_s": min(times["decode"]), "decode_fps": round(len(frames) / min(times["decode"]), 3),
        "kbps": round(info["kbps"], 2), "psnr": round(psnr, 3), "key_frames": info["key_frames"],
    }
    emit(result, Path(a.out))


if __name__ == "__main__":
    main()
