"""`vqzip train restore`: train the restoration filter (restore.py) of an installed refinement
layer, everything else frozen.

1. Pictures. Each of `pictures` training photos (drawn with the sets' weights, as CropSampler
   weighs them) is shrunk to at most `max_side`, then coded at one of the ladder's refined points
   (drawn at random) and decoded as the codec does at effort 0, without a filter: exactly what
   the decoder hands the filter (`reconstruct`, checked against the codec by the tests). The pairs
   are kept in the run folder, so a resumed run goes straight to training.
2. Training on random crops of those pairs, with the refinement trainer's distortion (MSE plus
   MSSSIM_WEIGHT x (1 - MS-SSIM), 0-255 units) and no rate: the filter costs no bits.
3. Export: the layer's weights with the filter added, as a new refine.safetensors (a new weights
   hash, so files name the filter they were made for; the layer without it stays decodable as
   refine_vN.safetensors, see models/recipes/models_with_refine.sh).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..pixels import resized, scaled_size, to_image, to_tensor
from ..nn.refine import RefineConfig, Refiner
from ..weights import export_weights, load_weights
from .checkpoint import check_resumable, load_checkpoint, save_checkpoint
from .data import find_sets, parse_weights, set_weight
from .loop import EMA, Budget, RunLog, device_name, set_lr
from .refine import refine_loss


@dataclass
class RestoreRecipe:
    minutes: float = 30.0
    pictures: int = 300           # coded training pictures
    max_side: int = 768           # Kodak's size: the filter learns on pictures like those it will see
    batch: int = 8
    crop: int = 192
    lr: float = 1e-3
    width: int = 32               # the filter's channels (restore.py)
    blocks: int = 2               # its residual blocks
    ema: float = 0.998
    set_weights: str = ""
    seed: int = 0
    save_every_s: float = 120.0


@torch.inference_mode()
def reconstruct(tok, ref: Refiner, rgb: Image.Image, scale, rate: int) -> Image.Image:
    """What codec.decode gives, before any filter, for a file codec.encode_image made of `rgb` at
    (scale, rate) with effort 0: the same tokens, symbols and pixels, without the lossless stage
    in between (it changes nothing, and costs most of the time)."""
    img = resized(rgb, scaled_size(rgb.width, rgb.height, scale))
    x = to_tensor(img, tok.stride)
    base = tok.decode(tok.encode(x))
    y = ref.decode(base, ref.encode(x, base, rate), rate)
    return resized(to_image(y, img.width, img.height), rgb.size)


def _photos(data: Path, n: int, weights: dict[str, float], rng: np.random.Generator) -> list[Path]:
    """`n` distinct photos, each set weighted as CropSampler weighs it (data.set_weight)."""
    sets = find_sets(data)
    files, p = [], []
    for name, fs in sets.items():
        w = set_weight(name, len(fs), weights)
        files += fs
        p += [w / len(fs)] * len(fs)
    p = np.array(p) / sum(p)
    return [files[i] for i in rng.choice(len(files), min(n, len(files)), replace=False, p=p)]


def make_pictures(data: Path, model, recipe: RestoreRecipe, out: Path, on_picture=None) -> None:
    """Codes and decodes the training pictures into out/NNNN.npz (original, decoded, scale, rate);
    those already there are kept, so an interrupted run carries on."""
    from ..zoo import list_points
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(recipe.seed)
    photos = _photos(data, recipe.pictures, parse_weights(recipe.set_weights), rng)
    points = [p for p in list_points() if p.refine is not None and p.model == model.name]
    picks = rng.integers(len(points), size=len(photos))
    tok, ref = model.tokenizer, model.refiner
    for i, (photo, k) in enumerate(zip(photos, picks)):
        f = out / f"{i:04d}.npz"
        if not f.exists():
            rgb = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
            s = min(1.0, recipe.max_side / max(rgb.size))
            if s < 1:
                rgb = rgb.resize((round(rgb.width * s), round(rgb.height * s)), Image.LANCZOS)
            pt = points[k]
            dec = reconstruct(tok, ref, rgb, pt.scale, pt.refine)
            tmp = out / f"{i:04d}.tmp.npz"
            np.savez(tmp, x=np.asarray(rgb), y=np.asarray(dec), scale=float(pt.scale), rate=pt.refine)
            tmp.replace(f)
        if on_picture:
            on_picture(i + 1, len(photos))


class Pictures:
    """The coded pictures in memory, and random flipped crops of them (original, decoded, scale, rate)."""

    def __init__(self, folder: Path, crop: int, seed: int):
        self.items = []
        for f in sorted(folder.glob("[0-9][0-9][0-9][0-9].npz")):
            d = np.load(f)
            if min(d["x"].shape[:2]) >= crop:
                self.items.append((torch.from_numpy(d["x"]), torch.from_numpy(d["y"]), float(d["scale"]), int(d["rate"])))
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int):
        c = self.crop
        xs, ys, scales, rates = [], [], [], []
        for k in self.rng.integers(len(self.items), size=n):
            x, y, s, r = self.items[k]
            top, left = self.rng.integers(x.shape[0] - c + 1), self.rng.integers(x.shape[1] - c + 1)
            pair = torch.stack([x[top:top + c, left:left + c], y[top:top + c, left:left + c]]).permute(0, 3, 1, 2)
            pair = pair.flip(-1) if self.rng.random() < 0.5 else pair
            xs.append(pair[0])
            ys.append(pair[1])
            scales.append(s)
            rates.append(r)
        f = lambda t: torch.stack(t).float().div_(127.5).sub_(1)
        return f(xs), f(ys), torch.tensor(scales), torch.tensor(rates)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-item PSNR of [-1, 1] pictures, in dB."""
    mse = ((a - b) * 127.5).pow(2).mean((1, 2, 3))
    return 10 * torch.log10(255 ** 2 / mse)


def train_restore(data: Path, model, run_dir: Path, recipe: RestoreRecipe, device: str = "auto",
                  on_log=None, on_picture=None) -> list[Path]:
    """Trains (or resumes from run_dir/restore_ckpt.safetensors) the filter of `model`'s (a
    zoo.Model's) installed refinement layer and writes run_dir/refine.safetensors: that layer
    with the filter."""
    from ..devices import pick_device
    dev = pick_device(device)
    torch.manual_seed(recipe.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    make_pictures(data, model, recipe, run_dir / "pictures", on_picture)
    layer, meta0 = load_weights(model.refine_path)
    # a layer's config lacks the fields added after it was made (RefineConfig.from_saved)
    cfg = RefineConfig.from_saved(meta0["config"] | {"restore_width": recipe.width, "restore_blocks": recipe.blocks})
    ref = Refiner(cfg)
    missing, unexpected = ref.load_state_dict({k: v.float() for k, v in layer.items() if not k.startswith("restorer.")},
                                              strict=False)
    assert not unexpected and all(k.startswith("restorer.") for k in missing), (missing, unexpected)
    net = ref.restorer.to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, betas=(0.9, 0.99), weight_decay=0.0)
    ema = EMA(net, recipe.ema)
    ckpt = run_dir / "restore_ckpt.safetensors"
    meta = {"step": 0, "elapsed": 0.0}
    run_config = {"layer": model.refine_hash.hex(), "width": recipe.width, "blocks": recipe.blocks}
    if ckpt.exists():
        check_resumable(ckpt, run_config, "restoration filter")
        meta = load_checkpoint(ckpt, {"net": net, "ema": ema.model}, {"opt": opt})
    pics = Pictures(run_dir / "pictures", recipe.crop, recipe.seed + meta["step"])
    budget = Budget(recipe.minutes, recipe.lr, elapsed=meta["elapsed"], step=meta["step"])
    log = RunLog(run_dir / "restore_log.jsonl", on_log)

    def save():
        save_checkpoint(ckpt, {"net": net, "ema": ema.model}, {"opt": opt},
                        {"step": budget.step, "elapsed": budget.elapsed, "config": run_config, "recipe": asdict(recipe)})

    net.train()
    while budget.progress < 1:
        lr = budget.next_lr(budget.progress)
        set_lr(opt, lr)
        x, y, scale, rate = (t.to(dev) for t in pics.batch(recipe.batch))
        out = net(y, scale, rate)
        loss, mse, ssim, _ = refine_loss(x, out, torch.zeros(x.shape[0], 1, 1, 1, device=dev), torch.zeros(x.shape[0], device=dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        ema.update(net, budget.step)
        if log.due(budget):
            gain = psnr(out.detach().clamp(-1, 1), x) - psnr(y, x)
            log.write(budget, {"lr": lr, "loss": float(loss.detach()), "gain_db": round(float(gain.mean()), 3),
                               "ms_ssim": round(float(ssim.detach().mean()), 4)})
        if budget.save_due(recipe.save_every_s):
            save()
    save()
    ref.restorer = ema.model.cpu()
    meta = {k: v for k, v in meta0.items() if k != "shards"} | {
        "config": cfg.to_dict(),
        "restore": {"recipe": asdict(recipe), "steps": budget.step, "train_seconds": round(budget.elapsed),
                    "device": device_name(dev), "layer": model.refine_hash.hex()}}
    return export_weights(run_dir / "refine.safetensors", ref, meta)
