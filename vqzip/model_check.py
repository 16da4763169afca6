"""Checks of a file's header against the installed model, shared by the image and video decoders."""
from __future__ import annotations

import math
from fractions import Fraction

from .coding import container
from . import media
from .errors import FormatError, ModelError
from .pixels import scaled_size
from .zoo import Model, get_model


def model_for(header: container.Header) -> Model:
    m = get_model(header.model_id)
    if m.weights_hash != header.weights_hash:
        raise ModelError(f"this file was made by a different version of model {header.model_id!r} "
                         f"(weights {header.weights_hash.hex()}, installed {m.weights_hash.hex()})")
    return m


def check_header(header: container.Header, stride: int, max_pixels: int | None = None) -> tuple[int, int]:
    """The coded size, after checking that the header is one this codec could have written:
    a forged header must not make the decoder allocate or loop beyond what the image needs.
    Decoding work grows with the declared size, so a service can bound it with `max_pixels`
    (default media.MAX_PIXELS)."""
    limit = media.MAX_PIXELS if max_pixels is None else max_pixels
    if header.width * header.height > limit:
        raise FormatError(f"file declares a {header.width}x{header.height} image, over the "
                          f"{limit}-pixel limit")
    w, h = scaled_size(header.width, header.height, Fraction(header.scale_num, header.scale_den))
    if (header.grid_h, header.grid_w) != (math.ceil(h / stride), math.ceil(w / stride)):
        raise FormatError("file is corrupted (token grid does not match the image size)")
    return w, h
