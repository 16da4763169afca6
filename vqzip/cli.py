"""The `vqzip` command: a thin typer layer over the Python API. Heavy imports happen inside
commands so that `--help` is instant and training runs on machines without av or constriction."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import InputError, VqzipError

# the figures are measured by benchmarks/effort_sweep.py (benchmarks/results/effort_default);
# written out here so that --help stays instant
EFFORT_HELP = ("0-9: how hard the encoder searches, against the real decoder and the exact tables, for what it "
               "sends: the refinement layer's symbols at -q 2 and up, the base tokens of video key frames "
               "(-q 1 and --model alone are not searched). Higher: slower, better; decoding is unchanged. "
               "Default 5 for images, 0 for video. On Kodak, -q 1 to 5, effort 5 saves 3.9 % of the bits at equal "
               "PSNR, 3.0 % at equal MS-SSIM and 4.6 % at equal SSIMULACRA2 (effort 8: 4.6, 3.8 and 5.5 %). "
               "Encode CPU seconds at -q 3 (one thread): 0.52 at effort 0, 1.56 at 5, 2.32 at 8. From effort 1 the "
               "encoder also chooses each image's point among -q 3 and up's variants, scales, rate levels and the "
               "perceptual refinement layer (vqzip models, column \"or\"), searching three of them: on Kodak "
               "-6.6 % bits at equal SSIMULACRA2 and +1.2 % at equal PSNR for 4.3x the encode time at -q 3 "
               "(benchmarks/results/layer_choice).")

JOBS_HELP = "Files coded at once in batch mode (default: one per CPU core, each on cores/jobs torch threads; the bits do not depend on it)."

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False,
                  help="Learned image and video compression with tokenizers and an exact token prior.")
train_app = typer.Typer(no_args_is_help=True, help="Train a tokenizer or a token prior on your own images.")
app.add_typer(train_app, name="train")


def _progress(total_label: str):
    """The training bar; under torchrun, rank 0's alone."""
    from .train.distributed import is_main
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    return Progress(TextColumn(total_label), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    transient=False, disable=not sys.stderr.isatty() or not is_main())


@train_app.command("tokenizer")
def train_tokenizer_cmd(
    data: Path = typer.Argument(..., help="Folder of images; each subfolder is a set."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoint, log and tokenizer.safetensors."),
    minutes: float = typer.Option(10.0, help="Wall-clock budget. Re-running with a larger budget resumes."),
    downsample: int = typer.Option(16, help="Token stride: 16 or 8."),
    quantizer: str = typer.Option("lfq", help="lfq or vq."),
    bits: int = typer.Option(20, help="LFQ bits per token."),
    codebook_size: int = typer.Option(4096, help="VQ codebook size."),
    group_bits: int = typer.Option(10, help="LFQ entropy penalty acts on the joint code of groups of this many bits."),
    batch: int = typer.Option(8), crop: int = typer.Option(128, help="Crop side in pixels."),
    lr: float = typer.Option(4e-4), msssim_weight: float = typer.Option(0.2),
    gan_weight: float = typer.Option(0.0, help="PatchGAN weight (0 = off)."),
    gan_start: float = typer.Option(0.6, help="Fraction of the budget before the GAN term starts."),
    set_weights: str = typer.Option("", help="Sampling weights per set, e.g. 'bsds500=2,imagenet_sample=0.5'."),
    pixel_loss: str = typer.Option("l1", help="l1, or mse to aim at PSNR."),
    init: Optional[Path] = typer.Option(None, help="Start from these tokenizer weights (their architecture is used)."),
    decoder_only: bool = typer.Option(False, help="Train only the decoder: tokens, and so the prior, stay valid."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the network (default: on CUDA only)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    seed: int = typer.Option(0),
):
    """Train the lossy stage (resumes from OUT/ckpt.safetensors). Under torchrun every process
    trains on its own --batch crops (NCCL on GPUs, gloo on a CPU) and rank 0 alone writes.

    [bold]Examples[/bold]
      vqzip train tokenizer ../shared/data/train -o runs/f16 --minutes 30
      vqzip train tokenizer ../shared/data/train -o runs/ft --init models/f16-lfq20/tokenizer.safetensors --decoder-only --pixel-loss mse
      torchrun --standalone --nproc_per_node 8 -m vqzip train tokenizer ../shared/data/train -o runs/f16 --batch 32  [dim]# 8 GPUs, 32 crops each[/dim]
    """
    from .nn.tokenizer import TokenizerConfig, load_tokenizer
    from .train.tokenizer import TokenizerRecipe, train_tokenizer
    try:
        cfg = (load_tokenizer(init).cfg if init else
               TokenizerConfig(downsample=downsample, quantizer=quantizer, bits=bits, codebook_size=codebook_size,
                               group_bits=group_bits))
    except (VqzipError, ValueError) as e:
        _fail(str(e))
    recipe = TokenizerRecipe(minutes=minutes, batch=batch, crop=crop, lr=lr, msssim_weight=msssim_weight,
                             gan_weight=gan_weight, gan_start=gan_start, set_weights=set_weights, seed=seed,
                             pixel_loss=pixel_loss, init=str(init or ""), decoder_only=decoder_only, compile=compile)
    with _progress("training tokenizer") as bar:
        task = bar.add_task("", total=1.0, info="")
        try:
            files = train_tokenizer(data, out, cfg, recipe, device, on_log=lambda r, p: (
                bar.update(task, completed=p, info=f"step {r['step']} psnr {r['psnr']:.2f}"),
                None if bar.console.is_terminal else print(json.dumps(r), flush=True)))
        except VqzipError as e:
            _fail(str(e))
    if files:  # rank 0's; under torchrun the other ranks write nothing
        typer.echo(" ".join(map(str, files)))


@train_app.command("prior")
def train_prior_cmd(
    data: Path = typer.Argument(..., help="Folder of images; each subfolder is a set."),
    tokenizer: Path = typer.Option(..., help="tokenizer.safetensors from `vqzip train tokenizer`."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoint, log and prior.safetensors."),
    minutes: float = typer.Option(10.0),
    d_model: int = typer.Option(256), n_layer: int = typer.Option(4), n_head: int = typer.Option(4),
    window: int = typer.Option(7, help="Attention radius in tokens."),
    period: int = typer.Option(4, help="Coding schedule cell: period^2 steps per image (1, 2 or 4); 0 = raster order, one step per token (to measure the schedule's cost; too slow to code with)."),
    batch: int = typer.Option(16), crop: int = typer.Option(320),
    crops: int = typer.Option(2000, help="Crops tokenized once up front and revisited; 0 = fresh crops every step (slower a step, never repeats)."),
    scales: str = typer.Option("1", help="Resize each crop by one of these, drawn at random, as the quality levels resize images (e.g. 3/4,1,5/4,3/2,7/4)."),
    max_side: int = typer.Option(1024, help="Shrink photos to at most this many pixels on a side first."),
    lr: float = typer.Option(1e-3), set_weights: str = typer.Option(""),
    init: Optional[Path] = typer.Option(None, help="Start from these prior weights (their architecture is used)."),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the network (default: on CUDA only)."),
    device: str = typer.Option("auto"), seed: int = typer.Option(0),
):
    """Train the token prior on the tokens that TOKENIZER gives for DATA. Under torchrun every
    process trains on its own --batch crops and rank 0 alone writes.

    [bold]Examples[/bold]
      vqzip train prior ../shared/data/train --tokenizer runs/f16/tokenizer.safetensors -o runs/f16
      torchrun --standalone --nproc_per_node 2 -m vqzip train prior ../shared/data/train --tokenizer runs/f16/tokenizer.safetensors -o runs/f16
    """
    from .nn.prior import PriorConfig
    from .nn.tokenizer import load_tokenizer
    from .train.prior import PriorRecipe, train_prior
    from .nn.prior import load_prior
    try:
        recipe = PriorRecipe(minutes=minutes, batch=batch, crop=crop, crops=crops, scales=scales, max_side=max_side,
                             lr=lr, set_weights=set_weights, seed=seed, init=str(init or ""), compile=compile)
        tok = load_tokenizer(tokenizer)
        cfg = (load_prior(init).cfg if init else
               PriorConfig(token_bits=tok.cfg.token_bits, d_model=d_model, n_layer=n_layer, n_head=n_head,
                           window=window, period=period))
    except (VqzipError, ValueError) as e:
        _fail(str(e))
    with _progress("training prior") as bar:
        task = bar.add_task("", total=1.0, info="")
        try:
            files = train_prior(data, tok, out, cfg, recipe, device, on_log=lambda r, p: (
                bar.update(task, completed=p, info=f"step {r['step']} {r['bits_per_token']:.2f} bits/token"),
                None if bar.console.is_terminal else print(json.dumps(r), flush=True)))
        except VqzipError as e:
            _fail(str(e))
    if files:  # rank 0's; under torchrun the other ranks write nothing
        typer.echo(" ".join(map(str, files)))


@train_app.command("refine")
def train_refine_cmd(
    data: Path = typer.Argument(..., help="Folder of images; each subfolder is a set."),
    tokenizer: Path = typer.Option(..., help="The base tokenizer.safetensors (frozen)."),
    prior: Path = typer.Option(..., help="The base prior.safetensors (frozen; its surprise picks the contexts)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: checkpoint, log and refine.safetensors."),
    minutes: float = typer.Option(60.0, help="Wall-clock budget. Re-running with a larger budget resumes."),
    stride: Optional[int] = typer.Option(None, help="Refinement token stride: 8 or 16 (default: RefineConfig's, 8)."),
    channels: Optional[int] = typer.Option(None, help="Symbols per position (default: RefineConfig's, 48, as shipped)."),
    rates: Optional[str] = typer.Option(None, help="Training lambdas, one per rate level (MSE per bit per pixel, 0-255 units; default: RefineConfig's, 2500,1000,630,400,160, as shipped). With --init, levels may be added to the saved ones: those keep their gains and codes, and a new one starts between its neighbours."),
    msssim_weight: Optional[float] = typer.Option(None, help="The weight of 1 - MS-SSIM in the layer's objective, which the encoder search then uses too (0-255 units; default: RefineConfig's, 1500, as shipped)."),
    ssim2_weight: Optional[float] = typer.Option(None, help="The weight of 100 - SSIMULACRA2 in the layer's objective, searched for too (a differentiable port of the bench's metric; default: RefineConfig's, 0 up to layer version 5)."),
    batch: int = typer.Option(8), crop: int = typer.Option(128),
    fresh: int = typer.Option(2, help="Crops coded by the base layer per step; the rest of a batch comes from the pool."),
    scales: str = typer.Option("1,5/4,3/2", help="Resize each crop by one of these, as the quality levels do."),
    max_side: int = typer.Option(1024), lr: float = typer.Option(4e-4), set_weights: str = typer.Option(""),
    device: str = typer.Option("auto"), seed: int = typer.Option(0),
    entropy: Optional[str] = typer.Option(None, help="The rate model: context (learned, the default) or tables (the first layer's static tables)."),
    init: Optional[Path] = typer.Option(None, help="A refine.safetensors to start from, on a new schedule (the parts it lacks, e.g. a context model, start fresh; a smaller context model is grown)."),
    context_width: Optional[int] = typer.Option(None, help="The context model's MLP width (default: RefineConfig's, 192, as shipped)."),
    context_dir: Optional[int] = typer.Option(None, help="The context model also reads the first N channels' eight neighbours one by one, not only their sums (default: RefineConfig's, 24)."),
    context_ring: Optional[bool] = typer.Option(None, "--context-ring/--no-context-ring", help="The context model also reads the eight neighbouring base tokens (default: RefineConfig's, yes)."),
    freeze_transform: bool = typer.Option(False, help="Train the entropy model alone: the encoder, decoder and gains of --init stay as they are, and each step costs the entropy model alone (crops are coded once at every rate and reused from the pool)."),
    prediction: str = typer.Option("base", help="What the layer refines: base (the image refinement) or previous (the inter layer of predicted video frames: pairs of frames from --clips and shifted photos, the previous one coded as a key frame by --init)."),
    clips: Optional[Path] = typer.Option(None, help="--prediction previous: a folder of video clips to draw frame pairs from (vtest and carphone_pristine are left out)."),
):
    """Train the refinement layer over a frozen base tokenizer and prior (resumes from OUT).

    [bold]Examples[/bold]
      vqzip train refine ../shared/data/train --tokenizer models/f16-lfq20/tokenizer.safetensors --prior models/f16-lfq20/prior.safetensors -o runs/refine --minutes 120
      vqzip train refine ../shared/data/train --tokenizer models/f16-lfq20/tokenizer.safetensors --prior models/f16-lfq20/prior.safetensors -o runs/refine16 --stride 16
      vqzip train refine ../shared/data/train --tokenizer models/f16-lfq20/tokenizer.safetensors --prior models/f16-lfq20/prior.safetensors -o runs/ctx --init models/f16-lfq20/refine.safetensors --freeze-transform
      vqzip train refine ../shared/data/train --tokenizer models/f16-lfq20/tokenizer.safetensors --prior models/f16-lfq20/prior.safetensors -o runs/inter --init models/f16-lfq20/refine.safetensors --prediction previous --clips ../shared/data/video --scales 1/2,3/4
    """
    from .nn.prior import load_prior
    from .nn.refine import RefineConfig
    from .nn.tokenizer import load_tokenizer
    from .train.refine import RefineRecipe, train_refine
    try:
        # only what was given: the defaults live in RefineConfig alone, so this command with none of
        # them trains the shipped layer's configuration
        tok, pri = load_tokenizer(tokenizer), load_prior(prior)
        given = {"stride": stride, "channels": channels, "entropy": entropy, "base_stride": tok.stride,
                 "context_width": context_width, "context_dir": context_dir, "context_ring": context_ring,
                 "rates": rates and tuple(float(r) for r in rates.split(",")), "msssim_weight": msssim_weight, "ssim2_weight": ssim2_weight}
        cfg = RefineConfig(**{k: v for k, v in given.items() if v is not None})
        if freeze_transform and not init:
            raise ValueError("--freeze-transform needs --init (the transform to keep)")
        recipe = RefineRecipe(minutes=minutes, batch=batch, crop=crop, fresh=fresh, scales=scales,
                              max_side=max_side, lr=lr, set_weights=set_weights, seed=seed,
                              init=str(init or ""), freeze_transform=freeze_transform, prediction=prediction,
                              clips=str(clips or ""))
    except (VqzipError, ValueError) as e:
        _fail(str(e))
    with _progress("training refinement") as bar:
        task = bar.add_task("", total=1.0, info="")
        try:
            files = train_refine(data, tok, pri, out, cfg, recipe, device, on_log=lambda r, p: (
                bar.update(task, completed=p, info=f"step {r['step']} loss {r['loss']:.3f}"),
                None if bar.console.is_terminal else print(json.dumps(r), flush=True)))
        except VqzipError as e:
            _fail(str(e))
    typer.echo(" ".join(map(str, files)))


@train_app.command("restore")
def train_restore_cmd(
    data: Path = typer.Argument(..., help="Folder of images; each subfolder is a set."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: coded pictures, checkpoint, log and refine.safetensors."),
    model: Optional[str] = typer.Option(None, help="The installed model whose refinement layer gets the filter (default: the ladder's)."),
    minutes: float = typer.Option(30.0, help="Wall-clock budget of the training (not of making the pictures). A larger budget resumes."),
    pictures: int = typer.Option(300, help="Training photos coded and decoded at the ladder's refined points."),
    width: int = typer.Option(32, help="The filter's channels."), blocks: int = typer.Option(2, help="Its residual blocks."),
    batch: int = typer.Option(8), crop: int = typer.Option(192), lr: float = typer.Option(1e-3),
    set_weights: str = typer.Option(""), device: str = typer.Option("auto"), seed: int = typer.Option(0),
):
    """Train a restoration filter for the decoded pictures of a refinement layer, the layer frozen (resumes from OUT).

    The result is the layer with the filter, a new refine.safetensors: install it as the model's
    refine.safetensors, keeping the layer before it as refine_vN.safetensors so its files decode.

    [bold]Examples[/bold]
      vqzip train restore ../shared/data/train -o runs/restore --minutes 30
      vqzip train restore ../shared/data/train -o runs/restore --pictures 600 --width 48
    """
    from .train.restore import RestoreRecipe, train_restore
    from .zoo import get_model, resolve
    try:
        m = get_model(model or resolve().model)
        m.refiner  # a model without a layer fails here, in one line
        recipe = RestoreRecipe(minutes=minutes, pictures=pictures, width=width, blocks=blocks, batch=batch,
                               crop=crop, lr=lr, set_weights=set_weights, seed=seed)
    except (VqzipError, ValueError) as e:
        _fail(str(e))
    with _progress("restoration filter") as bar:
        task = bar.add_task("", total=1.0, info="")
        try:
            files = train_restore(data, m, out, recipe, device, on_log=lambda r, p: (
                bar.update(task, completed=p, info=f"step {r['step']} gain {r['gain_db']:+.2f} dB"),
                None if bar.console.is_terminal else print(json.dumps(r), flush=True)),
                on_picture=lambda i, n: bar.update(task, info=f"coding picture {i}/{n}"))
        except VqzipError as e:
            _fail(str(e))
    typer.echo(" ".join(map(str, files)))


def _fail(msg: str, code: int = 1):
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def _emit(obj, as_json: bool, text: str, err: bool = False):
    typer.echo(json.dumps(obj, indent=2, default=str) if as_json else text, err=err)


def _piped(inputs: list[Path], output: Optional[Path]) -> bool:
    """Whether this run reads stdin or writes stdout ("-"); a pipe is one file, never a batch."""
    from .streams import is_stdio
    if not any(map(is_stdio, inputs)) and not (output and is_stdio(output)):
        return False
    if len(inputs) > 1:
        raise InputError("- (stdin or stdout) takes one input, not a batch")
    if is_stdio(inputs[0]) and output is None:
        raise InputError("reading stdin needs -o (a file, or - for stdout)")
    if inputs[0].is_dir():
        raise InputError(f"{inputs[0]}: a folder cannot go through a pipe")
    return True


def _piped_result(r: dict, as_json: bool, text: str):
    """The summary of a piped run. When stdout carries the file, the summary (and --json's
    JSON) goes to stderr, so that stdout holds nothing but the file."""
    from .streams import is_stdio
    _warn(r)
    _emit(r, as_json, text, err=is_stdio(r["output"]))


def _warn(result: dict):
    if result.get("warning"):
        typer.echo(f"warning: {result['warning']}", err=True)


def _report(summary, as_json: bool, verb: str):
    d = summary.as_dict()
    for r in d["done"]:
        _warn(r)
    if as_json:
        typer.echo(json.dumps(d, indent=2, default=str))
    else:
        c = d["counts"]
        typer.echo(f"{verb} {c['done']}, skipped {c['skipped']} up to date, failed {c['failed']}")
        for f in d["failed"]:
            typer.echo(f"  failed: {f['input']}: {f['error']}", err=True)
    if d["failed"]:
        raise typer.Exit(1)


@contextlib.contextmanager
def _frame_progress(label: str):
    """A live frame counter for one video; yields the on_frame callback that advances it."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    with Progress(SpinnerColumn(), TextColumn(label), TextColumn("{task.completed} frames"),
                  TimeElapsedColumn(), disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("", total=None)
        yield lambda: bar.advance(task)


def _encode_one(src: Path, dst: Path, on_frame, force, model, quality, device, bpp, gop, audio, effort) -> dict:
    from . import codec, media
    if media.is_video(src):
        from . import video  # only for a video: an image encode need not load the video coder or PyAV
        if bpp is not None:
            raise InputError(f"{src}: --bpp is for images; choose a video's quality with -q")
        return video.encode_file(src, dst, force=force, model=model, quality=quality, device=device, gop=gop,
                                 audio=audio, on_frame=on_frame, effort=effort)
    return codec.encode_file(src, dst, force=force, model=model, quality=quality, device=device, bpp=bpp,
                             effort=effort)


def _is_video_vqz(src: Path) -> bool:
    """From the header alone; an unreadable file counts as an image and fails later with its reason."""
    from .coding import container
    try:
        with open(src, "rb") as f:
            return container.kind_of(f.read(container.HEADER_PREFIX_BYTES)) == "video"
    except OSError:
        return False


def _decode_one(src: Path, dst: Path, on_frame, force, device, salvage, max_pixels, layers) -> dict:
    from . import codec
    if _is_video_vqz(src):
        from . import video  # only for a video: an image decode need not load the video coder
        if layers is not None:
            raise InputError(f"{src}: --layers is for images (a video has one layer)")
        return video.decode_file(src, dst, force=force, device=device, salvage=salvage, max_pixels=max_pixels,
                                 on_frame=on_frame)
    return codec.decode_file(src, dst, force=force, device=device, max_pixels=max_pixels, layers=layers)


def _backend(name: str, address: str | None, jobs: int | None):
    """None for the local backend, else the Ray backend; every input then goes through batch.run."""
    if name == "local":
        if address:
            raise InputError("--address is for --backend ray")
        return None
    if name != "ray":
        raise InputError(f"unknown backend {name!r} (use local or ray)")
    if jobs is not None and jobs != 1:
        raise InputError("--jobs is for the local backend; Ray runs as many files at once as the cluster has CPUs")
    from . import ray_backend
    return ray_backend.connect(address)


def _decoded_suffix(src: Path) -> str:
    return ".mp4" if _is_video_vqz(src) else ".png"


@app.command()
def encode(
    inputs: list[Path] = typer.Argument(..., help="Images, videos, or folders of them; - reads one image from stdin (e.g. vqzip encode - -o - < a.png > a.vqz)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file, or folder for several inputs; - writes the .vqz of one image to stdout. Default: beside the input, .vqz."),
    quality: Optional[int] = typer.Option(None, "--quality", "-q", help="Operating point (see `vqzip models`)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name (full resolution unless -q is given)."),
    bpp: Optional[float] = typer.Option(None, help="Images: size budget in bits per pixel; the best point whose file fits."),
    effort: Optional[int] = typer.Option(None, "--effort", "-e", help=EFFORT_HELP),
    gop: int = typer.Option(64, help="Videos: at most this many frames between key frames."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Videos: drop the audio track on purpose."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (for the tokenizer)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into subfolders."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help=JOBS_HELP),
    backend: str = typer.Option("local", help="local (threads here) or ray (one Ray task a file)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster to join, e.g. 10.0.0.5:6379 (default: a local Ray instance)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary (on stderr with -o -, so that stdout holds only the file)."),
):
    """Compress images and videos to .vqz files.

    Videos (mp4 mkv webm avi mov m4v, animated gif) keep their frame rate, frame count and audio
    (re-encoded to Opus). In batch mode, outputs newer than their source are skipped; failures are
    listed at the end and the exit status is 1.

    [bold]Examples[/bold]
      vqzip encode photo.png                 [dim]# -> photo.vqz[/dim]
      vqzip encode photo.png -o small.vqz -q 2
      vqzip encode photo.png --bpp 0.05
      vqzip encode photo.png --effort 0      [dim]# about 3x faster, 3-5 % more bits; decoding is unchanged[/dim]
      vqzip encode clip.mp4 -o clip.vqz --gop 32
      vqzip encode footage/ -o packed/ -r --jobs 2 --json
      vqzip encode footage/ -o packed/ -r --backend ray --address 10.0.0.5:6379
      vqzip encode - -o - -q 3 < photo.png > photo.vqz   [dim]# a pipe: images only; messages go to stderr[/dim]
    """
    from . import batch, media, streams
    opts = dict(force=force, model=model, quality=quality, device=device, bpp=bpp, gop=gop, audio=not no_audio,
                effort=effort)
    try:
        if _piped(inputs, output):
            r = streams.encode(inputs[0], output, force=force, model=model, quality=quality, device=device, bpp=bpp,
                               effort=effort)
            return _piped_result(r, as_json, f"{r['output']}: {r['file_bytes']} bytes, {r['bpp']:.4f} bpp")
        plan = batch.plan(inputs, output, ".vqz", batch.IMAGE_EXTS | media.VIDEO_INPUT_EXTS, recursive)
        runner = _backend(backend, address, jobs)
        if runner is None and len(plan) == 1 and not inputs[0].is_dir():
            with _frame_progress(f"encoding {plan[0][0].name}") as on_frame:
                r = _encode_one(*plan[0], on_frame, **opts)
            _warn(r)
            _emit(r, as_json, f"{r['output']}: {r['file_bytes']} bytes, {r['bpp']:.4f} bpp")
            return
        s = batch.run(plan, lambda a, b, f: _encode_one(a, b, f, **opts), not force, "encoding", workers=jobs,
                      backend=runner)
    except VqzipError as e:
        _fail(str(e))
    _report(s, as_json, "encoded")


@app.command()
def decode(
    inputs: list[Path] = typer.Argument(..., help=".vqz files, or folders of them; - reads one .vqz image from stdin (e.g. vqzip decode - -o back.png < photo.vqz)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file or folder. Images: png, jpg, webp, bmp, tif; videos: mp4, mov, m4v (x264), mkv (FFV1, exact frames), webm (VP9), avi, gif. - writes one image to stdout, in --format. Default: beside the input, .png or .mp4."),
    fmt: Optional[str] = typer.Option(None, "--format", help="With -o -: the image format on stdout, png (default), jpg, webp, bmp or tif, e.g. vqzip decode - -o - --format webp < a.vqz > a.webp."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (for the tokenizer)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into subfolders."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help=JOBS_HELP),
    backend: str = typer.Option("local", help="local (threads here) or ray (one Ray task a file)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster to join, e.g. 10.0.0.5:6379 (default: a local Ray instance)."),
    salvage: bool = typer.Option(False, "--salvage", help="Videos: decode the intact GOPs of a damaged file; lost frames repeat the last good one."),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help="Refuse, before any work, files whose image or frame is larger (default 100,000,000). Decoding time grows with the declared size, so a service decoding untrusted files should set its own bound."),
    layers: Optional[int] = typer.Option(None, "--layers", help="Images: decode this many layers (default: all the file has); 1 is the base layer alone, e.g. of a file cut after it."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary (on stderr with -o -, so that stdout holds only the file)."),
):
    """Decompress .vqz files.

    [bold]Examples[/bold]
      vqzip decode photo.vqz                 [dim]# -> photo.png[/dim]
      vqzip decode photo.vqz -o photo.webp
      vqzip decode clip.vqz -o clip.mkv      [dim]# lossless FFV1 of the decoded frames[/dim]
      vqzip decode packed/ -o restored/ -r
      vqzip decode packed/ -o restored/ -r --backend ray
      vqzip decode damaged.vqz -o rescued.mp4 --salvage
      vqzip decode untrusted.vqz --max-pixels 4000000
      vqzip decode photo.vqz --layers 1      [dim]# only the base layer of a refined file (-q 2 and up)[/dim]
      vqzip decode - -o - --format jpg < photo.vqz > photo.jpg   [dim]# a pipe: images only[/dim]
    """
    from . import batch, streams
    try:
        if _piped(inputs, output):
            r = streams.decode(inputs[0], output, fmt, force=force, device=device, max_pixels=max_pixels, layers=layers)
            return _piped_result(r, as_json, f"{r['output']}: {r['width']}x{r['height']} {r['mode']}")
        if fmt is not None:
            raise InputError("--format is for -o - (a file's format follows its extension)")
        plan = batch.plan(inputs, output, _decoded_suffix, {".vqz"}, recursive)
        runner = _backend(backend, address, jobs)
        if runner is None and len(plan) == 1 and not inputs[0].is_dir():
            with _frame_progress(f"decoding {plan[0][0].name}") as on_frame:
                r = _decode_one(*plan[0], on_frame, force=force, device=device, salvage=salvage,
                                max_pixels=max_pixels, layers=layers)
            _warn(r)
            what = f"{r['frames']} frames at {r['fps']} fps" if "frames" in r else r["mode"]
            _emit(r, as_json, f"{r['output']}: {r['width']}x{r['height']} {what}")
            return
        s = batch.run(plan, lambda a, b, f: _decode_one(a, b, f, force=force, device=device, salvage=salvage,
                                                        max_pixels=max_pixels, layers=layers),
                      not force, "decoding", workers=jobs,
                      backend=runner)
    except VqzipError as e:
        _fail(str(e))
    _report(s, as_json, "decoded")


@app.command()
def info(file: Path = typer.Argument(..., help="A .vqz file."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON."),
         heatmap: Optional[Path] = typer.Option(None, "--heatmap", help="Also write this PNG: the decoded picture under a colour map of the bits spent on each 16x16 block (base tokens and refinement symbols, from the exact models' code lengths), with a legend in bits per pixel, e.g. vqzip info photo.vqz --heatmap bits.png."),
         frame: Optional[int] = typer.Option(None, "--frame", help="Videos, with --heatmap: the frame to map (default 0), key or predicted, e.g. vqzip info clip.vqz --heatmap f5.png --frame 5."),
         force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing --heatmap file."),
         device: str = typer.Option("auto", help="auto, cpu or cuda (for the tokenizer, with --heatmap).")):
    """Show what a .vqz file holds: model, sizes, and bits saved by the prior (for a video: frame
    rate, frames, and bits per key and per predicted frame).

    [bold]Examples[/bold]
      vqzip info photo.vqz --json
      vqzip info photo.vqz --heatmap bits.png          [dim]# where the bits go, per 16x16 block[/dim]
      vqzip info clip.vqz --heatmap f5.png --frame 5   [dim]# one frame of a video[/dim]
    """
    from . import codec, media
    try:
        if frame is not None and heatmap is None:
            raise InputError("--frame is for --heatmap")
        data = media.read_input(file)
        d = codec.info(data)
        if heatmap is not None:
            from . import heatmap as heat
            d |= heat.write(data, heatmap, frame, force, device)
    except VqzipError as e:
        _fail(str(e))
    lines = [f"{k}: {v}" for k, v in d.items()]
    _emit(d, as_json, "\n".join(lines))


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """List installed models and the quality ladder with measured Kodak numbers.

    [bold]Example[/bold]: vqzip models --json
    """
    from rich.console import Console
    from rich.table import Table
    from . import zoo
    try:
        points = zoo.list_points()
        rows = []
        for p in points:
            m = zoo.get_model(p.model)
            rows.append(m.card.get("points", {}).get(p.key, {}) | p.as_dict())  # the zoo numbers the points
        default = zoo.default_quality() if points else None
    except VqzipError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps({"default_quality": default, "points": rows}, indent=2))
        return
    t = Table(title="vqzip operating points (Kodak means)",
              caption="or: how many other points the encoder may take instead, whichever suits the image (effort 1 "
                      "and up), by refinement layer (--json lists them)")
    cols = ["quality", "model", "scale", "refine", "or", "effort", "bpp", "psnr", "ms_ssim", "ssimulacra2"]
    for c in cols:
        t.add_column(c)
    for r in rows:
        r = r | {"or": _alternatives_by_layer(r.get("alternatives", ()))}
        t.add_row(*[(f"{r[c]:.4g}" if isinstance(r.get(c), float) else str(r.get(c, "-"))) +
                    (" (default)" if c == "quality" and r["quality"] == default else "") for c in cols])
    Console().print(t)


def _alternatives_by_layer(specs) -> str:
    """"2 + 3 perceptual" for two alternatives on the point's own layer and three on refine_perceptual."""
    from collections import Counter
    from .zoo import parse_point_spec
    counts = Counter(parse_point_spec(spec)[2] or "" for spec in specs)
    return " + ".join(f"{n} {layer}".strip() for layer, n in counts.items()) or "-"


@app.command()
def bench(
    paths: list[Path] = typer.Argument(..., help="Images or folders of images."),
    codecs: str = typer.Option("vqzip,jpeg,webp,avif,av1,jxl", help="Comma-separated codecs."),
    metrics: str = typer.Option("psnr,ms-ssim,ssimulacra2", help="Comma-separated metrics."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for points.csv, summary.json and rd.png."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    max_frames: int = typer.Option(60, "--max-frames", help="Video files: benchmark at most this many frames."),
    effort: Optional[int] = typer.Option(None, "--effort", "-e", help="Images: vqzip's search effort, 0-9 (default: vqzip encode's)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write one self-contained HTML report (plots and pictures inlined, opens offline): RD plots, BD-rate tables, the same crop of the first images from every codec at a common bpp, a frame strip per codec for a video; e.g. vqzip bench ../shared/data/kodak --html report.html."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing --html report."),
):
    """Rate-distortion comparison against classic codecs: bpp, PSNR, MS-SSIM, SSIMULACRA2, BD-rate.

    Video files (.mp4 .mkv .webm .avi .mov .m4v) are compared with x264, x265 and av1 (SVT-AV1) at
    matched bitrates: kbps, PSNR, MS-SSIM, VMAF when available, BD-rate vs x264.

    [bold]Examples[/bold]
      vqzip bench ../shared/data/kodak --codecs vqzip,jpeg,avif --out results/
      vqzip bench photo.png --codecs jpeg,webp --metrics psnr --json
      vqzip bench ../shared/data/kodak --codecs vqzip --effort 9 --out results/effort9/
      vqzip bench ../shared/data/video/carphone_pristine.mp4 --codecs x264,x265,av1 --max-frames 30 --out results/
      vqzip bench ../shared/data/kodak --codecs jpeg,avif,vqzip --html report.html   [dim]# open it in a browser[/dim]
    """
    from rich.console import Console
    from . import search
    from .bench.runner import format_bd_table, format_table, run_bench
    from .bench.video import VIDEO_EXTS
    keep = _report_keeper(html, force)
    videos = [p for p in paths if p.suffix.lower() in VIDEO_EXTS and p.is_file()]
    if videos:
        return _bench_videos(paths, videos, codecs, metrics, out, as_json, max_frames, html, keep, force)
    try:
        if effort is not None:
            search.check_effort(effort)
        summary = run_bench(paths, [c for c in codecs.split(",") if c], [m for m in metrics.split(",") if m],
                            out, command="vqzip bench " + " ".join(sys.argv[2:]), effort=effort, keep=keep)
        _write_report(html, keep, summary, [], force)
    except (VqzipError, ValueError) as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps({k: v for k, v in summary.items() if k != "points"}, indent=2, default=str))
        return
    console = Console()
    console.print(format_table(summary))
    console.print(format_bd_table(summary))


_BENCH_DEFAULT_CODECS = "vqzip,jpeg,webp,avif,av1,jxl"


def _report_keeper(html: Optional[Path], force: bool):
    """The collector of --html's pictures, after refusing an existing report: before the bench's work."""
    if html is None:
        return None
    from . import media
    from .bench.report import Keeper
    try:
        media.refuse_overwrite(html, force)
    except VqzipError as e:
        _fail(str(e))
    return Keeper()


def _write_report(html: Optional[Path], keep, images, videos, force: bool) -> None:
    if html is None:
        return
    from . import media
    from .bench.report import render_html
    media.atomic_write_bytes(html, render_html(images, videos, keep).encode(), force)
    typer.echo(f"report: {html}", err=True)


def _bench_videos(paths, videos, codecs: str, metrics: str, out, as_json: bool, max_frames: int, html=None, keep=None,
                  force: bool = False):
    """`vqzip bench` with video files among PATHS: a video bench per clip, the image bench on the rest."""
    from rich.console import Console
    from .bench.runner import format_bd_table, format_table, run_bench
    from .bench.video import VIDEO_CODECS, format_video_table, run_video_bench
    named = [c.strip().lower() for c in codecs.split(",") if c.strip()]
    video_codecs = [c for c in VIDEO_CODECS if c in named]
    if codecs == _BENCH_DEFAULT_CODECS or not set(video_codecs) - {"vqzip"}:
        video_codecs = list(VIDEO_CODECS)
    image_codecs = [c for c in named if c not in ("x264", "x265")] or None
    vids = {p.resolve() for p in videos}
    rest = [p for p in paths if p.resolve() not in vids]
    command = "vqzip bench " + " ".join(sys.argv[2:])
    many = len(videos) > 1
    try:
        images = (run_bench(rest, image_codecs, [m for m in metrics.split(",") if m], out, command=command, keep=keep)
                  if rest else None)
        results = [run_video_bench(v, video_codecs, max_frames, (out / v.stem if many else out) if out else None,
                                   command=command, keep=keep) for v in videos]
        _write_report(html, keep, images, results, force)
    except (VqzipError, ValueError, FileNotFoundError) as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps({"images": {k: v for k, v in images.items() if k != "points"} if images else None,
                               "videos": results}, indent=2, default=str))
        return
    console = Console()
    if images:
        console.print(format_table(images))
        console.print(format_bd_table(images))
    for r in results:
        console.print(format_video_table(r))


def main():
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
