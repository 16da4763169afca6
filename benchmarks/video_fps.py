"""Frames per second of video encode and decode: the tokenizer and the lossless stage, from frames
in memory to .vqz bytes and back, without reading or writing a video container (PyAV), so it runs
on a machine with only torch, numpy, pillow and constriction.

The frames come from a folder of images (for the committed GPU figure: the first 32 frames of
../shared/data/video/bigbuckbunny.mp4, 1280x720, saved as JPEG). Each pass runs twice and the
second is timed, so CUDA start-up and weight loading are not counted.

usage: python benchmarks/video_fps.py FRAMES_DIR OUT.json [--quality Q] [--device auto|cpu|cuda]
"""
import argparse
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import video, zoo  # noqa: E402
from vqzip.devices import pick_device  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit  # noqa: E402


def timed(fn, dev):
    fn()  # warm-up: CUDA context, kernels, weights
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("frames")
    ap.add_argument("out")
    ap.add_argument("--quality", type=int, default=None)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(a.frames).iterdir())]
    h, w = frames[0].shape[:2]
    point = zoo.resolve(quality=a.quality)
    dev = pick_device(a.device)
    data, t_enc = timed(lambda: video.encode_frames(iter(frames), w, h, Fraction(25), point, device=a.device), dev)
    decoded, t_dec = timed(lambda: list(video.decode_frames(video.parse(data), device=a.device)), dev)
    assert len(decoded) == len(frames)
    res = {
        "how": {"command": " ".join(sys.argv), "device": torch.cuda.get_device_name(dev) if dev.type == "cuda"
                else platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                "torch": torch.__version__, "frames": len(frames), "size": [w, h],
                "quality": point.quality, "model": point.model, "scale": str(point.scale)},
        "encode_fps": round(len(frames) / t_enc, 2), "decode_fps": round(len(frames) / t_dec, 2),
        "bytes": len(data), "kbps_at_25fps": round(len(data) * 8 * 25 / len(frames) / 1000, 1),
        "info": {k: v for k, v in video.info(data).items() if k in ("key_frames", "predicted_frames")},
    }
    emit(res, Path(a.out))


if __name__ == "__main__":
    main()
