import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, features

from vqzip import media
from vqzip.errors import InputError
from vqzip.media import atomic_write_bytes, load_image, restore_mode, save_image


def gradient(w=16, h=12) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return np.stack([x * 15, y * 20, (x + y) * 7], axis=-1).astype(np.uint8)


def raw_png(w, h, bit_depth=8, color_type=0, rows=b"") -> bytes:
    """A PNG built by hand, for what Pillow can't write: 48-bit RGB, forged dimensions."""
    def chunk(kind, data):
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def load_error(path) -> str:
    with pytest.raises(InputError) as e:
        load_image(path)
    return str(e.value)


# --- load_image -------------------------------------------------------------------------------

def test_rgb_png(tmp_path):
    Image.fromarray(gradient()).save(tmp_path / "a.png")
    img, info = load_image(tmp_path / "a.png")
    assert img.mode == "RGB"
    assert np.array_equal(np.asarray(img), gradient())
    assert info == {"mode": "RGB", "bit_depth": 8, "alpha": False, "width": 16, "height": 12}


def test_grayscale_round_trip(tmp_path):
    gray = gradient()[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    img, info = load_image(tmp_path / "g.png")
    assert (info["mode"], info["bit_depth"], info["alpha"]) == ("L", 8, False)
    a = np.asarray(img)
    assert img.mode == "RGB" and np.array_equal(a[..., 0], gray) and np.array_equal(a[..., 2], gray)
    back = restore_mode(img, info["mode"], info["bit_depth"], info["alpha"])
    assert back.mode == "L" and np.array_equal(np.asarray(back), gray)


def test_rgba_drops_alpha_and_restores_it_opaque(tmp_path):
    rgba = np.dstack([gradient(), np.full((12, 16), 0, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "a.png")
    img, info = load_image(tmp_path / "a.png")
    assert info["mode"] == "RGBA" and info["alpha"]
    # Colours under fully transparent pixels are kept, not blacked out by premultiplying.
    assert img.mode == "RGB" and np.array_equal(np.asarray(img), gradient())
    back = restore_mode(img, info["mode"], info["bit_depth"], info["alpha"])
    assert back.mode == "RGBA" and np.all(np.asarray(back)[..., 3] == 255)


def test_gray_alpha(tmp_path):
    Image.new("LA", (4, 4), (90, 10)).save(tmp_path / "la.png")
    img, info = load_image(tmp_path / "la.png")
    assert info["alpha"] and img.getpixel((0, 0)) == (90, 90, 90)
    back = restore_mode(img, info["mode"], info["bit_depth"], info["alpha"])
    assert back.mode == "LA" and back.getpixel((0, 0)) == (90, 255)


def test_16bit_grayscale_png(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    img, info = load_image(tmp_path / "g16.png")
    assert info["bit_depth"] == 16 and info["mode"].startswith("I")
    assert np.asarray(img)[0, :, 0].tolist() == [0, 100, 255, 4]  # rounded, not clipped
    back = restore_mode(img, info["mode"], info["bit_depth"], info["alpha"])
    assert back.mode == "I;16"
    assert np.asarray(back)[0].tolist() == [0, 257 * 100, 65535, 4 * 257]


def test_32bit_integer_tiff_is_clipped_to_16_bits(tmp_path):
    Image.fromarray(np.array([[0, 65535, 10**6]], dtype=np.int32)).save(tmp_path / "i.tif")
    img, info = load_image(tmp_path / "i.tif")
    assert (info["mode"], info["bit_depth"]) == ("I", 16)
    assert np.asarray(img)[0, :, 1].tolist() == [0, 255, 255]


def test_16bit_rgb_png(tmp_path):
    rows = b"".join(b"\0" + bytes([0x12, 0x34] * 3 * 4) for _ in range(3))
    (tmp_path / "rgb48.png").write_bytes(raw_png(4, 3, 16, 2, rows))
    img, info = load_image(tmp_path / "rgb48.png")
    assert (info["mode"], info["bit_depth"], img.size) == ("RGB", 16, (4, 3))
    assert img.getpixel((0, 0)) == (0x12, 0x12, 0x12)
    # 16-bit RGB comes back as 8-bit RGB.
    assert restore_mode(img, info["mode"], info["bit_depth"], info["alpha"]).mode == "RGB"


def test_565_bmp_is_8bit(tmp_path):
    # 16 bits per pixel, not per sample: its raw mode "BGR;16" must not read as 16-bit.
    pixels = struct.pack("<HH", 0xF800, 0x07E0) * 2
    info = struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 16, 3, len(pixels), 0, 0, 0, 0)
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)
    offset = 14 + len(info) + len(masks)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    (tmp_path / "565.bmp").write_bytes(header + info + masks + pixels)
    img, info = load_image(tmp_path / "565.bmp")
    assert info["bit_depth"] == 8 and img.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("transparency, alpha", [(None, False), (0, True)])
def test_palette(tmp_path, transparency, alpha):
    im = Image.new("P", (4, 2))
    im.putpalette([0, 0, 0, 200, 50, 25] + [0] * 762)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "p.png", **({} if transparency is None else {"transparency": 0}))
    img, info = load_image(tmp_path / "p.png")
    assert (info["mode"], info["alpha"]) == ("P", alpha)
    assert img.mode == "RGB" and img.getpixel((1, 0)) == (200, 50, 25)
    assert restore_mode(img, info["mode"], 8, alpha).mode == ("RGBA" if alpha else "RGB")


def test_exif_rotated_jpeg(tmp_path):
    # Stored 40 wide: left half red, right half blue. Orientation 6 = rotate 90° clockwise.
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20, 0] = 255
    a[:, 20:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif, quality=95)
    img, info = load_image(tmp_path / "r.jpg")
    assert img.size == (20, 40) and (info["width"], info["height"]) == (20, 40)
    top, bottom = img.getpixel((10, 5)), img.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 50
    assert bottom[2] > 200 and bottom[0] < 50


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img, info = load_image(tmp_path / "c.jpg")
    assert info["mode"] == "CMYK" and img.mode == "RGB"
    r, g, b = img.getpixel((4, 4))
    assert r > 200 and g < 50 and b < 50
    assert restore_mode(img, info["mode"], 8, False).mode == "RGB"


@pytest.mark.parametrize("ext, options, lossless", [
    ("bmp", {}, True),
    ("tif", {}, True),
    ("tiff", {"compression": "tiff_lzw"}, True),
    ("webp", {"lossless": True}, True),
    ("webp", {"quality": 80}, False),
    pytest.param("avif", {}, False, marks=pytest.mark.skipif(
        not features.check("avif"), reason="Pillow built without AVIF")),
])
def test_other_input_formats(tmp_path, ext, options, lossless):
    Image.fromarray(gradient()).save(tmp_path / f"x.{ext}", **options)
    img, info = load_image(tmp_path / f"x.{ext}")
    assert img.mode == "RGB" and img.size == (16, 12) and info["bit_depth"] == 8
    if lossless:
        assert np.array_equal(np.asarray(img), gradient())


def test_missing_file(tmp_path):
    assert load_error(tmp_path / "nope.png") == f"no such file: {tmp_path / 'nope.png'}"


def test_directory(tmp_path):
    assert "is a directory" in load_error(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    (tmp_path / "secret.png").write_bytes(b"x")
    (tmp_path / "secret.png").chmod(0)
    assert load_error(tmp_path / "secret.png").endswith("cannot read (Permission denied)")


def test_empty_file(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    assert load_error(tmp_path / "e.png") == f"{tmp_path / 'e.png'}: empty file"


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("just some text\n")
    message = load_error(tmp_path / "notes.png")
    assert message == f"{tmp_path / 'notes.png'}: not a supported image (unrecognized format)"


def test_truncated_image(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[:len(data) // 2])
    message = load_error(tmp_path / "t.png")
    assert "not a supported image" in message and "\n" not in message


def test_zero_size_image(tmp_path):
    (tmp_path / "z.png").write_bytes(raw_png(0, 5))
    assert "not a supported image" in load_error(tmp_path / "z.png")


def test_bomb_over_our_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "MAX_PIXELS", 100)
    Image.new("RGB", (11, 10)).save(tmp_path / "b.png")
    assert "image too large (11x10" in load_error(tmp_path / "b.png")
    Image.new("RGB", (10, 10)).save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png")[0].size == (10, 10)


@pytest.mark.parametrize("w, h", [
    (12_000, 9_000),      # over MAX_PIXELS, under Pillow's own limit
    (100_000, 100_000),   # over Pillow's limit: DecompressionBombError
    (70_000, 1),          # over the container's MAX_SIDE
])
def test_bomb_declared_in_header(tmp_path, w, h):
    # The header lies about a tiny file; it must be rejected before any pixel is decoded.
    (tmp_path / "bomb.png").write_bytes(raw_png(w, h, 1, 0, b"\0" * 8))
    assert "image too large" in load_error(tmp_path / "bomb.png")


# --- saving -----------------------------------------------------------------------------------

GRAY = np.asarray(Image.fromarray(gradient()).convert("L"))
MODES = {
    "RGB": Image.fromarray(gradient()),
    "L": Image.fromarray(GRAY),
    "RGBA": restore_mode(Image.fromarray(gradient()), "RGBA", 8, True),
    "LA": restore_mode(Image.fromarray(gradient()), "LA", 8, True),
    "I;16": restore_mode(Image.fromarray(gradient()), "I;16", 16, False),
}


def as_rgb8(img: Image.Image) -> np.ndarray:
    if img.mode == "I;16":  # Pillow's convert() would clip it
        return np.repeat((np.asarray(img) // 257)[..., None], 3, axis=-1).astype(int)
    return np.asarray(img.convert("RGB"), dtype=int)


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "JPG", "webp", "bmp", "tif", "tiff"])
@pytest.mark.parametrize("mode", MODES)
def test_save_every_format_and_mode(tmp_path, ext, mode):
    save_image(MODES[mode], tmp_path / f"out.{ext}")
    with Image.open(tmp_path / f"out.{ext}") as back:
        assert back.size == (16, 12)
        error = np.abs(as_rgb8(back) - as_rgb8(MODES[mode])).max()
    assert error <= (16 if ext.lower() in ("jpg", "jpeg") else 0)  # JPEG: 4:2:0 chroma
    assert os.listdir(tmp_path) == [f"out.{ext}"]  # no temp file left behind


def test_16bit_is_scaled_not_clipped_for_8bit_formats(tmp_path):
    img = Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))
    save_image(img, tmp_path / "x.bmp")
    assert np.asarray(Image.open(tmp_path / "x.bmp").convert("L"))[0].tolist() == [0, 100, 255]


def test_save_keeps_modes_the_format_stores(tmp_path):
    for mode in ("L", "RGBA", "LA", "I;16"):
        save_image(MODES[mode], tmp_path / f"{mode.replace(';', '')}.png")
        assert Image.open(tmp_path / f"{mode.replace(';', '')}.png").mode == mode
    # WebP has no gray+alpha mode, but keeps the alpha through RGBA.
    save_image(Image.new("LA", (4, 4), (90, 128)), tmp_path / "la.webp")
    assert Image.open(tmp_path / "la.webp").getpixel((0, 0)) == (90, 90, 90, 128)


def test_save_refuses_to_overwrite(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(InputError, match=r"out\.png exists \(use --force to overwrite\)"):
        save_image(MODES["RGB"], target)
    assert target.read_bytes() == b"precious"
    save_image(MODES["RGB"], target, force=True)
    assert Image.open(target).size == (16, 12)
    assert os.listdir(tmp_path) == ["out.png"]


@pytest.mark.parametrize("name", ["out.gif", "out"])
def test_unknown_output_extension(tmp_path, name):
    with pytest.raises(InputError, match=r"unsupported output format .*\.png.*\.webp") as e:
        save_image(MODES["RGB"], tmp_path / name)
    assert "\n" not in str(e.value)
    assert os.listdir(tmp_path) == []


def test_save_encoder_failure(tmp_path):
    with pytest.raises(InputError, match="cannot write as WEBP"):
        save_image(Image.new("RGB", (20_000, 1)), tmp_path / "wide.webp")  # WebP max is 16383
    assert os.listdir(tmp_path) == []


# --- atomic_write_bytes -----------------------------------------------------------------------

def test_atomic_write(tmp_path):
    atomic_write_bytes(tmp_path / "a.vqz", b"data")
    assert (tmp_path / "a.vqz").read_bytes() == b"data"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.vqz").stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(InputError, match="exists"):
        atomic_write_bytes(tmp_path / "a.vqz", b"other")
    atomic_write_bytes(tmp_path / "a.vqz", b"other", force=True)
    assert (tmp_path / "a.vqz").read_bytes() == b"other"
    assert os.listdir(tmp_path) == ["a.vqz"]


def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch):
    def fail(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(InputError, match="cannot write .*a.vqz: No space left on device"):
        atomic_write_bytes(tmp_path / "a.vqz", b"data")
    assert os.listdir(tmp_path) == []


def test_atomic_write_interrupted_leaves_nothing(tmp_path, monkeypatch):
    def interrupt(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "a.vqz", b"data")
    assert os.listdir(tmp_path) == []


def test_atomic_write_bad_destinations(tmp_path):
    with pytest.raises(InputError, match="cannot write .*No such file or directory"):
        atomic_write_bytes(tmp_path / "missing" / "a.vqz", b"data")
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="d exists"):
        atomic_write_bytes(tmp_path / "d", b"data")
    with pytest.raises(InputError, match="cannot write .*d: Is a directory"):
        atomic_write_bytes(tmp_path / "d", b"data", force=True)
    assert os.listdir(tmp_path) == ["d"]


def test_video_files_are_not_images():
    clip = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "video", "tree.avi")
    with pytest.raises(InputError, match="is a video, not an image"):
        load_image(clip)
