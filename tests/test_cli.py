"""The `vqzip` command through its real entry point."""
import json

import pytest
from PIL import Image

from conftest import run_cli

COMMANDS = ["encode", "decode", "info", "models", "bench", "train tokenizer", "train prior"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_has_examples(cmd):
    r = run_cli(*cmd.split(), "--help")
    assert r.returncode == 0 and "Example" in r.stdout


def test_encode_decode_info(tmp_path, photo):
    r = run_cli("encode", photo, "--json", check=True)
    enc = json.loads(r.stdout)
    vqz = photo.with_suffix(".vqz")
    assert enc["output"] == str(vqz) and vqz.stat().st_size == enc["file_bytes"]
    out = tmp_path / "back.webp"
    dec = json.loads(run_cli("decode", vqz, "-o", out, "--json", check=True).stdout)
    assert Image.open(out).size == Image.open(photo).size == (dec["width"], dec["height"])
    info = json.loads(run_cli("info", vqz, "--json", check=True).stdout)
    assert info["file_bytes"] == vqz.stat().st_size and info["width"] == Image.open(photo).width


def test_never_overwrites_without_force(photo):
    run_cli("encode", photo, check=True)
    vqz = photo.with_suffix(".vqz")
    before = vqz.read_bytes()
    r = run_cli("encode", photo)
    assert r.returncode == 1 and "exists" in r.stderr and "--force" in r.stderr
    assert vqz.read_bytes() == before
    assert run_cli("encode", photo, "--force").returncode == 0
    assert not [p for p in photo.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("content,needle", [
    (None, "no such file"),
    (b"", "truncated"),
    (b"VQZ1" + b"\0" * 200, "corrupted"),
    (b"GIF89a not really", "not a vqzip file"),
])
def test_bad_vqz_gives_one_line_error(tmp_path, content, needle):
    f = tmp_path / "bad.vqz"
    if content is not None:
        f.write_bytes(content)
    r = run_cli("decode", f, "-o", tmp_path / "x.png")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and needle in r.stderr and "Traceback" not in r.stderr


def test_bad_image_inputs(tmp_path):
    txt = tmp_path / "notes.png"
    txt.write_text("hello")
    for args, needle in [((txt,), "not a supported image"), ((tmp_path / "missing.jpg",), "no such file"),
                         ((txt, "-q", "99"), "")]:
        r = run_cli("encode", *args)
        assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr


def test_batch_carries_on_past_a_bad_file(tmp_path, photo):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.open(photo).save(src / "a.png")
    Image.open(photo).save(src / "sub" / "b.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    r = run_cli("encode", src, "-o", tmp_path / "out", "-r", "--json")
    s = json.loads(r.stdout)
    assert r.returncode == 1
    assert s["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    assert s["failed"][0]["input"].endswith("broken.png")
    assert (tmp_path / "out" / "sub" / "b.vqz").exists()
    again = json.loads(run_cli("encode", src, "-o", tmp_path / "out", "-r", "--json").stdout)
    assert again["counts"]["skipped"] == 2  # outputs newer than their sources are left alone


def test_models_lists_points():
    d = json.loads(run_cli("models", "--json", check=True).stdout)
    assert d["points"] and d["default_quality"] in [p["quality"] for p in d["points"]]


def test_models_numbers_points_as_the_zoo_does(tmp_path):
    """Measured numbers made under an older ladder must not relabel today's points."""
    from vqzip import zoo
    name = zoo.resolve().model
    (tmp_path / name).mkdir()
    for f in zoo.get_model(name).path.iterdir():
        if f.suffix == ".safetensors":
            (tmp_path / name / f.name).symlink_to(f)
    (tmp_path / name / "metrics.json").write_text(json.dumps({"points": {"1": {"quality": 9, "bpp": 0.5}}}))
    (tmp_path / "points.json").write_text(json.dumps(
        {"default": 1, "points": [{"quality": 1, "model": name, "scale": "1"}]}))
    d = json.loads(run_cli("models", "--json", env={"VQZIP_MODELS": str(tmp_path)}, check=True).stdout)
    assert [(p["quality"], p["scale"], p["bpp"]) for p in d["points"]] == [(1, "1", 0.5)]


def test_batch_decode_mirrors_the_tree(tmp_path, photo):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.open(photo).save(src / "sub" / "a.png")
    run_cli("encode", src, "-o", tmp_path / "vqz", "-r", check=True)
    r = run_cli("decode", tmp_path / "vqz", "-o", tmp_path / "back", "-r", "--json", check=True)
    assert json.loads(r.stdout)["counts"] == {"done": 1, "skipped": 0, "failed": 0}
    assert Image.open(tmp_path / "back" / "sub" / "a.png").size == Image.open(photo).size


def test_files_side_by_side_code_the_bits_of_one_at_a_time(tmp_path, photo):
    """--jobs 2 (two files at once, one torch thread each; the default on two cores) writes the
    files and pictures that --jobs 1 (one file on every thread) does."""
    src = tmp_path / "in"
    src.mkdir()
    img = Image.open(photo).convert("RGB")
    img.save(src / "a.png")
    img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(src / "b.png")
    for jobs in (1, 2):
        run_cli("encode", src, "-o", tmp_path / f"vqz{jobs}", "--jobs", jobs, check=True)
        run_cli("decode", tmp_path / f"vqz{jobs}", "-o", tmp_path / f"png{jobs}", "--jobs", jobs, check=True)
    for name in ("a", "b"):
        assert (tmp_path / "vqz1" / f"{name}.vqz").read_bytes() == (tmp_path / "vqz2" / f"{name}.vqz").read_bytes()
        assert Image.open(tmp_path / "png1" / f"{name}.png").tobytes() == Image.open(tmp_path / "png2" / f"{name}.png").tobytes()


def test_max_pixels_bounds_decoding_work(tmp_path, photo):
    """A service decoding untrusted files can refuse large declared sizes before any work."""
    vqz = tmp_path / "p.vqz"
    run_cli("encode", photo, "-o", vqz, "-q", "1", check=True)
    w, h = Image.open(photo).size
    r = run_cli("decode", vqz, "-o", tmp_path / "a.png", "--max-pixels", w * h - 1)
    assert r.returncode == 1 and f"over the {w * h - 1}-pixel limit" in r.stderr
    assert not (tmp_path / "a.png").exists()
    run_cli("decode", vqz, "-o", tmp_path / "b.png", "--max-pixels", w * h, check=True)
