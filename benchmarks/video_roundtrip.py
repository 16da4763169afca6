"""Every clip in a folder through `vqzip encode` and `vqzip decode` (the real CLI, in a subprocess):
does the output keep the frame count, the frame rate and the audio's duration?

The source's frames are counted by decoding them (container headers can be wrong: tree.avi claims
444 frames and holds 68) and its audio duration comes from its packet timestamps; the output is
read back the same way.

    python benchmarks/video_roundtrip.py ../shared/data/video -q 1 --out benchmarks/results/video/roundtrip.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vqzip.video_io import is_video, probe  # noqa: E402


def measure(path: Path) -> dict:
    """Frames (decoded), frame rate as stated, audio seconds (first audio stream's packets)."""
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        audio = None
        if c.streams.audio:
            a = c.streams.audio[0]
            times = [(p.pts, p.duration) for p in c.demux(a) if p.pts is not None and p.duration]
            if times:
                audio = float((max(p + d for p, d in times) - min(p for p, _ in times)) * a.time_base)
    return {"frames": frames, "fps": str(probe(path).fps), "audio_s": audio}


def vqzip(*args: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "vqzip", *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("-q", "--quality", default="1")
    ap.add_argument("--ext", default=".mp4", help="output container")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in sorted(p for p in a.folder.iterdir() if is_video(p)):
            vqz, back = Path(tmp) / (clip.stem + ".vqz"), Path(tmp) / (clip.stem + a.ext)
            src = measure(clip)
            row = {"clip": clip.name, "source": src}
            try:
                row["encode_s"] = round(vqzip("encode", str(clip), "-o", str(vqz), "-q", a.quality), 1)
                row["decode_s"] = round(vqzip("decode", str(vqz), "-o", str(back)), 1)
                row["vqz_bytes"] = vqz.stat().st_size
                row["output"] = out = measure(back)
                row["frames_ok"] = out["frames"] == src["frames"]
                row["fps_ok"] = Fraction(out["fps"]) == Fraction(src["fps"])
                row["audio_ok"] = (src["audio_s"] is None) == (out["audio_s"] is None) and (
                    src["audio_s"] is None or abs(out["audio_s"] - src["audio_s"]) < 0.1)
            except RuntimeError as e:
                row["error"] = str(e)
            rows.append(row)
            print(json.dumps(row), flush=True)
    res = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "quality": a.quality, "output_container": a.ext, "clips": rows,
           "all_ok": all(r.get("frames_ok") and r.get("fps_ok") and r.get("audio_ok") for r in rows)}
    print(json.dumps({"all_ok": res["all_ok"]}))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
