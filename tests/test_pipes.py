"""`vqzip encode - -o -` and `vqzip decode - -o -`: stdin and stdout carry the files, nothing else."""
import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image


def pipe(*args, data: bytes):
    return subprocess.run([sys.executable, "-m", "vqzip", *map(str, args)], input=data, capture_output=True,
                          env=os.environ)


def test_encode_through_pipes_gives_the_file_bytes(macaw_png, macaw_vqz):
    r = pipe("encode", "-", "-o", "-", "-q", "3", data=macaw_png.read_bytes())
    assert r.returncode == 0 and r.stdout == macaw_vqz.read_bytes()
    assert r.stderr.decode().startswith("-: ")  # the summary, on stderr
    r = pipe("encode", "-", "-o", "-", "-q", "3", "--json", data=macaw_png.read_bytes())
    assert r.stdout == macaw_vqz.read_bytes() and json.loads(r.stderr)["file_bytes"] == len(r.stdout)


def test_pipe_and_file_mix(macaw_png, macaw_vqz, tmp_path):
    assert pipe("encode", macaw_png, "-o", "-", "-q", "3", data=b"").stdout == macaw_vqz.read_bytes()
    r = pipe("decode", "-", "-o", tmp_path / "back.png", data=macaw_vqz.read_bytes())
    assert r.returncode == 0 and Image.open(tmp_path / "back.png").size == (128, 96)
    r = pipe("decode", "-", "-o", tmp_path / "back.png", data=macaw_vqz.read_bytes())
    assert r.returncode == 1 and "exists" in r.stderr.decode()  # --force, as for any file


@pytest.mark.parametrize("fmt,pil", [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")])
def test_decode_to_stdout(macaw_vqz, fmt, pil):
    r = pipe("decode", "-", "-o", "-", "--format", fmt, data=macaw_vqz.read_bytes())
    assert r.returncode == 0
    im = Image.open(io.BytesIO(r.stdout))
    assert im.format == pil and im.size == (128, 96)


@pytest.mark.parametrize("args,data,needle", [
    (("decode", "-", "-o", "-"), "truncated", "truncated"),
    (("decode", "-", "-o", "-", "--format", "gif"), "whole", "unknown --format 'gif'"),
    (("encode", "-", "-o", "-"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not a supported image"),
    (("encode", "-", "-o", "-"), b"\0\0\0\x20ftypisom" + b"\0" * 64, "video"),
    (("encode", "-"), b"", "needs -o"),
    (("decode", "x.vqz", "-o", "x.png", "--format", "png"), b"", "--format is for -o -"),
])
def test_bad_input_is_one_line(macaw_vqz, args, data, needle):
    data = {"truncated": macaw_vqz.read_bytes()[:40], "whole": macaw_vqz.read_bytes()}.get(data, data)
    r = pipe(*args, data=data)
    err = r.stderr.decode()
    assert r.returncode == 1 and r.stdout == b""
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_refuses_to_write_to_a_terminal(macaw_png):
    import pty
    master, slave = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "vqzip", "encode", str(macaw_png), "-o", "-"], stdout=slave,
                           stderr=subprocess.PIPE, env=os.environ)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 1 and b"terminal" in r.stderr and r.stderr.count(b"\n") == 1
