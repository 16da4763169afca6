"""vqzip: learned image and video compression with a tokenizer and an exact token prior.

    import vqzip
    data = vqzip.encode_image("photo.png", quality=4)   # bytes of a .vqz file
    img = vqzip.decode(data)                             # PIL image

Video lives in vqzip.video (encode_file, decode_file, parse, decode_frames). Importing vqzip also
makes .vqz a Pillow format (vqzip/pillow_plugin.py): Image.open("x.vqz"), img.save("x.vqz", quality=3).
"""
from . import pillow_plugin as _pillow_plugin

__version__ = "0.1.0"
__all__ = ["encode_image", "decode", "info"]

_pillow_plugin.register()  # Pillow only, no torch: the codec is imported on first use


def __getattr__(name):  # the codec pulls in torch; importing vqzip stays cheap until it is used
    if name in __all__:
        from . import codec
        return getattr(codec, name)
    raise AttributeError(name)
