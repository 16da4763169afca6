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
    """A module's `derived_buffers` (names of buffers its constructor makes from its config alone,
    such as the refinement's grid of integer tables) are left out: the same module rebuilds them,
    and a GPU lease's checkpoint must stay under 16 MiB."""
    tensors = {}
    for name, m in modules.items():
        skip = set(getattr(m, "derived_buffers", ()))
        for k, v in m.state_dict().items():
            if k not in skip:
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
        missing, unexpected = m.load_state_dict({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)}, strict=False)
        if unexpected or set(missing) - set(getattr(m, "derived_buffers", ())):
            raise InputError(f"{path} does not hold this run's {name} (missing {missing[:3]}, unexpected {unexpected[:3]})")
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


def check_resumable(path: Path, config: dict, what: str, complete=None):
    """`complete` (a saved config -> the full config) fills in fields added to a config after the
    run began, at their defaults, so that such a run still resumes."""
    saved = read_meta(path).get("config")
    if complete is not None and isinstance(saved, dict):
        try:
            saved = complete(saved)
        except (TypeError, ValueError):
            pass  # not this kind of config: the comparison below says so
    as_json = lambda c: json.loads(json.dumps(c))
    if as_json(saved) != as_json(config):
        raise InputError(f"{path} was made with another {what} config; use a fresh run folder")


def read_meta(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["meta"])
