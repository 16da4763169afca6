"""Shipped weights: safetensors (never pickles), fp16, config in the metadata, split into shards
so that no file passes 16 MiB."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file, load_file, safe_open

from .errors import InputError

SHARD_BYTES = 15 * 2**20  # shipped files stay under 16 MiB


def export_weights(path: Path, module: torch.nn.Module, meta: dict, dtype=torch.float16) -> list[Path]:
    """Shipped weights: fp16 safetensors, config in the metadata, split into NAME-K.safetensors
    shards (each carrying the metadata) when one file would pass 15 MiB."""
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous().cpu()
               for k, v in module.state_dict().items()}
    shards: list[dict] = [{}]
    size = 0
    for k, v in tensors.items():
        nbytes = v.numel() * v.element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += nbytes
    path = Path(path)
    for old in shard_paths(path):
        old.unlink()
    names = [path] if len(shards) == 1 else [path.with_name(f"{path.stem}-{i + 1}{path.suffix}") for i in range(len(shards))]
    md = {k: json.dumps(v) for k, v in meta.items()}
    md["shards"] = str(len(shards))
    for name, shard in zip(names, shards):
        tmp = Path(str(name) + ".tmp")
        save_file(shard, str(tmp), metadata=md)
        _sort_header(tmp)
        os.replace(tmp, name)
    return names


def _sort_header(path: Path):
    """Rewrites a safetensors file's JSON header with its keys sorted. The library writes the
    metadata in a random order each time, so the same weights exported twice would get two
    weights hashes (which files use to name their layer); sorted, they get one. Reordering keys
    keeps the header's length, so the tensors' bytes stay where they are."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        text = json.dumps({k: header[k] for k in sorted(header)} | (
            {"__metadata__": dict(sorted(header["__metadata__"].items()))} if "__metadata__" in header else {}),
            separators=(",", ":")).encode()
        if len(text) > n:  # not the compact JSON this was written for: leave the file as it is
            return
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def shard_paths(path: Path) -> list[Path]:
    """The files that hold NAME.safetensors: itself, or NAME-1.safetensors, NAME-2..."""
    path = Path(path)
    if path.exists():
        return [path]
    out, i = [], 1
    while (p := path.with_name(f"{path.stem}-{i}{path.suffix}")).exists():
        out.append(p)
        i += 1
    return out


def load_weights(path: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of shipped weights, gathering shards; metadata values are JSON-decoded."""
    files = shard_paths(path)
    if not files:
        raise InputError(f"no weights at {path}")
    tensors: dict = {}
    md: dict = {}
    for f in files:
        try:
            tensors.update(load_file(str(f)))
            with safe_open(str(f), "pt") as h:
                md = h.metadata() or {}
        except SafetensorError as e:
            raise InputError(f"{f}: not a safetensors weights file ({e})") from None
    try:
        if int(md.get("shards", "1")) != len(files):
            raise InputError(f"{path}: {md.get('shards')} shards expected, {len(files)} found")
        return tensors, {k: json.loads(v) for k, v in md.items() if k != "shards"}
    except ValueError:  # metadata that vqzip did not write
        raise InputError(f"{path}: not vqzip weights (unreadable metadata)") from None


def load_module(path: Path, make, what: str) -> torch.nn.Module:
    """make(config) loaded with the weights at `path` (fp16 on disk, fp32 in memory). A file that
    holds other weights (a prior given as a tokenizer, say) is the user's error, not a bug."""
    tensors, meta = load_weights(path)
    try:
        model = make(meta["config"])
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        first = (str(e).splitlines() or [""])[0][:80]
        raise InputError(f"{path}: not {what} weights ({type(e).__name__}: {first})") from None
    return model.eval()


def weights_hash(*paths: Path) -> bytes:
    """First 8 bytes of the sha256 over the weight files' bytes, in order (shards in shard order)."""
    h = hashlib.sha256()
    for path in paths:
        for f in shard_paths(path):
            h.update(f.read_bytes())
    return h.digest()[:8]
