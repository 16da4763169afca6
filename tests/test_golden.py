"""Golden files: .vqz files made once and committed must decode the same way forever.

Exact parts are checked exactly (payload bytes of a fixed token grid, decoded tokens); pixels come
from float convolutions whose last bits may differ between CPU kinds, so they are checked against
the recorded decode to within one level.

Regenerate (only with a format-version bump or new shipped weights): python tests/test_golden.py --write
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent / "golden"
RECORD = HERE / "golden.json"


def fixed_grid(bits: int) -> np.ndarray:
    """A token grid that is the same on every platform (PCG64 is a stable generator)."""
    return np.random.default_rng(2026).integers(0, 2 ** bits, (5, 7))


def current():
    from vqzip import codec, zoo
    from vqzip.entropy import encode_tokens
    point = zoo.resolve()
    m = zoo.get_model(point.model)
    src = Image.open(Path(__file__).resolve().parents[2] / "shared/data/kodak/kodim23.png").crop((300, 100, 428, 196))
    return m, codec, encode_tokens, point, src


def test_fixed_tokens_give_the_recorded_bitstream():
    rec = json.loads(RECORD.read_text())
    from vqzip import zoo
    from vqzip.entropy import decode_tokens, encode_tokens
    m = zoo.get_model(rec["model"])
    grid = fixed_grid(m.tokenizer.cfg.token_bits)
    data = encode_tokens(m.prior, grid)
    assert hashlib.sha256(data).hexdigest() == rec["grid_payload_sha256"]
    assert (decode_tokens(m.prior, *grid.shape, data) == grid).all()


def test_golden_file_decodes_as_recorded():
    rec = json.loads(RECORD.read_text())
    from vqzip import codec
    data = (HERE / "kodim23_crop.vqz").read_bytes()
    header, tokens = codec.decode_tokens_of(data)
    assert hashlib.sha256(tokens.astype("<i8").tobytes()).hexdigest() == rec["tokens_sha256"]
    got = np.asarray(codec.decode(data), np.int16)
    want = np.asarray(Image.open(HERE / "kodim23_crop.decoded.png"), np.int16)
    assert got.shape == want.shape
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def write():
    m, codec, encode_tokens, point, src = current()
    src.save(HERE / "kodim23_crop.png")
    data = codec.encode_image(HERE / "kodim23_crop.png")
    (HERE / "kodim23_crop.vqz").write_bytes(data)
    header, tokens = codec.decode_tokens_of(data)
    codec.decode(data).save(HERE / "kodim23_crop.decoded.png")
    grid = fixed_grid(m.tokenizer.cfg.token_bits)
    RECORD.write_text(json.dumps({
        "model": point.model, "quality": point.quality, "weights_hash": m.weights_hash.hex(),
        "tokens_sha256": hashlib.sha256(tokens.astype("<i8").tobytes()).hexdigest(),
        "grid_payload_sha256": hashlib.sha256(encode_tokens(m.prior, grid)).hexdigest(),
    }, indent=2) + "\n")
    print(f"wrote golden files for {point.model} q{point.quality}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        write()
