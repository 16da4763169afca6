"""``vqzip bench ... --html REPORT.html``: the bench as one self-contained page.

Everything is inside the file: the rate-distortion plots and every picture are PNGs in ``data:``
URIs, the style is inline, and there is no script and no link, so it opens from disk, offline,
and can be mailed or attached as it is. It holds

- for images: the RD plots, the BD-rate and averages tables, and for the first few images the
  same crop (the most detailed square of the picture) from every codec, each at its setting
  nearest a common rate, labelled with that setting's bpp and whole-image metrics;
- for each video clip: its RD plots and BD-rate table, and a strip of frames per codec at its
  setting nearest a common kbps.

The common rate is the lowest that every codec reaches (the largest of their smallest rates),
or, where their ranges do not overlap, the geometric middle of the gap: each codec is then shown
as close to the others as its own sweep allows, and the caption gives the real rate.

A :class:`Keeper` passed to ``run_bench`` / ``run_video_bench`` (``keep=``) collects the crops and
frames while the bench runs, so nothing is encoded twice.
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import metrics as M

CROP = 160          # pixels a side; shown at twice the size, pixelated, so that artifacts show
IMAGES = 4          # images whose crops are shown
FRAMES = 4          # frames in a video strip
THUMB_WIDTH = 200   # a strip's frame, in pixels


def _png_uri(img: Image.Image | np.ndarray | bytes) -> str:
    """A PNG `data:` URI of a picture (or of a PNG file's bytes, as they are)."""
    if not isinstance(img, bytes):
        buf = io.BytesIO()
        (Image.fromarray(img) if isinstance(img, np.ndarray) else img).save(buf, format="PNG", optimize=True)
        img = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(img).decode("ascii")


def _detailed_box(ref: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the side x side square with the most gradient energy, on a
    grid of 16 px: where codecs differ most visibly."""
    h, w = ref.shape[:2]
    ch, cw = min(side, h), min(side, w)
    g = ref.astype(np.float64).mean(2)
    energy = np.zeros((h, w))
    energy[:, 1:] += np.abs(np.diff(g, axis=1))
    energy[1:, :] += np.abs(np.diff(g, axis=0))
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best = max(((integral[y + ch, x + cw] - integral[y, x + cw] - integral[y + ch, x] + integral[y, x], y, x)
                for y in range(0, h - ch + 1, 16) for x in range(0, w - cw + 1, 16)))
    return best[1], best[2], ch, cw


def _thumb(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if w <= THUMB_WIDTH:
        return frame.copy()
    return np.asarray(Image.fromarray(frame).resize((THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), Image.LANCZOS))


class Keeper:
    """Collects, while a bench runs, what the report shows: a crop of every decoded point of the
    first `images` images, and `frames` thumbnails of every decoded point of each clip."""

    def __init__(self, images: int = IMAGES, crop: int = CROP, frames: int = FRAMES):
        self.images, self.crop, self.frames = images, crop, frames
        self.boxes: dict[str, tuple[int, int, int, int]] = {}
        self.crops: dict[str, dict[tuple[str, str], np.ndarray]] = {}      # image -> (codec, setting) -> crop
        self.picked: dict[str, list[int]] = {}                              # clip -> frame indices
        self.strips: dict[str, dict[tuple[str, str], list[np.ndarray]]] = {}

    def reference(self, path: str, ref: np.ndarray) -> None:
        if len(self.boxes) < self.images:
            self.boxes[path] = _detailed_box(ref, self.crop)
            self.crops[path] = {("original", ""): self._cut(path, ref)}

    def decoded(self, path: str, codec: str, setting: str, dec: np.ndarray) -> None:
        if path in self.boxes:
            self.crops[path][(codec, setting)] = self._cut(path, dec)

    def _cut(self, path: str, a: np.ndarray) -> np.ndarray:
        y, x, h, w = self.boxes[path]
        return a[y:y + h, x:x + w].copy()

    def clip(self, path: str, frames: list[np.ndarray]) -> None:
        n = len(frames)
        self.picked[path] = sorted({round(i * (n - 1) / max(1, self.frames - 1)) for i in range(self.frames)})
        self.strips[path] = {("original", ""): [_thumb(frames[i]) for i in self.picked[path]]}

    def clip_decoded(self, path: str, codec: str, setting: str, frames: list[np.ndarray]) -> None:
        self.strips[path][(codec, setting)] = [_thumb(frames[i]) for i in self.picked[path]]


def common_rate(rates: dict[str, list[float]]) -> float:
    """The rate every codec can come nearest to (see the module's docstring)."""
    lo = max(min(r) for r in rates.values())
    hi = min(max(r) for r in rates.values())
    return lo if lo <= hi else math.sqrt(lo * hi)


def nearest(points: dict[str, list[dict]], key: str) -> tuple[float, dict[str, dict]]:
    """The common rate of `points` ({codec: [point]}, rates under `key`) and each codec's point
    nearest it in log rate."""
    points = {c: [p for p in pts if p.get(key)] for c, pts in points.items()}
    points = {c: pts for c, pts in points.items() if pts}
    if not points:
        return 0.0, {}
    target = common_rate({c: [p[key] for p in pts] for c, pts in points.items()})
    return target, {c: min(pts, key=lambda p: abs(math.log(p[key] / target))) for c, pts in points.items()}


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { margin: 0 0 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ccc; }
.how { color: #666; font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
.better { color: #060; } .worse { color: #a00; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; font-size: 12px; }
figure img { display: block; image-rendering: pixelated; border: 1px solid #999; }
.strip { display: flex; gap: 4px; } .strip img { border: 1px solid #999; }
.plot { max-width: 100%; }
"""


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _num(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _bd_cell(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f'<span class="{"better" if v < 0 else "worse"}">{v:+.1f} %</span>'


def _metrics_caption(p: dict) -> str:
    parts = [f"PSNR {p['psnr']:.2f} dB" if p.get("psnr") is not None else None,
             f"MS-SSIM {p['ms_ssim']:.4f}" if p.get("ms_ssim") is not None else None,
             f"SSIMULACRA2 {p['ssimulacra2']:.1f}" if p.get("ssimulacra2") is not None else None,
             f"VMAF {p['vmaf']:.1f}" if p.get("vmaf") is not None else None]
    return " · ".join(x for x in parts if x)


def _plot(fn, summary: dict) -> str:
    buf = io.BytesIO()
    fn(summary, buf)
    return f'<img class="plot" alt="rate-distortion plots" src="{_png_uri(buf.getvalue())}">'


def _image_section(summary: dict, keep: Keeper | None) -> str:
    from .runner import plot_rd
    out = [f"<h2>Images: rate-distortion ({summary.get('n_images', 0)} images)</h2>", _plot(plot_rd, summary)]
    bd = summary.get("bd_rate") or {}
    cols = [(a, k) for a, tab in bd.items() if tab for k in tab]
    if cols:
        out.append("<h3>BD-rate (% bits at equal quality; negative = fewer bits than the anchor)</h3>")
        rows = [[html.escape(name)] + ["anchor" if name == a else _bd_cell(bd[a][k].get(name)) for a, k in cols]
                for name in summary.get("averages", {})]
        out.append(_table(["codec"] + [f"vs {a} {k}" for a, k in cols], rows))
    keys = summary.get("metrics") or []
    out.append("<h3>Averages over the images</h3>")
    rows = [[html.escape(name), html.escape(str(p["setting"])), _num(p.get("bpp"), ".4f"),
             *[_num(p.get(k), ".4f" if k == "ms_ssim" else ".2f") for k in keys],
             _num(p.get("enc_s") and p["enc_s"] * 1e3, ".1f"), _num(p.get("dec_s") and p["dec_s"] * 1e3, ".1f")]
            for name, pts in summary.get("averages", {}).items() for p in pts]
    out.append(_table(["codec", "setting", "bpp", *keys, "enc ms", "dec ms"], rows))
    if keep is not None:
        out.append(_crops(summary, keep))
    return "\n".join(out)


def _crops(summary: dict, keep: Keeper) -> str:
    out = ["<h2>Crops at a common rate</h2>",
           f"<p>The same {keep.crop} px crop (the most detailed square of each image) from every codec at its "
           "setting nearest the lowest rate all of them reach, shown at twice the size. The metrics are "
           "the whole image's.</p>"]
    for path, crops in keep.crops.items():
        rows = [r for r in summary.get("points", []) if r["image"] == path]
        by_codec: dict[str, list[dict]] = {}
        for r in rows:
            by_codec.setdefault(r["codec"], []).append(r)
        target, pick = nearest(by_codec, "bpp")
        y, x, h, w = keep.boxes[path]
        out.append(f"<h3>{html.escape(Path(path).name)}: crop at ({x}, {y}), codecs nearest {target:.3f} bpp</h3>")
        figs = [_figure(crops[("original", "")], "original", "", 2)]
        for codec, p in pick.items():
            if (codec, p["setting"]) in crops:
                figs.append(_figure(crops[(codec, p["setting"])], f"{codec} {p['setting']}",
                                    f"{p['bpp']:.3f} bpp · {_metrics_caption(p)}", 2))
        out.append('<div class="row">' + "".join(figs) + "</div>")
    return "\n".join(out)


def _figure(a: np.ndarray, title: str, caption: str, zoom: int) -> str:
    h, w = a.shape[:2]
    # the figure as wide as its picture: a long caption wraps instead of spreading the row
    return (f'<figure style="width: {w * zoom}px"><img alt="{html.escape(title)}" width="{w * zoom}" '
            f'height="{h * zoom}" src="{_png_uri(a)}">'
            f"<figcaption><b>{html.escape(title)}</b><br>{html.escape(caption)}</figcaption></figure>")


def _video_section(summary: dict, keep: Keeper | None) -> str:
    from .video import plot_video_rd
    clip = summary.get("clip", {})
    name = Path(clip.get("path", "")).name
    out = [f"<h2>Video: {html.escape(name)} ({clip.get('width')}x{clip.get('height')}, {clip.get('n_frames')} frames "
           f"at {clip.get('fps_float', 0):.3g} fps)</h2>", _plot(plot_video_rd, summary)]
    bd = summary.get("bd_rate") or {}
    if bd:
        out.append(f"<h3>BD-rate vs {html.escape(str(summary.get('anchor')))} (% kbps at equal quality)</h3>")
        names = sorted({c for tab in bd.values() for c in tab})
        out.append(_table(["codec", *bd], [[html.escape(c)] + [_bd_cell(bd[k].get(c)) for k in bd] for c in names]))
    rows = [[html.escape(c), html.escape(p["setting"]), _num(p.get("kbps"), ".1f"), _num(p.get("psnr"), ".2f"),
             _num(p.get("ms_ssim"), ".4f"), _num(p.get("vmaf"), ".1f")]
            for c, pts in summary.get("points", {}).items() for p in pts]
    out.append(_table(["codec", "setting", "kbps", "PSNR", "MS-SSIM", "VMAF"], rows))
    strips = keep.strips.get(clip.get("path")) if keep is not None else None
    if strips:
        target, pick = nearest(summary.get("points", {}), "kbps")
        frames = ", ".join(map(str, keep.picked[clip["path"]]))
        out.append(f"<h3>Frames {frames}, each codec at its setting nearest {target:.1f} kbps</h3>")
        lines = [("original", "", strips[("original", "")])]
        lines += [(f"{c} {p['setting']}", f"{p['kbps']:.1f} kbps · {_metrics_caption(p)}", strips[(c, p["setting"])])
                  for c, p in pick.items() if (c, p["setting"]) in strips]
        for title, caption, thumbs in lines:
            imgs = "".join(f'<img alt="{html.escape(title)}" width="{t.shape[1]}" height="{t.shape[0]}" '
                           f'src="{_png_uri(t)}">' for t in thumbs)
            out.append(f'<figure><figcaption><b>{html.escape(title)}</b> {html.escape(caption)}</figcaption>'
                       f'<div class="strip">{imgs}</div></figure><br>')
    return "\n".join(out)


def render_html(images: dict | None = None, videos: list[dict] = (), keep: Keeper | None = None) -> str:
    """The report of an image bench summary (``run_bench``'s result, with its ``points``) and of
    video bench summaries, as one HTML document."""
    how = (images or (videos[0] if videos else {})).get("how", {})
    machine = how.get("machine", {})
    head = (f'<p class="how">{html.escape(str(how.get("command", "")))} · {html.escape(str(how.get("date", "")))} · '
            f'{html.escape(str(machine.get("cpu", "")))}, {machine.get("cpu_count", "?")} cores</p>')
    body = [f"<h1>vqzip bench</h1>{head}"]
    if images:
        body.append(_image_section(images, keep))
    body += [_video_section(v, keep) for v in videos]
    notes = [n for s in ([images] if images else []) + list(videos) for n in s.get("notes", [])]
    if notes:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vqzip bench</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
