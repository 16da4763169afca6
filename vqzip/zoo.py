"""Installed models and the quality ladder (operating points) that `-q` picks from.

A model is a folder of models/ holding tokenizer*.safetensors, prior.safetensors and card.md.
models/points.json maps quality levels to (model, scale): encoding at reduced resolution gives
the lowest rates from the same weights.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache
from pathlib import Path

from .errors import ModelError


def models_dir() -> Path:
    return Path(os.environ.get("VQZIP_MODELS", Path(__file__).resolve().parents[1] / "models"))


@dataclass
class Model:
    name: str
    path: Path

    @cached_property
    def weights_hash(self) -> bytes:
        from .weights import weights_hash
        return weights_hash(self.path / "tokenizer.safetensors", self.path / "prior.safetensors")

    @cached_property
    def tokenizer(self):
        from .tokenizer import load_tokenizer
        return load_tokenizer(self.path / "tokenizer.safetensors")

    @cached_property
    def prior(self):
        from .exact import ExactPrior
        from .prior import load_prior
        return ExactPrior(load_prior(self.path / "prior.safetensors"))

    @cached_property
    def card(self) -> dict:
        """Measured numbers from models/NAME/metrics.json, if present."""
        f = self.path / "metrics.json"
        return json.loads(f.read_text()) if f.exists() else {}


def list_models() -> list[str]:
    d = models_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if (p / "prior.safetensors").exists()
                  and ((p / "tokenizer.safetensors").exists() or (p / "tokenizer-1.safetensors").exists()))


@lru_cache(maxsize=8)
def _load(name: str, path: str) -> Model:
    return Model(name, Path(path))


def get_model(name: str) -> Model:
    if name not in list_models():
        have = ", ".join(list_models()) or "none"
        raise ModelError(f"model {name!r} is not installed (installed: {have})")
    return _load(name, str(models_dir() / name))


@dataclass(frozen=True)
class Point:
    quality: int
    model: str
    scale: Fraction

    def as_dict(self) -> dict:
        return {"quality": self.quality, "model": self.model, "scale": str(self.scale)}


def list_points() -> list[Point]:
    f = models_dir() / "points.json"
    if not f.exists():
        return [Point(i + 1, m, Fraction(1)) for i, m in enumerate(list_models())]
    spec = json.loads(f.read_text())
    return [Point(p["quality"], p["model"], Fraction(p["scale"])) for p in spec["points"]]


def default_quality() -> int:
    f = models_dir() / "points.json"
    if f.exists():
        return json.loads(f.read_text())["default"]
    return list_points()[0].quality


def resolve(model: str | None = None, quality: int | None = None) -> Point:
    """The operating point for `-q`/`--model`: a model alone means full resolution."""
    if model is not None and quality is None:
        get_model(model)
        return Point(0, model, Fraction(1))
    q = default_quality() if quality is None else quality
    for p in list_points():
        if p.quality == q and (model is None or p.model == model):
            return p
    qs = ", ".join(str(p.quality) for p in list_points())
    raise ModelError(f"no operating point with quality {q}" + (f" for model {model}" if model else "") + f" (have: {qs})")
