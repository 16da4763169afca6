"""The Pillow plugin: `import vqzip` makes .vqz a format Pillow opens and saves."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import vqzip  # noqa: F401  (registers the plugin)
from conftest import SMALL, macaw, run_cli
from vqzip import codec
from vqzip.coding import container


def test_import_registers_without_torch():
    code = ("import sys, vqzip; from PIL import Image; "
            "print('VQZ' in Image.OPEN, Image.EXTENSION.get('.vqz'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "VQZ", "False"]


def test_open_reads_the_header_only(macaw_vqz):
    code = ("import sys, vqzip; from PIL import Image; im = Image.open(sys.argv[1]); "
            "print(im.format, im.size, im.mode, 'vqzip.codec' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(macaw_vqz)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "VQZ (128, 96) RGB False"  # no pixels decoded, no torch imported


def test_load_gives_the_decoded_pixels(macaw_vqz):
    with Image.open(macaw_vqz) as im:
        im.load()
        got = np.asarray(im)
    assert np.array_equal(got, np.asarray(codec.decode(macaw_vqz.read_bytes())))


def test_save_writes_the_cli_bytes(macaw_png, macaw_vqz, tmp_path):
    with Image.open(macaw_png) as im:
        im.save(tmp_path / "pil.vqz", quality=3)
        im.save(tmp_path / "pil_e0.vqz", quality=3, effort=0)
    assert (tmp_path / "pil.vqz").read_bytes() == macaw_vqz.read_bytes()
    run_cli("encode", macaw_png, "-q", "3", "-e", "0", "-o", tmp_path / "cli_e0.vqz", check=True)
    assert (tmp_path / "pil_e0.vqz").read_bytes() == (tmp_path / "cli_e0.vqz").read_bytes()
    assert (tmp_path / "pil_e0.vqz").read_bytes() != macaw_vqz.read_bytes()  # the effort was passed on (and recorded)


def test_modes_come_back_as_the_header_says(tmp_path):
    gray = macaw(SMALL).convert("LA")
    gray.save(tmp_path / "g.vqz", quality=1)
    with Image.open(tmp_path / "g.vqz") as im:
        assert im.mode == "LA"
        im.load()
        assert im.getpixel((0, 0))[1] == 255


def test_errors_are_pillows_with_vqzips_message(macaw_vqz, tmp_path):
    data = macaw_vqz.read_bytes()
    bad_header = tmp_path / "h.vqz"
    bad_header.write_bytes(data[:12])
    with pytest.raises(UnidentifiedImageError, match="truncated|corrupted"):
        Image.open(bad_header)
    bad_payload = tmp_path / "p.vqz"
    bad_payload.write_bytes(data[:-8] + bytes([data[-8] ^ 0x40]) + data[-7:])
    with Image.open(bad_payload) as im:  # the header is sound: opening is fine
        with pytest.raises(OSError, match="corrupted"):
            im.load()
    video = tmp_path / "v.vqz"
    header = container.read_header(data)
    video.write_bytes(container.pack(container.Header(**{**header.__dict__, "kind": "video", "extra": {}}), b""))
    with pytest.raises(UnidentifiedImageError, match="video"):
        Image.open(video)
    with pytest.raises(ValueError, match="99"):
        macaw(SMALL).save(tmp_path / "q.vqz", quality=99)
