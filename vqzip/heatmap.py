"""`vqzip info FILE --heatmap OUT.png`: where a file spends its bits.

Each coded symbol's code length comes from the exact models the decoder uses, as it decodes:
the base prior's integer tables (entropy.code_lengths), the refinement layer's frequency tables
(refine_entropy.RefineCoder.symbol_bits) and, for a video's predicted frame, the temporal coder's adaptive
counts (temporal.code_lengths) or, in a refined video (format 4), the inter layer's symbols with
its motion vectors' and block flags' bytes shared evenly among the frame's blocks
(video_layers.FrameDecoder.bits). A symbol costs -log2(freq / total). A token covers stride x stride
pixels of the image as coded, which an operating point's scale has resized, so each token's bits
are shared among BLOCK x BLOCK blocks of the original picture in proportion to the area it
covers there; the blocks' bits therefore add up to the code lengths' sum exactly, and that sum to
the payload's bits up to the range coder's own rounding (tests/test_heatmap.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .coding import container
from . import media
from .errors import FormatError, InputError

BLOCK = 16
# a perceptually ordered dark-to-light ramp (matplotlib's inferno, sampled at eight points), so a
# grey print still reads low to high
RAMP = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
                 (250, 193, 39), (252, 255, 164)], np.float64)


@dataclass
class BitMap:
    picture: Image.Image   # the decoded picture, RGB, at the original size
    bits: np.ndarray       # (rows, cols): bits spent on each BLOCK x BLOCK block of it
    coded_bits: int        # the payload bits that the map accounts for
    what: str              # "image", "key frame 3", "predicted frame 4"


def _shares(cells: int, cell: int, coded: int, original: int) -> np.ndarray:
    """(cells, blocks): the share of each coded cell (a token, `cell` coded pixels wide) that falls
    in each BLOCK-pixel block of the original, along one axis; every row sums to 1. A cell wholly
    in the padding past the picture's edge (refinement positions can be) counts as the last pixel."""
    start = np.minimum(np.arange(cells) * cell, coded - 1)
    stop = np.maximum(np.minimum(np.arange(1, cells + 1) * cell, coded), start + 1)
    lo, hi = start * original / coded, stop * original / coded
    edges = np.minimum(np.arange(0, original + BLOCK, BLOCK), original)
    overlap = np.clip(np.minimum(hi[:, None], edges[None, 1:]) - np.maximum(lo[:, None], edges[None, :-1]), 0, None)
    return overlap / overlap.sum(1, keepdims=True)


def _to_blocks(bits: np.ndarray, cell: int, coded: tuple[int, int], original: tuple[int, int]) -> np.ndarray:
    """(h, w) bits of cells `cell` coded pixels apart -> bits per block of the original picture."""
    (cw, ch), (w, h) = coded, original
    return _shares(bits.shape[0], cell, ch, h).T @ bits @ _shares(bits.shape[1], cell, cw, w)


def of_image(data: bytes, device: str = "auto") -> BitMap:
    from . import codec
    from .coding.entropy import code_lengths
    picture = codec.decode(data, device).convert("RGB")  # every check a decode makes, first
    header, payload = container.unpack(data)
    m = codec.model_for(header)
    coded = codec.check_header(header, m.tokenizer.stride)
    surprise = np.zeros((header.grid_h, header.grid_w), np.int64)
    tokens, bits = code_lengths(m.prior, header.grid_h, header.grid_w, payload, surprise)
    blocks, coded_bits = _to_blocks(bits, m.tokenizer.stride, coded, picture.size), len(payload) * 8
    if codec.layer_count(header) > 1:
        coder, shape, side, chunk = codec.refinement_inputs(data, header, m, tokens, surprise)
        layer = coder.symbol_bits(shape, side, chunk)[1].sum(0)
        blocks += _to_blocks(layer, coder.ref.cfg.stride, coded, picture.size)
        coded_bits += len(chunk) * 8
    return BitMap(picture, blocks, coded_bits, "image")


def of_video_frame(data: bytes, frame: int, device: str = "auto") -> BitMap:
    import torch
    from . import video
    from .codec import model_for, resized, scaled_size, to_image
    from .devices import pick_device
    p = video.parse(data)
    if video.refined(p.header):
        picture, parts, coded, n_bytes, kind = video.refined_frame_bits(p, frame, device)
        picture = Image.fromarray(picture)
        blocks = sum(_to_blocks(bits, cell, coded, picture.size) for bits, cell in parts)
        return BitMap(picture, blocks, n_bytes * 8, f"{kind} frame {frame}")
    tokens, bits, n_bytes, kind = video.frame_code_lengths(p, frame)
    m, h = model_for(p.header), p.header
    coded = scaled_size(h.width, h.height, Fraction(h.scale_num, h.scale_den))
    dev = pick_device(device)
    x = m.tokenizer.to(dev).decode(torch.from_numpy(tokens)[None].to(dev))
    picture = resized(to_image(x, *coded), (h.width, h.height))
    return BitMap(picture, _to_blocks(bits, m.tokenizer.stride, coded, picture.size), n_bytes * 8,
                  f"{kind} frame {frame}")


def of_file(data: bytes, frame: int | None = None, device: str = "auto") -> BitMap:
    kind = container.kind_of(data[:container.HEADER_PREFIX_BYTES])
    if kind == "video":
        return of_video_frame(data, frame or 0, device)
    if frame is not None:
        raise InputError("--frame is for a video; this file is an image")
    if kind is None:
        container.unpack(data)  # says what is wrong with the file
        raise FormatError("not a vqzip file")
    return of_image(data, device)


def _colours(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB along RAMP."""
    at = np.linspace(0, 1, len(RAMP))
    return np.stack([np.interp(v, at, RAMP[:, c]) for c in range(3)], -1)


def render(bm: BitMap) -> Image.Image:
    """The picture, in grey, under the colour of its blocks' bits per pixel (blended half and half,
    so that both read), above a legend in bits per pixel."""
    w, h = bm.picture.size
    area = np.outer(np.diff(np.minimum(np.arange(0, h + BLOCK, BLOCK), h)),
                    np.diff(np.minimum(np.arange(0, w + BLOCK, BLOCK), w)))
    bpp = bm.bits / area
    top = max(float(bpp.max()), 1e-9)
    per_pixel = np.repeat(np.repeat(bpp / top, BLOCK, 0), BLOCK, 1)[:h, :w]
    grey = np.asarray(bm.picture.convert("L"), np.float64)[..., None]
    shown = 0.55 * _colours(per_pixel) + 0.45 * grey
    width, bar = max(w, 360), 14
    canvas = Image.new("RGB", (width, h + 64), "white")
    canvas.paste(Image.fromarray(shown.round().clip(0, 255).astype(np.uint8)), (0, 0))
    x0, x1, y = 10, width - 10, h + 8
    ramp = _colours(np.linspace(0, 1, x1 - x0))[None].repeat(bar, 0)
    canvas.paste(Image.fromarray(ramp.round().astype(np.uint8)), (x0, y))
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    for i in range(5):
        x = x0 + round(i / 4 * (x1 - x0 - 1))
        draw.line([(x, y + bar), (x, y + bar + 3)], fill="black")
        label = f"{top * i / 4:.3g}"
        tw = draw.textlength(label, font=font)
        draw.text((min(max(x - tw / 2, 0), width - tw), y + bar + 4), label, fill="black", font=font)
    draw.text((x0, y + bar + 20), f"bits per pixel, {BLOCK}x{BLOCK} blocks ({bm.what}: {bm.bits.sum():.0f} bits)",
              fill="black", font=font)
    return canvas


def write(data: bytes, dst, frame: int | None = None, force: bool = False, device: str = "auto") -> dict:
    """Render the heat map of a .vqz file (frame `frame` of a video) to the PNG `dst`; returns
    what `vqzip info` adds about it."""
    dst = Path(dst)
    media.refuse_overwrite(dst, force)
    bm = of_file(data, frame, device)
    media.save_image(render(bm), dst, force)
    return {"heatmap": str(dst), "heatmap_of": bm.what, "heatmap_bits": round(float(bm.bits.sum()), 1),
            "heatmap_payload_bits": bm.coded_bits}
