"""vqzip as a Pillow image format. `import vqzip` registers it, so that

    Image.open("photo.vqz")                      # the size and mode come from the header alone
    img.save("photo.vqz", quality=3, effort=8)   # the same bytes as `vqzip encode -q 3 -e 8`

work like any other format. Pillow (up to 13 at least) has no entry point through which an
installed package could register a format by itself, so this module is the registration; it imports
no torch: the codec is imported when pixels are first decoded or an image is saved.

Errors follow Pillow's conventions, with vqzip's one-line message: a file that starts like a .vqz
but whose header is damaged, or that holds a video, is a PIL.UnidentifiedImageError from
Image.open (Pillow would otherwise swallow the reason and say only "cannot identify image
file"); a payload that fails to decode is an OSError from load(); a save that vqzip refuses (an
unknown quality or model, an image over the size limit) is a ValueError.
"""
from __future__ import annotations

from PIL import Image, ImageFile, UnidentifiedImageError

from .coding import container
from .errors import FormatError, VqzipError

FORMAT = "VQZ"
DECODER = "vqz"
# what Image.save passes on to vqzip.encode_image, as its keyword arguments
SAVE_OPTIONS = ("quality", "effort", "model", "bpp", "device")


def _accept(prefix: bytes) -> bool:
    return prefix[:len(container.MAGIC)] == container.MAGIC


class VqzImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "vqzip learned image compression"

    def _open(self) -> None:
        from .media import restored_mode  # numpy and friends: only once a .vqz is opened
        head = self.fp.read(container.HEADER_PREFIX_BYTES)
        if not _accept(head):
            raise SyntaxError("not a vqzip file")  # Pillow's "not this format": it tries the others
        try:
            header = container.read_header(head, verify=False)
        except FormatError as e:
            raise UnidentifiedImageError(str(e)) from None
        if header.kind != "image":
            raise UnidentifiedImageError(f"this is a vqzip {header.kind}, not an image (see vqzip.video)")
        self._size = (header.width, header.height)
        self._mode = restored_mode(header.mode, header.bit_depth, bool(header.extra.get("alpha")))
        # one tile for the whole file: the decoder reads all of it (the payload is one range-coded stream)
        self.tile = [_tile(DECODER, (0, 0) + self.size, 0, None)]


def _tile(*args):
    tile = getattr(ImageFile, "_Tile", None)  # a named tuple since Pillow 11; a plain tuple before
    return tile(*args) if tile else tuple(args)


class VqzDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer) -> tuple[int, int]:
        from . import codec
        assert self.fd is not None and self.im is not None
        self.fd.seek(0)
        try:
            img = codec.decode(self.fd.read())
        except VqzipError as e:
            raise OSError(str(e)) from None
        if img.mode != self.mode or img.size != tuple(self.im.size):
            raise OSError("file is corrupted (decoded image does not match its header)")
        self.set_as_raw(img.tobytes(), img.mode)
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    from . import codec
    options = {k: im.encoderinfo[k] for k in SAVE_OPTIONS if im.encoderinfo.get(k) is not None}
    try:
        data = codec.encode_image(im, **options)
    except VqzipError as e:  # an option or the image at fault: Pillow's ValueError, as for a bad JPEG quality
        raise ValueError(str(e)) from None
    fp.write(data)


def register() -> None:
    Image.register_open(FORMAT, VqzImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".vqz")
    Image.register_mime(FORMAT, "image/x-vqzip")
    Image.register_decoder(DECODER, VqzDecoder)
