"""Many files in one command: mirror a folder tree, skip outputs that are up to date, carry on
past bad files and report them at the end."""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import InputError, VqzipError

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".gif"}


@dataclass
class Summary:
    done: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"done": self.done, "skipped": self.skipped, "failed": self.failed,
                "counts": {"done": len(self.done), "skipped": len(self.skipped), "failed": len(self.failed)}}


def plan(inputs: list[Path], out: Path | None, suffix: str | Callable[[Path], str], exts: set[str],
         recursive: bool) -> list[tuple[Path, Path]]:
    """(source, destination) pairs. A folder input mirrors its tree under `out` (default: beside
    the sources); a file input goes to `out` if that is a folder or a single-file target.
    `suffix` is the destination's extension, or a function of the source that gives it."""
    ext = suffix if callable(suffix) else (lambda _: suffix)
    jobs: list[tuple[Path, Path]] = []
    many = len(inputs) > 1 or any(p.is_dir() for p in inputs)
    if many and out is not None and out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; with several inputs -o must be a folder")
    for src in inputs:
        if src.is_dir():
            files = sorted(src.rglob("*") if recursive else src.iterdir())
            for f in files:
                if f.is_file() and f.suffix.lower() in exts:
                    rel = f.relative_to(src).with_suffix(ext(f))
                    jobs.append((f, (out / rel) if out else f.with_suffix(ext(f))))
        elif not src.exists():
            raise InputError(f"no such file: {src}")
        elif many:
            name = src.with_suffix(ext(src)).name
            jobs.append((src, (out / name) if out else src.with_suffix(ext(src))))
        else:
            jobs.append((src, out if out is not None else src.with_suffix(ext(src))))
    return jobs


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run(jobs: list[tuple[Path, Path]], work: Callable[[Path, Path, Callable[[], None]], dict], skip_fresh: bool,
        label: str, show_progress: bool = True, workers: int | None = 1, backend=None) -> Summary:
    """work(src, dst, on_frame) for every job, `workers` at a time in threads here (None: one per
    core), or on `backend` (ray_backend.RayBackend: one Ray task a file). on_frame advances the
    frame counter of the progress display (video). Failures are collected, not raised."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    if workers is not None and workers < 1:
        raise InputError(f"--jobs must be at least 1, not {workers}")
    s = Summary()
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                  TimeElapsedColumn(), disable=not (show_progress and sys.stderr.isatty())) as bar:
        files = bar.add_task("", total=len(jobs), name="files")
        frames = bar.add_task("", total=None, name="video frames", visible=False)

        def on_frame():
            bar.update(frames, advance=1, visible=True)

        todo = []
        for src, dst in jobs:
            if skip_fresh and dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
                s.skipped.append(str(dst))
                bar.advance(files)
            else:
                todo.append((src, dst))
        workers = min(cores(), max(1, len(todo))) if workers is None else workers
        for kind, record in _results(todo, work, on_frame, workers, backend):
            getattr(s, kind).append(record)
            bar.advance(files)
    return s


def attempt(work, src: Path, dst: Path, on_frame) -> tuple[str, dict]:
    """One file, wherever it runs: ("done", work's record) or ("failed", {input, error})."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        return "done", work(src, dst, on_frame)
    except VqzipError as e:
        return "failed", {"input": str(src), "error": str(e)}


def _results(todo, work, on_frame, workers: int, backend):
    """attempt() for every job, yielded as each finishes."""
    if backend is not None:
        yield from backend.map(work, todo, on_frame)
    elif workers == 1:
        for src, dst in todo:
            yield attempt(work, src, dst, on_frame)
    else:  # torch and the coders release the GIL, so threads overlap the heavy work
        # files side by side share the cores: each file's torch ops get cores/workers threads, so
        # the cores are not oversubscribed (on a busy machine, two-thread ops waiting on each
        # other took up to 40x one thread's time), and each file codes the same bits it would alone
        import torch
        before = torch.get_num_threads()
        torch.set_num_threads(max(1, cores() // workers))
        try:
            with ThreadPoolExecutor(workers) as pool:
                yield from (f.result() for f in as_completed([pool.submit(attempt, work, *job, on_frame) for job in todo]))
        finally:
            torch.set_num_threads(before)
