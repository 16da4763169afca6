import json
import struct
import time
import zlib
from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from vqzip.coding import container
from vqzip.coding.container import (BASE_VERSION, COMPACT_VERSION, FORMAT_VERSION, LAYERED_VERSION, MAGIC, Header, describe,
                             layers, pack, read_header, unpack)
from vqzip.errors import FormatError

HEADER = Header(kind="image", model_id="lfq16-small", weights_hash=bytes(range(1, 9)),
                width=40, height=30, mode="RGBA", bit_depth=8, grid_h=2, grid_w=3,
                scale_num=1, scale_den=2, extra={"alpha": True})
PAYLOAD = bytes(range(20))
DATA = pack(HEADER, PAYLOAD)

# The _FIXED struct's fields, in order, to forge headers by name.
FIELDS = ("kind", "bit_depth", "weights_hash", "width", "height", "grid_h", "grid_w",
          "scale_num", "scale_den", "payload_len", "model_id_len", "mode_len", "extra_len")
PREAMBLE = 10  # magic, version, header length


def reseal(data: bytes) -> bytes:
    """Replace the CRC so that only the structural checks can catch a forgery."""
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def forge(data: bytes = DATA, *, version=None, header_len=None, **fields) -> bytes:
    magic, v, hl = struct.unpack_from("<4sHI", data)
    values = dict(zip(FIELDS, container._FIXED.unpack_from(data, PREAMBLE)))
    values.update(fields)
    out = (struct.pack("<4sHI", magic, v if version is None else version,
                       hl if header_len is None else header_len)
           + container._FIXED.pack(*values.values()) + data[PREAMBLE + container._FIXED.size:])
    return reseal(out)


def error(data) -> str:
    with pytest.raises(FormatError) as e:
        unpack(data)
    return str(e.value)


def test_round_trip():
    assert unpack(DATA) == (HEADER, PAYLOAD)
    assert read_header(DATA) == HEADER
    assert DATA.startswith(MAGIC + struct.pack("<H", BASE_VERSION))  # no layers: what version 1 wrote
    assert layers(DATA) == []


@pytest.mark.parametrize("header", [
    Header("video", "m", b"\0" * 8, 1, 1, "L", 16, 1, 1),
    Header("image", "модель-ü", b"\xff" * 8, 1 << 16, 1 << 16, "I;16", 16, 4096, 4096,
           3, 7, {"frames": [1, 2.5, None], "s": "ü"}),
])
def test_round_trip_edge_values(header):
    assert unpack(pack(header, b"")) == (header, b"")


def test_read_header_without_verify_needs_only_the_header():
    header_end = len(DATA) - len(PAYLOAD) - 4
    assert read_header(DATA[:header_end], verify=False) == HEADER
    damaged = DATA[:-5] + bytes([DATA[-5] ^ 1]) + DATA[-4:]
    assert read_header(damaged, verify=False) == HEADER
    with pytest.raises(FormatError, match="CRC mismatch"):
        read_header(damaged)
    with pytest.raises(FormatError, match="truncated"):
        read_header(DATA[:header_end - 1], verify=False)


def test_kind_of_routes_from_the_header_alone():
    header_end = len(DATA) - len(PAYLOAD) - 4
    assert container.kind_of(DATA[:header_end]) == "image"
    assert container.kind_of(DATA[:-5] + bytes([DATA[-5] ^ 1]) + DATA[-4:]) == "image"  # payload damage
    assert container.kind_of(pack(replace(HEADER, kind="video"), PAYLOAD)) == "video"
    assert container.kind_of(b"not a vqz file") is None
    assert container.kind_of(DATA[:header_end - 1]) is None
    assert container.HEADER_PREFIX_BYTES >= PREAMBLE + container.MAX_HEADER_BYTES


def test_describe_is_json_friendly():
    d = describe(HEADER)
    assert json.loads(json.dumps(d)) == d
    assert d["weights_hash"] == "0102030405060708"
    assert (d["width"], d["grid_w"], d["scale_den"], d["extra"]) == (40, 3, 2, {"alpha": True})


def test_every_truncation_is_reported_as_truncation():
    for n in range(len(DATA)):
        assert error(DATA[:n]).startswith("file is truncated"), n
    n = len(DATA)
    assert error(DATA[:-1]) == f"file is truncated (expected {n} bytes, got {n - 1})"


def test_every_single_bit_flip_is_caught():
    messages = set()
    for bit in range(len(DATA) * 8):
        flipped = bytearray(DATA)
        flipped[bit // 8] ^= 1 << (bit % 8)
        messages.add(error(bytes(flipped)).split(" (")[0])
    # Flips in the magic or in a length field may be worded differently; none get through.
    assert messages <= {"file is corrupted", "not a vqzip file", "file is truncated"}
    assert "file is corrupted" in messages


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data):
    with pytest.raises(FormatError):
        unpack(data)
    with pytest.raises(FormatError):
        unpack(MAGIC + data)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(4, len(DATA) - len(PAYLOAD) - 5), st.integers(0, 255)),
                min_size=1, max_size=4))
def test_forged_header_bytes_with_valid_crc(edits):
    forged_round_trip(DATA, edits)


def forged_round_trip(data: bytes, edits, version=None):
    """`data` with bytes replaced and its CRC made valid again: refused, or whatever gets through
    is a well-formed header that packs again."""
    forged = bytearray(data)
    for pos, value in edits:
        forged[pos] = value
    try:
        header, payload = unpack(reseal(bytes(forged)))
    except FormatError:
        return
    assert unpack(pack(header, payload, version=version)) == (header, payload)


def test_newer_version():
    assert error(forge(version=5)) == \
        "made by a newer vqzip (format version 5); this vqzip reads versions up to 4"
    assert error(forge(version=0)) == "file is corrupted (unknown format version 0)"


def test_bad_magic():
    assert error(b"PK\x03\x04" + DATA[4:]) == "not a vqzip file (bad magic)"
    assert error(b"hello") == "not a vqzip file (bad magic)"


def test_crc_mismatch():
    assert error(DATA[:-1] + bytes([DATA[-1] ^ 0x80])) == "file is corrupted (CRC mismatch)"


@pytest.mark.parametrize("forgery, message", [
    (dict(header_len=0xFFFFFFFF), "header length 4294967295"),
    (dict(header_len=3), "header length 3"),
    (dict(payload_len=2**64 - 1), "does not match file size"),
    (dict(payload_len=0), "does not match file size"),
    (dict(extra_len=2**32 - 1), "header field lengths disagree"),
    (dict(model_id_len=255), "header field lengths disagree"),
    (dict(width=0), "image size 0x30"),
    (dict(height=2**32 - 1), "outside 1..65536"),
    (dict(grid_h=2**16, grid_w=2**16), "token grid"),
    (dict(grid_h=31), "token grid"),
    (dict(scale_num=9, scale_den=2), "scale 9/2"),
    (dict(scale_den=0), "scale 1/0"),
    (dict(kind=7), "unknown kind 7"),
    (dict(bit_depth=12), "bit depth 12"),
])
def test_forged_fields_are_rejected_quickly(forgery, message):
    start = time.perf_counter()
    assert message in error(forge(**forgery))
    assert time.perf_counter() - start < 0.5


def test_huge_declared_payload_in_a_short_file_is_truncation():
    # Not resealed: as read from a partial download.
    data = forge(payload_len=2**63)[:-4] + DATA[-4:]
    assert error(data).startswith(f"file is truncated (expected {2**63 + len(DATA) - len(PAYLOAD)}")


def _with_text(model_id: bytes = b"m", mode: bytes = b"RGB", extra: bytes = b"") -> bytes:
    """A file whose variable-length header fields are raw bytes, lengths consistent."""
    fixed = container._FIXED.pack(0, 8, b"\0" * 8, 4, 4, 1, 1, 1, 1, 0,
                                  len(model_id), len(mode), len(extra))
    body = fixed + model_id + mode + extra
    return reseal(MAGIC + struct.pack("<HI", 1, len(body)) + body + b"\0" * 4)


def test_forged_text_fields():
    assert unpack(_with_text()) == (Header("image", "m", b"\0" * 8, 4, 4, "RGB", 8, 1, 1), b"")
    assert "unreadable header text" in error(_with_text(model_id=b"\xff\xfe"))
    assert "unreadable header text" in error(_with_text(extra=b"{not json"))
    assert "unreadable header text" in error(_with_text(extra=b"[" * 60000))  # RecursionError
    assert "unreadable header text" in error(_with_text(extra=b"9" * 5000))  # int digit limit
    assert "extra must be a dict" in error(_with_text(extra=b"[1, 2]"))
    assert "model id must be" in error(_with_text(model_id=b""))
    assert "model id must be" in error(_with_text(model_id=b"two\nlines"))
    assert "bad image mode" in error(_with_text(mode=b"R\x00B"))


@pytest.mark.parametrize("change, message", [
    (dict(width=0), "image size"),
    (dict(kind="audio"), "unknown kind"),
    (dict(model_id="x" * 65), "model id"),
    (dict(weights_hash=b"short"), "weights hash"),
    (dict(mode="RGB" * 6), "bad image mode"),
    (dict(bit_depth=10), "bit depth"),
    (dict(grid_h=0), "token grid"),
    (dict(scale_num=0), "scale"),
    (dict(extra=[1]), "extra must be a dict"),
    (dict(extra={"x": object()}), "not JSON-serializable"),
    (dict(extra={"x": float("nan")}), "not JSON-serializable"),
    (dict(extra={"x": "y" * (64 * 1024)}), "limit 65536"),
])
def test_pack_rejects_bad_headers(change, message):
    with pytest.raises(ValueError, match=message):
        pack(replace(HEADER, **change), PAYLOAD)


LAYERED = pack(HEADER, PAYLOAD, (b"refine", b""))


def test_layers_follow_the_base_part_each_with_its_crc():
    assert LAYERED.startswith(MAGIC + struct.pack("<H", LAYERED_VERSION)) and LAYERED_VERSION == 2
    assert unpack(LAYERED) == (HEADER, PAYLOAD)
    assert layers(LAYERED) == [b"refine", b""]
    base = LAYERED[:len(LAYERED) - (12 + 6) - 12]
    assert unpack(base) == (HEADER, PAYLOAD) and layers(base) == []  # cut after the base: still whole


def test_a_damaged_layer_leaves_the_base_readable():
    bad = bytearray(LAYERED)
    bad[-20] ^= 1  # inside the first layer
    assert unpack(bytes(bad)) == (HEADER, PAYLOAD)
    with pytest.raises(FormatError, match="refinement layer is corrupted"):
        layers(bytes(bad))
    with pytest.raises(FormatError, match="refinement layer is truncated"):
        layers(LAYERED[:-3])
    with pytest.raises(FormatError, match="unknown chunk"):
        layers(LAYERED + b"JUNKJUNKJUNK")


def test_a_damaged_base_is_still_caught_in_a_layered_file():
    bad = bytearray(LAYERED)
    bad[PREAMBLE + 10] ^= 1
    with pytest.raises(FormatError, match="corrupted"):
        unpack(bytes(bad))


def test_scales_over_2_are_version_2():
    big = replace(HEADER, width=40, height=30, grid_h=8, grid_w=10, scale_num=5, scale_den=2)
    data = pack(big, PAYLOAD)
    assert data[4:6] == struct.pack("<H", 2) and unpack(data) == (big, PAYLOAD)


# -- version 3: the compact header ---------------------------------------------------------------

REFINED = replace(HEADER, mode="RGB", extra={"refine": {"rate": 1, "weights": "00ff00ff00ff00ff"}, "effort": 8})
COMPACT = pack(REFINED, PAYLOAD, (b"refine",), version=COMPACT_VERSION)


def test_the_compact_header_round_trips_and_is_small():
    assert COMPACT.startswith(MAGIC + struct.pack("<H", COMPACT_VERSION)) and FORMAT_VERSION == COMPACT_VERSION + 1
    assert unpack(COMPACT) == (REFINED, PAYLOAD) and layers(COMPACT) == [b"refine"]
    old = pack(REFINED, PAYLOAD, (b"refine",))
    overhead = lambda d: len(d) - len(PAYLOAD) - len(b"refine")
    # a refined file's header and framing: 56 bytes instead of 145 here
    assert overhead(COMPACT) <= overhead(old) - 85 and overhead(COMPACT) <= 60


@pytest.mark.parametrize("header", [
    Header("video", "m", b"\0" * 8, 1, 1, "L", 16, 1, 1),
    Header("image", "модель-ü", b"\xff" * 8, 1 << 16, 1 << 16, "I;16", 16, 4096, 4096,
           3, 7, {"frames": [1, 2.5, None], "s": "ü"}),
    Header("image", "m", b"\1" * 8, 9, 9, "XYZ", 8, 1, 1, extra={"alpha": True, "effort": 3}),
    # what has no binary form (a forged refinement entry) keeps its JSON, unchanged
    Header("image", "m", b"\1" * 8, 9, 9, "RGB", 8, 1, 1, extra={"refine": {"rate": True, "weights": "x"}, "effort": -1}),
])
def test_compact_round_trip_edge_values(header):
    assert unpack(pack(header, PAYLOAD, version=COMPACT_VERSION)) == (header, PAYLOAD)


def test_compact_truncation_and_bit_flips_are_caught():
    base = container.base_size(COMPACT)
    for n in range(base):
        assert error(COMPACT[:n]).startswith(("file is truncated", "file is corrupted")), n
    assert unpack(COMPACT[:base]) == (REFINED, PAYLOAD) and layers(COMPACT[:base]) == []  # cut after the base
    for n in range(base + 1, len(COMPACT)):
        with pytest.raises(FormatError, match="refinement layer is (truncated|corrupted)"):
            layers(COMPACT[:n])
    for bit in range(len(COMPACT) * 8):
        flipped = bytearray(COMPACT)
        flipped[bit // 8] ^= 1 << (bit % 8)
        try:
            unpack(bytes(flipped))
            layers(bytes(flipped))
        except FormatError:
            continue
        raise AssertionError(f"bit {bit} got through")


def test_a_compact_file_ends_with_the_crc_of_all_before_it():
    """So that vqzip 2, which checks the last four bytes first, says "made by a newer vqzip"."""
    for data in (COMPACT, pack(REFINED, PAYLOAD, version=COMPACT_VERSION)):
        assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(6, 40), st.integers(0, 255)), min_size=1, max_size=4))
def test_forged_compact_headers_with_valid_crc(edits):
    forged_round_trip(COMPACT[:container.base_size(COMPACT)], edits, COMPACT_VERSION)
