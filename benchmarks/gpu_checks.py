"""Checks that need a GPU, run at the end of models/recipes/gpu_run.sh:

1. cross-device exactness: the exact prior's frequency tables for a few token grids, hashed, on CUDA
   and on the CPU of the same machine; the tokens and hashes are saved so that any other machine can
   recompute them (benchmarks/verify_gpu_hashes.py does; the recorded files are for priors that
   shipped before stop 12, so a test against the shipped prior waits for the next GPU run);
2. tokenizer throughput on 720p frames (encode and decode, fps) in the codec's precision and in
   fp32, with the device name.

Without CUDA the hashes are made on the host alone (hashes_cuda and cuda_equals_cpu are null).

usage: python benchmarks/gpu_checks.py MODEL_DIR DATA OUT.json [FRAMES]
FRAMES: 720p frames a throughput round (8; fewer keeps a CPU test short).
"""
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vqzip.devices import tokenizer_precision  # noqa: E402
from vqzip.coding.exact import ExactPrior  # noqa: E402
from vqzip.nn.prior import load_prior  # noqa: E402
from vqzip.nn.tokenizer import load_tokenizer  # noqa: E402
from vqzip.train.data import CropSampler  # noqa: E402


def table_hash(prior: ExactPrior, tokens: np.ndarray) -> str:
    """sha256 over every frequency table the schedule produces while coding `tokens`."""
    h = hashlib.sha256()
    flat = tokens.reshape(-1)
    lo_bits = prior.cfg.lo_bits

    def code(part, pos, freqs):
        h.update(np.ascontiguousarray(freqs, dtype=np.int64).tobytes())
        return (flat[pos] >> lo_bits) if part == "hi" else (flat[pos] & ((1 << lo_bits) - 1))

    out = prior.run(*tokens.shape, code)
    assert (out.numpy() == tokens).all()
    return h.hexdigest()


def main(model_dir: Path, data: Path, out: Path, n_frames: int = 8):
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = load_tokenizer(model_dir / "tokenizer.safetensors").to(dev)
    fprior = load_prior(model_dir / "prior.safetensors")
    rng = np.random.default_rng(0)
    grids = [rng.integers(0, 2 ** tok.cfg.token_bits, (32, 48))]
    x = CropSampler(data, 512, seed=1, limit=4).batch(2).to(dev)
    grids += [t.cpu().numpy() for t in tok.encode(x)]
    res = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "grids": []}
    res |= {"hashes_cuda": None, "cuda_equals_cpu": None}
    for name, d in [("cuda", dev)] * (dev.type == "cuda") + [("cpu", torch.device("cpu"))]:
        ex = ExactPrior(fprior, d)
        t0 = time.time()
        hashes = [table_hash(ex, g.astype(np.int64)) for g in grids]
        res[f"hashes_{name}"] = hashes
        res[f"seconds_{name}"] = round(time.time() - t0, 2)
    res["grids"] = [g.tolist() for g in grids]
    if dev.type == "cuda":
        res["cuda_equals_cpu"] = res["hashes_cuda"] == res["hashes_cpu"]
    # tokenizer throughput on 720p frames
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    frames = torch.rand(n_frames, 3, 720, 1280, device=dev) * 2 - 1
    pad = torch.nn.functional.pad(frames, (0, 0, 0, 16 - 720 % 16 if 720 % 16 else 0), mode="replicate")
    # in the codec's own precision (devices.tokenizer_dtype: bf16 where native) and in fp32
    asked = os.environ.get("VQZIP_PRECISION")
    for precision in ("auto", "fp32"):
        os.environ["VQZIP_PRECISION"] = precision
        for _ in range(4):  # first rounds warm up kernels
            sync()
            t0 = time.time()
            t = tok.encode(pad)
            sync()
            t1 = time.time()
            tok.decode(t)
            sync()
            t2 = time.time()
        res[f"tokenizer_720p_{tokenizer_precision(dev)}"] = {"encode_fps": round(n_frames / (t1 - t0), 1),
                                                             "decode_fps": round(n_frames / (t2 - t1), 1)}
    if asked is None:
        del os.environ["VQZIP_PRECISION"]
    else:
        os.environ["VQZIP_PRECISION"] = asked
    out.write_text(json.dumps(res))
    print({k: v for k, v in res.items() if k != "grids"})


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), *map(int, sys.argv[4:5]))
