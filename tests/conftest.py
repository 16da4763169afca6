import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
KODAK = SHARED / "kodak"


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
