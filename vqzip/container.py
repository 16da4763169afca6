"""The .vqz file format.

All integers are little-endian:

    magic  b"VQZ1"            4 bytes
    format version            uint16
    header length             uint32   (bytes of header body)
    header body               fixed struct (_FIXED), then model id, mode, extra JSON
    payload                   payload_len bytes
    CRC32                     uint32   of everything before it

Version 2 adds layers after that base part: each one a chunk of its own,

    tag b"RFN1"               4 bytes  (a refinement layer, vqzip/refine.py)
    chunk length              uint32
    chunk payload             chunk length bytes
    CRC32                     uint32   of the tag, length and payload

so a file cut after its base part is still a whole base layer (`vqzip decode --layers 1`), and a
damaged layer is told apart from a damaged base. Version 2 also allows scales up to 4 (version 1:
2). A file that needs neither is written as version 1, byte for byte what earlier vqzip wrote and
still can read. The base part's CRC ends it, so
corruption is told apart from "newer version" before the rest of the layout is trusted. unpack() treats its input as hostile: every
declared length is checked against the real data before anything is sliced or parsed, and any
problem is a FormatError.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict, dataclass, field

from .errors import FormatError

MAGIC = b"VQZ1"
FORMAT_VERSION = 2      # the newest this vqzip reads and writes
BASE_VERSION = 1        # what a file without layers is written as
REFINE_TAG = b"RFN1"

MAX_SIDE = 1 << 16              # width and height of the original image
MAX_GRID_TOKENS = 1 << 24       # grid_h * grid_w
MAX_MODEL_ID_BYTES = 64
MAX_MODE_BYTES = 16
MAX_EXTRA_BYTES = 64 * 1024
MAX_SCALE = 4                   # version 1 allowed 2
KINDS = ("image", "video")

_PREAMBLE = struct.Struct("<4sHI")  # magic, format version, header length
# kind, bit_depth, weights_hash, width, height, grid_h, grid_w, scale_num, scale_den,
# payload_len, model_id length, mode length, extra length
_FIXED = struct.Struct("<BB8sIIIIHHQBBI")
_CRC = struct.Struct("<I")
_CHUNK = struct.Struct("<4sI")  # tag, length
MAX_HEADER_BYTES = _FIXED.size + MAX_MODEL_ID_BYTES + MAX_MODE_BYTES + MAX_EXTRA_BYTES
HEADER_PREFIX_BYTES = _PREAMBLE.size + MAX_HEADER_BYTES  # enough of any file to read its header
_MIN_FILE_BYTES = _PREAMBLE.size + _FIXED.size + _CRC.size


@dataclass(frozen=True)
class Header:
    """What a decoder needs besides the payload. width/height are the original image's size;
    the image may have been encoded at width*scale_num/scale_den. `extra` holds JSON-native
    values only (dicts with str keys, lists, str, numbers, bools, None)."""
    kind: str
    model_id: str
    weights_hash: bytes         # first 8 bytes of sha256 of the model's weights
    width: int
    height: int
    mode: str                   # PIL mode of the original: "RGB", "L", "RGBA", "I;16", ...
    bit_depth: int              # 8 or 16
    grid_h: int
    grid_w: int
    scale_num: int = 1
    scale_den: int = 1
    extra: dict = field(default_factory=dict)


def _problem(h: Header) -> str | None:
    """Why `h` can't be stored (or can't have been stored by a real encoder), or None."""
    if h.kind not in KINDS:
        return f"unknown kind {h.kind!r}"
    # Printable because model ids end up in one-line error messages.
    if not (h.model_id.isprintable() and 1 <= len(h.model_id.encode()) <= MAX_MODEL_ID_BYTES):
        return f"model id must be 1 to {MAX_MODEL_ID_BYTES} printable bytes"
    if len(h.weights_hash) != 8:
        return "weights hash must be 8 bytes"
    if not (1 <= h.width <= MAX_SIDE and 1 <= h.height <= MAX_SIDE):
        return f"image size {h.width}x{h.height} is outside 1..{MAX_SIDE}"
    if not (h.mode.isascii() and h.mode.isprintable() and 1 <= len(h.mode) <= MAX_MODE_BYTES):
        return f"bad image mode {h.mode!r}"
    if h.bit_depth not in (8, 16):
        return f"bit depth {h.bit_depth} is not 8 or 16"
    # A token covers at least one pixel, so the grid can't outgrow the image.
    if not (1 <= h.grid_h <= h.height and 1 <= h.grid_w <= h.width
            and h.grid_h * h.grid_w <= MAX_GRID_TOKENS):
        return f"token grid {h.grid_h}x{h.grid_w} does not fit a {h.width}x{h.height} image"
    # up to 4x: a model may code an image at a finer token grid than its stride gives
    if not (1 <= h.scale_num <= 0xFFFF and 1 <= h.scale_den <= 0xFFFF and h.scale_num <= MAX_SCALE * h.scale_den):
        return f"scale {h.scale_num}/{h.scale_den} is not in (0, {MAX_SCALE}]"
    if not isinstance(h.extra, dict):
        return "extra must be a dict"
    return None


def pack(header: Header, payload: bytes, layers: tuple[bytes, ...] = ()) -> bytes:
    """Serialize a header, the base payload and any further layers into a .vqz file. A header that
    unpack() would reject is a bug in the caller, so it raises ValueError rather than FormatError."""
    problem = _problem(header)
    if problem:
        raise ValueError(f"cannot pack header: {problem}")
    try:
        extra = json.dumps(header.extra, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False).encode() if header.extra else b""
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot pack header: extra is not JSON-serializable ({e})") from None
    if len(extra) > MAX_EXTRA_BYTES:
        raise ValueError(
            f"cannot pack header: extra is {len(extra)} bytes, limit {MAX_EXTRA_BYTES}")
    model_id, mode = header.model_id.encode(), header.mode.encode()
    body = _FIXED.pack(
        KINDS.index(header.kind), header.bit_depth, header.weights_hash, header.width,
        header.height, header.grid_h, header.grid_w, header.scale_num, header.scale_den,
        len(payload), len(model_id), len(mode), len(extra),
    ) + model_id + mode + extra
    new = layers or header.scale_num > 2 * header.scale_den  # what version 1 readers would refuse
    data = _PREAMBLE.pack(MAGIC, FORMAT_VERSION if new else BASE_VERSION, len(body)) + body + bytes(payload)
    out = [data, _CRC.pack(zlib.crc32(data))]
    for layer in layers:
        chunk = _CHUNK.pack(REFINE_TAG, len(layer)) + bytes(layer)
        out += [chunk, _CRC.pack(zlib.crc32(chunk))]
    return b"".join(out)


def _truncated(expected: int, got: int, at_least: bool = False) -> FormatError:
    bound = "at least " if at_least else ""
    return FormatError(f"file is truncated (expected {bound}{expected} bytes, got {got})")


def _base_end(data: bytes, version: int, header_len: int) -> int:
    """Where the base part ends: the whole file in version 1, its declared sizes after that."""
    if version != 2 or len(data) < _PREAMBLE.size + _FIXED.size:
        return len(data)
    payload_len = _FIXED.unpack_from(data, _PREAMBLE.size)[9]
    return min(len(data), _PREAMBLE.size + header_len + payload_len + _CRC.size)


def _check_crc(data: bytes, version: int, header_len: int) -> None:
    """`data`: the base part."""
    (stored,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(data[:-_CRC.size]) == stored:
        return
    # A truncated file fails the CRC too; if the declared sizes say so, report that instead.
    if 1 <= version <= FORMAT_VERSION and len(data) >= _PREAMBLE.size + _FIXED.size:
        payload_len = _FIXED.unpack_from(data, _PREAMBLE.size)[9]
        expected = _PREAMBLE.size + header_len + payload_len + _CRC.size
        if expected > len(data):
            raise _truncated(expected, len(data))
    elif len(data) < _MIN_FILE_BYTES:
        raise _truncated(_MIN_FILE_BYTES, len(data), at_least=True)
    raise FormatError("file is corrupted (CRC mismatch)")


def _parse(data: bytes, verify: bool) -> tuple[Header, int, int]:
    """Validate `data` and return (header, payload offset, payload length). Layers after the base
    part are left to layers()."""
    if data[:len(MAGIC)] != MAGIC:
        if MAGIC.startswith(data):
            raise _truncated(_MIN_FILE_BYTES, len(data), at_least=True)
        raise FormatError("not a vqzip file (bad magic)")
    if len(data) < _PREAMBLE.size + (_CRC.size if verify else 0):
        raise _truncated(_MIN_FILE_BYTES, len(data), at_least=True)
    _, version, header_len = _PREAMBLE.unpack_from(data)
    end = _base_end(data, version, header_len)
    if verify:
        _check_crc(data[:end], version, header_len)
    if version > FORMAT_VERSION:
        raise FormatError(f"made by a newer vqzip (format version {version}); "
                          f"this vqzip reads versions up to {FORMAT_VERSION}")
    if version < 1:
        raise FormatError(f"file is corrupted (unknown format version {version})")
    if not _FIXED.size <= header_len <= MAX_HEADER_BYTES:
        raise FormatError(f"file is corrupted (header length {header_len})")
    start = _PREAMBLE.size + header_len
    if len(data) < start:
        raise _truncated(start, len(data), at_least=True)

    (kind, bit_depth, weights_hash, width, height, grid_h, grid_w, scale_num, scale_den,
     payload_len, model_id_len, mode_len, extra_len) = _FIXED.unpack_from(data, _PREAMBLE.size)
    if _FIXED.size + model_id_len + mode_len + extra_len != header_len:
        raise FormatError("file is corrupted (header field lengths disagree)")
    if kind >= len(KINDS):
        raise FormatError(f"file is corrupted (unknown kind {kind})")
    model_id_at = _PREAMBLE.size + _FIXED.size
    mode_at, extra_at = model_id_at + model_id_len, start - extra_len
    try:
        model_id = data[model_id_at:mode_at].decode()
        mode = data[mode_at:extra_at].decode()
        extra = json.loads(data[extra_at:start]) if extra_len else {}
    # RecursionError: deeply nested JSON such as "[[[[...".
    except (ValueError, RecursionError):
        raise FormatError("file is corrupted (unreadable header text)") from None

    header = Header(KINDS[kind], model_id, weights_hash, width, height, mode, bit_depth,
                    grid_h, grid_w, scale_num, scale_den, extra)
    problem = _problem(header)
    if problem:
        raise FormatError(f"file is corrupted ({problem})")
    if verify and start + payload_len + _CRC.size != end:
        raise FormatError(f"file is corrupted (payload length {payload_len} does not match "
                          f"file size {len(data)})")
    return header, start, payload_len


def unpack(data: bytes, verify: bool = True) -> tuple[Header, bytes]:
    """Parse a whole .vqz file. Raises FormatError, and nothing else, for any bad input. With
    verify=False a damaged file is taken as it is: only the header must be sound, and the payload
    is whatever of it the file holds (for salvaging what a damaged video still has)."""
    header, start, payload_len = _parse(data, verify)
    return header, data[start:start + payload_len]


def layers(data: bytes) -> list[bytes]:
    """The payloads of the layers after a verified file's base part (none in version 1). A damaged
    or cut layer is a FormatError that says so, so a caller can still offer the base layer."""
    _, version, header_len = _PREAMBLE.unpack_from(data)
    at, out = _base_end(data, version, header_len), []
    while at < len(data):
        if len(data) - at < _CHUNK.size + _CRC.size:
            raise FormatError("refinement layer is truncated (--layers 1 decodes the base layer)")
        tag, n = _CHUNK.unpack_from(data, at)
        end = at + _CHUNK.size + n
        if tag != REFINE_TAG:
            raise FormatError("refinement layer is corrupted (unknown chunk; --layers 1 decodes the base layer)")
        if end + _CRC.size > len(data):
            raise FormatError("refinement layer is truncated (--layers 1 decodes the base layer)")
        if zlib.crc32(data[at:end]) != _CRC.unpack_from(data, end)[0]:
            raise FormatError("refinement layer is corrupted (CRC mismatch; --layers 1 decodes the base layer)")
        out.append(data[at + _CHUNK.size:end])
        at = end + _CRC.size
    return out


def read_header(data: bytes, verify: bool = True) -> Header:
    """The header of a .vqz file. With verify=False, `data` may be just the start of the file
    (at least the header) and the CRC and payload are not checked, e.g. to describe a damaged
    file; the header itself is still validated."""
    return _parse(data, verify)[0]


def kind_of(data: bytes) -> str | None:
    """"image" or "video" from the start of a file (its header, unverified), or None if that is
    unreadable: enough to route a file to the right decoder, which then checks everything."""
    try:
        return _parse(data, verify=False)[0].kind
    except FormatError:
        return None


def describe(header: Header) -> dict:
    """A JSON-serializable view of a header, for `vqzip info --json`."""
    return asdict(header) | {"weights_hash": header.weights_hash.hex()}
