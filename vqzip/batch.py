"""Many files in one command: mirror a folder tree, skip outputs that are up to date, carry on
past bad files and report them at the end."""
from __future__ import annotations

import sys
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


def plan(inputs: list[Path], out: Path | None, suffix: str, exts: set[str], recursive: bool) -> list[tuple[Path, Path]]:
    """(source, destination) pairs. A folder input mirrors its tree under `out` (default: beside
    the sources); a file input goes to `out` if that is a folder or a single-file target."""
    jobs: list[tuple[Path, Path]] = []
    many = len(inputs) > 1 or any(p.is_dir() for p in inputs)
    if many and out is not None and out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; with several inputs -o must be a folder")
    for src in inputs:
        if src.is_dir():
            files = sorted(src.rglob("*") if recursive else src.iterdir())
            for f in files:
                if f.is_file() and f.suffix.lower() in exts:
                    rel = f.relative_to(src).with_suffix(suffix)
                    jobs.append((f, (out / rel) if out else f.with_suffix(suffix)))
        elif not src.exists():
            raise InputError(f"no such file: {src}")
        elif many:
            jobs.append((src, (out / src.with_suffix(suffix).name) if out else src.with_suffix(suffix)))
        else:
            jobs.append((src, out if out is not None else src.with_suffix(suffix)))
    return jobs


def run(jobs: list[tuple[Path, Path]], work: Callable[[Path, Path], dict], skip_fresh: bool,
        label: str, show_progress: bool = True) -> Summary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    s = Summary()
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                  TimeElapsedColumn(), disable=not (show_progress and sys.stderr.isatty())) as bar:
        task = bar.add_task("", total=len(jobs), name="")
        for src, dst in jobs:
            bar.update(task, name=src.name)
            if skip_fresh and dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
                s.skipped.append(str(dst))
            else:
                try:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    s.done.append(work(src, dst))
                except VqzipError as e:
                    s.failed.append({"input": str(src), "error": str(e)})
            bar.advance(task)
    return s
