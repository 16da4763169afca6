"""`vqzip train refine`: train the refinement layer (vqzip/nn/refine.py) over a frozen base tokenizer and prior.

Each step draws `fresh` new crops, each resized by one of `scales` (the ladder's scales, as in the
prior's training), codes them with the frozen base layer (tokens, reconstruction, and the base
tokens' surprise under the frozen float prior) and adds them to a pool; the batch is drawn from the
pool with a rate level per crop. The frozen base layer costs more than the refinement's training
step on a CPU, so each crop is used several times rather than coded anew for every use. The loss per crop is the encoder
search's objective (search.py) with the refinement's bits, but with MSE weighted up:

    MSE + msssim_weight * (1 - MS-SSIM) [+ ssim2_weight * (100 - SSIMULACRA2)] + lambda[rate] * bits / pixels      (0-255 units)

with the layer's msssim_weight (RefineConfig; `--msssim-weight`, 1500 for every layer shipped so
far) and ssim2_weight (`--ssim2-weight`, 0 up to version 5), which refine_search.py minimizes too. At the base-token search's weight (6000), 1 - MS-SSIM
outweighs MSE about fourfold at the refinement's rates (MS-SSIM 0.89, MSE 140 near 0.25 bpp),
while PSNR is where the base layer trails JPEG most.

With `freeze_transform` only the entropy model trains, and only the rate term depends on it: the
pool then keeps each crop's symbols at every rate level (SymbolPool) instead of its pixels, and a
step is the context model's alone, several times cheaper. Those runs also log `val_bpp`, the
model's bits on fixed crops of the training set, to compare entropy models by.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim

from ..devices import autocast
from ..nn.prior import TokenPrior
from ..nn.refine import RefineConfig, Refiner
from ..nn.tokenizer import Tokenizer
from ..weights import export_weights, load_weights
from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .data import CropSampler, parse_scales, parse_weights
from .loop import EMA, Budget, RunLog, device_name, set_lr
from . import ssimulacra2
from .losses import msssim_window


MSSSIM_WEIGHT = RefineConfig.msssim_weight  # the shipped layers' weight; a layer's own is in its config
RATE_LR_SCALE = 10.0  # the rate model's and gains' learning rate, in units of lr
# The rate term ramps up over these steps. With it on from the start, a refinement that started
# from nothing (before the DCT path) learned to send nothing: 0.001 bpp and +0.02 dB after 500
# steps, because its decoder's last layer starts at zero, so at first only the rate had a
# gradient, and it drove every latent into the rounding bin of 0.
RATE_WARMUP_STEPS = 100


@dataclass
class RefineRecipe:
    minutes: float = 60.0
    batch: int = 8
    crop: int = 128
    lr: float = 4e-4
    scales: str = "1,5/4,3/2"     # crops are resized by one of these (see CropSampler)
    max_side: int = 1024
    fresh: int = 2                # crops tokenized per step; the rest of a batch is drawn from the pool
    pool: int = 3000              # crops kept, with their base layer, for reuse
    ema: float = 0.998
    set_weights: str = ""
    seed: int = 0
    save_every_s: float = 120.0
    init: str = ""                # refine.safetensors to start from (a new schedule); the parts it lacks start fresh
    freeze_transform: bool = False  # train the entropy model alone, the encoder, decoder and gains held fixed
    # what the layer refines: "base", the base layer's reconstruction (the image refinement), or
    # "previous", the previous frame as decoded (the inter layer of predicted video frames,
    # train/pairs.py; then `clips` is a folder of video clips and `init` the key frames' refinement)
    prediction: str = "base"
    clips: str = ""
    exclude_clips: str = "vtest,carphone_pristine"  # the benchmark clips stay out of training

    def __post_init__(self):
        parse_scales(self.scales)
        if self.prediction not in ("base", "previous"):
            raise ValueError(f"unknown prediction {self.prediction!r} (base or previous)")
        if self.prediction == "previous" and not self.init:
            raise ValueError("an inter layer (prediction previous) starts from --init, the key frames' refinement")


def base_surprise(prior: TokenPrior, idx: torch.Tensor) -> torch.Tensor:
    """The float prior's stand-in for the exact coder's surprise (refine_entropy.surprise_bits):
    floor(-log2 p) of each sub-symbol, summed, per base token (B, h, w)."""
    lh, ll = prior(idx)
    hi, lo = prior.split(idx.reshape(idx.shape[0], -1))
    bits = lambda logits, sym: torch.floor(-F.log_softmax(logits.float(), -1).gather(-1, sym[..., None])[..., 0] / math.log(2))
    return (bits(lh, hi) + bits(ll, lo)).long().view(idx.shape)


@torch.no_grad()
def code_base(base: Tokenizer, prior: TokenPrior, x: torch.Tensor):
    """Crops -> (crops, base reconstructions, base tokens, their surprise), as the codec's base
    layer gives them."""
    with autocast(x.device):
        z = base.quant(base.encoder(x.contiguous(memory_format=torch.channels_last)).float())[0]
        b = base.decoder(z).float().clamp(-1, 1)
    idx = base.quant.to_indices(z)
    return x, b, idx, base_surprise(prior, idx)


class Pool:
    """The last `capacity` coded crops, as 8-bit pixels (the base reconstruction too: a decoded image
    is 8-bit anyway), with their base tokens and surprise."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.items: list[tuple[torch.Tensor, ...]] = []
        self.next = 0

    def add(self, x, b, tokens, surprise):
        q = lambda t: ((t + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        self._keep(zip(q(x), q(b), tokens.to(torch.int32), surprise.to(torch.int16)))

    def sample(self, n: int, gen: torch.Generator):
        """n crops drawn at random, as crops() gives them."""
        return self.crops(torch.randint(0, len(self.items), (n,), generator=gen).tolist())

    def crops(self, pick: list[int] | None = None):
        """The crops at `pick`, or all of them: (x, b) in [-1, 1], tokens, surprise (int64)."""
        x, b, t, s = self._stack(range(len(self.items)) if pick is None else pick)
        f = lambda t: (t.float() / 127.5 - 1).contiguous(memory_format=torch.channels_last)
        return f(x), f(b), t.long(), s.long()

    def _keep(self, items):
        """Adds items, the oldest giving way once the pool is full."""
        for item in items:
            if len(self.items) < self.capacity:
                self.items.append(item)
            else:
                self.items[self.next] = item
                self.next = (self.next + 1) % self.capacity

    def _stack(self, pick: list[int]) -> tuple[torch.Tensor, ...]:
        return tuple(torch.stack([self.items[i][k] for i in pick]) for k in range(len(self.items[0])))


class SymbolPool(Pool):
    """The entropy model trained alone (`freeze_transform`): the last `capacity` crops as the frozen
    transform codes them, at every rate level (int8 symbols), with their base tokens and surprise.
    That is the context model's whole input, so a step costs the context model alone, not the
    base layer's and the transform's forward passes (about a second a step of 8 crops on this CPU,
    for a rate term that does not depend on them)."""

    @torch.no_grad()
    def add(self, model: Refiner, x, b, tokens, surprise):
        with autocast(x.device):
            sym = model.quant.to_symbols(model.latents(x, b))  # (B, R, C, h, w)
        self._keep(zip(sym.to(torch.int8), tokens.to(torch.int32), surprise.to(torch.int16)))

    def crops(self, pick: list[int] | None = None):
        """The crops at `pick`, or all of them: (symbols (n, R, C, h, w), tokens, surprise), int64."""
        return tuple(t.long() for t in self._stack(range(len(self.items)) if pick is None else pick))


def rate_loss(model: Refiner, symbols, tokens, surprise, rate, lambdas, stride: int):
    """The rate term of refine_loss alone, on the rounded symbols the coder will code (all the
    entropy model can change): (loss, bits per pixel of each crop). symbols (B, R, C, h, w)."""
    s = symbols[torch.arange(symbols.shape[0]), rate]
    bits = model.bits(s.float(), s, rate, tokens, surprise)
    bpp = bits.sum((1, 2, 3)) / (s.shape[-2] * s.shape[-1] * stride ** 2)
    return (lambdas[rate] * bpp).mean() / 1000, bpp


def start_from(model: Refiner, path: str) -> list[str]:
    """Loads what `model` shares with the refinement weights at `path` (e.g. a "tables" layer's
    transform into a "context" layer); returns the names of the parts that start fresh.

    A context model that grew (a wider MLP, or the optional features of refine_context added to
    a model that had none, or kept as they were) starts from the smaller one: its weights fill
    the leading block and the weights reading the new inputs or hidden units start at zero, so
    the grown model starts as the same function (new hidden units keep random input weights, so
    that they have a gradient). Other changes of the features move the old inputs' columns, so
    such a model starts fresh."""
    tensors, meta = load_weights(Path(path))
    own = model.state_dict()
    saved, cfg = RefineConfig.from_saved(meta.get("config", {})), model.cfg
    if saved.rates != cfg.rates and saved.entropy == "context" and set(saved.rates) <= set(cfg.rates):
        tensors = with_rates(tensors, saved, cfg)
    if saved.entropy == "context" and (saved.context_dir, saved.context_ring) not in ((0, False), (cfg.context_dir, cfg.context_ring)):
        tensors = {k: v for k, v in tensors.items() if not k.startswith("context.")}
    shared, grown = {}, []
    for k, v in tensors.items():
        if k not in own:
            continue
        mine = own[k]
        if mine.shape == v.shape:
            shared[k] = v.to(mine.dtype)
        elif k.startswith("context.") and v.dim() == mine.dim() and all(a <= b for a, b in zip(v.shape, mine.shape)):
            t = mine.clone()
            if t.dim() == 2:
                t[:, v.shape[1]:] = 0  # inputs the saved model did not have
            t[tuple(slice(0, n) for n in v.shape)] = v.to(t.dtype)
            shared[k] = t
            grown.append(k)
    model.load_state_dict(shared, strict=False)
    return sorted(set(own) - set(shared)) + [f"{k} (grown)" for k in grown]


def rate_mixing(saved: tuple, rates: tuple) -> torch.Tensor:
    """(len(rates), len(saved)): each of `rates` as a mix of the `saved` levels, linear in log lambda
    between the two saved levels around it (or the two nearest, past either end), one-hot where it
    is one of them. The gains of the trained levels are close to linear in log lambda, so a new
    level starts near where training will take it."""
    logs = [math.log(r) for r in saved]
    order = sorted(range(len(saved)), key=lambda i: logs[i])
    mix = torch.zeros(len(rates), len(saved), dtype=torch.float64)
    for i, r in enumerate(rates):
        if r in saved:
            mix[i, saved.index(r)] = 1
            continue
        x = math.log(r)
        k = min(max(1, sum(logs[j] < x for j in order)), len(order) - 1)  # the pair of saved levels to use
        a, b = order[k - 1], order[k]
        t = (x - logs[a]) / (logs[b] - logs[a])
        mix[i, a], mix[i, b] = 1 - t, t
    return mix


def with_rates(tensors: dict, saved: RefineConfig, cfg: RefineConfig) -> dict:
    """A "context" layer's weights with rate levels added (cfg.rates, a superset of saved.rates):
    the saved levels keep their gains and their one-hot weights in the context model, so they code
    exactly as before, and each new level starts from rate_mixing's blend of its neighbours."""
    from ..nn.refine_context import step_onehot_at
    mix = rate_mixing(saved.rates, cfg.rates)
    out = dict(tensors)
    lg = tensors["log_gain"].double()
    out["log_gain"] = (mix @ lg).to(tensors["log_gain"].dtype)
    at = step_onehot_at(saved, saved.stride_ratio) - len(saved.rates)  # the rate one-hot's first column
    for k in ("context.fc1.weight", "context.skip.weight"):
        w = tensors[k]
        cols = w[:, at:at + len(saved.rates)].double() @ mix.T
        out[k] = torch.cat([w[:, :at], cols.to(w.dtype), w[:, at + len(saved.rates):]], 1)
    return out


def refine_loss(x, y, bits, rates: torch.Tensor, msssim_weight: float = MSSSIM_WEIGHT, ssim2_weight: float = 0.0):
    """Per-crop rate-distortion objective (mean over the batch) and its parts; `msssim_weight` and
    `ssim2_weight` are the layer's (RefineConfig)."""
    x255, y255 = (x.float() + 1) * 127.5, (y.float().clamp(-1, 1) + 1) * 127.5
    mse = ((x255 - y255) ** 2).mean((1, 2, 3))
    ssim = ms_ssim(x255, y255, data_range=255.0, size_average=False, win_size=msssim_window(min(x.shape[-2:])))
    bpp = bits.sum((1, 2, 3)) / (x.shape[-2] * x.shape[-1])
    dist = mse + msssim_weight * (1 - ssim)
    if ssim2_weight:
        dist = dist + ssim2_weight * ssimulacra2.loss(x, y)
    loss = (dist + rates * bpp).mean() / 1000  # order 1
    return loss, mse, ssim, bpp


VAL_CROPS = 48    # the fixed crops the entropy model's runs are compared on
VAL_EVERY = 500   # steps between their evaluations


@torch.no_grad()
def val_bpp(model: Refiner, val: SymbolPool, lambdas, stride: int) -> list[float]:
    """The float entropy model's bits per pixel on the fixed crops, per rate level."""
    symbols, tokens, surprise = val.crops()
    out = []
    for r in range(symbols.shape[1]):
        rate = torch.full((symbols.shape[0],), r, device=symbols.device)
        out.append(round(float(rate_loss(model, symbols, tokens, surprise, rate, lambdas, stride)[1].mean()), 5))
    return out


@torch.no_grad()
def val_rd(model: Refiner, val: Pool, lambdas) -> list[dict]:
    """The whole layer on the fixed crops, per rate level, as the codec runs it: rounded symbols,
    the decoder's picture, and the float entropy model's bits of those symbols. PSNR (and
    SSIMULACRA2, train/ssimulacra2.py) is the mean of the crops' figures, as the Kodak tables average images; J is the training objective."""
    x, b, tokens, surprise = val.crops()
    out = []
    for r in range(len(lambdas)):
        rate = torch.full((x.shape[0],), r, device=x.device)
        with autocast(x.device):
            s = model.quant.to_symbols(model.latent(x, b, rate))
            y = model.reconstruct(b, model.quant.from_symbols(s), rate)
        bits = model.bits(s.float(), s, rate, tokens, surprise)
        loss, mse, ssim, bpp = refine_loss(x, y.float(), bits, lambdas[rate], model.cfg.msssim_weight, model.cfg.ssim2_weight)
        out.append({"psnr": round(float((10 * torch.log10(255 ** 2 / mse)).mean()), 3),
                    "ms_ssim": round(float(ssim.mean()), 5), "bpp": round(float(bpp.mean()), 5),
                    "ssim2": round(float(ssimulacra2.layer_score(x, y).mean()), 2),
                    "J": round(float(loss) * 1000, 2)})
    return out


def train_refine(data: Path, tokenizer: Tokenizer, prior: TokenPrior, run_dir: Path, cfg: RefineConfig,
                 recipe: RefineRecipe, device: str = "auto", on_log=None) -> list[Path]:
    """Trains (or resumes from run_dir/refine_ckpt.safetensors) and writes run_dir/refine.safetensors."""
    from ..devices import pick_device
    dev = pick_device(device)
    torch.manual_seed(recipe.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "refine_ckpt.safetensors"
    base = tokenizer.to(dev).eval().requires_grad_(False)
    prior = prior.to(dev).eval().requires_grad_(False)
    if recipe.prediction == "previous":
        from ..nn.refine import load_refiner
        from .pairs import PairSource, find_clips
        key = load_refiner(recipe.init).to(dev).requires_grad_(False)
        sampler = PairSource(data, find_clips(recipe.clips, tuple(recipe.exclude_clips.split(","))), recipe.crop,
                             parse_scales(recipe.scales), key, base, prior, recipe.seed, device=dev,
                             base_stride=cfg.base_stride)
        draw = sampler.batch
    else:
        sampler = CropSampler(data, recipe.crop, parse_weights(recipe.set_weights), max_side=recipe.max_side,
                              seed=recipe.seed, scales=parse_scales(recipe.scales), device=dev)
        draw = lambda n: code_base(base, prior, sampler.batch(n))
    model = Refiner(cfg)
    if recipe.init and not ckpt.exists():
        fresh = start_from(model, recipe.init)
    model = model.to(dev).to(memory_format=torch.channels_last)
    if recipe.freeze_transform:
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith("context."))
    rate_model = {"mu", "log_scale", "log_gain"}
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([
        {"params": [p for n, p in trained if n not in rate_model]},
        # a handful of scalars per table: at the networks' learning rate they would need tens of
        # thousands of steps to leave their start (Adam moves a parameter about lr a step)
        {"params": [p for n, p in trained if n in rate_model], "scale": RATE_LR_SCALE},
    ], lr=recipe.lr, betas=(0.9, 0.99), weight_decay=0.0)
    ema = EMA(model, recipe.ema)
    meta = {"step": 0, "elapsed": 0.0}
    if ckpt.exists():
        check_resumable(ckpt, cfg.to_dict(), "refinement", lambda saved: RefineConfig.from_saved(saved).to_dict())
        meta = load_checkpoint(ckpt, {"model": model, "ema": ema.model}, {"opt": opt})
        sampler.rng = np.random.default_rng((recipe.seed, meta["step"]))  # new crops after a resume
    val = None
    if recipe.freeze_transform or recipe.prediction == "base":
        # fixed crops, the same in every run with this seed and data, to compare runs by: as the
        # frozen transform codes them (the entropy model alone), or as pixels (the whole layer of
        # the image refinement); made before the budget's clock starts, which they would eat into
        # in a short run
        val = SymbolPool(VAL_CROPS) if recipe.freeze_transform else Pool(VAL_CROPS)
        state, sampler.rng = sampler.rng, np.random.default_rng((recipe.seed, 1 << 30))
        for _ in range(VAL_CROPS // 8):
            val.add(*((ema.model,) if recipe.freeze_transform else ()), *draw(8))
        sampler.rng = state
    budget = Budget(recipe.minutes, recipe.lr, elapsed=meta["elapsed"], step=meta["step"])
    log = RunLog(run_dir / "refine_log.jsonl", on_log)
    if recipe.init and budget.step == 0:
        log.note({"init": recipe.init, "fresh": fresh})
    lambdas = torch.tensor(cfg.rates, device=dev)
    gen = torch.Generator().manual_seed(recipe.seed + budget.step)
    pool = SymbolPool(recipe.pool) if recipe.freeze_transform else Pool(recipe.pool)

    def save():
        save_checkpoint(ckpt, {"model": model, "ema": ema.model}, {"opt": opt},
                        {"step": budget.step, "elapsed": budget.elapsed, "config": cfg.to_dict(),
                         "recipe": asdict(recipe)})

    def step_rate(lr: float) -> dict:
        """The entropy model alone, on the frozen transform's symbols."""
        pool.add(ema.model, *draw(recipe.fresh))
        symbols, tokens, surprise = pool.sample(recipe.batch, gen)
        rate = torch.randint(0, len(cfg.rates), (symbols.shape[0],), generator=gen).to(dev)
        loss, _ = rate_loss(model, symbols, tokens, surprise, rate, lambdas, cfg.stride)
        update(loss)
        return {"lr": lr, "loss": float(loss.detach())}

    def step_all(lr: float) -> dict:
        """The whole layer, on crops and their base layer."""
        pool.add(*draw(recipe.fresh))
        x, b, tokens, surprise = pool.sample(recipe.batch, gen)
        rate = torch.randint(0, len(cfg.rates), (x.shape[0],), generator=gen).to(dev)
        with autocast(dev):
            y, bits = model(x, b, rate, tokens, surprise)
        ramp = 1.0 if recipe.init else min(1.0, budget.step / RATE_WARMUP_STEPS)  # a trained start needs no ramp
        loss, mse, ssim, bpp = refine_loss(x, y, bits.float(), lambdas[rate] * ramp, cfg.msssim_weight, cfg.ssim2_weight)
        update(loss)
        rec = {"lr": lr, "loss": float(loss.detach())}
        for r in range(len(cfg.rates) if log.due(budget) else 0):  # how each rate level is doing, on its crops of this batch
            m = rate == r
            if m.any():
                rec[f"r{r}"] = {"psnr": round(float((10 * torch.log10(255 ** 2 / mse[m].detach())).mean()), 3),
                                "ms_ssim": round(float(ssim[m].detach().mean()), 4),
                                "bpp": round(float(bpp[m].detach().mean()), 4)}
        return rec

    def evaluate() -> dict:
        """The fixed crops' figures, every VAL_EVERY steps and at the end."""
        if val is None or not (budget.step % VAL_EVERY == 0 or budget.done()):
            return {}
        if recipe.freeze_transform:
            return {"val_bpp": val_bpp(ema.model, val, lambdas, cfg.stride)}
        return {"val": val_rd(ema.model, val, lambdas)}

    def update(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model, budget.step)

    model.train()
    while budget.progress < 1:
        lr = budget.next_lr(budget.progress)
        set_lr(opt, lr)
        rec = (step_rate if recipe.freeze_transform else step_all)(lr)
        if log.due(budget):
            log.write(budget, rec | evaluate())
        if budget.save_due(recipe.save_every_s):
            save()
    save()
    ema.model.freeze_tables()
    meta = {"config": cfg.to_dict(), "recipe": asdict(recipe), "steps": budget.step,
            "train_seconds": round(budget.elapsed), "device": device_name(dev)}
    return export_weights(run_dir / "refine.safetensors", ema.model, meta)
