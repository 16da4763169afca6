"""Installed models and the quality ladder (operating points) that `-q` picks from.

A model is a folder of models/ holding tokenizer*.safetensors, prior.safetensors and card.md.
models/points.json maps quality levels to (model, scale): encoding at reduced resolution gives
the lowest rates from the same weights.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
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
        from .nn.tokenizer import load_tokenizer
        return load_tokenizer(self.path / "tokenizer.safetensors").requires_grad_(False)

    @cached_property
    def float_prior(self):
        """The trained float prior: the encoder-side search's estimate of rate (coding uses `prior`)."""
        from .nn.prior import load_prior
        return load_prior(self.path / "prior.safetensors").requires_grad_(False)

    @cached_property
    def prior(self):
        """The exact prior on the host: the reference, and what every CPU coder uses."""
        from .coding.exact import ExactPrior
        return ExactPrior(self.float_prior)

    def exact_prior(self, device=None):
        """The exact prior for a codec running on `device`: on a CUDA device, a twin on that device
        (the same tables, hence the same bytes, 2.4x faster on an H200); else the host's."""
        if device is None or device.type != "cuda":
            return self.prior
        import torch
        if device.index is None:  # "cuda" (pick_device) and "cuda:0" (a tensor's) are one twin
            device = torch.device("cuda", torch.cuda.current_device())
        if str(device) not in self._device_priors:
            from .coding.exact import ExactPrior
            self._device_priors[str(device)] = ExactPrior(self.float_prior, device)
        return self._device_priors[str(device)]

    @cached_property
    def _device_priors(self) -> dict:
        return {}

    @property
    def refiner(self):
        """The refinement layer (refine.py) that encodes the ladder's points with `"refine"`."""
        return self.refine_coder().ref

    @property
    def refine_path(self) -> Path:
        return self.path / "refine.safetensors"

    @property
    def refine_hash(self) -> bytes:
        """The encoding layer's weights hash (layer_hash's, as bytes)."""
        return bytes.fromhex(self.layer_hash())

    @cached_property
    def refine_layers(self) -> dict[str, Path]:
        """Every installed refinement layer by its weights' hash (hex): refine.safetensors encodes,
        refine_NAME.safetensors are other current layers that points may name (`Point.layer`), and
        the earlier ones, refine_vN.safetensors, are kept so that their files still decode."""
        from .weights import weights_hash
        paths = [self.refine_path] if self.refine_path.exists() else []
        paths += sorted(p for p in self.path.glob("refine_*.safetensors") if re.fullmatch(r"refine_[a-z0-9]+\.safetensors", p.name))
        return {weights_hash(p).hex(): p for p in paths}

    def layer_path(self, layer: str | None = None) -> Path:
        """The file of the refinement layer a point names: None is refine.safetensors."""
        if layer is not None and not re.fullmatch(r"[a-z0-9]+", layer):
            raise ModelError(f"bad refinement layer name {layer!r} (lower-case letters and digits)")
        return self.refine_path if layer is None else self.path / f"refine_{layer}.safetensors"

    def layer_hash(self, layer: str | None = None) -> str:
        """The weights hash (hex) of the refinement layer a point names, as its files record it
        (hashed once: a choice among variants asks for it a dozen times an image)."""
        if layer not in self._layer_hashes:
            path = self.layer_path(layer)
            if not path.exists():
                raise ModelError(f"model {self.name!r} has no refinement layer " +
                                 (f"{layer!r} (no {path.name})" if layer else f"(no {path.name})"))
            from .weights import weights_hash
            self._layer_hashes[layer] = weights_hash(path).hex()
        return self._layer_hashes[layer]

    @cached_property
    def _layer_hashes(self) -> dict:
        return {}

    def refine_coder(self, weights: str | None = None):
        """The refinement layer whose weights hash (hex) is `weights` (default: the encoding one),
        with its lossless stage (refine_entropy.RefineCoder)."""
        if not self.refine_layers:
            raise ModelError(f"model {self.name!r} has no refinement layer (no {self.refine_path.name})")
        weights = weights or self.layer_hash()
        if weights not in self.refine_layers:
            raise ModelError(f"this file's refinement layer (weights {weights}) is not installed for model {self.name!r} "
                             f"(installed: {', '.join(self.refine_layers)}); --layers 1 decodes its base layer")
        return self._coder(self.refine_layers[weights], weights)

    def _coder(self, path: Path, weights: str):
        """The layer at `path` with its RefineCoder, loaded once: refinement and inter layers alike
        are kept by their weights' hash."""
        if weights not in self._refine_coders:
            from .nn.refine import load_refiner
            from .coding.refine_entropy import RefineCoder
            self._refine_coders[weights] = RefineCoder(load_refiner(path).requires_grad_(False))
        return self._refine_coders[weights]

    @cached_property
    def _refine_coders(self) -> dict:
        return {}

    @cached_property
    def inter_layers(self) -> dict[str, Path]:
        """Every installed inter refinement layer (inter.py: video frames predicted from the one
        before) by its weights' hash (hex), oldest first: inter_vN.safetensors, the highest N
        encoding, the others kept so that their files still decode."""
        from .weights import weights_hash
        paths = sorted((p for p in self.path.glob("inter_v*.safetensors") if re.fullmatch(r"inter_v\d+\.safetensors", p.name)),
                       key=lambda p: int(p.stem[len("inter_v"):]))
        return {weights_hash(p).hex(): p for p in paths}

    def inter_coder(self, weights: str | None = None):
        """The inter layer whose weights hash (hex) is `weights` (default: the encoding one, the
        newest), with its lossless stage: a RefineCoder, as the inter layer is a refinement layer."""
        if not self.inter_layers:
            raise ModelError(f"model {self.name!r} has no inter layer for video (no inter_vN.safetensors)")
        weights = weights or list(self.inter_layers)[-1]
        if weights not in self.inter_layers:
            raise ModelError(f"this video's inter layer (weights {weights}) is not installed for model {self.name!r} "
                             f"(installed: {', '.join(self.inter_layers)})")
        return self._coder(self.inter_layers[weights], weights)

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
    lam: float | None = None  # video: MSE per bit of the keep-or-change decisions (decisions.py); None: none
    # the base tokens' search's price of a bit, in squared 0-255 levels (search.py); None: the point's
    # base tokens are not searched (on the image ladder, whose q1 it made worse per bit, and refined
    # points, whose effort goes to the refinement)
    search_lambda: float | None = None
    refine: int | None = None  # images: the refinement layer's rate level (refine.py); None: the base layer alone
    # videos with `refine` (key frames refined): the inter layer's rate level for predicted frames
    # (inter.py), whose skip decisions price a bit at `lam`
    inter: int | None = None
    # images: other refined points (scale, rate level, layer) the encoder may code this quality at
    # instead, whichever costs least for the image at `choice_lambda` (choice.py); () keeps to this one
    alternatives: tuple[tuple[Fraction, int, str | None], ...] = ()
    choice_lambda: float | None = None
    # images: the refinement layer, refine_LAYER.safetensors beside the model; None: refine.safetensors
    layer: str | None = None

    @property
    def key(self) -> str:
        """How metrics.json names the point: its scale, and the refinement's rate level if any."""
        return str(self.scale) + (f"+refine{self.refine}" if self.refine is not None else "")

    def as_dict(self) -> dict:
        out = {"quality": self.quality, "model": self.model, "scale": str(self.scale)}
        return out | ({"refine": self.refine} if self.refine is not None else {}) | \
            ({"inter": self.inter} if self.inter is not None else {}) | \
            ({"layer": self.layer} if self.layer is not None else {}) | \
            ({"alternatives": [point_spec(*a) for a in self.alternatives]} if self.alternatives else {})

    @property
    def spec(self) -> str:
        """The point as point_spec writes it."""
        return point_spec(self.scale, self.refine, self.layer)

    def variants(self) -> list["Point"]:
        """The points the encoder may code this quality at: this one first, then its alternatives."""
        return [replace(self, alternatives=(), choice_lambda=None)] + [
            replace(self, scale=s, refine=r, layer=layer, alternatives=(), choice_lambda=None)
            for s, r, layer in self.alternatives]


def point_spec(scale: Fraction, refine: int | None, layer: str | None = None) -> str:
    """A point as the benchmarks and points.json write it: "3/4+r1" (scale 3/4, rate level 1), "3/4",
    "1+r0@perceptual" (rate level 0 of the layer refine_perceptual.safetensors)."""
    return str(scale) + (f"+r{refine}" if refine is not None else "") + (f"@{layer}" if layer else "")


def parse_point_spec(spec: str) -> tuple[Fraction, int | None, str | None]:
    """The inverse of point_spec: (scale, rate level, layer)."""
    spec, _, layer = spec.partition("@")
    scale, _, rate = spec.partition("+r")
    if layer and not re.fullmatch(r"[a-z0-9]+", layer):
        raise ValueError(f"bad layer name {layer!r}")
    return Fraction(scale), (int(rate) if rate else None), (layer or None)


def list_points(kind: str = "image") -> list[Point]:
    """The quality ladder of images, or of videos (kind "video"): points.json's "video" list, whose
    points are refined (key frames on the image ladder's refinement, an inter layer for the rest,
    video_layers.py) and carry the lambda of the skip decisions; without one, the images'. Kind
    "video_tokens" is the earlier video ladder (format 2: base tokens at x3/2-x2, the
    keep-or-change decisions' lambda), kept for comparisons and the base-token path's tests."""
    f = models_dir() / "points.json"
    if not f.exists():
        return [Point(i + 1, m, Fraction(1)) for i, m in enumerate(list_models())]
    spec = json.loads(f.read_text())
    rows = spec.get(kind, spec["points"]) if kind in ("video", "video_tokens") else spec["points"]
    return [point_from_row(p) for p in rows]


def point_from_row(p: dict) -> Point:
    """The Point of one points.json row (its alternatives checked)."""
    return Point(p["quality"], p["model"], Fraction(p["scale"]), p.get("lambda"), p.get("search_lambda"),
                 p.get("refine"), p.get("inter"), _alternatives(p), p.get("choice_lambda"), p.get("layer"))


def _alternatives(p: dict) -> tuple[tuple[Fraction, int, str | None], ...]:
    """A points.json row's alternatives, checked: refined points ("3/4+r1", or "1+r0@perceptual"
    for another installed layer's), beside a refined point with a price of a bit to choose among
    them by."""
    bad = ModelError(f"points.json: quality {p['quality']}'s alternatives must be refined points "
                     "(\"3/4+r1\", \"1+r0@perceptual\") of a refined point with a positive choice_lambda")
    try:
        alts = tuple(parse_point_spec(a) for a in p.get("alternatives", ()))
    except (ValueError, ZeroDivisionError, TypeError):
        raise bad from None
    lam = p.get("choice_lambda")
    if alts and (p.get("refine") is None or any(r is None for _, r, _ in alts)
                 or not isinstance(lam, (int, float)) or not lam > 0):
        raise bad
    return alts


def default_quality() -> int:
    f = models_dir() / "points.json"
    if f.exists():
        return json.loads(f.read_text())["default"]
    return list_points()[0].quality


def resolve(model: str | None = None, quality: int | None = None, kind: str = "image") -> Point:
    """The operating point for `-q`/`--model`: a model alone means full resolution (for a video,
    the default video point's scale and layers, or with base tokens alone its decisions)."""
    if model is not None and quality is None:
        get_model(model)
        default = next((p for p in list_points(kind) if p.quality == default_quality()), None)
        if kind == "video" and default is not None and default.refine is not None:
            # a refined video point is a scale and two rate levels of that model's layers: the
            # default one, with this model
            return Point(0, model, default.scale, default.lam, None, default.refine, default.inter)
        return Point(0, model, Fraction(1), default.lam if default else None)
    q = default_quality() if quality is None else quality
    for p in list_points(kind):
        if p.quality == q and (model is None or p.model == model):
            return p
    qs = ", ".join(str(p.quality) for p in list_points(kind))
    raise ModelError(f"no operating point with quality {q}" + (f" for model {model}" if model else "") + f" (have: {qs})")
