"""Bjontegaard delta rate (BD-rate), piecewise-cubic variant.

Method (as in the JVET / AOM CTC "piecewise cubic" BD-rate, which replaced the
original VCEG-M33 cubic polynomial fit):

1. per curve: sort the points by quality, drop non-positive rates, and for repeated
   quality values keep the lowest rate (so the quality axis is strictly increasing);
2. fit log(rate) as a function of quality with a shape-preserving piecewise cubic
   Hermite interpolant (``scipy.interpolate.PchipInterpolator``);
3. integrate both interpolants exactly over the *overlapping* quality interval
   ``[max(min q_a, min q_t), min(max q_a, max q_t)]``;
4. BD-rate = ``exp(mean(log r_test - log r_anchor)) - 1``, in percent.

Negative = the test codec needs fewer bits than the anchor for the same quality.
Curves with < 2 distinct points, or quality ranges that do not overlap (or only
touch), give ``None`` (:func:`bd_rate_info` also says why). No extrapolation is done.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["bd_rate", "bd_rate_info", "bd_quality"]


def _prep(rates: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(list(rates), dtype=np.float64)
    q = np.asarray(list(quality), dtype=np.float64)
    if r.shape != q.shape:
        raise ValueError(f"rates and quality differ in length: {r.shape} vs {q.shape}")
    ok = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[ok], q[ok]
    order = np.lexsort((r, q))  # by quality, then rate: first of each quality = lowest rate
    r, q = r[order], q[order]
    if q.size:
        keep = np.concatenate(([True], np.diff(q) > 0))
        r, q = r[keep], q[keep]
    return r, q


def _overlap(qa: np.ndarray, qt: np.ndarray) -> tuple[float, float]:
    return max(qa[0], qt[0]), min(qa[-1], qt[-1])


def bd_rate_info(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
) -> tuple[float | None, str]:
    """``(bd_rate_percent or None, reason)``; reason is ``""`` on success."""
    from scipy.interpolate import PchipInterpolator

    ra, qa = _prep(anchor_rates, anchor_quality)
    rt, qt = _prep(test_rates, test_quality)
    if qa.size < 2:
        return None, "anchor has fewer than 2 distinct valid points"
    if qt.size < 2:
        return None, "test has fewer than 2 distinct valid points"
    lo, hi = _overlap(qa, qt)
    if not hi > lo:
        return None, (
            f"quality ranges do not overlap (anchor {qa[0]:.4g}..{qa[-1]:.4g}, "
            f"test {qt[0]:.4g}..{qt[-1]:.4g})"
        )
    ia = PchipInterpolator(qa, np.log(ra)).integrate(lo, hi)
    it = PchipInterpolator(qt, np.log(rt)).integrate(lo, hi)
    avg = (it - ia) / (hi - lo)
    return float((math.exp(avg) - 1.0) * 100.0), ""


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
) -> float | None:
    """BD-rate of *test* vs *anchor* in percent (e.g. -30.0 = 30 % fewer bits at equal
    quality), or ``None`` when it cannot be computed (see :func:`bd_rate_info`)."""
    return bd_rate_info(anchor_rates, anchor_quality, test_rates, test_quality)[0]


def bd_quality(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
) -> float | None:
    """BD-quality (e.g. BD-PSNR): mean quality gain of *test* over *anchor* at equal
    rate, PCHIP of quality vs log(rate) over the overlapping log-rate range; ``None``
    when the rate ranges do not overlap."""
    from scipy.interpolate import PchipInterpolator

    r_a = np.asarray(list(anchor_rates), dtype=np.float64)
    r_t = np.asarray(list(test_rates), dtype=np.float64)
    q_a = np.asarray(list(anchor_quality), dtype=np.float64)
    q_t = np.asarray(list(test_quality), dtype=np.float64)

    def clean(r, q):
        ok = np.isfinite(r) & np.isfinite(q) & (r > 0)
        lr, q = np.log(r[ok]), q[ok]
        order = np.lexsort((-q, lr))
        lr, q = lr[order], q[order]
        if lr.size:
            keep = np.concatenate(([True], np.diff(lr) > 0))
            lr, q = lr[keep], q[keep]
        return lr, q

    la, qa = clean(r_a, q_a)
    lt, qt = clean(r_t, q_t)
    if la.size < 2 or lt.size < 2:
        return None
    lo, hi = max(la[0], lt[0]), min(la[-1], lt[-1])
    if not hi > lo:
        return None
    ia = PchipInterpolator(la, qa).integrate(lo, hi)
    it = PchipInterpolator(lt, qt).integrate(lo, hi)
    return float((it - ia) / (hi - lo))
