"""`vqzip train prior`: fit the token prior to the tokens a trained tokenizer gives on a folder of images."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..nn.prior import PriorConfig, TokenPrior, load_prior
from ..nn.tokenizer import Tokenizer
from ..weights import export_weights
from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .data import CropSampler, parse_scales, parse_weights
from ..devices import autocast
from .distributed import CallAs, Ranks
from .loop import EMA, Budget, RunLog, compiled, device_name, set_lr


@dataclass
class PriorRecipe:
    minutes: float = 10.0
    batch: int = 16
    crop: int = 320           # pixels; the token grid is crop / stride on a side
    crops: int = 2000         # how many crops are tokenized up front; 0: fresh crops every step
    scales: str = "1"         # crops are resized by one of these, drawn at random (see CropSampler)
    max_side: int = 1024      # photos are first shrunk to at most this many pixels on a side
    lr: float = 1e-3
    ema: float = 0.999
    set_weights: str = ""
    seed: int = 0
    save_every_s: float = 120.0
    init: str = ""            # start from these shipped prior weights (their config wins)
    compile: bool | None = None  # torch.compile the network; None: on CUDA only (see compiled())

    def __post_init__(self):
        parse_scales(self.scales)  # a bad list fails before the data is loaded


def tokenize_crops(tok: Tokenizer, sampler: CropSampler, n: int, dev: torch.device, chunk: int = 32):
    out = []
    with autocast(dev):
        for i in range(0, n, chunk):
            x = sampler.batch(min(chunk, n - i))
            out.append(tok.encode(x).int())
    return torch.cat(out)


def train_prior(data: Path, tokenizer: Tokenizer, run_dir: Path, cfg: PriorConfig, recipe: PriorRecipe,
                device: str = "auto", on_log=None) -> list[Path]:
    """Trains (or resumes) and writes run_dir/prior.safetensors (float weights; exact.py integerizes them).
    Under torchrun every rank trains on its own crops and rank 0 writes; the others return []."""
    if cfg.token_bits != tokenizer.cfg.token_bits:
        raise InputError(f"prior codes {cfg.token_bits}-bit tokens but the tokenizer makes {tokenizer.cfg.token_bits}-bit ones")
    ranks = Ranks(device)
    dev = ranks.device
    torch.manual_seed(recipe.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "prior_ckpt.safetensors"
    sampler = CropSampler(data, recipe.crop, parse_weights(recipe.set_weights), max_side=recipe.max_side,
                          seed=ranks.seed(recipe.seed), scales=parse_scales(recipe.scales), device=dev)
    tokenizer = tokenizer.to(dev).eval()
    # a fixed pool is cheap to revisit, but a prior revisiting it learns the pool: fresh crops
    # (crops=0) cost a tokenizer pass a step and never repeat
    pool = tokenize_crops(tokenizer, sampler, recipe.crops, dev) if recipe.crops else None
    model = TokenPrior(cfg)
    if recipe.init:
        model.load_state_dict(load_prior(recipe.init).state_dict())
    model = model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.95), weight_decay=0.01)
    ema = EMA(model, recipe.ema)
    meta = {"step": 0, "elapsed": 0.0}
    if ckpt.exists():
        check_resumable(ckpt, cfg.to_dict(), "prior")
        meta = load_checkpoint(ckpt, {"model": model, "ema": ema.model}, {"opt": opt})
    budget = Budget(recipe.minutes, recipe.lr, elapsed=meta["elapsed"], step=meta["step"])
    gen = torch.Generator().manual_seed((recipe.seed + budget.step) * ranks.world + ranks.rank)
    sampler.rng = np.random.default_rng(ranks.seed(recipe.seed, budget.step))  # a resumed run draws new crops
    log = RunLog(run_dir / "prior_log.jsonl", on_log) if ranks.main else None
    record = asdict(recipe) | {"world_size": ranks.world, "compile": compiled(recipe.compile, dev)}  # --batch is per process
    net = ranks.wrap(CallAs(model, "loss"))
    if record["compile"]:
        net = torch.compile(net)

    def save():
        save_checkpoint(ckpt, {"model": model, "ema": ema.model}, {"opt": opt},
                        {"step": budget.step, "elapsed": budget.elapsed, "config": cfg.to_dict(), "recipe": record})

    model.train()
    while (progress := ranks.progress(budget)) < 1:
        set_lr(opt, budget.next_lr(progress))
        if pool is None:
            t = tokenize_crops(tokenizer, sampler, recipe.batch, dev).long()
        else:
            t = pool[torch.randint(0, len(pool), (recipe.batch,), generator=gen).to(dev)].long()
        if torch.rand(()) < 0.5:  # transposed grids are as plausible as upright ones for a local prior
            t = t.transpose(1, 2)
        with autocast(dev):
            bits = net(t)
        opt.zero_grad(set_to_none=True)
        bits.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model, budget.step)
        if log and log.due(budget):
            log.write(budget, {"bits_per_token": float(bits.detach()), "raw_bits": cfg.token_bits})
        if ranks.main and budget.save_due(recipe.save_every_s):
            save()
    ranks.close()
    if not ranks.main:
        return []
    save()
    meta = {"config": cfg.to_dict(), "recipe": record, "steps": budget.step,
            "train_seconds": round(budget.elapsed), "device": device_name(dev)}
    return export_weights(run_dir / "prior.safetensors", ema.model, meta)
