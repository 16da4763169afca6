"""Pipes: `vqzip encode - -o -` and `vqzip decode - -o - --format png`.

`-` names stdin as an input and stdout as an output. Only the file's bytes go to stdout, written
once the whole file is made, so a failure leaves stdout empty and the exit status says so;
messages go to stderr. Images only: a video needs its container's index and a seekable file
(PyAV reads mp4 and mkv by seeking), and a decoded video is written by a muxer that seeks too,
so video on either pipe is refused with one line instead of being half supported.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .coding import container
from . import media
from .errors import InputError

STDIO = "-"

# the first bytes of the video containers vqzip reads (media.VIDEO_INPUT_EXTS), to say "video"
# rather than "not a supported image" for one piped in; animated GIFs are images to Pillow
_MKV = b"\x1a\x45\xdf\xa3"


def is_stdio(path) -> bool:
    return str(path) == STDIO


def _looks_like_video(data: bytes) -> bool:
    return data[4:8] == b"ftyp" or data[:4] == _MKV or (data[:4] == b"RIFF" and data[8:12] == b"AVI ")


def read_stdin() -> bytes:
    return sys.stdin.buffer.read()


def write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _read(src) -> bytes:
    return read_stdin() if is_stdio(src) else media.read_input(src)


def _write(dst, data: bytes, force: bool) -> None:
    if is_stdio(dst):
        write_stdout(data)
    else:
        media.atomic_write_bytes(Path(dst), data, force)


def _check_output(dst, force: bool) -> None:
    """Before stdin is read and before any work: refusing afterwards would waste both."""
    if not is_stdio(dst):
        media.refuse_overwrite(dst, force)
    elif sys.stdout.isatty():  # as gzip and zstd do: binary on a terminal helps nobody
        raise InputError("refusing to write a binary file to a terminal; redirect stdout (e.g. > out.vqz)")


def encode(src, dst, force: bool = False, **kw) -> dict:
    """Encode the image at `src` (a path, or "-" for stdin) to `dst` (a path, or "-" for stdout);
    `kw` as for codec.encode_image. Returns what codec.encode_file returns."""
    from . import codec
    _check_output(dst, force)
    if not is_stdio(src) and media.is_video(Path(src)):
        raise InputError(f"{src}: a video cannot be written to stdout; give -o FILE.vqz")
    data = _read(src)
    if is_stdio(src) and _looks_like_video(data):
        raise InputError("-: stdin holds a video; vqzip reads video from a file only (vqzip encode clip.mp4 -o clip.vqz)")
    out = codec.encode_image(data if is_stdio(src) else Path(src), **kw)
    _write(dst, out, force)
    return codec.info(out) | {"input": str(src), "output": str(dst)}


def decode(src, dst, fmt: str | None = None, force: bool = False, **kw) -> dict:
    """Decode the .vqz image at `src` (a path, or "-" for stdin) to `dst` (a path, or "-" for
    stdout, in `fmt`: png, jpg, webp, bmp, tif; default png). A file's format follows its
    extension, so `fmt` is for stdout only. `kw` as for codec.decode."""
    from . import codec
    if fmt is not None and not is_stdio(dst):
        raise InputError("--format is for -o - (a file's format follows its extension)")
    suffix = media.output_suffix(fmt or "png") if is_stdio(dst) else Path(dst).suffix
    _check_output(dst, force)
    data = _read(src)
    if container.kind_of(data[:container.HEADER_PREFIX_BYTES]) == "video":
        raise InputError(f"{src}: a video .vqz cannot be decoded through a pipe; "
                         "give the file and -o FILE (e.g. clip.mp4)")
    img = codec.decode(data, **kw)
    _write(dst, media.image_bytes(img, suffix, dst), force)
    return {"input": str(src), "output": str(dst), "width": img.width, "height": img.height, "mode": img.mode}
