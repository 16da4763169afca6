"""`vqzip info --heatmap`: the bits of every 16x16 block, from the exact models' code lengths."""
import numpy as np
import pytest
from PIL import Image

from conftest import SEARCHED, macaw, run_cli
from vqzip import codec, heatmap, video
from vqzip.coding import container
from vqzip.coding.entropy import code_lengths

HERE = __import__("pathlib").Path(__file__).resolve().parent


def tolerance(streams: int, symbols: int) -> float:
    """How far the code lengths' sum may be from the payload's bits. The range coder writes 32-bit
    words and ends a stream by flushing its state, at most two words: up to 64 bits a stream, either
    way (the last word also holds fractional bits the sum counts). And constriction rounds each
    probability to 24-bit fixed point, which moves a symbol's cost by a few millionths of a bit
    (1e-4 a symbol is generous). Measured: 5-22 bits on base layers, 25-45 on refinement layers of
    9k to 295k symbols (Kodak crops and kodim05 at q1-q8)."""
    return 64 * streams + 1e-4 * symbols


@pytest.fixture(scope="module")
def refined(tmp_path_factory):
    """A crop coded with both layers (q3), as a file."""
    p = tmp_path_factory.mktemp("heat") / "macaw.vqz"
    p.write_bytes(codec.encode_image(macaw(SEARCHED), quality=3, effort=0))
    return p


def test_map_sums_to_the_payload(refined):
    data = refined.read_bytes()
    bm = heatmap.of_image(data)
    header, payload = container.unpack(data)
    layer = container.layers(data)[0]
    assert bm.coded_bits == (len(payload) + len(layer)) * 8
    assert bm.bits.shape == (12, 16)  # 256 x 192 in 16 px blocks
    symbols = header.grid_h * header.grid_w * 2 + 48 * (2 * header.grid_h) * (2 * header.grid_w)
    assert abs(bm.bits.sum() - bm.coded_bits) <= tolerance(2, symbols)
    assert (bm.bits > 0).all()


def test_each_layer_on_its_own(refined):
    data = refined.read_bytes()
    header, payload = container.unpack(data)
    m = codec.model_for(header)
    surprise = np.zeros((header.grid_h, header.grid_w), np.int64)
    tokens, bits = code_lengths(m.prior, header.grid_h, header.grid_w, payload, surprise)
    assert np.array_equal(tokens, codec.decode_tokens_of(data)[1])
    assert abs(bits.sum() - len(payload) * 8) <= tolerance(1, tokens.size * 2)
    coder, shape, side, chunk = codec.refinement_inputs(data, header, m, tokens, surprise)
    symbols, layer = coder.symbol_bits(shape, side, chunk)
    assert np.array_equal(symbols, codec.refinement_of(data)) and layer.shape == symbols.shape
    assert abs(layer.sum() - len(chunk) * 8) <= tolerance(1, layer.size)


def test_video_key_and_predicted_frames():
    data = (HERE / "golden" / "pan.vqz").read_bytes()  # 5 frames, GOPs of 3: K P P K P
    for frame, kind in [(0, "key"), (1, "predicted"), (2, "predicted"), (3, "key"), (4, "predicted")]:
        bm = heatmap.of_file(data, frame)
        assert bm.what == f"{kind} frame {frame}" and bm.picture.size == (64, 48)
        assert abs(bm.bits.sum() - bm.coded_bits) <= tolerance(1, 12 * 20)
    tokens = dict(video.decode_tokens_of(video.parse(data)))
    assert np.array_equal(video.frame_code_lengths(video.parse(data), 4)[0], tokens[4])


def test_cli_writes_the_png(refined, tmp_path):
    out = tmp_path / "h.png"
    r = run_cli("info", refined, "--heatmap", out, check=True)
    assert f"heatmap: {out}" in r.stdout
    im = Image.open(out)
    assert im.format == "PNG" and im.size == (360, 192 + 64)  # the picture, and a legend under it
    assert run_cli("info", refined, "--heatmap", out).returncode == 1  # no overwrite without --force
    assert run_cli("info", refined, "--heatmap", out, "--force").returncode == 0
    r = run_cli("info", HERE / "golden" / "pan.vqz", "--heatmap", tmp_path / "v.png", "--frame", "4", check=True)
    assert "predicted frame 4" in r.stdout


@pytest.mark.parametrize("damage,needle", [
    (lambda d: d[:-6] + bytes([d[-6] ^ 1]) + d[-5:], "refinement layer is corrupted"),
    (lambda d: d[:60], "truncated"),
    (lambda d: d[:30] + bytes([d[30] ^ 1]) + d[31:], "corrupted"),
])
def test_damaged_file_is_one_line(refined, tmp_path, damage, needle):
    bad = tmp_path / "bad.vqz"
    bad.write_bytes(damage(refined.read_bytes()))
    r = run_cli("info", bad, "--heatmap", tmp_path / "h.png")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "h.png").exists()


def test_frame_needs_a_video(refined, tmp_path):
    r = run_cli("info", refined, "--heatmap", tmp_path / "h.png", "--frame", "1")
    assert r.returncode == 1 and "--frame is for a video" in r.stderr
    r = run_cli("info", HERE / "golden" / "pan.vqz", "--heatmap", tmp_path / "h.png", "--frame", "9")
    assert r.returncode == 1 and "frames 0 to 4" in r.stderr
