"""Training as a product feature: tiny budgets on a few real photos, through the CLI."""
import shutil

import pytest
import torch

from vqzip.nn.tokenizer import load_tokenizer
from vqzip.nn.prior import load_prior
from vqzip.errors import InputError
from vqzip.weights import load_weights, shard_paths

from conftest import SHARED, read_log, resume_budget, run_cli


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    for s in ["budgie_backgrounds", "bsds500"]:
        (d / s).mkdir()
        for f in sorted((SHARED / "train" / s).glob("*.jpg"))[:2]:
            shutil.copy(f, d / s)
    return d


def steps(log):
    return [r["step"] for r in read_log(log)]


@pytest.mark.parametrize("args", [["--quantizer", "lfq", "--bits", "12", "--group-bits", "6"],
                                  ["--quantizer", "vq", "--codebook-size", "64", "--gan-weight", "0.1", "--gan-start", "0"]])
def test_tokenizer_trains_resumes_and_exports(tmp_path, data, args):
    out = tmp_path / "run"
    base = ["train", "tokenizer", data, "-o", out, "--batch", "2", "--crop", "64", "--downsample", "8", *args]
    run_cli(*base, "--minutes", "0.05", check=True)
    first = steps(out / "log.jsonl")[-1]
    run_cli(*base, "--minutes", resume_budget(out / "log.jsonl"), check=True)  # a larger budget resumes the same run
    assert steps(out / "log.jsonl")[-1] > first
    tok = load_tokenizer(out / "tokenizer.safetensors")
    assert tok.stride == 8
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    t = tok.encode(x)
    assert t.shape == (1, 4, 6) and int(t.max()) < tok.quant.codebook_size
    assert tok.decode(t).shape == x.shape


def test_resume_with_other_config_is_refused(tmp_path, data):
    out = tmp_path / "run"
    run_cli("train", "tokenizer", data, "-o", out, "--batch", "1", "--crop", "64", "--bits", "8",
            "--minutes", "0.02", check=True)
    r = run_cli("train", "tokenizer", data, "-o", out, "--batch", "1", "--crop", "64", "--bits", "10", "--minutes", "0.05")
    assert r.returncode != 0 and "another tokenizer config" in r.stderr


def test_decoder_only_finetune_keeps_tokens(tmp_path, data):
    out = tmp_path / "base"
    run_cli("train", "tokenizer", data, "-o", out, "--batch", "1", "--crop", "64", "--bits", "8",
            "--minutes", "0.02", check=True)
    ft = tmp_path / "ft"
    run_cli("train", "tokenizer", data, "-o", ft, "--batch", "1", "--crop", "64", "--minutes", "0.03",
            "--init", out / "tokenizer.safetensors", "--decoder-only", "--pixel-loss", "mse", check=True)
    a, b = load_tokenizer(out / "tokenizer.safetensors"), load_tokenizer(ft / "tokenizer.safetensors")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(a.encode(x), b.encode(x))
    assert not torch.equal(a.decode(a.encode(x)), b.decode(b.encode(x)))


@pytest.mark.parametrize("pool", [["--crops", "8"],  # a fixed pool, revisited
                                  ["--crops", "0", "--scales", "3/4,3/2", "--max-side", "256"]])  # fresh crops
def test_prior_trains_on_tokenizer_tokens(tmp_path, data, pool):
    tok_dir = tmp_path / "tok"
    run_cli("train", "tokenizer", data, "-o", tok_dir, "--batch", "1", "--crop", "64", "--bits", "8",
            "--minutes", "0.02", check=True)
    run_cli("train", "prior", data, "--tokenizer", tok_dir / "tokenizer.safetensors", "-o", tmp_path / "p",
            "--minutes", "0.05", "--crop", "64", *pool, "--batch", "2", "--d-model", "32",
            "--n-layer", "1", "--n-head", "2", "--window", "2", "--period", "2", check=True)
    prior = load_prior(tmp_path / "p" / "prior.safetensors")
    assert prior.cfg.token_bits == 8 and prior.cfg.period == 2
    bits = read_log(tmp_path / "p" / "prior_log.jsonl")[-1]["bits_per_token"]
    assert 0 < bits < 12
    recipe = load_weights(tmp_path / "p" / "prior.safetensors")[1]["recipe"]
    assert [str(recipe[k.removeprefix("--").replace("-", "_")]) for k in pool[::2]] == pool[1::2]


@pytest.mark.parametrize("scales", ["0", "1,x", "-1/2", ","])
def test_bad_scales_are_refused_in_one_line(tmp_path, data, scales):
    r = run_cli("train", "prior", data, "--tokenizer", tmp_path / "none.safetensors", "-o", tmp_path / "p",
                "--scales", scales)
    assert r.returncode != 0 and "scales" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, needle", [(["--period", "3"], "period must be"),
                                          (["--d-model", "30", "--n-head", "4"], "multiple of n_head")])
def test_bad_prior_config_is_refused_in_one_line(tmp_path, data, args, needle):
    from vqzip.zoo import get_model
    r = run_cli("train", "prior", data, "--tokenizer", get_model("f16-lfq20").path / "tokenizer.safetensors",
                "-o", tmp_path / "p", *args)
    assert r.returncode == 1 and needle in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("weights, needle", [("missing", "no weights at"), ("garbage", "not a safetensors"),
                                              ("prior", "not tokenizer weights")])
def test_bad_weights_are_refused_in_one_line(tmp_path, data, weights, needle):
    from vqzip.zoo import get_model
    path = {"missing": tmp_path / "none.safetensors", "garbage": tmp_path / "junk.safetensors",
            "prior": get_model("f16-lfq20").path / "prior.safetensors"}[weights]
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    for cmd in (["prior", data, "--tokenizer", path], ["tokenizer", data, "--init", path]):
        r = run_cli("train", *cmd, "-o", tmp_path / "run", "--minutes", "0.01")
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_crop_scales_zoom_like_the_quality_levels(tmp_path):
    """On a horizontal ramp a crop spans as many levels as its source window is wide: a crop taken
    at scale 2 comes from a window half the crop's size, one at 1/2 from one twice its size."""
    from PIL import Image
    from fractions import Fraction
    from vqzip.train.data import CropSampler
    import numpy as np
    ramp = np.broadcast_to(np.linspace(0, 255, 512).astype(np.uint8)[None, :, None], (512, 512, 3))
    (tmp_path / "set").mkdir()
    Image.fromarray(np.ascontiguousarray(ramp)).save(tmp_path / "set" / "ramp.png")

    def span(scale):
        x = CropSampler(tmp_path, 64, scales=[Fraction(scale)], seed=3).batch(8)
        return float((x[:, 0, 32].amax(-1) - x[:, 0, 32].amin(-1)).mean()) * 127.5  # levels across a row

    assert span(1) == pytest.approx(63 * 255 / 511, abs=1.5)
    assert span("1/2") == pytest.approx(2 * span(1), rel=0.05)
    assert span(2) == pytest.approx(span(1) / 2, rel=0.1)


def test_large_weights_are_sharded_under_16_mib(tmp_path):
    from vqzip.nn.tokenizer import Tokenizer, TokenizerConfig
    from vqzip.weights import export_weights
    m = Tokenizer(TokenizerConfig(channels=(64, 128, 256, 512)))
    files = export_weights(tmp_path / "tokenizer.safetensors", m, {"config": m.cfg.to_dict()})
    assert len(files) > 1 and all(f.stat().st_size <= 16 * 2 ** 20 for f in files)
    assert shard_paths(tmp_path / "tokenizer.safetensors") == files
    tensors, meta = load_weights(tmp_path / "tokenizer.safetensors")
    assert set(tensors) == set(m.state_dict()) and meta["config"]["channels"] == [64, 128, 256, 512]
    files[-1].unlink()
    with pytest.raises(InputError, match="shards expected"):
        load_weights(tmp_path / "tokenizer.safetensors")
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"), {"config": "{not json"})
    with pytest.raises(InputError, match="unreadable metadata"):
        load_weights(tmp_path / "foreign.safetensors")


def test_the_same_weights_export_to_the_same_bytes(tmp_path):
    """A layer is named in files by its weights hash, so exporting it again must not change it
    (the safetensors library writes the metadata in a random order; export_weights sorts it)."""
    import hashlib
    from vqzip.weights import export_weights, load_weights
    net = torch.nn.Conv2d(3, 4, 3)
    meta = {"config": {"b": 2, "a": [1, 2]}, "steps": 7, "device": "cpu", "recipe": {"lr": 1e-3}}
    digests = {hashlib.sha256(export_weights(tmp_path / f"w{i}.safetensors", net, meta)[0].read_bytes()).digest()
               for i in range(4)}
    assert len(digests) == 1
    assert load_weights(tmp_path / "w0.safetensors")[1] == meta
