"""Registry of image codecs for ``vqzip bench``.

Every codec exposes:

- ``name``: registry key (``jpeg``, ``webp``, ``avif``, ``av1``, ``jxl``, ``vqzip``)
- ``available() -> (bool, reason)``: never raises; ``reason`` says why not (or what is used)
- ``settings``: the quality sweep, chosen to cover the low-bitrate range
  (~0.02 .. 0.5 bpp on Kodak-like 768x512 photos), ordered from lowest to highest rate
- ``setting_label(setting) -> str``: e.g. ``"q5"`` or ``"crf52"``
- ``roundtrip(img, setting) -> (n_bytes, decoded, enc_seconds, dec_seconds)``:
  ``img`` is an RGB :class:`PIL.Image.Image`; ``decoded`` is RGB and the same size.

Bytes are the size of what the codec writes to a file, stripped of metadata
(no EXIF/ICC/XMP is passed to any encoder) -- except ``av1``, which counts the raw
AV1 bitstream only (see :class:`AV1Codec`). Timings are wall-clock
(``time.perf_counter``) around encode / decode, including the codec's own colour
conversion; libraries use their default threading.
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "Codec",
    "JPEGCodec",
    "WebPCodec",
    "AVIFCodec",
    "AV1Codec",
    "JXLCodec",
    "VQZipCodec",
    "CODECS",
    "DEFAULT_CODECS",
    "get_codec",
    "list_codecs",
    "codec_versions",
]


def _clean_rgb(img: Image.Image) -> Image.Image:
    """A fresh RGB image without ``info``/``format``/``filename`` (so no metadata is
    written and no plugin takes a "source is already a JPEG" shortcut)."""
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def _pil_roundtrip(img: Image.Image, fmt: str, **params: Any):
    src = _clean_rgb(img)
    buf = io.BytesIO()
    t0 = time.perf_counter()
    src.save(buf, fmt, **params)
    t1 = time.perf_counter()
    data = buf.getvalue()
    t2 = time.perf_counter()
    dec = Image.open(io.BytesIO(data))
    dec.load()
    dec = dec.convert("RGB")
    t3 = time.perf_counter()
    if dec.size != src.size:
        raise RuntimeError(f"{fmt}: decoded size {dec.size} != source size {src.size}")
    return len(data), dec, t1 - t0, t3 - t2


class Codec:
    """Base class. Subclasses set ``name``/``settings`` and implement ``_roundtrip``."""

    name: str = "?"
    settings: list = []
    setting_prefix: str = "q"
    description: str = ""

    def available(self) -> tuple[bool, str]:
        return True, ""

    def setting_label(self, setting: Any) -> str:
        return f"{self.setting_prefix}{setting}"

    def roundtrip(self, img: Image.Image, setting: Any) -> tuple[int, Image.Image, float, float]:
        ok, reason = self.available()
        if not ok:
            raise RuntimeError(f"codec {self.name!r} unavailable: {reason}")
        return self._roundtrip(img, setting)

    def _roundtrip(self, img: Image.Image, setting: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class JPEGCodec(Codec):
    """Baseline JPEG via Pillow (libjpeg-turbo), ``optimize=True`` (optimised Huffman
    tables), Pillow's default 4:2:0 chroma subsampling.

    Quality 1 is JPEG's floor: nothing lower exists. On Kodak (24 images) q1 gives
    0.088 bpp / 21.48 dB PSNR (MS-SSIM 0.715), so JPEG has no points below ~0.09 bpp.
    q2 is left out of the sweep: with baseline (8-bit) quantisation tables nearly
    every entry is already clamped to 255 at q2, and on Kodak it gives the same point
    as q1 (0.0881 bpp / 21.48 dB); q5 is 0.1408 bpp / 23.85 dB / 0.807.
    """

    name = "jpeg"
    settings = [1, 3, 5, 8, 12, 20, 30, 45]
    description = "Pillow JPEG, optimize=True, 4:2:0"

    def _roundtrip(self, img, setting):
        return _pil_roundtrip(img, "JPEG", quality=int(setting), optimize=True)


class WebPCodec(Codec):
    """Lossy WebP via Pillow (libwebp), ``method=6`` (slowest / best)."""

    name = "webp"
    settings = [0, 5, 10, 20, 30, 40, 50, 60]
    description = "Pillow WebP lossy, method=6"

    def available(self):
        from PIL import features

        if not features.check("webp"):
            return False, "Pillow was built without WebP support"
        return True, ""

    def _roundtrip(self, img, setting):
        return _pil_roundtrip(img, "WEBP", quality=int(setting), method=6, lossless=False)


class AVIFCodec(Codec):
    """AVIF via Pillow's built-in plugin (libavif; aom encoder, dav1d decoder in the
    Pillow 13 wheels), ``speed=6``, 4:2:0. Bytes include the (small, ~250-byte) HEIF
    container, since that is what an .avif file costs."""

    name = "avif"
    settings = [0, 5, 10, 20, 30, 40, 50, 60]
    description = "Pillow AVIF (libavif/aom), speed=6, 4:2:0"

    def available(self):
        try:
            from PIL import features

            if not features.check("avif"):
                return False, "Pillow was built without AVIF support (features.check('avif') is False)"
        except Exception as e:  # old Pillow: unknown feature
            return False, f"Pillow has no AVIF support ({e})"
        return True, ""

    def _roundtrip(self, img, setting):
        return _pil_roundtrip(img, "AVIF", quality=int(setting), speed=6, subsampling="4:2:0")


class AV1Codec(Codec):
    """A single AV1 key frame via PyAV: encoder ``libsvtav1`` (CRF sweep, preset 8),
    ``yuv420p`` 8-bit (swscale's default BT.601 limited-range RGB<->YUV, both ways),
    decoded with ``libdav1d`` if PyAV has it, else FFmpeg's default AV1 decoder.

    Bytes = the raw AV1 bitstream (sum of the encoder's packet sizes: OBUs incl. the
    sequence header). No container overhead (no IVF/MP4/HEIF) is counted -- that
    makes it the "ideal" AV1-intra number, a few hundred bytes cheaper than ``avif``.
    Odd widths/heights are padded to even by edge replication and cropped back after
    decoding. SVT-AV1's console log is silenced via ``SVT_LOG=1`` (errors only) unless
    the caller already set ``SVT_LOG``.
    """

    name = "av1"
    settings = [63, 58, 52, 46, 40, 34]
    setting_prefix = "crf"
    preset = 8
    encoder = "libsvtav1"
    description = "PyAV libsvtav1 (preset 8) key frame, yuv420p, raw OBU bytes"

    def available(self):
        ok, reason = ffmpeg_encoder_status(self.encoder)
        return (True, f"decoder: {self.decoder_name()}") if ok else (False, reason)

    @staticmethod
    def decoder_name() -> str:
        return first_ffmpeg_codec(["libdav1d"], "r") or "av1"

    def _roundtrip(self, img, setting):
        from fractions import Fraction

        import av

        os.environ.setdefault("SVT_LOG", "1")
        src = np.asarray(img.convert("RGB"), dtype=np.uint8)
        h, w = src.shape[:2]
        ph, pw = h + (h & 1), w + (w & 1)
        if (ph, pw) != (h, w):
            src = np.pad(src, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        src = np.ascontiguousarray(src)

        t0 = time.perf_counter()
        enc = av.CodecContext.create(self.encoder, "w")
        enc.width, enc.height = pw, ph
        enc.pix_fmt = "yuv420p"
        enc.time_base = Fraction(1, 25)
        enc.framerate = Fraction(25, 1)
        enc.options = {"crf": str(int(setting)), "preset": str(self.preset)}
        frame = av.VideoFrame.from_ndarray(src, format="rgb24").reformat(format="yuv420p")
        frame.pts = 0
        packets = list(enc.encode(frame)) + list(enc.encode(None))
        payload = [bytes(p) for p in packets]
        t1 = time.perf_counter()
        n_bytes = sum(len(b) for b in payload)

        t2 = time.perf_counter()
        dec = av.CodecContext.create(self.decoder_name(), "r")
        frames = []
        for b in payload:
            frames.extend(dec.decode(av.Packet(b)))
        frames.extend(dec.decode(None))
        if not frames:
            raise RuntimeError("AV1 decoder returned no frame")
        out = frames[0].to_ndarray(format="rgb24")
        t3 = time.perf_counter()
        out = np.ascontiguousarray(out[:h, :w])
        return n_bytes, Image.fromarray(out, "RGB"), t1 - t0, t3 - t2


class JXLCodec(Codec):
    """JPEG XL, lossy (VarDCT), effort 7, via ``pillow-jxl-plugin`` (libjxl, Rust
    bindings) or, failing that, ``imagecodecs``. Bare codestream (no container), no
    metadata. Quality -> distance follows libjxl (q0 = distance 25, the floor)."""

    name = "jxl"
    settings = [0, 10, 20, 30, 40, 50, 60]
    effort = 7
    description = "libjxl lossy, effort 7"

    def _backend(self) -> tuple[str | None, str]:
        try:
            import pillow_jxl  # noqa: F401  (registers the JXL Pillow plugin)

            return "pillow-jxl-plugin", ""
        except Exception as e:
            err1 = f"pillow-jxl-plugin: {e}"
        try:
            import imagecodecs

            if getattr(imagecodecs, "JPEGXL", None) is not None and imagecodecs.JPEGXL.available:
                return "imagecodecs", ""
            err2 = "imagecodecs: built without JPEG XL"
        except Exception as e:
            err2 = f"imagecodecs: {e}"
        return None, f"no JPEG XL binding ({err1}; {err2}); pip install pillow-jxl-plugin"

    def available(self):
        backend, reason = self._backend()
        if backend is None:
            return False, reason
        return True, f"via {backend}"

    def _roundtrip(self, img, setting):
        backend, reason = self._backend()
        if backend == "pillow-jxl-plugin":
            return _pil_roundtrip(
                img, "JXL", quality=float(setting), effort=self.effort, lossless=False, lossless_jpeg=False,
                exif=b"", use_container=False,
            )
        if backend == "imagecodecs":
            import imagecodecs

            src = np.asarray(img.convert("RGB"), dtype=np.uint8)
            t0 = time.perf_counter()
            data = imagecodecs.jpegxl_encode(src, level=float(setting), effort=self.effort)
            t1 = time.perf_counter()
            out = imagecodecs.jpegxl_decode(data)
            t2 = time.perf_counter()
            return len(data), Image.fromarray(np.asarray(out, dtype=np.uint8)[..., :3], "RGB"), t1 - t0, t2 - t1
        raise RuntimeError(reason)


class VQZipCodec(Codec):
    """vqzip itself, through its Python API (imported lazily):

    ``vqzip.codec.encode_image(img, model=None, quality=None) -> bytes``,
    ``vqzip.codec.decode(data) -> PIL.Image`` and ``vqzip.zoo.list_points()``.

    Settings are the operating points from ``list_points()`` (or their quality numbers).
    Bytes = ``len(encode_image(...))``, i.e. the whole .vqz file.
    """

    name = "vqzip"
    setting_prefix = ""
    description = "vqzip (learned VQ tokenizer + AR prior + range coding)"

    def __init__(self) -> None:
        self._points: list | None = None
        self._error: str | None = None
        self.effort: int | None = None  # the encoder-side search's effort; None: vqzip's default

    def _load(self):
        # Only success is cached: a failed import is retried on the next call (cheap),
        # so a long-lived process picks the API up once it exists.
        if self._points is not None:
            return
        self._error = None
        try:
            from ..codec import decode, encode_image  # noqa: F401
            from ..zoo import list_points

            pts = list(list_points())
            if not pts:
                self._error = "vqzip.zoo.list_points() returned no operating points"
                return
            self._points = pts
        except Exception as e:  # ImportError while the API is being written, missing weights, ...
            self._error = f"vqzip API not usable ({type(e).__name__}: {e})"

    def available(self):
        self._load()
        if self._points is None:
            return False, self._error or "vqzip API not usable"
        return True, ""

    def reset(self) -> None:
        """Forget the cached operating points (e.g. after installing new models)."""
        self._points, self._error = None, None

    @property
    def settings(self):  # type: ignore[override]
        self._load()
        return list(self._points or [])

    @staticmethod
    def _quality(setting) -> int:
        """A setting is a zoo operating point (vqzip.zoo.Point) or its quality number."""
        q = getattr(setting, "quality", setting)
        if isinstance(q, bool) or not isinstance(q, int):
            raise TypeError(f"cannot interpret vqzip operating point {setting!r}")
        return q

    def effective_effort(self) -> int:
        from ..search import check_effort
        return check_effort(self.effort)

    def setting_label(self, setting):
        p = setting if hasattr(setting, "scale") else None
        if p is None:
            return f"q{self._quality(setting)}"
        refine = f" + refinement r{p.refine}" if getattr(p, "refine", None) is not None else ""
        # a point with alternatives is coded at whichever variant suits each image (vqzip/choice.py)
        n = len(getattr(p, "alternatives", ())) if self.effective_effort() else 0
        chosen = f" or {n} alternative{'s' * (n > 1)}" if n else ""
        return f"q{p.quality} ({p.model} x{p.scale}{refine}{chosen}, effort {self.effective_effort()})"

    def _roundtrip(self, img, setting):
        from ..codec import decode, encode_image

        src = _clean_rgb(img)
        t0 = time.perf_counter()
        data = encode_image(src, quality=self._quality(setting), effort=self.effort)
        t1 = time.perf_counter()
        out = decode(bytes(data))
        if isinstance(out, np.ndarray):
            out = Image.fromarray(out.astype(np.uint8))
        out = out.convert("RGB")
        t2 = time.perf_counter()
        if out.size != src.size:
            raise RuntimeError(f"vqzip: decoded size {out.size} != source size {src.size}")
        return len(data), out, t1 - t0, t2 - t1


CODECS: dict[str, Codec] = {
    c.name: c for c in (JPEGCodec(), WebPCodec(), AVIFCodec(), AV1Codec(), JXLCodec(), VQZipCodec())
}
DEFAULT_CODECS: list[str] = ["vqzip", "jpeg", "webp", "avif", "av1", "jxl"]
_ALIASES = {"jpg": "jpeg", "jpegxl": "jxl", "jpeg-xl": "jxl", "svtav1": "av1", "svt-av1": "av1", "vqz": "vqzip"}


def first_ffmpeg_codec(names, mode: str) -> str | None:
    """The first of `names` that PyAV's FFmpeg has as an encoder (mode "w") or decoder ("r")."""
    import av

    for n in names:
        try:
            av.codec.Codec(n, mode)
            return n
        except Exception:
            pass
    return None


def ffmpeg_encoder_status(encoder: str) -> tuple[bool, str]:
    """(available, reason) for an FFmpeg encoder reached through PyAV."""
    try:
        import av  # noqa: F401
    except Exception as e:
        return False, f"PyAV is not installed ({e})"
    if first_ffmpeg_codec([encoder], "w") is None:
        return False, f"PyAV's FFmpeg has no {encoder} encoder"
    return True, ""


def get_codec(name: str) -> Codec:
    """Codec by (case-insensitive) name or alias; ``KeyError`` lists known names."""
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in CODECS:
        raise KeyError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")
    return CODECS[key]


def list_codecs() -> dict[str, tuple[bool, str]]:
    """``{name: (available, reason)}`` for every registered codec."""
    out = {}
    for name, c in CODECS.items():
        try:
            out[name] = c.available()
        except Exception as e:  # available() must never crash the bench
            out[name] = (False, f"{type(e).__name__}: {e}")
    return out


def codec_versions() -> dict[str, str]:
    """Best-effort library versions (pillow, libjpeg, libwebp, libavif, aom/dav1d, av, FFmpeg libs, jxl)."""
    v: dict[str, str] = {}
    try:
        import PIL
        from PIL import features

        v["pillow"] = PIL.__version__
        for feat, key in (("jpg", "libjpeg"), ("webp", "libwebp"), ("avif", "libavif")):
            try:
                ver = features.version(feat)
                if ver:
                    v[key] = str(ver)
            except Exception:
                pass
        try:
            from PIL import AvifImagePlugin

            cv = AvifImagePlugin._avif.codec_versions()  # e.g. "dav1d [dec]:1.5.3, aom [enc]:3.14.1"
            v["avif_codecs"] = cv
            for part in cv.split(","):
                name, _, ver = part.strip().partition(":")
                if name.startswith("aom"):
                    v["libaom"] = ver.strip()
        except Exception:
            pass
    except Exception:
        pass
    try:
        import av

        v["av"] = av.__version__
        try:
            v["ffmpeg_libavcodec"] = ".".join(map(str, av.library_versions["libavcodec"]))
        except Exception:
            pass
    except Exception:
        pass
    try:
        from importlib.metadata import version

        for dist in ("pillow-jxl-plugin", "imagecodecs"):
            try:
                v[dist] = version(dist)
            except Exception:
                pass
    except Exception:
        pass
    return v
