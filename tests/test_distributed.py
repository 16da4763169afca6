"""Training on two processes (gloo on this CPU), as torchrun runs it."""
import os
import socket
import subprocess
import sys

import pytest
import torch

from conftest import KODAK, read_log, resume_budget
from vqzip.weights import load_weights

TOK = dict(downsample=8, bits=8, group_bits=4, channels=(8, 16, 16, 16), blocks=(1, 1, 1, 1))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two tiny sets cut from Kodak photos (tests never train on Kodak's own files)."""
    from PIL import Image
    d = tmp_path_factory.mktemp("ddp_data")
    for s, names in [("a", ["kodim01", "kodim02"]), ("b", ["kodim03", "kodim04"])]:
        (d / s).mkdir()
        for n in names:
            Image.open(KODAK / f"{n}.png").resize((192, 128)).save(d / s / f"{n}.png")
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, ports, data, out):
    """One rank: trains a tokenizer then a prior, and keeps what it saw for the test to compare."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(ports[0]))
    torch.set_num_threads(1)
    from vqzip.nn.prior import PriorConfig
    from vqzip.nn.tokenizer import Tokenizer, TokenizerConfig
    from vqzip.train import data as data_mod, loop
    from vqzip.train.prior import PriorRecipe, train_prior
    from vqzip.train.tokenizer import TokenizerRecipe, train_tokenizer
    crops, trained = [], {}
    batch, update = data_mod.CropSampler.batch, loop.EMA.update

    def spy_batch(self, n):
        x = batch(self, n)
        crops.append(x.clone())
        return x

    def spy_update(self, model, step):
        trained[type(model).__name__] = model
        update(self, model, step)

    data_mod.CropSampler.batch, loop.EMA.update = spy_batch, spy_update
    files = train_tokenizer(data, out / "tok", TokenizerConfig(**TOK), TokenizerRecipe(minutes=0.04, batch=2, crop=64),
                            "cpu")
    os.environ["MASTER_PORT"] = str(ports[1])  # a store of its own: the first one may linger
    torch.manual_seed(0)  # every rank tokenizes with the same (untrained) tokenizer
    files += train_prior(data, Tokenizer(TokenizerConfig(**TOK)), out / "prior",
                         PriorConfig(token_bits=8, d_model=16, n_layer=1, n_head=2, window=2, period=2),
                         PriorRecipe(minutes=0.04, batch=2, crop=64, crops=4), "cpu")
    torch.save({"crops": crops[:2], "files": [str(f) for f in files],
                "weights": {k: m.state_dict() for k, m in trained.items()}}, out / f"rank{rank}.pt")


def test_two_ranks_draw_their_own_crops_and_end_with_the_same_weights(tmp_path, data):
    torch.multiprocessing.start_processes(_rank, ((_free_port(), _free_port()), data, tmp_path), nprocs=2, start_method="spawn")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert not torch.equal(r0["crops"][0], r1["crops"][0])
    assert set(r0["weights"]) == {"Tokenizer", "TokenPrior"}
    for name, w in r0["weights"].items():
        assert all(torch.equal(v, r1["weights"][name][k]) for k, v in w.items()), name
    assert [f.rsplit("/", 1)[-1] for f in r0["files"]] == ["tokenizer.safetensors", "prior.safetensors"]
    assert r1["files"] == []  # rank 0 alone writes
    for f in r0["files"]:
        assert load_weights(f)[1]["recipe"]["world_size"] == 2


def test_torchrun_resumes_a_run(tmp_path, data):
    """The real entry point: `torchrun -m vqzip train tokenizer`, a larger budget resuming the run."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vqzip",
           "train", "tokenizer", data, "-o", out, "--batch", "1", "--crop", "64", "--downsample", "8", "--bits", "8",
           "--group-bits", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    steps = []
    for first in (True, False):
        minutes = "0.03" if first else resume_budget(out / "log.jsonl")
        r = subprocess.run([*map(str, cmd), "--minutes", minutes], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("tokenizer.safetensors") == 1  # one rank prints, one writes
        steps.append(read_log(out / "log.jsonl")[-1]["step"])
    assert steps[1] > steps[0]
    assert load_weights(out / "tokenizer.safetensors")[1]["recipe"]["world_size"] == 2
