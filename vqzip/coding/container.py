"""The .vqz file format.

All integers are little-endian:

    magic  b"VQZ1"            4 bytes
    format version            uint16
    header length             uint32   (bytes of header body)
    header body               fixed struct (_FIXED), then model id, mode, extra JSON
    payload                   payload_len bytes
    CRC32                     uint32   of everything before it

Version 2 adds layers after that base part: each one a chunk of its own,

    tag b"RFN1"               4 bytes  (a refinement layer, vqzip/nn/refine.py)
    chunk length              uint32
    chunk payload             chunk length bytes
    CRC32                     uint32   of the tag, length and payload

so a file cut after its base part is still a whole base layer (`vqzip decode --layers 1`), and a
damaged layer is told apart from a damaged base. Version 2 also allows scales up to 4 (version 1:
2). `pack` without a version writes a file that needs neither as version 1, byte for byte what
earlier vqzip wrote (videos are still written so).

Version 3 (images since the learned refinement entropy model) holds the same Header in a compact
binary form. Version 2's header was about 143 bytes of a 2.7 KB default file (5 %), mostly its JSON
extra (the refinement layer's weights hash as 16 hex digits) and fixed-width fields:

    magic b"VQZ1", format version uint16      as before
    header length             varint (LEB128)
    header body               flags (kind, 16-bit depth, mode index), model id (length byte +
                              bytes), weights hash (8 bytes), width, height, grid_h, grid_w,
                              scale_num, scale_den, payload_len (varints), extra (_pack_extra:
                              alpha, the refinement's rate and weights hash, and the effort in
                              binary; anything else as JSON)
    payload
    CRC32                     uint32   of everything before it
    layers, each:             tag (1 byte: 1 = refinement), length (varint), payload,
                              CRC32 of everything before it, the whole file so far

so a version 3 file, layered or not, ends with the CRC of all that precedes it, and vqzip 2 tells
it "made by a newer vqzip" rather than "corrupted".

Version 4 is version 3's layout for refined videos (video format 4: refined key frames and the
inter layer, vqzip/video_layers.py). Their frames are of types a version 3 reader does not know:
the new number makes it say "made by a newer vqzip" instead of misreading them as corrupted. In every version the base part's CRC ends it,
so corruption is told apart from "newer version" before the rest of the layout is trusted.
unpack() treats its input as hostile: every declared length is checked against the real data
before anything is sliced or parsed, and any problem is a FormatError.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict, dataclass, field

from ..errors import FormatError
from .varint import varint

MAGIC = b"VQZ1"
FORMAT_VERSION = 4      # the newest this vqzip reads and writes
BASE_VERSION = 1        # what pack() without a version writes for a file without layers
LAYERED_VERSION = 2     # ... and for one with layers (or a scale over 2)
COMPACT_VERSION = 3     # the compact binary header (images)
VIDEO_VERSION = 4       # the same layout, for refined videos (video format 4, vqzip/video_layers.py)
_COMPACT_VERSIONS = (COMPACT_VERSION, VIDEO_VERSION)
REFINE_TAG = b"RFN1"
COMPACT_REFINE_TAG = 1

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


def pack(header: Header, payload: bytes, layers: tuple[bytes, ...] = (), version: int | None = None) -> bytes:
    """Serialize a header, the base payload and any further layers into a .vqz file: in `version`
    COMPACT_VERSION, or by default in the oldest of versions 1 and 2 that can hold it. A header
    that unpack() would reject is a bug in the caller, so it raises ValueError rather than
    FormatError."""
    problem = _problem(header)
    if problem:
        raise ValueError(f"cannot pack header: {problem}")
    if version in _COMPACT_VERSIONS:
        return _pack_compact(header, payload, layers, version)
    if version is not None:
        raise ValueError(f"cannot pack format version {version} (only {COMPACT_VERSION}, {VIDEO_VERSION} or the default)")
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
    data = _PREAMBLE.pack(MAGIC, LAYERED_VERSION if new else BASE_VERSION, len(body)) + body + bytes(payload)
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
    if _version(data) in _COMPACT_VERSIONS:
        return _parse_compact(data, verify)
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
    if _version(data) in _COMPACT_VERSIONS:
        return _compact_layers(data)
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


def base_size(data: bytes) -> int:
    """How many bytes of a file its base part takes (the rest are its layers): what a file cut
    after its base layer keeps."""
    if _version(data) in _COMPACT_VERSIONS:
        _, start, payload_len = _compact_header(data)
        return start + payload_len + _CRC.size
    _, version, header_len = _PREAMBLE.unpack_from(data)
    return _base_end(data, version, header_len)


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


# -- version 3: the compact header -----------------------------------------------------------------

_VERSION = struct.Struct("<H")
# PIL modes by code (bits 2-7 of the flags byte; 0: the mode's name follows)
MODES = ("RGB", "L", "RGBA", "LA", "I;16", "P", "1", "I", "F", "CMYK", "YCbCr", "I;16B", "I;16L", "RGBX", "PA",
         "LAB", "HSV")
# which of the usual extras follow the header's numbers in binary; anything else is JSON
_ALPHA, _REFINE, _EFFORT, _JSON = 1, 2, 4, 8
_LAYER_ERR = "--layers 1 decodes the base layer"


def _version(data: bytes) -> int | None:
    return _VERSION.unpack_from(data, len(MAGIC))[0] if len(data) >= len(MAGIC) + _VERSION.size else None


class _Reader:
    """Reads a compact header; any read past `end` or unreadable field is a FormatError, raised
    as truncation when the data simply stops."""

    def __init__(self, data: bytes, at: int, end: int | None = None):
        self.data, self.at, self.end = data, at, len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.at + n > self.end:
            if self.end == len(self.data):
                raise _truncated(self.at + n, len(self.data), at_least=True)
            raise FormatError("file is corrupted (header fields overrun the header)")
        self.at += n
        return self.data[self.at - n:self.at]

    def varint(self, limit: int = 1 << 40) -> int:
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if n > limit or shift > 42:
                raise FormatError("file is corrupted (a header number is out of range)")
            if not b & 0x80:
                return n


def _is_hash_hex(v) -> bool:
    return isinstance(v, str) and len(v) == 16 and all(c in "0123456789abcdef" for c in v)


def _pack_extra(extra: dict) -> bytes:
    rest, flags, out = dict(extra), 0, b""
    if rest.get("alpha") is True:
        flags |= _ALPHA
        del rest["alpha"]
    spec = rest.get("refine")
    if isinstance(spec, dict) and set(spec) == {"rate", "weights"} and type(spec["rate"]) is int \
            and 0 <= spec["rate"] < 256 and _is_hash_hex(spec["weights"]):
        flags |= _REFINE
        out += bytes([spec["rate"]]) + bytes.fromhex(spec["weights"])
        del rest["refine"]
    if type(rest.get("effort")) is int and 0 <= rest["effort"] < 256:
        flags |= _EFFORT
        out += bytes([rest.pop("effort")])
    if rest:  # what has no binary form keeps its JSON (e.g. a forged refinement spec, in tests)
        j = json.dumps(rest, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        if len(j) > MAX_EXTRA_BYTES:
            raise ValueError(f"cannot pack header: extra is {len(j)} bytes, limit {MAX_EXTRA_BYTES}")
        flags |= _JSON
        out += varint(len(j)) + j
    return bytes([flags]) + out


def _read_extra(r: _Reader) -> dict:
    flags = r.take(1)[0]
    if flags & ~(_ALPHA | _REFINE | _EFFORT | _JSON):
        raise FormatError("file is corrupted (unknown header flags)")
    extra: dict = {}
    if flags & _ALPHA:
        extra["alpha"] = True
    if flags & _REFINE:
        extra["refine"] = {"rate": r.take(1)[0], "weights": r.take(8).hex()}
    if flags & _EFFORT:
        extra["effort"] = r.take(1)[0]
    if flags & _JSON:
        text = r.take(r.varint(MAX_EXTRA_BYTES))
        try:
            rest = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: deeply nested JSON such as "[[[[..."
            raise FormatError("file is corrupted (unreadable header text)") from None
        if not isinstance(rest, dict) or set(rest) & set(extra):
            raise FormatError("file is corrupted (unreadable header text)")
        extra |= rest
    return extra


def _pack_compact(h: Header, payload: bytes, layers: tuple[bytes, ...], version: int = COMPACT_VERSION) -> bytes:
    mode, model_id = h.mode.encode(), h.model_id.encode()
    code = MODES.index(h.mode) + 1 if h.mode in MODES else 0
    body = bytes([KINDS.index(h.kind) | (2 if h.bit_depth == 16 else 0) | code << 2])
    body += (b"" if code else bytes([len(mode)]) + mode) + bytes([len(model_id)]) + model_id + h.weights_hash
    body += b"".join(varint(v) for v in (h.width, h.height, h.grid_h, h.grid_w, h.scale_num, h.scale_den, len(payload)))
    body += _pack_extra(h.extra)
    if len(body) > MAX_HEADER_BYTES:
        raise ValueError(f"cannot pack header: {len(body)} bytes, limit {MAX_HEADER_BYTES}")
    out = bytearray(MAGIC + _VERSION.pack(version) + varint(len(body)) + body + bytes(payload))
    out += _CRC.pack(zlib.crc32(out))
    for layer in layers:
        out += bytes([COMPACT_REFINE_TAG]) + varint(len(layer)) + bytes(layer)
        out += _CRC.pack(zlib.crc32(out))  # of the whole file so far: a version 3 file ends with its CRC
    return bytes(out)


def _compact_header(data: bytes) -> tuple[Header, int, int]:
    """(header, payload offset, payload length) of a version 3 file, from its header alone."""
    r = _Reader(data, len(MAGIC) + _VERSION.size)
    body_len = r.varint(MAX_HEADER_BYTES)
    start = r.at + body_len
    r.end = min(start, len(data))
    flags = r.take(1)[0]
    kind, depth, code = flags & 1, 16 if flags & 2 else 8, flags >> 2
    if code > len(MODES):
        raise FormatError(f"file is corrupted (unknown mode code {code})")
    try:
        mode = MODES[code - 1] if code else r.take(r.take(1)[0]).decode()
        model_id = r.take(r.take(1)[0]).decode()
    except UnicodeDecodeError:
        raise FormatError("file is corrupted (unreadable header text)") from None
    weights_hash = r.take(8)
    width, height, grid_h, grid_w, scale_num, scale_den = (r.varint(1 << 32) for _ in range(6))
    payload_len = r.varint()
    extra = _read_extra(r)
    if r.at != start:
        raise FormatError("file is corrupted (header field lengths disagree)")
    header = Header(KINDS[kind], model_id, weights_hash, width, height, mode, depth, grid_h, grid_w,
                    scale_num, scale_den, extra)
    problem = _problem(header)
    if problem:
        raise FormatError(f"file is corrupted ({problem})")
    return header, start, payload_len


def _parse_compact(data: bytes, verify: bool) -> tuple[Header, int, int]:
    header, start, payload_len = _compact_header(data)
    end = start + payload_len + _CRC.size
    if verify:
        if end > len(data):
            raise _truncated(end, len(data))
        if zlib.crc32(data[:end - _CRC.size]) != _CRC.unpack_from(data, end - _CRC.size)[0]:
            raise FormatError("file is corrupted (CRC mismatch)")
    return header, start, payload_len


def _compact_layers(data: bytes) -> list[bytes]:
    at, out = base_size(data), []
    while at < len(data):
        r = _Reader(data, at)
        try:
            tag, n = r.take(1)[0], r.varint(len(data))
            body = r.take(n)
            stored = _CRC.unpack(r.take(_CRC.size))[0]
        except FormatError:
            raise FormatError(f"refinement layer is truncated ({_LAYER_ERR})") from None
        if tag != COMPACT_REFINE_TAG:
            raise FormatError(f"refinement layer is corrupted (unknown chunk; {_LAYER_ERR})")
        if zlib.crc32(data[:r.at - _CRC.size]) != stored:
            raise FormatError(f"refinement layer is corrupted (CRC mismatch; {_LAYER_ERR})")
        out.append(body)
        at = r.at
    return out


def describe(header: Header) -> dict:
    """A JSON-serializable view of a header, for `vqzip info --json`."""
    return asdict(header) | {"weights_hash": header.weights_hash.hex()}
