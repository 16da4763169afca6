"""A picture as a base layer plus the refinement layer (refine.py), without a container: what a
refined image file holds (codec.py) and what a refined video key frame holds (video_layers.py)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .coding.entropy import encode_tokens
from .coding.refine_entropy import Side


@dataclass
class Layers:
    base_payload: bytes      # the base tokens, coded by the exact prior
    layer: bytes             # the refinement symbols, coded by the layer's RefineCoder
    base: torch.Tensor       # the base reconstruction (1, 3, H, W)
    symbols: torch.Tensor    # the refinement symbols (C, h, w)
    side: Side


@dataclass
class Base:
    """The base layer of pixels x, coded: what every refinement of it at any rate level shares."""
    tokens: np.ndarray       # (hb, wb)
    payload: bytes           # coded by the exact prior
    surprise: np.ndarray     # the exact prior's surprise at each token, in bits (the layer's side input)
    picture: torch.Tensor    # the base reconstruction (1, 3, H, W)


def encode_base(m, tokens: np.ndarray, device: torch.device) -> Base:
    """Code the base tokens (hb, wb) with `m`'s exact prior and reconstruct them."""
    surprise = np.zeros(tokens.shape, np.int64)  # filled in by the exact prior while it codes
    payload = encode_tokens(m.exact_prior(device), tokens, surprise)
    return Base(tokens, payload, surprise, m.tokenizer.decode(torch.from_numpy(tokens)[None].to(device)))


def encode_refinement(m, base: Base, x: torch.Tensor, rate: int, steps: int, layer: str | None = None) -> Layers:
    """The refinement of `base` towards pixels x (1, 3, H, W) at `rate`, searched for `steps` steps
    (refine_search.py; 0: the encoder's rounding), coded by `m`'s encoding layer, or the one named
    `layer` (zoo.Point.layer)."""
    coder = m.refine_coder(m.layer_hash(layer))
    coder.ref.to(x.device)
    side = Side(torch.from_numpy(base.tokens), torch.from_numpy(base.surprise), rate)
    from . import refine_search  # here, not at the top: decoding needs neither the search nor the trainer's loss it imports
    symbols = refine_search.find_symbols(coder, x, base.picture, side, steps)
    layer = coder.encode(symbols, side)  # on x's device: the coder takes them to the host
    return Layers(base.payload, layer, base.picture, symbols, side)


def encode_layers(m, tokens: np.ndarray, x: torch.Tensor, rate: int, steps: int, layer: str | None = None) -> Layers:
    """The base tokens (hb, wb) of pixels x (1, 3, H, W) and the refinement at `rate`, searched for
    `steps` steps (refine_search.py; 0: the encoder's rounding), coded by `m`'s encoding layer, or
    the one named `layer`."""
    return encode_refinement(m, encode_base(m, tokens, x.device), x, rate, steps, layer)


def decode_refinement(coder, base: torch.Tensor, symbols, rate: int) -> torch.Tensor:
    """The refined picture (1, 3, H, W) in [-1, 1] from the base reconstruction and the symbols."""
    return coder.ref.to(base.device).decode(base, torch.as_tensor(symbols), rate)
