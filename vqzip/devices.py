"""Where the float networks run: CUDA when present and asked for, else the CPU."""
from __future__ import annotations

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
