"""vqzip: learned image and video compression with a tokenizer and an exact token prior.

    import vqzip
    data = vqzip.encode_image("photo.png", quality=4)   # bytes of a .vqz file
    img = vqzip.decode(data)                             # PIL image

Video lives in vqzip.video (encode_file, decode_file, parse, decode_frames).
"""
__version__ = "0.1.0"
__all__ = ["encode_image", "decode", "info"]


def __getattr__(name):  # the codec pulls in torch; importing vqzip stays cheap until it is used
    if name in __all__:
        from . import codec
        return getattr(codec, name)
    raise AttributeError(name)
