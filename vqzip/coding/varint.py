"""LEB128 varints: the lengths of a predicted frame's parts (inter.py, motion.py)."""
from __future__ import annotations

from ..errors import FormatError


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def read_varint(data: bytes) -> tuple[int, int]:
    """(value, bytes it took) of the varint `data` starts with (at most 4 bytes)."""
    n = shift = 0
    for i, b in enumerate(data[:4]):
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i + 1
    raise FormatError("file is corrupted (bad inter frame)")
