"""Frames per second of video encode and decode: the tokenizer and the lossless stage, from frames
in memory to .vqz bytes and back, without reading or writing a video container (PyAV), so it runs
on a machine with only torch, numpy, pillow and constriction.

The frames come from a folder of images (for the committed GPU figure: the first 32 frames of
../shared/data/video/bigbuckbunny.mp4, 1280x720, saved as JPEG). Each pass runs twice and the
second is timed, so CUDA start-up and weight loading are not counted.

The stages are then timed alone on the same frames (tokenizer, the key frame's image prior, the
predicted frames' temporal coder), so a slow run says where its time went. The key frame's prior
runs where the codec runs it (Model.exact_prior: on CUDA when the device is CUDA); with CUDA it is
also timed on the host, and its bytes compared with the GPU's.

usage: python benchmarks/video_fps.py FRAMES_DIR OUT.json [--quality Q] [--device auto|cpu|cuda]
                                      [--max-frames N]
"""
import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip import video, zoo  # noqa: E402
from vqzip.devices import cpu_name  # noqa: E402
from vqzip.codec import scaled_size  # noqa: E402
from vqzip.devices import pick_device, tokenizer_precision  # noqa: E402
from vqzip.coding.entropy import decode_tokens, encode_tokens  # noqa: E402
from vqzip.coding.temporal import TemporalState, encode_predicted  # noqa: E402
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
    ap.add_argument("--max-frames", type=int, default=None)
    a = ap.parse_args()
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(a.frames).iterdir())][:a.max_frames]
    h, w = frames[0].shape[:2]
    point = zoo.resolve(quality=a.quality, kind="video")  # the video ladder, with its decisions
    dev = pick_device(a.device)
    data, t_enc = timed(lambda: video.encode_frames(iter(frames), w, h, Fraction(25), point, device=a.device), dev)
    decoded, t_dec = timed(lambda: list(video.decode_frames(video.parse(data), device=a.device)), dev)
    assert len(decoded) == len(frames)
    m = zoo.get_model(point.model)
    tok = m.tokenizer.to(dev)
    grids, t_tok = timed(lambda: [t for t, _, _ in video._tokenize(frames, tok, scaled_size(w, h, point.scale), dev,
                                                                   decoded=False)], dev)
    prior = m.exact_prior(dev)  # the codec's
    key, t_key_enc = timed(lambda: encode_tokens(prior, grids[0]), dev)
    _, t_key_dec = timed(lambda: decode_tokens(prior, *grids[0].shape, key), dev)

    def predicted():
        state = TemporalState(m.prior.cfg.token_bits)
        return [encode_predicted(a, b, state) for a, b in zip(grids, grids[1:])]
    _, t_pred = timed(predicted, dev)
    stages = {"tokenize_all_frames_with_prep": round(t_tok, 3), "key_frame_prior_encode": round(t_key_enc, 3),
              "key_frame_prior_decode": round(t_key_dec, 3), "predicted_frames_encode_all": round(t_pred, 3),
              "key_grid": list(grids[0].shape)}
    if dev.type == "cuda":  # the codec runs the prior on the GPU: how much faster than the host, with the same bytes?
        key_cpu, t = timed(lambda: encode_tokens(m.prior, grids[0]), dev)
        back, t_back = timed(lambda: decode_tokens(m.prior, *grids[0].shape, key), dev)
        stages |= {"key_frame_prior_encode_on_cpu": round(t, 3), "key_frame_prior_decode_on_cpu": round(t_back, 3),
                   "gpu_prior_bytes_equal_cpu": key_cpu == key and bool((back == grids[0]).all())}
    res = {
        "how": {"command": " ".join(sys.argv), "device": torch.cuda.get_device_name(dev) if dev.type == "cuda"
                else cpu_name(), "torch_threads": torch.get_num_threads(),
                "torch": torch.__version__, "frames": len(frames), "size": [w, h],
                "quality": point.quality, "model": point.model, "scale": str(point.scale),
                "tokenizer_dtype": tokenizer_precision(dev)},
        "encode_fps": round(len(frames) / t_enc, 2), "decode_fps": round(len(frames) / t_dec, 2),
        "bytes": len(data), "kbps_at_25fps": round(len(data) * 8 * 25 / len(frames) / 1000, 1),
        "info": {k: v for k, v in video.info(data).items() if k in ("key_frames", "predicted_frames")},
        "stages_alone_s": stages,
    }
    emit(res, Path(a.out))


if __name__ == "__main__":
    main()
