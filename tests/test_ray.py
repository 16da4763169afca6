"""`--backend ray`: the same batch as the local backend, as Ray tasks on a local 2-CPU instance."""
import json
import os

import pytest
from PIL import Image

from conftest import KODAK, run_cli
from vqzip.errors import InputError


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray instance with 2 CPUs for the whole session (starting one takes ~7 s)."""
    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _photos(folder, n):
    folder.mkdir()
    im = Image.open(KODAK / "kodim23.png")
    for i in range(n):
        im.crop((40 * i, 30 * i, 40 * i + 96, 30 * i + 80)).save(folder / f"p{i}.png")


def test_ray_batch_is_the_local_batch(tmp_path, ray_address):
    src = tmp_path / "in"
    _photos(src, 6)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    runs = {}
    for name, args in [("local", []), ("ray", ["--backend", "ray", "--address", ray_address])]:
        r = run_cli("encode", src, "-o", tmp_path / name, "-q", "1", "--json", *args)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        runs[name] = json.loads(r.stdout)
    assert runs["ray"]["counts"] == runs["local"]["counts"] == {"done": 6, "skipped": 0, "failed": 1}
    assert [f["input"] for f in runs["ray"]["failed"]] == [str(src / "broken.png")]
    for f in (tmp_path / "local").iterdir():
        assert (tmp_path / "ray" / f.name).read_bytes() == f.read_bytes()
    again = run_cli("encode", src, "-o", tmp_path / "ray", "-q", "1", "--json", "--backend", "ray", "--address", ray_address)
    assert json.loads(again.stdout)["counts"] == {"done": 0, "skipped": 6, "failed": 1}
    run_cli("decode", tmp_path / "local", "-o", tmp_path / "back_local", check=True)
    run_cli("decode", tmp_path / "local", "-o", tmp_path / "back_ray", "--backend", "ray", "--address", ray_address,
            check=True)
    for f in (tmp_path / "back_local").iterdir():
        assert (tmp_path / "back_ray" / f.name).read_bytes() == f.read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))


def test_ray_tasks_relay_frames_and_report_crashes(tmp_path, ray_address):
    import ray
    from vqzip import batch, ray_backend

    def work(src, dst, on_frame):
        if src.name == "crash":
            raise RuntimeError("worker code went wrong")
        for _ in range(3):
            on_frame()
        dst.write_text("ok")
        return {"input": str(src)}

    jobs = [(tmp_path / n, tmp_path / "out" / f"{n}.txt") for n in ("a", "b", "crash")]
    for src, _ in jobs:
        src.touch()
    frames = []
    results = list(ray_backend.RayBackend(ray).map(work, jobs, lambda: frames.append(1)))
    assert sorted(kind for kind, _ in results) == ["done", "done", "failed"]
    failed = next(rec for kind, rec in results if kind == "failed")
    assert failed["input"].endswith("crash") and "worker code went wrong" in failed["error"]
    assert len(frames) == 6 and (tmp_path / "out" / "a.txt").read_text() == "ok"
    s = batch.run(jobs[:2], work, True, "test", backend=ray_backend.RayBackend(ray))
    assert s.as_dict()["counts"] == {"done": 0, "skipped": 2, "failed": 0}  # skipped before any task


def test_without_ray_the_error_says_how_to_install(tmp_path, photo):
    shim = tmp_path / "shim" / "ray"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    r = run_cli("encode", photo.parent, "-o", tmp_path / "out", "--backend", "ray",
                env={"PYTHONPATH": str(shim.parent)})
    assert r.returncode == 1 and r.stderr == "error: --backend ray needs Ray: pip install 'vqzip[ray]'\n"


def test_unreachable_cluster_fails_at_once():
    pytest.importorskip("ray")
    from vqzip import ray_backend
    with pytest.raises(InputError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        ray_backend.connect("127.0.0.1:1")


@pytest.mark.parametrize("args,needle", [(["--backend", "spark"], "unknown backend 'spark' (use local or ray)"),
                                         (["--address", "10.0.0.5:6379"], "--address is for --backend ray"),
                                         (["--backend", "ray", "--jobs", "2"], "--jobs is for the local backend")])
def test_backend_options_are_checked(tmp_path, photo, args, needle):
    r = run_cli("encode", photo.parent, "-o", tmp_path / "out", *args)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and needle in r.stderr and r.stderr.count("\n") == 1
