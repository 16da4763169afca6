"""`vqzip train tokenizer`: train the lossy stage on a folder of images within a time budget."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..nn.tokenizer import Tokenizer, TokenizerConfig, load_tokenizer
from ..weights import export_weights
from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .data import CropSampler
from .losses import PatchDiscriminator, hinge_d_loss, reconstruction_loss
from ..devices import autocast
from ..errors import InputError
from .distributed import Ranks
from .loop import EMA, Budget, RunLog, compiled, device_name, set_lr


@dataclass
class TokenizerRecipe:
    minutes: float = 10.0
    batch: int = 8
    crop: int = 128
    lr: float = 4e-4
    msssim_weight: float = 0.2
    gan_weight: float = 0.0       # 0 = no adversarial term
    gan_start: float = 0.6        # fraction of the budget before the discriminator joins
    ema: float = 0.999
    set_weights: str = ""         # "set=w,set=w"; default sqrt(set size)
    seed: int = 0
    save_every_s: float = 120.0
    pixel_loss: str = "l1"        # "l1" or "mse" (mse aims at PSNR)
    init: str = ""                # start from these shipped weights (their config wins)
    decoder_only: bool = False    # freeze encoder and quantizer: tokens, and so the prior, stay valid
    compile: bool | None = None   # torch.compile the network; None: on CUDA only (see compiled())


def train_tokenizer(data: Path, run_dir: Path, cfg: TokenizerConfig, recipe: TokenizerRecipe,
                    device: str = "auto", on_log=None) -> list[Path]:
    """Trains (or resumes from run_dir/ckpt.safetensors) and writes run_dir/tokenizer.safetensors.
    Under torchrun every rank trains on its own crops and rank 0 writes; the others return []."""
    from .data import parse_weights
    ranks = Ranks(device)
    if ranks.world > 1 and cfg.quantizer == "vq":
        raise InputError("training on several processes needs --quantizer lfq (vq re-seeds dead codes from each process's own batch)")
    dev = ranks.device
    torch.manual_seed(recipe.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "ckpt.safetensors"
    sampler = CropSampler(data, recipe.crop, parse_weights(recipe.set_weights), seed=ranks.seed(recipe.seed),
                          device=dev)
    model = Tokenizer(cfg)
    if recipe.init:
        model.load_state_dict(load_tokenizer(recipe.init).state_dict())
    model = model.to(dev).to(memory_format=torch.channels_last)
    trainable = model.decoder if recipe.decoder_only else model
    disc = PatchDiscriminator().to(dev)
    opt = torch.optim.AdamW(trainable.parameters(), lr=recipe.lr, betas=(0.9, 0.99), weight_decay=0.0)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=recipe.lr, betas=(0.5, 0.9), weight_decay=0.0)
    ema = EMA(model, recipe.ema)
    meta = {"step": 0, "elapsed": 0.0}
    if ckpt.exists():
        check_resumable(ckpt, cfg.to_dict(), "tokenizer")
        meta = load_checkpoint(ckpt, {"model": model, "ema": ema.model, "disc": disc}, {"g": opt, "d": opt_d})
    budget = Budget(recipe.minutes, recipe.lr, elapsed=meta["elapsed"], step=meta["step"])
    log = RunLog(run_dir / "log.jsonl", on_log) if ranks.main else None
    record = asdict(recipe) | {"world_size": ranks.world, "compile": compiled(recipe.compile, dev)}  # --batch is per process
    net = ranks.wrap(trainable)
    if record["compile"]:
        net = torch.compile(net)
    disc_net = ranks.wrap(disc)

    def save():
        save_checkpoint(ckpt, {"model": model, "ema": ema.model, "disc": disc}, {"g": opt, "d": opt_d},
                        {"step": budget.step, "elapsed": budget.elapsed, "config": cfg.to_dict(),
                         "recipe": record, "set_weights": sampler.set_weights, "device": str(dev)})

    model.train()
    if recipe.decoder_only:
        model.encoder.eval().requires_grad_(False)
        model.quant.eval().requires_grad_(False)
    while (progress := ranks.progress(budget)) < 1:
        lr = budget.next_lr(progress)
        set_lr(opt, lr)
        set_lr(opt_d, lr)
        x = sampler.batch(recipe.batch).contiguous(memory_format=torch.channels_last)
        use_gan = recipe.gan_weight > 0 and progress >= recipe.gan_start
        with autocast(dev):
            if recipe.decoder_only:
                with torch.no_grad():
                    zq, idx, aux, stats = model.quant(model.encoder(x))
                y = net(zq)
            else:
                y, idx, aux, stats = net(x)
            rec, ssim = reconstruction_loss(x, y, recipe.msssim_weight, recipe.pixel_loss)
            loss = rec + aux
            if use_gan:
                disc.requires_grad_(False)  # the generator's loss leaves the discriminator's gradients (and DDP's hooks) alone
                loss = loss - recipe.gan_weight * disc(y).float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable.parameters(), 1.0)
        opt.step()
        ema.update(model, budget.step)
        if use_gan:
            disc.requires_grad_(True)
            with autocast(dev):
                real, fake = disc_net(torch.cat([x, y.detach()])).float().chunk(2)  # one forward for DDP
                d_loss = hinge_d_loss(real, fake)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        if log and log.due(budget):
            mse = torch.mean((x.float() - y.detach().float().clamp(-1, 1)) ** 2 / 4)
            log.write(budget, {"lr": lr, "loss": float(loss.detach()), "psnr": float(-10 * torch.log10(mse)),
                               "ms_ssim": float(ssim.detach()), **{k: float(v) for k, v in stats.items()}})
        if ranks.main and budget.save_due(recipe.save_every_s):
            save()
    ranks.close()
    if not ranks.main:
        return []
    save()
    meta = {"config": cfg.to_dict(), "recipe": record, "steps": budget.step,
            "train_seconds": round(budget.elapsed), "device": device_name(dev), "set_weights": sampler.set_weights}
    return export_weights(run_dir / "tokenizer.safetensors", ema.model, meta)
