"""Where the float networks run: CUDA when present and asked for, else the CPU, and in what precision;
and where the lossless stage's integers live: on the host (`host`)."""
from __future__ import annotations

import os
import platform
from functools import lru_cache

import numpy as np
import torch

from .errors import InputError


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r} (use auto, cpu or cuda)")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but CUDA is not available")
    return torch.device(device)


def host(x) -> np.ndarray:
    """The lossless stage's boundary. The range coder and everything that feeds it (entropy.py,
    refine_entropy.py, temporal.py) work on host numpy arrays; the integer tables, symbols,
    contexts and token grids that reach it from the networks may sit on any device (a module
    moved to CUDA takes its tables along). Each of the stage's entry functions passes its
    arguments through here once, and works on host arrays from then on; callers hand over
    tensors as they are. A CUDA tensor's .numpy() raises, so a read that skipped this boundary
    would fail on a GPU alone (tests/test_devices.py stands in for one on the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def tokenizer_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware runs it natively, else fp32. On the 2-core AVX-512 BF16 development
    CPU it halves the tokenizer's time, for 0.005 dB of PSNR and 0.04 % more bits on Kodak (the
    coded tokens stay exact: only the convolutions round differently). VQZIP_PRECISION=fp32 turns
    it off, e.g. for pixels within a level of another machine's fp32 decode."""
    if os.environ.get("VQZIP_PRECISION", "auto") == "fp32":
        return torch.float32
    return torch.bfloat16 if _native_bf16(device.type) else torch.float32


def autocast(device: torch.device):
    """Autocast to tokenizer_dtype: how the tokenizer runs, and how both trainers train (bf16 about
    halves a CPU training step here too). Quantizers and losses that need fp32 turn it off locally."""
    dtype = tokenizer_dtype(device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def tokenizer_precision(device: torch.device) -> str:
    """tokenizer_dtype's name ("bfloat16" or "float32"), as benchmarks record it."""
    return str(tokenizer_dtype(device)).removeprefix("torch.")


def cpu_name() -> str:
    """The host CPU's model name from /proc/cpuinfo, as results record the machine; where that
    cannot be read, platform.processor(), else the architecture (platform.processor() is empty on
    Linux, so it cannot come first)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=None)
def _native_bf16(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # oneDNN runs bf16 natively only with AVX-512 BF16 / AMX; elsewhere it emulates it, slower than fp32
        return kind == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
