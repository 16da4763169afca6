"""The video part of ``vqzip bench``: classic video codecs on one clip at matched rates.

:func:`run_video_bench` decodes a clip with :mod:`vqzip.video_io` (frames as RGB ``uint8``,
frame rate kept as a :class:`fractions.Fraction`), then for every codec runs a CRF sweep,
encoding in memory with PyAV codec contexts (raw bitstream, no container) and decoding back:

- ``x264``  -- ``libx264``, preset medium, CRF 45/38/32/26;
- ``x265``  -- ``libx265``, preset medium, CRF 45/38/32/26, without its options SEI (info=0);
- ``av1``   -- ``libsvtav1`` (SVT-AV1), preset 8, CRF 63/55/45/35;
- ``vqzip`` -- :mod:`vqzip.video` at quality levels 1-5 (the whole .vqz file is counted).

All encoders get ``yuv420p`` with even dimensions (edge-padded, cropped back after
decoding). Per point: achieved kbps = bitstream bytes * 8 / duration / 1000 (duration =
frames / fps), bits per pixel per frame, mean per-frame RGB PSNR and MS-SSIM
(:mod:`vqzip.bench.metrics`; single-scale SSIM below 161 px, recorded as
``ms_ssim_method``), VMAF when the ``imageio_ffmpeg`` ffmpeg has ``libvmaf``, and
encode / decode seconds. BD-rate (kbps) of every codec against ``x264`` on PSNR and
MS-SSIM in dB (and VMAF when measured) uses :func:`vqzip.bench.bdrate.bd_rate_info`.

With ``out_dir`` it writes ``video_points.csv``, ``video_summary.json`` and ``video_rd.png``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..media import VIDEO_EXTS
from ..video_io import is_video, probe, read_frames
from . import metrics as M
from .bdrate import bd_rate_info
from .codecs import ffmpeg_encoder_status, first_ffmpeg_codec
from .runner import _fmt, _how

__all__ = [
    "VIDEO_EXTS",
    "VIDEO_CODECS",
    "is_video",
    "read_clip",
    "vmaf_status",
    "run_video_bench",
    "write_video_outputs",
    "plot_video_rd",
    "format_video_table",
]

VIDEO_CODECS = ("x264", "x265", "av1", "vqzip")
VIDEO_ANCHOR = "x264"
CSV_FIELDS = [
    "clip", "width", "height", "n_frames", "fps", "codec", "setting", "bytes", "kbps", "bpp",
    "psnr", "ms_ssim", "ms_ssim_method", "vmaf", "enc_s", "dec_s",
]


@dataclass
class _VideoCodec:
    name: str
    encoder: str
    decoders: tuple[str, ...]
    param: str
    settings: list[int]
    options: dict[str, str] = field(default_factory=dict)
    description: str = ""


_SPECS = {
    "x264": _VideoCodec("x264", "libx264", ("h264",), "crf", [45, 38, 32, 26], {"preset": "medium"},
                        "H.264 via libx264, preset medium, CRF sweep"),
    # info=0: no ~1.5 KB version/options SEI, which on a short clip would swamp the comparison
    "x265": _VideoCodec("x265", "libx265", ("hevc",), "crf", [45, 38, 32, 26],
                        {"preset": "medium", "x265-params": "log-level=error:info=0"},
                        "H.265 via libx265, preset medium, CRF sweep"),
    "av1": _VideoCodec("av1", "libsvtav1", ("libdav1d", "av1", "libaom-av1"), "crf", [63, 55, 45, 35],
                       {"preset": "8"}, "AV1 via SVT-AV1, preset 8, CRF sweep"),
    "vqzip": _VideoCodec("vqzip", "vqzip", (), "q", [1, 2, 3, 4, 5], {},
                         "vqzip video: refined key frames (base tokens and the refinement layer), predicted frames by the inter layer against the previous decoded frame, with block motion and skipped blocks"),
}


def read_clip(path: str | os.PathLike, max_frames: int | None = None) -> tuple[list[np.ndarray], Fraction]:
    """Decode ``path``: ``(frames as HxWx3 uint8 RGB, frame rate as Fraction)``. A bad clip
    raises :class:`vqzip.errors.InputError`."""
    return list(read_frames(path, max_frames)), probe(path).fps


def _pad_even(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    ph, pw = h % 2, w % 2
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return np.ascontiguousarray(a)


def _encoder_available(spec: _VideoCodec) -> tuple[bool, str]:
    if spec.name == "vqzip":
        from ..zoo import list_points
        return (True, "") if list_points("video") else (False, "no vqzip models installed")
    ok, reason = ffmpeg_encoder_status(spec.encoder)
    if ok and first_ffmpeg_codec(spec.decoders, "r") is None:
        return False, f"no decoder among {', '.join(spec.decoders)}"
    return ok, reason


def _decoder_name(spec: _VideoCodec) -> str:
    d = first_ffmpeg_codec(spec.decoders, "r")
    if d is None:
        raise RuntimeError(f"no decoder among {spec.decoders}")
    return d


def _roundtrip(spec: _VideoCodec, frames: list[np.ndarray], fps: Fraction, value: int):
    """Encode ``frames`` in memory and decode them back: (bytes, decoded RGB frames, enc_s, dec_s)."""
    if spec.name == "vqzip":
        return _vqzip_roundtrip(frames, fps, value)
    import av

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only on stderr
    h, w = frames[0].shape[:2]
    padded = [_pad_even(f) for f in frames]
    ph, pw = padded[0].shape[:2]

    t0 = time.perf_counter()
    enc = av.CodecContext.create(spec.encoder, "w")
    enc.width, enc.height = pw, ph
    enc.pix_fmt = "yuv420p"
    enc.time_base = 1 / fps
    enc.framerate = fps
    enc.options = {**spec.options, spec.param: str(value)}
    packets = []
    for i, a in enumerate(padded):
        vf = av.VideoFrame.from_ndarray(a, format="rgb24").reformat(format="yuv420p")
        vf.pts = i
        packets.extend(enc.encode(vf))
    packets.extend(enc.encode(None))
    n_bytes = sum(p.size for p in packets)
    extradata = enc.extradata
    t_enc = time.perf_counter() - t0

    t0 = time.perf_counter()
    dec = av.CodecContext.create(_decoder_name(spec), "r")
    if extradata:
        dec.extradata = extradata
    out: list[np.ndarray] = []
    for p in packets:
        for fr in dec.decode(p):
            out.append(fr.to_ndarray(format="rgb24")[:h, :w])
    for fr in dec.decode(None):
        out.append(fr.to_ndarray(format="rgb24")[:h, :w])
    t_dec = time.perf_counter() - t0
    if len(out) != len(frames):
        raise RuntimeError(f"decoded {len(out)} frames, expected {len(frames)}")
    return n_bytes, out, t_enc, t_dec


def _vqzip_roundtrip(frames: list[np.ndarray], fps: Fraction, quality: int):
    from .. import video
    from ..zoo import resolve
    h, w = frames[0].shape[:2]
    t0 = time.perf_counter()
    data = video.encode_frames(frames, w, h, fps, resolve(None, quality, "video"))
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = list(video.decode_frames(video.parse(data)))
    return len(data), out, t_enc, time.perf_counter() - t0


# --------------------------------------------------------------------------- VMAF

def vmaf_status() -> tuple[bool, str, str | None]:
    """``(available, reason, ffmpeg_exe)``: VMAF needs ``imageio_ffmpeg`` whose ffmpeg lists ``libvmaf``."""
    try:
        import imageio_ffmpeg
    except Exception as e:
        return False, f"imageio_ffmpeg not installed ({type(e).__name__}: {e})", None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:
        return False, f"imageio_ffmpeg has no ffmpeg binary ({type(e).__name__}: {e})", None
    try:
        r = subprocess.run([exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=60)
    except Exception as e:
        return False, f"cannot run {exe} ({type(e).__name__}: {e})", exe
    if "libvmaf" not in r.stdout:
        return False, f"ffmpeg at {exe} is built without libvmaf", exe
    return True, "", exe


def _ffmpeg_version(exe: str) -> str | None:
    try:
        r = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
        return r.stdout.splitlines()[0] if r.stdout else None
    except Exception:
        return None


def _write_raw(frames: list[np.ndarray], path: Path) -> None:
    with open(path, "wb") as f:
        for a in frames:
            f.write(np.ascontiguousarray(a, dtype=np.uint8).tobytes())


def _vmaf(exe: str, ref_raw: Path, dist: list[np.ndarray], fps: Fraction, tmp: Path) -> float:
    """Mean VMAF (libvmaf default model) of ``dist`` against the raw RGB reference file.
    Both go through ffmpeg's RGB -> yuv420p conversion before libvmaf."""
    h, w = dist[0].shape[:2]
    dist_raw = tmp / "dist.rgb"
    _write_raw(dist, dist_raw)
    log = tmp / "vmaf.json"
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps.numerator}/{fps.denominator}"]
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin",
           *raw, "-i", str(dist_raw), *raw, "-i", str(ref_raw),
           "-lavfi", f"[0:v]format=yuv420p[d];[1:v]format=yuv420p[r];"
                     f"[d][r]libvmaf=log_fmt=json:log_path={log.as_posix()}:n_threads={max(1, os.cpu_count() or 1)}",
           "-f", "null", "-"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg libvmaf failed: {r.stderr.strip()[-300:]}")
    data = json.loads(log.read_text())
    pooled = data.get("pooled_metrics", {}).get("vmaf", {})
    if "mean" in pooled:
        return float(pooled["mean"])
    vals = [fr["metrics"]["vmaf"] for fr in data.get("frames", [])]
    if not vals:
        raise RuntimeError("libvmaf log has no VMAF values")
    return float(np.mean(vals))


# --------------------------------------------------------------------------- engine

def _clean(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _bd(curves: dict[str, list[dict]], keys: list[str], anchor: str):
    def curve(name: str, key: str):
        pts = [p for p in curves.get(name, []) if p.get(key) is not None and p.get("kbps")]
        return [p["kbps"] for p in pts], [M.ms_ssim_db(p[key]) if key == "ms_ssim" else p[key] for p in pts]

    if not curves.get(anchor):
        return None, {"anchor": f"anchor {anchor!r} was not run (not requested or unavailable)"}
    table: dict[str, dict] = {}
    reasons: dict[str, dict] = {}
    for key in keys:
        ra, qa = curve(anchor, key)
        table[key], reasons[key] = {}, {}
        for name, pts in curves.items():
            if name == anchor or not pts:
                continue
            rt, qt = curve(name, key)
            val, why = bd_rate_info(ra, qa, rt, qt)
            table[key][name] = _clean(val)
            if val is None:
                reasons[key][name] = why
        if not reasons[key]:
            del reasons[key]
    return table, reasons


def run_video_bench(
    path: str | os.PathLike,
    codecs: Sequence[str] = VIDEO_CODECS,
    max_frames: int | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    vmaf: bool | None = None,
    command: str | None = None,
    console: Any = None,
    keep: Any = None,
) -> dict:
    """Benchmark video ``codecs`` on the clip at ``path`` (first ``max_frames`` frames).

    Args:
        path: a video file PyAV can read.
        codecs: any of ``x264``, ``x265``, ``av1``, ``vqzip``; unknown names raise ValueError,
            codecs whose encoder is missing are skipped with a note.
        max_frames: decode at most this many frames (``None``: the whole clip).
        out_dir: if given, write ``video_points.csv``, ``video_summary.json``, ``video_rd.png``.
        progress: rich progress bar on stderr over codec x setting.
        vmaf: ``None`` = compute VMAF when available, ``False`` = don't, ``True`` = same as None
            (unavailability is recorded, not raised).
        command: command line for the ``how`` block (default ``sys.argv``).
        keep: optional :class:`vqzip.bench.report.Keeper`, shown the clip's frames and every
            point's decoded frames (for the HTML report's frame strips); nothing else changes.

    Returns:
        dict with ``clip`` (path, width, height, n_frames, fps, fps_float, duration_s),
        ``codecs`` (per codec: available, reason, encoder, description, settings),
        ``skipped``, ``errors``, ``points`` ({codec: [{setting, crf, bytes, kbps, bpp, psnr,
        ms_ssim, ms_ssim_method, vmaf, enc_s, dec_s}]}, sorted by kbps), ``vmaf``
        ({available, reason}), ``metrics``, ``anchor``, ``bd_rate`` ({metric: {codec: %}}
        or None), ``bd_rate_reasons``, ``notes``, ``how``, ``elapsed_s`` (+ ``files``).
    """

    t_start = time.perf_counter()
    names: list[str] = []
    for n in codecs:
        k = n.strip().lower()
        if k not in VIDEO_CODECS:
            raise ValueError(f"unknown video codec {n!r}; known: {', '.join(VIDEO_CODECS)}")
        if k not in names:
            names.append(k)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    frames, fps = read_clip(path, max_frames)
    if keep is not None:
        keep.clip(str(path), frames)
    h, w = frames[0].shape[:2]
    n = len(frames)
    duration = n / float(fps)

    skipped: list[dict] = []
    notes: list[str] = []
    errors: list[dict] = []
    codec_info: dict[str, dict] = {}
    active: list[_VideoCodec] = []
    for name in names:
        spec = _SPECS[name]
        ok, reason = _encoder_available(spec)
        codec_info[name] = {"available": ok, "reason": reason, "encoder": spec.encoder,
                            "description": spec.description,
                            "settings": [f"{spec.param}={v}" for v in spec.settings] if ok else []}
        if ok:
            active.append(spec)
        else:
            skipped.append({"kind": "codec", "name": name, "reason": reason})
            notes.append(f"skipped codec {name}: {reason}")

    if vmaf is False:
        vmaf_ok, vmaf_reason, ffmpeg = False, "disabled by caller", None
    else:
        vmaf_ok, vmaf_reason, ffmpeg = vmaf_status()
    if not vmaf_ok:
        notes.append(f"vmaf: unavailable ({vmaf_reason})")

    prog = task = None
    if progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(TextColumn("[bold]video bench[/]"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=console or Console(stderr=True), transient=False)
        prog.start()
        task = prog.add_task("", total=sum(len(s.settings) for s in active))

    curves: dict[str, list[dict]] = {}
    methods: set[str] = set()
    tmpdir = tempfile.TemporaryDirectory(prefix="vqzip-vbench-") if vmaf_ok else None
    try:
        ref_raw = None
        if tmpdir is not None:
            ref_raw = Path(tmpdir.name) / "ref.rgb"
            _write_raw(frames, ref_raw)
        for spec in active:
            pts: list[dict] = []
            for value in spec.settings:
                label = f"{spec.param}={value}"
                if prog is not None:
                    prog.update(task, description=f"{path.name} · {spec.name} {label}")
                try:
                    n_bytes, dec, t_enc, t_dec = _roundtrip(spec, frames, fps, value)
                    psnrs, ssims, mset = [], [], set()
                    for a, b in zip(frames, dec):
                        psnrs.append(M.psnr(a, b))
                        v, method = M.ms_ssim_ex(a, b)
                        ssims.append(v)
                        mset.add(method)
                    method = mset.pop() if len(mset) == 1 else "mixed"
                    methods.add(method)
                    pt: dict[str, Any] = {
                        "codec": spec.name, "setting": label, spec.param: value, "bytes": int(n_bytes),
                        "kbps": n_bytes * 8.0 / duration / 1000.0, "bpp": n_bytes * 8.0 / (w * h * n),
                        "psnr": _clean(np.mean(psnrs)), "ms_ssim": _clean(np.mean(ssims)),
                        "ms_ssim_method": method, "vmaf": None,
                        "enc_s": float(t_enc), "dec_s": float(t_dec),
                    }
                    if vmaf_ok:
                        try:
                            pt["vmaf"] = _clean(_vmaf(ffmpeg, ref_raw, dec, fps, Path(tmpdir.name)))
                        except Exception as e:
                            errors.append({"codec": spec.name, "setting": label,
                                           "error": f"vmaf: {type(e).__name__}: {e}"})
                    pts.append(pt)
                    if keep is not None:
                        keep.clip_decoded(str(path), spec.name, label, dec)
                except Exception as e:
                    errors.append({"codec": spec.name, "setting": label, "error": f"{type(e).__name__}: {e}"})
                if prog is not None:
                    prog.advance(task)
            curves[spec.name] = sorted(pts, key=lambda p: p["kbps"])
    finally:
        if prog is not None:
            prog.stop()
        if tmpdir is not None:
            tmpdir.cleanup()

    if methods - {"ms-ssim"}:
        notes.append(f"MS-SSIM fell back to single-scale SSIM: frame short side < {M.MS_SSIM_MIN_SIDE} px "
                     "(ms_ssim_method)")
    if errors:
        notes.append(f"{len(errors)} roundtrip/metric error(s); see 'errors'")

    metric_keys = ["psnr", "ms_ssim"] + (["vmaf"] if vmaf_ok else [])
    bd, bd_reasons = _bd(curves, metric_keys, VIDEO_ANCHOR)

    args = {"path": str(path), "codecs": names, "max_frames": max_frames,
            "out_dir": str(out_dir) if out_dir is not None else None}
    how = _how(command, args)
    try:
        import av

        how["versions"]["av"] = av.__version__
    except Exception:
        pass
    if ffmpeg:
        how["versions"]["vmaf_ffmpeg"] = _ffmpeg_version(ffmpeg)
    how["notes"] = [
        "kbps = bitstream bytes * 8 / (frames / fps) / 1000; raw encoder packets, no container "
        "(vqzip: the whole .vqz file, header and GOP framing included)",
        "bpp = bits per pixel per frame; metrics are per-frame means over the clip, RGB, "
        "after yuv420p coding (even-padded, cropped back; vqzip codes RGB directly)",
        "PSNR: RGB, identical frames capped at 100 dB; MS-SSIM falls back to SSIM below 161 px",
        "VMAF: libvmaf default model via imageio_ffmpeg's ffmpeg, on RGB frames converted to yuv420p",
        f"BD-rate: PCHIP of log-kbps vs quality, overlapping range; MS-SSIM in dB; anchor {VIDEO_ANCHOR}; "
        "negative = fewer bits than the anchor",
    ]

    summary: dict[str, Any] = {
        "kind": "video",
        "clip": {"path": str(path), "width": w, "height": h, "n_frames": n,
                 "fps": f"{fps.numerator}/{fps.denominator}", "fps_float": float(fps),
                 "duration_s": duration},
        "codecs": codec_info,
        "metrics": metric_keys,
        "vmaf": {"available": vmaf_ok, "reason": vmaf_reason},
        "skipped": skipped,
        "errors": errors,
        "points": curves,
        "anchor": VIDEO_ANCHOR,
        "bd_rate": bd,
        "bd_rate_reasons": bd_reasons,
        "notes": notes,
        "how": how,
        "elapsed_s": round(time.perf_counter() - t_start, 3),
    }
    if out_dir is not None:
        summary["files"] = write_video_outputs(summary, Path(out_dir))
    return summary


def write_video_outputs(summary: dict, out_dir: Path) -> dict[str, str]:
    """Write ``video_points.csv``, ``video_summary.json`` and ``video_rd.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = summary["clip"]
    csv_path = out_dir / "video_points.csv"
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        wr.writeheader()
        for pts in summary.get("points", {}).values():
            for p in pts:
                row = {"clip": clip["path"], "width": clip["width"], "height": clip["height"],
                       "n_frames": clip["n_frames"], "fps": clip["fps"], **p}
                wr.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_FIELDS})
    json_path = out_dir / "video_summary.json"
    with open(json_path, "w") as f:
        json.dump({k: v for k, v in summary.items() if k != "files"}, f, indent=2, allow_nan=False, default=str)
        f.write("\n")
    png_path = out_dir / "video_rd.png"
    plot_video_rd(summary, png_path)
    return {"points_csv": str(csv_path), "summary_json": str(json_path), "rd_png": str(png_path)}


def plot_video_rd(summary: dict, path: str | os.PathLike) -> None:
    """RD plot: kbps on x, PSNR and MS-SSIM (dB) panels (plus VMAF when measured)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = [k for k in ("psnr", "ms_ssim", "vmaf") if k in (summary.get("metrics") or ["psnr", "ms_ssim"])]
    labels = {"psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM (dB)", "vmaf": "VMAF"}
    if any(p.get("ms_ssim_method") not in (None, "ms-ssim") for v in summary.get("points", {}).values() for p in v):
        labels["ms_ssim"] = "SSIM (dB; frames < 161 px)"
    fig = Figure(figsize=(5.2 * len(keys), 4.2), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    clip = summary.get("clip", {})
    for ax, key in zip(axes, keys):
        for name, pts in summary.get("points", {}).items():
            pts = sorted((p for p in pts if p.get(key) is not None), key=lambda p: p["kbps"])
            if not pts:
                continue
            y = [M.ms_ssim_db(p[key]) if key == "ms_ssim" else p[key] for p in pts]
            ax.plot([p["kbps"] for p in pts], y, label=name, marker="o", ms=4, lw=1.4)
        ax.set_xlabel("kbps")
        ax.set_ylabel(labels[key])
        ax.set_title(f"{labels[key]} vs kbps\n{Path(clip.get('path', '')).name} "
                     f"{clip.get('width')}x{clip.get('height')}, {clip.get('n_frames')} frames @ "
                     f"{clip.get('fps_float', 0):.3g} fps", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path if hasattr(path, "write") else str(path), format="png")  # a file object: the HTML report's


def format_video_table(summary: dict):
    """A ``rich.table.Table`` of the points (one row per codec x setting; bpp is in the CSV / JSON);
    BD-rates vs the anchor, the VMAF status and skip notes go in the caption."""
    from rich.table import Table

    clip = summary.get("clip", {})
    has_vmaf = "vmaf" in (summary.get("metrics") or [])
    t = Table(title=f"vqzip bench (video): {Path(clip.get('path', '')).name} {clip.get('width')}x"
                    f"{clip.get('height')}, {clip.get('n_frames')} frames @ {clip.get('fps')} fps")
    fallback = any(p.get("ms_ssim_method") not in (None, "ms-ssim")
                   for v in summary.get("points", {}).values() for p in v)
    ssim_head = "SSIM*" if fallback else "MS-SSIM"
    for col in ["codec", "setting", "kbps", "PSNR", ssim_head] + (["VMAF"] if has_vmaf else []) + ["enc s", "dec s"]:
        t.add_column(col, justify="left" if col in ("codec", "setting") else "right",
                     style="bold" if col == "codec" else None, no_wrap=True)
    bd = summary.get("bd_rate") or {}
    anchor = summary.get("anchor", VIDEO_ANCHOR)
    for name, pts in summary.get("points", {}).items():
        for i, p in enumerate(pts):
            t.add_row(
                name if i == 0 else "", str(p["setting"]), _fmt(p.get("kbps"), ".1f"),
                _fmt(p.get("psnr"), ".2f"), _fmt(p.get("ms_ssim"), ".4f"),
                *([_fmt(p.get("vmaf"), ".2f")] if has_vmaf else []),
                _fmt(p.get("enc_s"), ".2f"), _fmt(p.get("dec_s"), ".2f"),
                end_section=(i == len(pts) - 1),
            )
    n_cols = len(t.columns)
    for s in summary.get("skipped", []):
        if s.get("kind") == "codec":
            t.add_row(f"[dim]{s['name']}[/]", "[dim]skipped[/]", *[""] * (n_cols - 2))
    caption = []
    if bd:
        heads = {"psnr": "PSNR", "ms_ssim": ssim_head, "vmaf": "VMAF"}
        parts = []
        for name in summary.get("points", {}):
            if name == anchor or not summary["points"][name]:
                continue
            vals = []
            for key, tab in bd.items():
                v = (tab or {}).get(name)
                vals.append(f"{heads.get(key, key)} " + ("n/a" if v is None else
                                                         f"[{'green' if v < 0 else 'red'}]{v:+.1f}%[/]"))
            parts.append(f"{name}: " + ", ".join(vals))
        if parts:
            caption.append(f"BD-rate vs {anchor} (kbps at equal quality, negative = fewer bits): "
                           + "; ".join(parts))
    if fallback:
        caption.append(f"SSIM*: single-scale SSIM, frames < {M.MS_SSIM_MIN_SIDE} px")
    vm = summary.get("vmaf") or {}
    if not vm.get("available"):
        caption.append(f"vmaf: unavailable ({vm.get('reason')})")
    caption += [f"{s['name']}: {s['reason']}" for s in summary.get("skipped", [])]
    t.caption = "; ".join(caption)
    return t
