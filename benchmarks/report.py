"""What every benchmark script ends with: print its result and, with --out, commit-ready JSON."""
from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, out: Path | None, not_printed: tuple[str, ...] = ()) -> None:
    """Print the result, less the `not_printed` keys (per-image rows, rounds: the file keeps them),
    and write all of it to `out`."""
    print(json.dumps({k: v for k, v in result.items() if k not in not_printed}, indent=2))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


class Rows:
    """OUT/rows.jsonl of a resumable sweep over images: each row is appended as soon as it is made,
    so a long run can be resumed, and several processes (--shard K/N) can fill one file."""

    def __init__(self, out: Path, key):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "rows.jsonl"
        self.key = key  # row -> what identifies it
        self.done = {key(r) for r in self.all()}

    def all(self) -> list[dict]:
        """Every row in the file, other processes' too."""
        return [json.loads(line) for line in self.path.read_text().splitlines()] if self.path.exists() else []

    def add(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.done.add(self.key(row))
        print(json.dumps(row), flush=True)


def shard(files: list, spec: str) -> list:
    """This process's share of `files` for --shard K/N: every N-th from the K-th."""
    k, n = map(int, spec.split("/"))
    return files[k::n]
