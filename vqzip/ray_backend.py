"""`--backend ray`: each file of a batch is one Ray task (a video is one task, whole), on a local
Ray instance or on a cluster that vqzip joins. batch.run keeps the skipping, the summary and the
progress bars; this module only decides where batch.attempt runs.

Workers read and write the same paths as the driver, so on a cluster every node needs the files at
the same place (a shared filesystem) and vqzip installed."""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from . import batch
from .errors import InputError

INSTALL_HINT = "--backend ray needs Ray: pip install 'vqzip[ray]'"
_ENV = ("VQZIP_MODELS", "VQZIP_PRECISION")  # what a worker must see as the driver does


class RayBackend:
    def __init__(self, ray):
        self.ray = ray
        # one GPU a task where the cluster has them, so device "auto" gets CUDA in the task
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        self.task = ray.remote(num_gpus=gpus)(_task)
        self.frames = ray.remote(num_cpus=0)(_FrameCounter).remote()

    def map(self, work, jobs: list[tuple[Path, Path]], on_frame):
        """batch.attempt's result for every job, as each task finishes."""
        ray = self.ray
        cwd = os.getcwd()
        work_ref = ray.put(work)
        pending = {self.task.remote(work_ref, src, dst, cwd, self.frames): src for src, dst in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for _ in range(ray.get(self.frames.take.remote())):
                on_frame()
            for ref in ready:
                src = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died or the code raised: that file fails, the rest go on
                    yield "failed", {"input": str(src), "error": f"Ray task failed: {_last_line(e)}"}


def connect(address: str | None) -> RayBackend:
    """A local Ray instance (address None) or the cluster at `address`, e.g. 10.0.0.5:6379 or auto."""
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    if address and ":" in address and "://" not in address:
        _reachable(address)
    env = {k: os.environ[k] for k in _ENV if k in os.environ}
    local = {} if address else {"include_dashboard": False}
    try:
        ray.init(address=address, runtime_env={"env_vars": env}, logging_level=logging.ERROR,
                 log_to_driver=False, **local)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InputError(f"cannot reach the Ray cluster at {address}: {_last_line(e)}") from None
    return RayBackend(ray)


def _reachable(address: str, timeout: float = 5.0):
    """ray.init retries an unreachable head for minutes; a refused or silent port fails at once."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout).close()
    except (OSError, ValueError) as e:
        raise InputError(f"cannot reach the Ray cluster at {address}: {e}") from None


def _task(work, src: Path, dst: Path, cwd: str, frames):
    import ray
    os.chdir(cwd)  # relative paths mean what they mean to the driver (workers run one task at a time)
    ticks = []
    result = batch.attempt(work, src, dst, lambda: ticks.append(frames.tick.remote()))
    # the counter has taken every tick before the result is ready, so the driver's next take, after
    # it sees the result, counts them all (on a busy machine some came after the last take)
    ray.get(ticks)
    return result


class _FrameCounter:
    """Video frames done in the tasks, for the driver's frame counter."""

    def __init__(self):
        self.n = 0

    def tick(self):
        self.n += 1

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


def _last_line(e: Exception) -> str:
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else type(e).__name__
