"""The codec: image -> tokenizer -> tokens -> exact prior + range coder -> .vqz, and back."""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .coding import container  # video does not import the codec: no circle
from . import choice, media, search
from .devices import host, pick_device
from .coding.entropy import decode_tokens, encode_tokens
from .errors import FormatError, InputError, ModelError
from .layered import Base, decode_refinement, encode_base, encode_refinement
from .model_check import check_header, model_for  # noqa: F401 - part of the codec's API
from .pixels import resized, scaled_size, to_image, to_tensor  # noqa: F401 - part of the codec's API
from .coding.refine_entropy import RefineCoder, Side
from .zoo import Model, Point, get_model, list_points, resolve


def _open(image) -> tuple[Image.Image, dict]:
    if isinstance(image, Image.Image):
        return media.prepare_image(image)
    if isinstance(image, (bytes, bytearray)):  # an image file's bytes, e.g. from stdin
        return media.load_image_bytes(bytes(image))
    return media.load_image(image)


def encode_image(image, model: str | None = None, quality: int | None = None, device: str = "auto",
                 bpp: float | None = None, effort: int | None = None, point: Point | None = None) -> bytes:
    """Compress an image (a path, a PIL image or an image file's bytes) to .vqz bytes.

    `quality` picks an operating point of the zoo (see `vqzip models`); `model` alone encodes with
    that model at full resolution; `bpp` picks the highest quality whose file fits the budget;
    `point` is any operating point, on the ladder or not (benchmarks sweep scales and refinement
    rates with it). `effort` (0-9, default search.DEFAULT_EFFORT) is how hard the encoder searches:
    for the refinement's symbols at points with the layer (refine_search.py), for the base tokens at
    points that name a `search_lambda` (search.py); decoding does not depend on it.
    """
    rgb, info = _open(image)
    dev = pick_device(device)
    effort = search.check_effort(effort)
    if bpp is not None:
        if not (math.isfinite(bpp) and bpp > 0):
            raise InputError(f"--bpp must be a positive number of bits per pixel, not {bpp}")
        return _fit_budget(rgb, info, bpp, dev, effort)
    return _encode(rgb, info, point or resolve(model, quality), dev, effort)


# the search shrank Kodak files by at most 12 % (benchmarks/results/effort_refine, _high): a point
# whose single-pass file is over a third above the budget is not searched to see if it fits
SEARCH_SLACK = Fraction(4, 3)


def budget_bits(bpp: float, pixels: int) -> int:
    """The most bits a file of `pixels` pixels may have under `bpp`: the largest n whose bpp as
    `vqzip info` reports it, n / pixels in float, is at most bpp. So a file's own bpp is a budget
    it fits. (bpp * pixels in float can fall short of a whole number of bits: 467 * 8 / 27400
    bpp times 27400 pixels is 3735.9999999999995, which refused the 3,736-bit file.) Float
    division is correctly rounded and so monotone in n: the answer is the same on every machine."""
    if bpp * pixels >= 2 ** 53:  # beyond any file, and beyond where float counts whole bits
        return 2 ** 53
    n = math.floor(bpp * pixels)  # within a bit of the answer
    while (n + 1) / pixels <= bpp:
        n += 1
    while n >= 0 and n / pixels > bpp:
        n -= 1
    return n


def _fit_budget(rgb, info, bpp: float, dev: torch.device, effort: int) -> bytes:
    """The highest point whose file fits `bpp` bits a pixel. Each point is first encoded at effort 0,
    several times faster than a search, and searched only where that file is near the budget, so
    a budget costs one or two searches instead of one per point above it. Should the search ever
    grow a file past the budget, the single-pass file that fits is kept. A budget picks among the
    ladder's own points, not their alternatives (choice.py): the budget is the price of a bit."""
    pixels = rgb.width * rgb.height
    budget = budget_bits(bpp, pixels)  # whole bits: the comparisons below are exact
    smallest = None
    for p in sorted((p.variants()[0] for p in list_points()), key=lambda p: -p.quality):
        quick = _encode(rgb, info, p, dev, 0)
        if effort and len(quick) * 8 <= budget * SEARCH_SLACK:
            data = _encode(rgb, info, p, dev, effort)
            if len(data) * 8 <= budget:
                return data
        if len(quick) * 8 <= budget:
            return quick
        smallest = len(quick) * 8 / pixels
    raise InputError(f"no operating point fits {bpp} bpp (the smallest file is {smallest:.4f} bpp)")


def _encode(rgb: Image.Image, info: dict, point: Point, dev: torch.device, effort: int) -> bytes:
    m = get_model(point.model)
    if point.refine is not None:
        if point.alternatives and effort > 0:  # effort 0 is the single pass: the ladder's own point
            return _chosen(rgb, info, point, dev, effort)
        # the effort goes to the refinement's symbols (refine_search.py): searching the base tokens
        # under the layer did not pay, as the layer re-codes whatever they change
        x, base = _base(rgb, m, point.scale, dev)
        return _pack_refined(base, x, point, rgb.width, rgb.height, info, effort)[0]
    x = _pixels(rgb, m, point.scale, dev)
    tok = m.tokenizer.to(dev)
    effort = search.effort_for(tok, effort, point.search_lambda)
    tokens = host(search.find_tokens(tok, m.float_prior.to(dev), x, effort, point.search_lambda)[0])
    return pack_tokens(tokens, point, rgb.width, rgb.height, info, effort, dev)


def _pixels(rgb: Image.Image, m: Model, scale: Fraction, dev: torch.device) -> torch.Tensor:
    """The image at `scale`, as the tokenizer takes it."""
    return to_tensor(resized(rgb, scaled_size(rgb.width, rgb.height, scale)), m.tokenizer.stride).to(dev)


def _base(rgb: Image.Image, m: Model, scale: Fraction, dev: torch.device):
    """The pixels at `scale` and their base layer, coded (the encoder's tokens: one pass)."""
    x = _pixels(rgb, m, scale, dev)
    return x, encode_base(m, host(m.tokenizer.to(dev).encode(x)[0]), dev)


def _chosen(rgb: Image.Image, info: dict, point: Point, dev: torch.device, effort: int) -> bytes:
    """The ladder point's variant (itself or an alternative) that costs least for this image
    (choice.py), searched at `effort`. Each variant is coded in a single pass and scored on the
    picture the decoder would show; the choice.SEARCHED cheapest are searched, each from its base
    layer as coded (the search moves only the refinement), scored again, and the cheapest searched
    file is kept. Variants at one scale share their base layer."""
    m = get_model(point.model)  # the variants differ in scale, rate level and layer only
    variants, bases = point.variants(), {}

    def base_of(scale: Fraction):
        if scale not in bases:
            bases[scale] = _base(rgb, m, scale, dev)
        return bases[scale]

    def coded(v: Point, e: int) -> tuple[bytes, float]:
        x, base = base_of(v.scale)
        data, layers = _pack_refined(base, x, v, rgb.width, rgb.height, info, e)
        coder = m.refine_coder(m.layer_hash(v.layer))
        picture = _picture(decode_refinement(coder, layers.base, layers.symbols, v.refine),
                           scaled_size(rgb.width, rgb.height, v.scale), (rgb.width, rgb.height), coder.ref, v.scale,
                           v.refine, dev)
        return data, choice.cost(rgb, picture, len(data), point.choice_lambda)  # rgb: 8-bit RGB (media.prepare_image)

    keep = range(len(variants))
    if len(variants) > choice.SEARCHED:  # else every variant is searched: no single pass needed
        keep = choice.shortlist([coded(v, 0)[1] for v in variants], choice.SEARCHED)
    if len(keep) == 1:  # nothing left to choose: no need to score the searched file
        v = variants[keep[0]]
        x, base = base_of(v.scale)
        return _pack_refined(base, x, v, rgb.width, rgb.height, info, effort)[0]
    searched = [coded(variants[i], effort) for i in keep]
    return searched[choice.best([c for _, c in searched])][0]


def _header(m: Model, point: Point, tokens: np.ndarray, width: int, height: int, info: dict | None,
            extra: dict) -> container.Header:
    info = info or {"mode": "RGB", "bit_depth": 8, "alpha": False}
    return container.Header(
        kind="image", model_id=point.model, weights_hash=m.weights_hash, width=width, height=height,
        mode=info["mode"][:container.MAX_MODE_BYTES], bit_depth=info["bit_depth"],
        grid_h=tokens.shape[0], grid_w=tokens.shape[1], scale_num=point.scale.numerator,
        scale_den=point.scale.denominator, extra=({"alpha": True} if info["alpha"] else {}) | extra)


def pack_tokens(tokens: np.ndarray, point: Point, width: int, height: int, info: dict | None = None,
                effort: int = 0, device: torch.device | None = None) -> bytes:
    """A .vqz image of a token grid: the lossless stage alone (also how video frames are
    measured against independent images). A searched grid records its effort in the header
    (`vqzip info` shows it; decoders ignore it), which costs a byte. The exact prior runs on
    `device` if it is CUDA (Model.exact_prior), else on the host."""
    m = get_model(point.model)
    header = _header(m, point, tokens, width, height, info, {"effort": effort} if effort else {})
    return container.pack(header, encode_tokens(m.exact_prior(device), tokens), version=container.COMPACT_VERSION)


def _pack_refined(base: Base, x: torch.Tensor, point: Point, width: int, height: int, info: dict, effort: int):
    """Base layer, then the refinement layer (refine.py) as a chunk of its own: image -> base
    tokens -> base reconstruction -> refinement symbols -> bytes (and the layers, Layers)."""
    m = get_model(point.model)
    coded = encode_refinement(m, base, x, point.refine, search.schedule(effort).refine_steps, point.layer)
    extra = {"refine": {"rate": point.refine, "weights": m.layer_hash(point.layer)}} | ({"effort": effort} if effort else {})
    return container.pack(_header(m, point, base.tokens, width, height, info, extra), coded.base_payload,
                          (coded.layer,), version=container.COMPACT_VERSION), coded


def _decode_tokens(data: bytes, max_pixels: int | None = None, surprise: bool = False,
                   device: torch.device | None = None):
    header, payload = container.unpack(data)
    if header.kind != "image":
        raise FormatError(f"this is a {header.kind} file, not an image")
    m = model_for(header)
    size = check_header(header, m.tokenizer.stride, max_pixels)
    s = np.zeros((header.grid_h, header.grid_w), np.int64) if surprise else None
    return header, m, size, decode_tokens(m.exact_prior(device), header.grid_h, header.grid_w, payload, s), s


def layer_count(header: container.Header) -> int:
    """How many layers the encoder wrote: 2 with a refinement layer, else 1."""
    return 2 if "refine" in header.extra else 1


def _refine_layer(header: container.Header, m: Model):
    """The refinement layer that made the file (its coder) and the rate level, after checking that
    the layer is installed and has that level."""
    spec = header.extra["refine"]
    # bool is an int in Python, but JSON's true is not a rate level
    if not (isinstance(spec, dict) and type(spec.get("rate")) is int and isinstance(spec.get("weights"), str)):
        raise FormatError("file is corrupted (unreadable refinement header)")
    coder = m.refine_coder(spec["weights"])
    if not 0 <= spec["rate"] < len(coder.ref.cfg.rates):
        raise FormatError(f"file is corrupted (refinement rate level {spec['rate']})")
    return coder, spec["rate"]


def decode_tokens_of(data: bytes) -> tuple[container.Header, np.ndarray]:
    """Header and token grid of a .vqz image (the lossless part of decoding)."""
    header, _, _, tokens, _ = _decode_tokens(data)
    return header, tokens


def decode(data: bytes, device: str = "auto", max_pixels: int | None = None, layers: int | None = None,
           restore: bool = True) -> Image.Image:
    """.vqz bytes -> PIL image with the original's size and mode family. A file declaring more
    than `max_pixels` (default media.MAX_PIXELS) is refused before any work. `layers` (default:
    all the file has) 1 decodes the base layer alone, e.g. of a file cut after it. A refinement
    layer with a restoration filter (restore.py) runs it on the final picture unless `restore` is
    False (what the filter's trainer learns from, and A/B measurements)."""
    n = _layers_wanted(data, layers)
    dev = pick_device(device)
    header, m, (w, h), tokens, surprise = _decode_tokens(data, max_pixels, n > 1, dev)
    x = m.tokenizer.to(dev).decode(torch.from_numpy(tokens)[None].to(dev))
    ref, rate = None, None
    if n > 1:
        x, ref, rate = _refined(data, header, m, x, tokens, surprise)
    img = _picture(x, (w, h), (header.width, header.height), ref if restore else None,
                   Fraction(header.scale_num, header.scale_den), rate, dev)
    return media.restore_mode(img, header.mode, header.bit_depth, bool(header.extra.get("alpha")))


def _picture(x: torch.Tensor, coded_size: tuple[int, int], size: tuple[int, int], ref, scale: Fraction,
             rate: int | None, dev: torch.device) -> Image.Image:
    """The RGB picture at the image's size from the reconstruction x at the coded size, through
    the refinement layer `ref`'s restoration filter where it has one: what decoding shows, and
    what the encoder's choice of a point (choice.py) scores."""
    img = resized(to_image(x, *coded_size), size)
    if ref is not None and ref.restorer is not None:
        img = restored(img, ref.restorer, scale, rate, dev)
    return img


def restored(img: Image.Image, restorer, scale: Fraction, rate: int, dev: torch.device) -> Image.Image:
    """The decoded picture at the image's size through a refinement layer's restoration filter."""
    x = restorer.to(dev).restore(to_tensor(img, 1).to(dev), scale, rate)
    return to_image(x, img.width, img.height)


def _layers_wanted(data: bytes, layers: int | None) -> int:
    try:
        have = layer_count(container.read_header(data[:container.HEADER_PREFIX_BYTES], verify=False))
    except FormatError:  # unpack says what is wrong
        return 1
    if layers is None:
        return have
    if not 1 <= layers <= have:
        raise InputError(f"--layers {layers}: this file has {have} layer{'s' * (have > 1)}")
    return layers


def _symbols(data: bytes, header: container.Header, m: Model, tokens: np.ndarray, surprise: np.ndarray):
    """The refinement layer's symbols (C, h, w), its coder and its rate level."""
    coder, shape, side, chunk = refinement_inputs(data, header, m, tokens, surprise)
    return coder.decode(shape, side, chunk), coder, side.rate


def refinement_inputs(data: bytes, header: container.Header, m: Model, tokens: np.ndarray, surprise: np.ndarray):
    """What the refinement layer's decoding takes for this file: its coder (the layer that made
    it), the symbols' shape, the side information (`tokens` and `surprise` from decode_tokens, the
    rate level) and the layer's chunk."""
    coder, rate = _refine_layer(header, m)
    chunks = container.layers(data)
    if not chunks:
        raise FormatError("file ends after its base layer (the refinement layer is missing); --layers 1 decodes it")
    if len(chunks) > 1:
        raise FormatError("file is corrupted (more layers than its header declares)")
    cfg = coder.ref.cfg
    shape = (cfg.channels, header.grid_h * cfg.stride_ratio, header.grid_w * cfg.stride_ratio)
    return coder, shape, Side(torch.from_numpy(tokens), torch.from_numpy(surprise), rate), chunks[0]


@dataclass
class Lossless:
    """The lossless half of decoding a .vqz image: everything the exact models give, before any
    pixels (what the benchmarks compare across layers and devices)."""
    header: container.Header
    tokens: np.ndarray               # (grid_h, grid_w) base tokens
    surprise: np.ndarray             # (grid_h, grid_w) the exact prior's surprise at each, in bits
    symbols: np.ndarray | None       # (C, h, w) refinement symbols; None for a base-only file
    coder: RefineCoder | None        # the refinement layer's coder that read them
    rate: int | None                 # its rate level


def lossless(data: bytes, device: torch.device | None = None) -> Lossless:
    """Decode a .vqz image's tokens and refinement symbols, the exact prior on `device` (default:
    the host)."""
    header, m, _, tokens, surprise = _decode_tokens(data, surprise=True, device=device)
    if layer_count(header) < 2:
        return Lossless(header, tokens, surprise, None, None, None)
    return Lossless(header, tokens, surprise, *_symbols(data, header, m, tokens, surprise))


def refinement_of(data: bytes) -> np.ndarray:
    """The refinement symbols of a .vqz image with a refinement layer (the lossless part of decoding it)."""
    symbols = lossless(data).symbols
    if symbols is None:
        raise InputError("this file has no refinement layer")
    return symbols


def _refined(data: bytes, header: container.Header, m: Model, base: torch.Tensor, tokens: np.ndarray,
             surprise: np.ndarray):
    """The refined reconstruction at the coded size, the layer (refine.Refiner) and the rate level."""
    symbols, coder, rate = _symbols(data, header, m, tokens, surprise)
    return decode_refinement(coder, base, torch.from_numpy(symbols), rate), coder.ref, rate


def info(data: bytes) -> dict:
    """What `vqzip info` shows: the header, sizes and how much the prior saved."""
    header, payload = container.unpack(data)
    if header.kind == "video":
        from . import video  # not at the top: an image command need not load the video coder
        return video.info(data)
    out = container.describe(header) | {"file_bytes": len(data), "payload_bytes": len(payload)}
    out["bpp"] = len(data) * 8 / (header.width * header.height)
    out["effort"] = header.extra.get("effort", 0)
    out["layers"] = [{"layer": 1, "bytes": len(payload), "bpp": len(payload) * 8 / (header.width * header.height)}]
    if layer_count(header) > 1:
        try:
            chunks = container.layers(data)
        except FormatError as e:
            chunks, out["layer_error"] = [], str(e)
        out["layers"] += [{"layer": 2 + i, "bytes": len(c), "bpp": len(c) * 8 / (header.width * header.height)}
                          for i, c in enumerate(chunks)]
    try:
        m = get_model(header.model_id)
        bits = m.tokenizer.cfg.token_bits
    except ModelError:
        return out
    refine = header.extra.get("refine")
    weights = refine.get("weights") if isinstance(refine, dict) else None  # a forged header may hold anything
    if isinstance(weights, str) and weights in m.refine_layers:  # which installed layer made the refinement (refine.safetensors, refine_perceptual...)
        out["refine_layer"] = m.refine_layers[weights].name
    raw = header.grid_h * header.grid_w * bits
    out |= {"token_bits": bits, "raw_index_bits": raw, "payload_bits": len(payload) * 8,
            "payload_over_raw": len(payload) * 8 / raw}
    return out


def encode_file(src: Path, dst: Path, force: bool = False, **kw) -> dict:
    media.refuse_overwrite(dst, force)  # before the work, not after
    data = encode_image(src, **kw)
    media.atomic_write_bytes(dst, data, force)
    return info(data) | {"input": str(src), "output": str(dst)}


def decode_file(src: Path, dst: Path, force: bool = False, device: str = "auto",
                max_pixels: int | None = None, layers: int | None = None) -> dict:
    media.refuse_overwrite(dst, force)
    img = decode(media.read_input(src), device, max_pixels, layers)
    media.save_image(img, dst, force)
    return {"input": str(src), "output": str(dst), "width": img.width, "height": img.height, "mode": img.mode}
