"""`vqzip bench --html`: one self-contained page, every picture inlined."""
import base64
import io
import re
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from conftest import SMALL, macaw, make_clip, run_cli
from vqzip.bench import report
from vqzip.bench.runner import run_bench


def inline_images(page: str) -> list[Image.Image]:
    """Every <img> of the page, decoded; each must be a data: URI (no file, no network)."""
    srcs = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)
    assert len(srcs) == page.count("<img")
    out = []
    for src in srcs:
        head, _, payload = src.partition(",")
        assert head == "data:image/png;base64", src[:40]
        im = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        im.load()
        out.append(im)
    return out


def test_nearest_setting_to_a_common_rate():
    pts = {"a": [{"bpp": 0.1}, {"bpp": 0.4}, {"bpp": 0.9}], "b": [{"bpp": 0.3}, {"bpp": 0.6}]}
    target, pick = report.nearest(pts, "bpp")
    assert target == 0.3 and pick["a"]["bpp"] == 0.4 and pick["b"]["bpp"] == 0.3
    assert report.common_rate({"a": [1, 2], "b": [8, 9]}) == 4.0  # no overlap: the gap's geometric middle


def test_image_report_is_self_contained(tmp_path):
    macaw(SMALL).save(tmp_path / "a.png")
    keep = report.Keeper()
    res = run_bench([tmp_path / "a.png"], ["jpeg", "vqzip"], ["psnr"], None, progress=False, keep=keep,
                    settings={"jpeg": [5, 30], "vqzip": [1, 3]}, effort=0)
    page = report.render_html(res, [], keep)
    images = inline_images(page)
    assert "http" not in page and "<script" not in page and "<link" not in page
    assert "BD-rate" in page and "q3" in page
    # the RD plot, then the original's crop and one per codec, all of the same size
    assert len(images) == 1 + 3 and images[1].size == images[2].size == images[3].size == (128, 96)
    assert re.search(r"jpeg q\d+</b><br>[\d.]+ bpp · PSNR [\d.]+ dB", page)


def test_video_report_has_a_strip_per_codec(tmp_path):
    im = macaw((300, 100, 400, 164))
    frames = [np.asarray(im.transform(im.size, Image.AFFINE, (1, 0, i, 0, 1, 0))) for i in range(6)]
    clip = make_clip(tmp_path / "c.mkv", frames, Fraction(10))
    from vqzip.bench.video import run_video_bench
    keep = report.Keeper(frames=3)
    res = run_video_bench(clip, ["x264"], None, None, progress=False, vmaf=False, keep=keep)
    page = report.render_html(None, [res], keep)
    images = inline_images(page)
    assert len(images) == 1 + 2 * 3  # the plot; the original's 3 frames and x264's
    assert keep.picked[str(clip)] == [0, 2, 5] and "x264 crf=" in page


def test_cli_html(tmp_path):
    macaw(SMALL).save(tmp_path / "a.png")
    html = tmp_path / "r.html"
    r = run_cli("bench", tmp_path / "a.png", "--codecs", "jpeg", "--metrics", "psnr", "--html", html)
    assert r.returncode == 0 and f"report: {html}" in r.stderr
    assert len(inline_images(html.read_text())) == 1 + 2
    r = run_cli("bench", tmp_path / "a.png", "--codecs", "jpeg", "--html", html)
    assert r.returncode == 1 and "exists" in r.stderr  # refused before the bench runs
