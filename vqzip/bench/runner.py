"""The ``vqzip bench`` engine: run codecs x settings over images, measure, summarise.

:func:`run_bench` walks files / folders of images, round-trips every image through
every setting of every *available* codec, computes the requested metrics and returns
a summary dict; with ``out_dir`` it also writes

- ``points.csv``  -- one row per image x codec x setting;
- ``summary.json`` -- per codec x setting averages over images (mean bpp, mean metric,
  mean enc/dec seconds, n_images), BD-rate tables of every codec against the anchors
  (``jpeg``, ``avif``) for every metric, skip notes, errors and a ``how`` block
  (command, args, date, machine, library versions);
- ``rd.png``      -- one panel per metric, bpp on x, one line per codec (averaged points).

Averaging is the usual Kodak practice: mean bpp and mean metric per setting over the
images. BD-rate is computed on those averaged curves, using only the settings that
succeeded on every image; on MS-SSIM it uses MS-SSIM in dB (``-10 log10(1 - v)``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from . import metrics as M
from .bdrate import bd_rate_info
from .codecs import DEFAULT_CODECS, codec_versions, get_codec

__all__ = [
    "IMAGE_EXTS",
    "ANCHORS",
    "DEFAULT_METRICS",
    "find_images",
    "run_bench",
    "write_outputs",
    "plot_rd",
    "format_table",
    "format_bd_table",
]

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
ANCHORS = ("jpeg", "avif")
DEFAULT_METRICS = ["psnr", "ms_ssim", "ssimulacra2"]
METRIC_KEYS = ["psnr", "ms_ssim", "ssimulacra2"]
METRIC_LABELS = {"psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM (dB)", "ssimulacra2": "SSIMULACRA2"}
CSV_FIELDS = [
    "image", "width", "height", "codec", "setting", "bytes", "bpp",
    "psnr", "ms_ssim", "ms_ssim_method", "ssimulacra2", "enc_s", "dec_s",
]


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Image files from ``paths``: files as given, folders searched recursively for
    :data:`IMAGE_EXTS` (sorted). Missing paths raise ``FileNotFoundError``."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    seen, uniq = set(), []
    for f in out:
        k = f.resolve()
        if k not in seen:
            seen.add(k)
            uniq.append(f)
    return uniq


def _jsonable(x: Any) -> Any:
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def _clean_float(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _metric_available(key: str) -> tuple[bool, str]:
    try:
        if key == "ms_ssim":
            import pytorch_msssim  # noqa: F401
            import torch  # noqa: F401
        elif key == "ssimulacra2":
            import ssimulacra2  # noqa: F401
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"
    return True, ""


def _how(command: str | None, args: dict) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from ..devices import cpu_name
    cpu_model = cpu_name()
    versions = {"python": platform.python_version()}
    versions.update(codec_versions())
    for dist in ("vqzip", "torch", "numpy", "scipy", "pytorch-msssim", "ssimulacra2", "matplotlib"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
        except Exception:
            pass
    machine = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model,
        "cpu_count": os.cpu_count(),
    }
    try:
        machine["cpu_affinity"] = len(os.sched_getaffinity(0))
    except Exception:
        pass
    if "torch" in sys.modules:
        try:
            machine["torch_threads"] = sys.modules["torch"].get_num_threads()
        except Exception:
            pass
        from ..devices import pick_device, tokenizer_precision
        machine["vqzip_tokenizer_dtype"] = tokenizer_precision(pick_device())
    return {
        "command": command if command is not None else " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "args": args,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": versions,
        "notes": [
            "averages: mean bpp and mean metric per codec x setting over images",
            "BD-rate: piecewise cubic (PCHIP) of log-rate vs quality, overlapping range, "
            "on averaged curves; MS-SSIM in dB; negative = fewer bits than the anchor",
            "PSNR: RGB, identical images capped at 100 dB",
            "av1: raw AV1 bitstream bytes (no container); other codecs: file bytes without metadata",
        ],
    }


def _averages(rows: list[dict], codec_order: list[str], setting_order: dict[str, list[str]]) -> dict:
    out: dict[str, list[dict]] = {}
    for name in codec_order:
        lst = []
        for label in setting_order.get(name, []):
            sel = [r for r in rows if r["codec"] == name and r["setting"] == label]
            if not sel:
                continue
            entry: dict[str, Any] = {"setting": label, "n_images": len(sel)}
            for key in ["bpp", *METRIC_KEYS, "enc_s", "dec_s"]:
                vals = [r[key] for r in sel if r.get(key) is not None]
                entry[key] = _clean_float(np.mean(vals)) if vals and len(vals) == len(sel) else None
            entry["bytes"] = _clean_float(np.mean([r["bytes"] for r in sel]))
            methods = {r.get("ms_ssim_method") for r in sel if r.get("ms_ssim_method")}
            if methods:
                entry["ms_ssim_method"] = methods.pop() if len(methods) == 1 else "mixed"
            lst.append(entry)
        out[name] = lst
    return out


def _bd_tables(averages: dict, metric_keys: list[str], anchors: Sequence[str], n_total: int):
    def curve(name: str, key: str):
        pts = [a for a in averages.get(name, []) if a["n_images"] == n_total and a.get(key) is not None]
        rates = [a["bpp"] for a in pts]
        qual = [M.ms_ssim_db(a[key]) if key == "ms_ssim" else a[key] for a in pts]
        return rates, qual

    tables: dict[str, Any] = {}
    reasons: dict[str, Any] = {}
    for anchor in anchors:
        if not averages.get(anchor):
            tables[anchor] = None
            reasons[anchor] = f"anchor {anchor!r} was not run (not requested or unavailable)"
            continue
        tables[anchor], reasons[anchor] = {}, {}
        for key in metric_keys:
            ra, qa = curve(anchor, key)
            tables[anchor][key], reasons[anchor][key] = {}, {}
            for name in averages:
                if name == anchor or not averages[name]:
                    continue
                rt, qt = curve(name, key)
                val, why = bd_rate_info(ra, qa, rt, qt)
                tables[anchor][key][name] = _clean_float(val)
                if val is None:
                    reasons[anchor][key][name] = why
            if not reasons[anchor][key]:
                del reasons[anchor][key]
        if not reasons[anchor]:
            del reasons[anchor]
    return tables, reasons


def run_bench(
    paths: Sequence[str | os.PathLike],
    codecs: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    settings: dict[str, Sequence[Any]] | None = None,
    anchors: Sequence[str] = ANCHORS,
    command: str | None = None,
    console: Any = None,
    effort: int | None = None,
    keep: Any = None,
) -> dict:
    """Benchmark ``codecs`` (default: all) on the images under ``paths``.

    Args:
        paths: image files and/or folders (searched recursively).
        codecs: codec names (see :mod:`vqzip.bench.codecs`); unavailable ones are
            skipped with a note in ``summary["skipped"]``. Unknown names raise ValueError.
        metrics: any of ``psnr``, ``ms-ssim``/``ms_ssim``, ``ssimulacra2`` (default: all).
        out_dir: if given, write ``points.csv``, ``summary.json`` and ``rd.png`` there.
        progress: show a rich progress bar (on stderr) over (image, codec) items.
        settings: optional per-codec override of the settings sweep, e.g. ``{"jpeg": [1, 5]}``.
        anchors: BD-rate anchors (default ``jpeg`` and ``avif``).
        command: command line to record in ``how`` (default: ``sys.argv``).
        console: optional ``rich.console.Console`` for the progress bar.
        effort: vqzip's encoder-side search effort (0-9; default: vqzip's default).
        keep: optional :class:`vqzip.bench.report.Keeper`, shown every reference and decoded
            image (for the HTML report's crops); nothing else changes.

    Returns:
        The summary dict (what ``summary.json`` holds) plus ``"points"`` (the CSV
        rows as dicts) and ``"files"`` (paths written, if any).

    Keys: ``images``, ``n_images``, ``codecs`` (per codec: available, reason,
    description, settings), ``metrics``, ``skipped`` (list of {kind, name, reason}),
    ``errors``, ``averages`` ({codec: [{setting, bpp, bytes, psnr, ms_ssim,
    ssimulacra2, enc_s, dec_s, n_images, ms_ssim_method?}]}), ``bd_rate``
    ({anchor: {metric: {codec: percent | None}}} or {anchor: None}),
    ``bd_rate_reasons``, ``notes``, ``how``, ``elapsed_s``.
    """
    t_start = time.perf_counter()
    get_codec("vqzip").effort = effort
    codec_names = list(codecs) if codecs else list(DEFAULT_CODECS)
    metric_keys: list[str] = []
    for m in metrics if metrics else DEFAULT_METRICS:
        try:
            k = M.normalize_metric(m)
        except KeyError as e:
            raise ValueError(str(e.args[0])) from None
        if k not in metric_keys:
            metric_keys.append(k)

    resolved = []
    for n in codec_names:
        try:
            c = get_codec(n)
        except KeyError as e:
            raise ValueError(str(e.args[0])) from None
        if c not in resolved:
            resolved.append(c)

    images = find_images(paths)
    if not images:
        raise ValueError(f"no images found in {list(map(str, paths))}")

    skipped: list[dict] = []
    notes: list[str] = []
    codec_info: dict[str, dict] = {}
    active = []
    setting_map: dict[str, list] = {}
    for c in resolved:
        try:
            ok, reason = c.available()
        except Exception as e:
            ok, reason = False, f"{type(e).__name__}: {e}"
        sweep: list = []
        if ok:
            try:
                sweep = list(settings[c.name]) if settings and c.name in settings else list(c.settings)
            except Exception as e:
                ok, reason = False, f"cannot list settings ({type(e).__name__}: {e})"
        if ok and not sweep:
            ok, reason = False, "no settings to run"
        codec_info[c.name] = {
            "available": ok,
            "reason": reason,
            "description": c.description,
            "settings": [c.setting_label(s) for s in sweep] if ok else [],
        }
        if ok:
            active.append(c)
            setting_map[c.name] = sweep
        else:
            skipped.append({"kind": "codec", "name": c.name, "reason": reason})
            notes.append(f"skipped codec {c.name}: {reason}")

    active_metrics = []
    for k in metric_keys:
        ok, reason = _metric_available(k)
        if ok:
            active_metrics.append(k)
        else:
            skipped.append({"kind": "metric", "name": k, "reason": reason})
            notes.append(f"skipped metric {k}: {reason}")

    rows: list[dict] = []
    errors: list[dict] = []
    image_meta: list[dict] = []
    fallback_images: set[str] = set()

    prog = None
    task = None
    if progress:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        prog = Progress(
            TextColumn("[bold]bench[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        prog.start()
        task = prog.add_task("", total=len(images) * len(active))

    try:
        for path in images:
            try:
                with Image.open(path) as im:
                    im.load()
                    ref = im.convert("RGB")
            except Exception as e:
                errors.append({"image": str(path), "codec": None, "setting": None, "error": f"cannot read image: {e}"})
                if prog is not None:
                    prog.advance(task, len(active))
                continue
            w, h = ref.size
            image_meta.append({"path": str(path), "width": w, "height": h})
            ref_arr = np.asarray(ref)
            if keep is not None:
                keep.reference(str(path), ref_arr)
            for c in active:
                if prog is not None:
                    prog.update(task, description=f"{path.name} · {c.name}")
                for s in setting_map[c.name]:
                    label = c.setting_label(s)
                    try:
                        n_bytes, dec, t_enc, t_dec = c.roundtrip(ref, s)
                        dec_arr = np.asarray(dec.convert("RGB"))
                        if dec_arr.shape != ref_arr.shape:
                            raise RuntimeError(f"decoded shape {dec_arr.shape} != {ref_arr.shape}")
                        row: dict[str, Any] = {
                            "image": str(path), "width": w, "height": h, "codec": c.name,
                            "setting": label, "bytes": int(n_bytes), "bpp": M.bpp(n_bytes, w, h),
                            "psnr": None, "ms_ssim": None, "ms_ssim_method": None, "ssimulacra2": None,
                            "enc_s": float(t_enc), "dec_s": float(t_dec),
                        }
                        for k in active_metrics:
                            if k == "ms_ssim":
                                v, method = M.ms_ssim_ex(ref_arr, dec_arr)
                                row["ms_ssim"], row["ms_ssim_method"] = v, method
                                if method != "ms-ssim":
                                    fallback_images.add(str(path))
                            else:
                                row[k] = M.METRICS[k](ref_arr, dec_arr)
                        rows.append(row)
                        if keep is not None:
                            keep.decoded(str(path), c.name, label, dec_arr)
                    except Exception as e:
                        errors.append({"image": str(path), "codec": c.name, "setting": label,
                                       "error": f"{type(e).__name__}: {e}"})
                if prog is not None:
                    prog.advance(task)
    finally:
        if prog is not None:
            prog.stop()

    if fallback_images:
        notes.append(
            f"MS-SSIM fell back to single-scale SSIM on {len(fallback_images)} image(s) with short side "
            f"< {M.MS_SSIM_MIN_SIDE} px (column ms_ssim_method)"
        )
    if errors:
        notes.append(f"{len(errors)} roundtrip/metric error(s); see 'errors'")

    n_ok_images = len(image_meta)
    order = {c.name: [c.setting_label(s) for s in setting_map[c.name]] for c in active}
    averages = _averages(rows, [c.name for c in active], order)
    bd, bd_reasons = _bd_tables(averages, active_metrics, anchors, n_ok_images)

    args = {
        "paths": [str(p) for p in paths],
        "codecs": codec_names,
        "metrics": metric_keys,
        "out_dir": str(out_dir) if out_dir is not None else None,
        "settings": {k: [_jsonable(x) for x in v] for k, v in (settings or {}).items()},
        "anchors": list(anchors),
        "vqzip_effort": get_codec("vqzip").effective_effort(),
    }
    summary: dict[str, Any] = {
        "images": image_meta,
        "n_images": n_ok_images,
        "codecs": codec_info,
        "metrics": active_metrics,
        "skipped": skipped,
        "errors": errors,
        "averages": averages,
        "bd_rate": bd,
        "bd_rate_reasons": bd_reasons,
        "notes": notes,
        "how": _how(command, args),
        "elapsed_s": round(time.perf_counter() - t_start, 3),
    }
    result = dict(summary)
    result["points"] = rows
    if out_dir is not None:
        result["files"] = write_outputs(summary, rows, Path(out_dir))
    return result


def write_outputs(summary: dict, rows: list[dict], out_dir: Path) -> dict[str, str]:
    """Write ``points.csv``, ``summary.json`` and ``rd.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "points.csv"
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        wr.writeheader()
        for r in rows:
            wr.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    json_path = out_dir / "summary.json"
    clean = {k: v for k, v in summary.items() if k not in ("points", "files")}
    with open(json_path, "w") as f:
        json.dump(clean, f, indent=2, allow_nan=False, default=str)
        f.write("\n")
    png_path = out_dir / "rd.png"
    plot_rd(summary, png_path)
    return {"points_csv": str(csv_path), "summary_json": str(json_path), "rd_png": str(png_path)}


def plot_rd(summary: dict, path: str | os.PathLike) -> None:
    """RD plot of the averaged curves: one panel per metric (MS-SSIM in dB), bpp on x."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = list(summary.get("metrics") or []) or ["psnr"]
    fig = Figure(figsize=(5.2 * len(keys), 4.2), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    n = summary.get("n_images", 0)
    for ax, key in zip(axes, keys):
        for name, pts in summary.get("averages", {}).items():
            pts = [p for p in pts if p.get(key) is not None and p.get("bpp") is not None]
            if not pts:
                continue
            pts = sorted(pts, key=lambda p: p["bpp"])
            x = [p["bpp"] for p in pts]
            y = [M.ms_ssim_db(p[key]) if key == "ms_ssim" else p[key] for p in pts]
            style = dict(lw=2.2, marker="o", ms=4) if name == "vqzip" else dict(lw=1.3, marker=".", ms=6)
            ax.plot(x, y, label=name, **style)
        label = METRIC_LABELS.get(key, key)
        title = f"{label} vs bpp ({n} image{'s' if n != 1 else ''})"
        if key == "ms_ssim" and any(
            p.get("ms_ssim_method") not in (None, "ms-ssim") for v in summary.get("averages", {}).values() for p in v
        ):
            title += "\n(single-scale SSIM on images < 161 px)"
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path if hasattr(path, "write") else str(path), format="png")  # a file object: the HTML report's


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(summary: dict):
    """A ``rich.table.Table`` of the averaged points (one row per codec x setting)."""
    from rich.table import Table

    keys = list(summary.get("metrics") or [])
    t = Table(title=f"vqzip bench: averages over {summary.get('n_images', 0)} image(s)")
    t.add_column("codec", style="bold")
    t.add_column("setting")
    t.add_column("bpp", justify="right")
    heads = {"psnr": "PSNR dB", "ms_ssim": "MS-SSIM", "ssimulacra2": "SSIMU2"}
    specs = {"psnr": ".2f", "ms_ssim": ".4f", "ssimulacra2": ".2f"}
    for k in keys:
        t.add_column(heads.get(k, k), justify="right")
    t.add_column("enc ms", justify="right")
    t.add_column("dec ms", justify="right")
    t.add_column("n", justify="right")
    for name, pts in summary.get("averages", {}).items():
        for i, p in enumerate(pts):
            t.add_row(
                name if i == 0 else "",
                str(p["setting"]),
                _fmt(p.get("bpp"), ".4f"),
                *[_fmt(p.get(k), specs.get(k, ".4f")) for k in keys],
                _fmt(None if p.get("enc_s") is None else p["enc_s"] * 1e3, ".1f"),
                _fmt(None if p.get("dec_s") is None else p["dec_s"] * 1e3, ".1f"),
                str(p.get("n_images", "")),
                end_section=(i == len(pts) - 1),
            )
    for s in summary.get("skipped", []):
        if s.get("kind") != "codec":
            continue
        t.add_row(f"[dim]{s['name']}[/]", "[dim]skipped[/]", "", *[""] * len(keys), "", "", "")
    if summary.get("skipped"):
        t.caption = "; ".join(f"{s['name']}: {s['reason']}" for s in summary["skipped"])
    return t


def format_bd_table(summary: dict):
    """A ``rich.table.Table`` of BD-rates (%): rows = codec, columns = anchor x metric."""
    from rich.table import Table

    t = Table(title="BD-rate vs anchors (% bits at equal quality; negative = better)")
    t.add_column("codec", style="bold")
    cols = []
    for anchor, tab in (summary.get("bd_rate") or {}).items():
        if not tab:
            continue
        for key in tab:
            cols.append((anchor, key))
            t.add_column(f"vs {anchor}\n{key}", justify="right")
    names = list(summary.get("averages", {}))
    for name in names:
        cells = []
        for anchor, key in cols:
            if name == anchor:
                cells.append("[dim]anchor[/]")
                continue
            v = summary["bd_rate"][anchor][key].get(name)
            if v is None:
                cells.append("n/a")
            else:
                color = "green" if v < 0 else "red"
                cells.append(f"[{color}]{v:+.1f}[/]")
        t.add_row(name, *cells)
    return t
