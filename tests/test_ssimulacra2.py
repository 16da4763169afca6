"""The training objective's SSIMULACRA2 (vqzip/train/ssimulacra2.py) is the bench's metric."""
import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from conftest import macaw
from vqzip.train import ssimulacra2 as S

BOX = (200, 60, 584, 316)  # 384 x 256: both sides halve evenly through the metric's six scales


def _tensor(im: Image.Image, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(np.asarray(im), dtype=dtype).permute(2, 0, 1)[None] / 255


def _jpeg(im: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    return Image.open(buf).convert("RGB")


@pytest.mark.parametrize("kind", ["jpeg10", "jpeg60", "blur"])
def test_the_score_is_the_packages(tmp_path, kind):
    from ssimulacra2 import compute_ssimulacra2
    src = macaw(BOX)
    dist = src.filter(ImageFilter.GaussianBlur(1.2)) if kind == "blur" else _jpeg(src, int(kind[4:]))
    src.save(tmp_path / "a.png")
    dist.save(tmp_path / "b.png")
    want = compute_ssimulacra2(str(tmp_path / "a.png"), str(tmp_path / "b.png"))
    got = float(S.score(_tensor(src), _tensor(dist)))
    assert abs(got - want) < 1e-5, (got, want)
    # training runs it in float32: a hundredth of a point off at most
    assert abs(float(S.score(_tensor(src, torch.float32), _tensor(dist, torch.float32))) - want) < 0.01


def test_it_has_a_gradient_that_points_back_to_the_source():
    # identical pictures: 100, less what the floor under the 4-norms costs (the final mapping is
    # steep at 100)
    assert float(S.score(_tensor(macaw(BOX)), _tensor(macaw(BOX)))) == pytest.approx(100.0, abs=0.01)
    src = _tensor(macaw(BOX), torch.float32)
    y = _tensor(macaw(BOX).filter(ImageFilter.GaussianBlur(1.5)), torch.float32).requires_grad_(True)
    loss = S.loss(src * 2 - 1, y * 2 - 1).sum()
    loss.backward()
    assert torch.isfinite(y.grad).all()
    with torch.no_grad():  # a small step against the gradient sharpens the picture toward the source
        better = float(S.loss(src * 2 - 1, (y - 0.02 * y.grad / y.grad.abs().max()) * 2 - 1))
    assert better < float(loss.detach())
