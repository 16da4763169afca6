"""Image files in and out.

The codec sees 8-bit RGB only. load_image() records what the original was (mode, bit depth,
alpha) so restore_mode() can give the decoded image back in the same mode family. Writes are
atomic and never overwrite an existing file unless asked to.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .coding.container import MAX_SIDE
from .errors import InputError

# Checked against the size in the file header, before any pixel is decoded. Pillow's own hard
# limit (2 * Image.MAX_IMAGE_PIXELS, about 179 MP) also applies.
MAX_PIXELS = 100_000_000
VIDEO_EXTS = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v"}
VIDEO_INPUT_EXTS = VIDEO_EXTS | {".gif"}  # what encode reads as video: an animated GIF too


def is_video(path) -> bool:
    """An existing file with a video extension; a GIF only when it is animated. (Here, not in
    video_io, so that telling images from videos does not load PyAV.)"""
    p = Path(path)
    if p.suffix.lower() not in VIDEO_INPUT_EXTS or not p.is_file():
        return False
    if p.suffix.lower() != ".gif":
        return True
    try:
        with Image.open(p) as im:
            return getattr(im, "n_frames", 1) > 1
    except Exception:  # not a readable GIF: leave it to the image path to report
        return False

_GRAY16_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_GRAY_MODES = {"1", "L", "LA", "F"} | _GRAY16_MODES
_ALPHA_MODES = {"RGBA", "LA", "PA"}

# extension -> (Pillow format, save options, modes the format stores; None = all of ours)
_OUTPUT_FORMATS = {
    ".png": ("PNG", {}, None),
    ".jpg": ("JPEG", {"quality": 95}, {"L", "RGB"}),
    ".jpeg": ("JPEG", {"quality": 95}, {"L", "RGB"}),
    ".webp": ("WEBP", {"lossless": True}, {"RGB", "RGBA"}),
    ".bmp": ("BMP", {}, {"L", "RGB", "RGBA"}),
    ".tif": ("TIFF", {}, None),
    ".tiff": ("TIFF", {}, None),
}


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _gray16_to_8(im: Image.Image) -> Image.Image:
    # Pillow's own I;16 -> L conversion clips at 255 instead of scaling.
    a = np.asarray(im).astype(np.int64).clip(0, 0xFFFF)
    return Image.fromarray(((a + 128) // 257).astype(np.uint8))


def _bit_depth(im: Image.Image) -> int:
    # Pillow opens 16-bit RGB(A) PNGs and TIFFs as 8-bit modes; only the decoder's raw mode
    # ("RGB;16B", "RGBA;16L", ...) tells. Plain "BGR;16" is 5-6-5 packed BMP, not 16-bit.
    raw_modes = " ".join(str(tile[3]) for tile in getattr(im, "tile", ()))  # in-memory images have none
    return 16 if im.mode in _GRAY16_MODES or re.search(r";16[BLN]", raw_modes) else 8


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in _GRAY16_MODES:
        im = _gray16_to_8(im)
    elif im.mode == "P":
        im = im.convert("RGBA")  # Pillow warns when a palette with alpha goes straight to RGB
    return im.convert("RGB")


def load_image(path) -> tuple[Image.Image, dict]:
    """Open an image for encoding: an 8-bit RGB image, EXIF orientation applied, plus `info`
    about the original: mode, bit_depth (8 or 16), alpha, width, height (after orientation).

    Grayscale is replicated to RGB; 16-bit samples are rounded to 8 bits; palette images are
    expanded. The codec is lossy RGB only, so alpha is dropped: `alpha` only lets the decoder
    restore an (opaque) alpha channel. Multi-frame files give their first frame. Any bad file
    raises InputError; an image of zero size is rejected by Pillow as unrecognized.
    """
    path = Path(path)
    if path.suffix.lower() in VIDEO_EXTS and path.is_file():
        raise InputError(f"{path}: is a video, not an image (encode it with vqzip.video.encode_file)")
    return load_image_bytes(read_input(path, ", not an image"), path)


def load_image_bytes(data: bytes, name="-") -> tuple[Image.Image, dict]:
    """load_image() of an image file's bytes (e.g. read from stdin); `name` starts its errors."""
    if not data:
        raise InputError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name)


def _decode(f, path) -> tuple[Image.Image, dict]:
    try:
        with warnings.catch_warnings():
            # MAX_PIXELS below is the limit that counts; Pillow's lower warning level is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                w, h = im.size
                if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
                    raise InputError(
                        f"{path}: image too large ({w}x{h}; the limits are {MAX_PIXELS} pixels "
                        f"and {MAX_SIDE} per side)")
                return prepare_image(im)  # loads the pixels; the raw mode (16-bit?) is read first
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise InputError(f"{path}: image too large ({_one_line(e)})") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a supported image (unrecognized format)") from None
    # Pillow's decoders raise many exception types for malformed files (OSError for truncated
    # data, ValueError, SyntaxError, struct.error, ...); all of them mean a bad input file.
    except Exception as e:
        raise InputError(f"{path}: not a supported image ({_one_line(e)})") from None


def prepare_image(im: Image.Image) -> tuple[Image.Image, dict]:
    """An opened image as the codec takes it (see load_image): 8-bit RGB, EXIF orientation
    applied, and the facts about the original that decoding restores. Call it before the
    pixels are loaded: 16-bit RGB is only visible in the file's raw mode."""
    info = {"mode": im.mode, "bit_depth": _bit_depth(im),
            "alpha": im.mode in _ALPHA_MODES or "transparency" in im.info}
    rgb = _to_rgb(ImageOps.exif_transpose(im))
    return rgb, info | {"width": rgb.width, "height": rgb.height}


def restore_mode(img_rgb: Image.Image, info_mode: str, bit_depth: int, alpha: bool) -> Image.Image:
    """Convert a decoded RGB image back to the original's mode family: grayscale ("1", "L",
    "I;16", ...) becomes "L", or "I;16" when it was 16-bit grayscale; anything with alpha gets
    an opaque alpha channel ("LA" or "RGBA"). Everything else (RGB, palette, CMYK, 16-bit RGB)
    comes back as 8-bit "RGB", since that is all the codec keeps."""
    mode = restored_mode(info_mode, bit_depth, alpha)
    if mode == "I;16":
        return Image.fromarray(np.asarray(img_rgb.convert("L"), dtype=np.uint16) * 257)
    return img_rgb.convert(mode)


def restored_mode(info_mode: str, bit_depth: int, alpha: bool) -> str:
    """The mode restore_mode() gives, from the header alone (the Pillow plugin reports it before
    decoding)."""
    gray = info_mode in _GRAY_MODES
    if gray and bit_depth == 16 and not alpha:
        return "I;16"
    return ("L" if gray else "RGB") + ("A" if alpha else "")


def _fit_mode(img: Image.Image, modes: set[str] | None) -> Image.Image:
    """The nearest mode the output format stores: 16-bit becomes 8-bit, alpha is dropped where
    the format has none, grayscale becomes RGB where the format has no grayscale. For decoded
    images nothing is lost: their alpha is opaque and they carry only 8 bits per sample."""
    if modes is None or img.mode in modes:
        return img
    if img.mode in _GRAY16_MODES:
        img = _gray16_to_8(img)
    keep_alpha = ["RGBA"] if img.mode.endswith("A") else []
    candidates = [img.mode, *keep_alpha, img.mode.removesuffix("A"), "RGB"]
    return img.convert(next(m for m in candidates if m in modes))


def save_image(img: Image.Image, path, force: bool = False) -> None:
    """Write `img` in the format given by the extension of `path`, converting it to a mode the
    format stores (see _fit_mode). JPEG is quality 95, WebP lossless. Atomic; refuses to
    overwrite an existing file unless `force`."""
    path = Path(path)
    atomic_write_bytes(path, image_bytes(img, path.suffix, path), force)


def output_suffix(fmt: str) -> str:
    """`--format` (png, jpg, webp, ...) -> the extension that names it, or an InputError."""
    ext = "." + fmt.lower().lstrip(".")
    if ext not in _OUTPUT_FORMATS:
        raise InputError(f"unknown --format {fmt!r} (use {', '.join(e[1:] for e in _OUTPUT_FORMATS)})")
    return ext


def image_bytes(img: Image.Image, suffix: str, name="-") -> bytes:
    """`img` as the bytes of a file in the format of `suffix` (.png, .jpg, ...; see save_image);
    `name` starts the errors."""
    ext = suffix.lower()
    if ext not in _OUTPUT_FORMATS:
        raise InputError(f"{name}: unsupported output format {ext or '(no extension)'} "
                         f"(use {', '.join(_OUTPUT_FORMATS)})")
    fmt, options, modes = _OUTPUT_FORMATS[ext]
    buf = io.BytesIO()
    try:
        _fit_mode(img, modes).save(buf, format=fmt, **options)
    except (OSError, ValueError) as e:  # e.g. larger than the format allows
        raise InputError(f"{name}: cannot write as {fmt} ({_one_line(e)})") from None
    return buf.getvalue()


def read_input(path, what: str = "") -> bytes:
    """The bytes of an input file, or an InputError that says why not (`what` ends the message
    for a folder, e.g. ", not an image")."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory{what}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or _one_line(e)})") from None


def refuse_overwrite(path, force: bool) -> None:
    if not force and os.path.lexists(path):
        raise InputError(f"{path} exists (use --force to overwrite)")


def atomic_write_bytes(path, data: bytes, force: bool = False) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename, so
    a crash never leaves a half-written file. Refuses to overwrite unless `force`."""
    path = Path(path)
    refuse_overwrite(path, force)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:  # "x": never clobber; mode 0666 minus umask, like any new file
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise InputError(f"cannot write {path}: {e.strerror or _one_line(e)}") from None
        raise
