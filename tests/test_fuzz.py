"""Hostile inputs: .vqz files and image files an attacker (or a broken disk) could hand us.

A hostile .vqz must decode to an image of the size its header declares or raise a VqzipError with a
one-line message, within a few seconds. Random byte edits nearly always fail the CRC, so most cases
recompute it to reach the header checks, the model lookup, check_header, the range decoder and the
tokenizer. The generators live in benchmarks/fuzz.py, which runs the long (10,000-case) version;
here hypothesis drives them for about 300 cases.
"""
import importlib.util
import io
import struct
import time
import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from conftest import KODAK, run_cli
from vqzip import codec
from vqzip.coding.entropy import decode_tokens
from vqzip.errors import FormatError, InputError, VqzipError

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("vqzip_fuzz", ROOT / "benchmarks" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

CASE_SECONDS = 5.0
# hypothesis examples per generator: about 300 in all
CASES = {"mutate": 45, "truncate": 30, "insert_delete": 30, "resealed": 45, "forged_header": 70,
         "forged_payload": 35, "forged_consistent": 45, "video": 60, "refined": 40, "compact": 40}
# Smaller than the benchmark's bounds: these cases run the whole decoder, keep CI quick.
GENERATORS = fuzz.GENERATORS | {
    "forged_consistent": partial(fuzz.gen_forged_consistent, max_tokens=64, max_pixels=1 << 18)}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Decoding tiny images with several threads on a busy machine is slower, not faster (and
    timings swing wildly): one thread keeps the per-case limit meaningful."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def seed():
    """A real .vqz of a 64x48 crop of kodim23, default model."""
    return fuzz.make_seed()


def _forge_seed_header(seed, **fields):
    """The seed file's header with some fields replaced, a payload, and a valid CRC."""
    f = {k: v for k, v in seed.fields.items() if not k.endswith("_len")}
    payload = fields.pop("payload", seed.payload)
    model_id = fields.pop("model_id", seed.model_id)
    extra = fields.pop("extra", seed.extra)
    return fuzz.raw_pack(f | fields, model_id, seed.mode, extra, payload)


@pytest.mark.parametrize("category", list(CASES))
def test_hostile_vqz(category, seed):
    gen = GENERATORS[category]

    @settings(max_examples=CASES[category], deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(rng=st.randoms(use_true_random=False))
    def case(rng):
        data, note = gen(rng, seed)
        t0 = time.process_time()  # CPU time: the work the file causes, whatever else the machine runs
        try:
            fuzz.check_case(data)  # decode, info, read_header: success or a one-line VqzipError
        except Exception as e:
            raise AssertionError(f"[{category}] {note}: {type(e).__name__}: {e} "
                                 f"(file {len(data)} bytes, starts {data[:48].hex()})") from e
        dt = time.process_time() - t0
        assert dt < CASE_SECONDS, f"[{category}] {note}: took {dt:.2f} CPU s"

    case()


def test_seed_file_round_trips(seed):
    """The generators start from a real file: it must decode, or every forged case is moot."""
    assert fuzz.check_case(seed.data) == "decoded"
    assert (seed.header.width, seed.header.height) == (64, 48)
    assert fuzz.check_case(seed.video.data) == "decoded"
    assert seed.video.header.kind == "video" and seed.video.header.extra["frames"] == 5


def test_invalid_token_stream_is_a_format_error(seed):
    """Regression: constriction raises AssertionError on words no range encoder could have
    written (a payload of 0xFF words is one, whatever the model). It must be a FormatError."""
    with pytest.raises(FormatError, match="not a valid token stream"):
        codec.decode(_forge_seed_header(seed, payload=b"\xff" * 8))

    class SkewedPrior:  # the same without any model: one fixed, very skewed distribution
        def run(self, h, w, code):
            freqs = np.tile(np.array([1, 1, 1, 1 << 24], np.int64), (h * w, 1))
            return torch.as_tensor(code("hi", np.arange(h * w), freqs)).view(h, w)

    with pytest.raises(FormatError, match="not a valid token stream"):
        decode_tokens(SkewedPrior(), 4, 4, b"\xff" * 8)
    assert decode_tokens(SkewedPrior(), 4, 4, b"").shape == (4, 4)


@pytest.mark.parametrize("fields,needle", [
    # over the pixel limit, grid consistent with size and stride: check_header must stop it
    (dict(width=65536, height=65536, grid_h=4096, grid_w=4096, scale_num=1, scale_den=1), "pixel limit"),
    (dict(width=10001, height=10000, grid_h=625, grid_w=626, scale_num=1, scale_den=1), "pixel limit"),
    (dict(grid_h=1, grid_w=1), "token grid does not match"),
    (dict(model_id=b"../f16-lfq20"), "not installed"),
    (dict(weights_hash=b"\0" * 8), "different version of model"),
    (dict(payload=b"\1\2\3"), "whole number of 32-bit words"),
    (dict(extra=b"[" * 60000), "unreadable header text"),
    (dict(kind=1), "not an image"),
])
def test_forged_headers_fail_fast(seed, fields, needle):
    data = _forge_seed_header(seed, **fields)
    t0 = time.perf_counter()
    with pytest.raises(VqzipError, match=needle):
        codec.decode(data)
    assert time.perf_counter() - t0 < 1.0


def test_cli_on_hostile_files(tmp_path, seed):
    """The real entry point: exit 1, one line on stderr that starts with `error:`, no traceback."""
    good = bytearray(seed.data)
    good[20] ^= 0x40
    files = {
        "crc.vqz": bytes(good),                                               # CRC mismatch
        "tokens.vqz": _forge_seed_header(seed, payload=b"\xff" * 8),          # range decoder
        "huge.vqz": _forge_seed_header(seed, width=65536, height=65536, grid_h=4096, grid_w=4096,
                                       scale_num=1, scale_den=1),             # pixel limit
        "json.vqz": _forge_seed_header(seed, extra=b'{"alpha":'),              # header text
    }
    runs = [("decode", "crc.vqz", "CRC mismatch"), ("decode", "tokens.vqz", "not a valid token stream"),
            ("decode", "huge.vqz", "pixel limit"), ("info", "json.vqz", "unreadable header text")]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for cmd, name, needle in runs:
        args = [cmd, tmp_path / name] + (["-o", tmp_path / f"{name}.png"] if cmd == "decode" else [])
        r = run_cli(*args)
        assert r.returncode == 1, (cmd, name, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (cmd, name, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr, (cmd, name, r.stderr)
        assert not (tmp_path / f"{name}.png").exists()


# -- hostile input images ---------------------------------------------------------------------
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int) -> bytes:
    """A PNG whose IHDR (with a correct CRC) declares width x height RGB, with a tiny IDAT."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b""))


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.open(KODAK / "kodim23.png").crop((0, 0, 128, 96)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("name,content,needle", [
    ("bomb.png", lambda: _png(100_000, 100_000), "too large"),     # past Pillow's own bomb limit
    ("big.png", lambda: _png(12_000, 12_000), "too large"),        # past ours, under Pillow's
    ("wide.png", lambda: _png(70_000, 10), "too large"),           # a side over MAX_SIDE
    ("limit.png", lambda: _png(10_000, 10_000), "truncated"),      # at the limit, no pixel data
    ("zero.png", lambda: _png(0, 0), "not a supported image"),
    ("empty.png", lambda: b"", "empty file"),
    ("notes.png", lambda: b"hello, I am text\n", "not a supported image"),
    ("cut.jpg", lambda: _jpeg()[:len(_jpeg()) // 2], "truncated"),
    ("head.jpg", lambda: _jpeg()[:200], "not a supported image"),
])
def test_hostile_images_raise_input_error(tmp_path, name, content, needle):
    p = tmp_path / name
    p.write_bytes(content())
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=needle) as e:
        codec.encode_image(p)
    assert time.perf_counter() - t0 < 2.0
    assert "\n" not in str(e.value) and name in str(e.value)
