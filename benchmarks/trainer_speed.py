"""Tokenizer-trainer throughput (crops per second), before and after the device-side crop sampler,
interleaved round by round in one process so that a busy machine slows every variant alike.

"before" is the trainer of commit BEFORE (crops cut on the host, one photo at a time), extracted
from git and imported as the package `vqzip_before`; "after" is this checkout's trainer, eager and
(with --compile) under torch.compile. Each variant runs the real `train_tokenizer` with a short
budget, logging every 5 steps; the rate is taken from the first logged step to the last, so
start-up and compilation are left out.

usage: python benchmarks/trainer_speed.py DATA --out benchmarks/results/trainer [--rounds 3]
       [--minutes 1] [--batch 8] [--crop 128] [--compile] [--device cpu] [--before-src DIR]
--before-src: a folder holding BEFORE's vqzip package (`git archive 98bd679 vqzip | tar -x -C DIR`),
for a machine without the git history (the GPU machine).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vqzip.devices import cpu_name  # noqa: E402
from vqzip.nn.tokenizer import TokenizerConfig  # noqa: E402
from vqzip.train import loop, tokenizer as after  # noqa: E402

BEFORE = "98bd679"  # the last commit whose trainer cut crops on the host
LOG_EVERY = 5


def import_before(tmp: Path, src: Path | None):
    """The BEFORE commit's vqzip package, importable as vqzip_before."""
    if src:
        shutil.copytree(src / "vqzip", tmp / "vqzip")
    else:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE, "vqzip"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=tar, check=True)
    (tmp / "vqzip").rename(tmp / "vqzip_before")
    sys.path.insert(0, str(tmp))
    return importlib.import_module("vqzip_before.train.tokenizer"), importlib.import_module("vqzip_before.train.loop")


def rate(log: Path, batch: int) -> dict:
    recs = [json.loads(l) for l in log.read_text().splitlines()]
    first, last = recs[0], recs[-1]
    steps = last["step"] - first["step"]
    return {"steps_timed": steps, "seconds_timed": round(last["t"] - first["t"], 2),
            "crops_per_s": round(steps * batch / (last["t"] - first["t"]), 3) if steps else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--compile", action="store_true", help="also time the after trainer under torch.compile")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--before-src", type=Path)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trainer_speed_"))
    before, before_loop = import_before(tmp, a.before_src)
    for lp in (loop, before_loop):  # log every few steps, so that the rate skips the first (warm-up) step
        lp.RunLog.__init__.__defaults__ = (None, LOG_EVERY)
    variants = {"before": (before.train_tokenizer, before.TokenizerRecipe, {}),
                "after": (after.train_tokenizer, after.TokenizerRecipe, {"compile": False})}
    if a.compile:
        variants["after_compiled"] = (after.train_tokenizer, after.TokenizerRecipe, {"compile": True})
    load = [os.getloadavg()[0]]
    rounds = []
    for r in range(a.rounds):
        for name, (train, Recipe, extra) in variants.items():
            run = tmp / f"{name}_{r}"
            t0 = time.time()
            train(a.data, run, TokenizerConfig(), Recipe(minutes=a.minutes, batch=a.batch, crop=a.crop, **extra),
                  a.device)
            rec = {"round": r, "variant": name, "wall_s": round(time.time() - t0, 1)} | rate(run / "log.jsonl", a.batch)
            rounds.append(rec)
            print(json.dumps(rec), flush=True)
        load.append(os.getloadavg()[0])
    summary = {}
    for name in variants:
        rates = sorted(x["crops_per_s"] for x in rounds if x["variant"] == name and x["crops_per_s"])
        summary[name] = {"median_crops_per_s": rates[len(rates) // 2] if rates else None, "per_round": rates}
    by = {(x["round"], x["variant"]): x["crops_per_s"] for x in rounds}
    for name in summary:  # each round's pair ran side by side, so its ratio is the steadier figure
        ratios = sorted(by[r, name] / by[r, "before"] for r in range(a.rounds) if by[r, name] and by[r, "before"])
        summary[name]["vs_before_per_round"] = [round(x, 3) for x in ratios]
        summary[name]["vs_before_median"] = round(ratios[len(ratios) // 2], 3) if ratios else None
    dev = torch.device(a.device)
    result = {
        "command": "python " + " ".join(sys.argv),
        "before_commit": BEFORE,
        "after_commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                       text=True).stdout.strip(),
        "model": "TokenizerConfig() (f16-lfq20 architecture), from scratch", "batch": a.batch, "crop": a.crop,
        "minutes_per_run": a.minutes, "rounds": a.rounds,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name(),
        "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average_1min_each_round": [round(x, 2) for x in load],
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "summary": summary, "runs": rounds,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    name = f"trainer_speed_{a.device}.json"
    (a.out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
