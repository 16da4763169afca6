"""Benchmark engine behind ``vqzip bench``.

Compare vqzip's bitrate against classic image codecs at equal quality.

Modules
-------
- :mod:`vqzip.bench.codecs`  -- registry of image codecs (jpeg, webp, avif, av1, jxl, vqzip)
- :mod:`vqzip.bench.metrics` -- PSNR, MS-SSIM, SSIMULACRA2, bpp
- :mod:`vqzip.bench.bdrate`  -- Bjontegaard delta rate (piecewise cubic / PCHIP)
- :mod:`vqzip.bench.runner`  -- ``run_bench`` (points.csv, summary.json, rd.png) and ``format_table``

Heavy dependencies (torch, matplotlib, PyAV, ...) are imported lazily, so importing
this package is cheap.
"""

from __future__ import annotations

__all__ = ["run_bench", "format_table", "format_bd_table", "bd_rate", "get_codec", "list_codecs"]


def __getattr__(name: str):  # lazy re-exports
    if name in ("run_bench", "format_table", "format_bd_table"):
        from . import runner

        return getattr(runner, name)
    if name == "bd_rate":
        from .bdrate import bd_rate

        return bd_rate
    if name in ("get_codec", "list_codecs"):
        from . import codecs

        return getattr(codecs, name)
    raise AttributeError(name)
