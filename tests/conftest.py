import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
KODAK = SHARED / "kodak"
VIDEO = SHARED / "video"
TONE_SECONDS = 1.0
# crops of Kodak 23 (the macaw) that the search tests share: SMALL is below what the refinement
# search takes at the default point's x1/2 (refine_search.MIN_SIDE); SEARCHED (256 x 192, a 16 x 12
# grid of refinement positions there) is big enough for its MS-SSIM term
SMALL, SEARCHED = (300, 100, 428, 196), (200, 60, 456, 252)


def macaw(box) -> Image.Image:
    return Image.open(KODAK / "kodim23.png").convert("RGB").crop(box)


@pytest.fixture(scope="session")
def macaw_png(tmp_path_factory) -> Path:
    """The SMALL crop as a PNG file."""
    p = tmp_path_factory.mktemp("macaw") / "macaw.png"
    macaw(SMALL).save(p)
    return p


@pytest.fixture(scope="session")
def macaw_vqz(macaw_png) -> Path:
    """macaw_png through `vqzip encode -q 3`, beside it."""
    out = macaw_png.with_suffix(".vqz")
    run_cli("encode", macaw_png, "-q", "3", "-o", out, check=True)
    return out


def read_log(path: Path) -> list[dict]:
    """A training run's log (a JSON object a line)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def resume_budget(log: Path) -> str:
    """A --minutes budget a few seconds past the elapsed time of a training run's last log line,
    so that resuming it makes more steps. A fixed larger budget does not always: on a busy machine
    a run given 3 s can end well past 6 s (it stops at the first step past its budget)."""
    return f"{read_log(log)[-1]['t'] / 60 + 0.05:.3f}"


def run_cli(*args, check=False, env=None, cwd=None):
    """The real entry point, in a subprocess, as a user would run it."""
    r = subprocess.run([sys.executable, "-m", "vqzip", *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, cwd=cwd)
    if check and r.returncode:
        raise AssertionError(f"vqzip {args} failed: {r.stderr}")
    return r


@pytest.fixture(scope="session")
def default_model():
    from vqzip import zoo
    return zoo.resolve().model


@pytest.fixture
def photo(tmp_path) -> Path:
    """A small real photo with odd sides (a crop of Kodak 23)."""
    im = Image.open(KODAK / "kodim23.png").crop((300, 100, 500, 237))
    p = tmp_path / "photo.png"
    im.save(p)
    return p


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), np.float64)
    y = np.asarray(b.convert("RGB"), np.float64)
    return 10 * np.log10(255 ** 2 / np.mean((x - y) ** 2))


def make_clip(path, frames, fps, audio_layout=None):
    """A lossless FFV1 clip (x264 for .mp4), with TONE_SECONDS of a 440 Hz tone at 44.1 kHz if
    `audio_layout` (not for .mp4)."""
    h, w = frames[0].shape[:2]
    mp4 = str(path).endswith(".mp4")
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264" if mp4 else "ffv1", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv444p" if mp4 else "bgr0"
        if audio_layout:
            rate = 44100
            a = c.add_stream("pcm_s16le", rate=rate, layout=audio_layout)
            tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(int(rate * TONE_SECONDS)) / rate)).astype(np.int16)
            channels = 1 if audio_layout == "mono" else 2
            for k in range(0, len(tone), 1024):
                chunk = np.repeat(tone[k:k + 1024], channels)[None]  # s16 is packed: L R L R ...
                frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=audio_layout)
                frame.sample_rate, frame.pts = rate, k
                c.mux(a.encode(frame))
            c.mux(a.encode(None))
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    return path


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to n for the block (the bits must not depend on it)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
