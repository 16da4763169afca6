"""How much the temporal prior saves: a clip coded as a .vqz video against the same frames coded as
independent .vqz images by the same model.

Both sides code the *same token grids* (the video's own, decoded back from its file), so the
reconstructions are identical and only the lossless stage differs. The independent side is what
`vqzip encode` writes for each frame as an image: header, key-frame payload and CRC.

    python benchmarks/video_vs_images.py ../shared/data/video/vtest.avi --frames 100 \
        --out benchmarks/results/video/vtest_100.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import codec, video, video_io  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402
from vqzip.zoo import resolve  # noqa: E402
from report import emit  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("-q", "--quality", type=int, default=None)
    ap.add_argument("--gop", type=int, default=video.GOP)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()

    point = resolve(None, a.quality)
    v = video_io.probe(a.clip)
    t0 = time.perf_counter()
    data = video.encode_frames(video_io.read_frames(a.clip, a.frames), v.width, v.height, v.fps, point,
                               "cpu", a.gop)
    enc_s = time.perf_counter() - t0
    vi = video.info(data)
    t0 = time.perf_counter()
    image_bytes = [len(codec.pack_tokens(t, point, v.width, v.height))
                   for _, t in video.decode_tokens_of(video.parse(data))]
    images_s = time.perf_counter() - t0
    res = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{cpu_name()}, {torch.get_num_threads()} torch threads",
        "clip": str(a.clip), "frames": vi["frames"], "size": f"{v.width}x{v.height}", "fps": vi["fps"],
        "quality": point.quality, "scale": str(point.scale), "grid": f"{vi['grid_h']}x{vi['grid_w']}", "gop": a.gop,
        "video_bytes": vi["file_bytes"], "independent_images_bytes": sum(image_bytes),
        "video_over_images": vi["file_bytes"] / sum(image_bytes),
        "key_frames": vi["key_frames"], "predicted_frames": vi["predicted_frames"],
        "bits_per_key_frame": vi["bits_per_key_frame"], "bits_per_predicted_frame": vi["bits_per_predicted_frame"],
        "bits_per_independent_frame": 8 * sum(image_bytes) / len(image_bytes),
        "video_kbps": vi["kbps"], "video_encode_s": enc_s, "images_lossless_stage_s": images_s,
    }
    emit(res, a.out)


if __name__ == "__main__":
    main()
