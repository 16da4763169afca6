"""Checkpoints as safetensors (never pickles): module and optimizer states flattened to tensors,
with the scalar bookkeeping (step, elapsed time, config) in the file's JSON metadata."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import InputError
from safetensors.torch import save_file, load_file, safe_open


def save_checkpoint(path: Path, modules: dict, optimizers: dict, meta: dict):
    tensors = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            tensors[f"{name}/{k}"] = v.detach().contiguous().cpu()
    for name, opt in optimizers.items():
        for pid, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                tensors[f"opt.{name}/{pid}/{k}"] = torch.as_tensor(v).detach().contiguous().cpu()
    tmp = Path(str(path) + ".tmp")
    save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})
    os.replace(tmp, path)


def load_checkpoint(path: Path, modules: dict, optimizers: dict) -> dict:
    tensors = load_file(str(path))
    for name, m in modules.items():
        pre = f"{name}/"
        m.load_state_dict({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        pre = f"opt.{name}/"
        state: dict = {}
        for k, v in tensors.items():
            if k.startswith(pre):
                pid, key = k[len(pre):].split("/", 1)
                state.setdefault(int(pid), {})[key] = v
        sd["state"] = state
        opt.load_state_dict(sd)
    return read_meta(path)


def check_resumable(path: Path, config: dict, what: str):
    if read_meta(path).get("config") != json.loads(json.dumps(config)):
        raise InputError(f"{path} was made with another {what} config; use a fresh run folder")


def read_meta(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["meta"])
