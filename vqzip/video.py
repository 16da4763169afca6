"""Video: frames -> groups of pictures (GOPs) -> one .vqz file, and back.

Two kinds of frames share this file structure. Format 4 (points with a refinement rate, the video
ladder since issue 28; container version 4, version 3's compact header, with "refine" and "inter"
in its extra): refined key frames and inter-layer predicted frames, coded by video_layers.py,
frame types RKEY and INTER. Formats 1 and 2 (points without one, points.json's "video_tokens";
still decoded), described next: base tokens alone, frame types KEY and PREDICTED. Everything below about GOPs, audio, seeking, salvage
and scene cuts holds for both.

Frames are tokenized by the image tokenizer (in batches, which can flip a token only where float
rounding differs). On a predicted frame the encoder then keeps the previous frame's token wherever
taking the new one is not worth its bits (decisions.py, with the lambda of the video ladder's
point: points.json's "video" list); without decisions a frame reconstructs as the same frame
coded as an image would. The decoder does not know which was done. The payload of a
video file (after the usual VQZ1 header, kind "video") is

    audio length u32, CRC32 of the audio u32, audio bytes (Opus in Ogg from video_io, or nothing)
    one chunk per GOP: b"VQG1", first frame u32, frame count u16, body length u32,
                       CRC32 of those and the body u32, body
        body: per frame, type u8 (0 key, 1 predicted), length u32, coded tokens

A key frame is coded on its own by the image prior; the others against the previous frame's
tokens (temporal.py). Every GOP starts with a key frame and restarts the temporal model, so a GOP
decodes without the ones before it (seeking), and damage stays inside its GOP: each chunk has its
own CRC and a marker to find the next one by, which is what `parse(salvage=True)` uses. The
encoder also starts a GOP where a predicted frame would cost more than a key frame (scene cuts).

Frames stream through in batches of BATCH, so memory does not grow with the clip's length; only
the compressed bytes (about a kilobyte a frame) are kept until the file is written.
"""
from __future__ import annotations

import contextlib
import queue
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from PIL import Image

from .coding import container, temporal
from . import media, search, video_layers
from .decisions import Decider
from .devices import host, pick_device
from .coding.entropy import code_lengths, decode_tokens, encode_tokens
from .errors import FormatError, InputError
from .model_check import check_header, model_for
from .pixels import resized, scaled_size, to_image, to_tensor
from .coding.temporal import TemporalState, decode_predicted, encode_predicted
from .video_layers import INTER, RKEY, FrameDecoder, FrameEncoder
from .zoo import Point, get_model, resolve

GOP = 64                  # frames per group of pictures, unless a scene cut starts one sooner
BATCH = 8                 # frames per tokenizer call (on a CPU it takes them one at a time)
KEY_SHARE = 0.6           # a predicted frame above this share of the raw index bits becomes a key frame
MAX_FRAMES = 1 << 24
KEY, PREDICTED = 0, 1     # frame types of base-token videos (formats 1 and 2); refined ones: video_layers
# refined videos: a predicted frame above this share of its GOP's key frame becomes a key frame
# (a scene cut: the previous frame predicts nothing, and a key frame codes it for fewer bits)
KEY_SHARE_REFINED = 0.8
_AUDIO = struct.Struct("<II")    # length, CRC32
_GOP_MAGIC = b"VQG1"
_CHUNK = struct.Struct("<4sIHI")  # marker, first frame, frame count, body length
_CRC = struct.Struct("<I")
_FRAME = struct.Struct("<BI")     # frame type, length


def _batches(items: Iterable, n: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _ahead(items: Iterable, depth: int = 2) -> Iterator:
    """`items`, produced by a background thread up to `depth` items ahead, so that the tokenizer
    and the prior work at the same time instead of in turn: with a GPU they use different
    hardware, and even on two CPU cores the prior's single-threaded stretches leave room (16
    frames of 720p encoded 1.40 frames/s in turn and 1.55 side by side). An error in the
    producer comes out at the item where it happened."""
    q: queue.Queue = queue.Queue(depth)
    stop, end = threading.Event(), object()

    def put(item) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                q.put(item, timeout=0.1)
                return True
        return False

    def work():
        try:
            for item in items:
                if not put((item, None)):
                    break
            else:
                put((end, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            put((None, e))
        finally:  # a generator left early is closed here, in the thread that ran it
            getattr(items, "close", lambda: None)()

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item, err = q.get()
            if err is not None:
                raise err
            if item is end:
                return
            yield item
    finally:
        stop.set()
        t.join()


def _tokenize(frames: Iterable[np.ndarray], tok, size: tuple[int, int], dev, decoded: bool,
              lock=contextlib.nullcontext()) -> Iterator[tuple[np.ndarray, torch.Tensor | None, torch.Tensor | None]]:
    """(tokens, input pixels, decoded tokens) of each frame; the pixels only if `decoded`, for
    the keep-or-change decisions (decoding here, in the producer thread, overlaps the coding).
    The tokenizer runs under `lock`, which the decisions' own decoding shares."""
    def prepare(f: np.ndarray) -> torch.Tensor:
        return to_tensor(resized(Image.fromarray(f), size), tok.stride)

    # Resizing and conversion release the GIL: the frames of a batch are prepared side by side
    # (about 25 ms of one core per 720p frame, so with a GPU it is worth spreading).
    with ThreadPoolExecutor(BATCH) as pool:
        for batch in _batches(frames, BATCH):
            x = torch.cat(list(pool.map(prepare, batch))).to(dev)
            with lock:
                tokens = tok.encode(x)
            if not decoded:
                yield from ((t, None, None) for t in host(tokens))
                continue
            with lock:
                pixels = tok.decode(tokens)
            for i, t in enumerate(host(tokens)):
                yield t, x[i:i + 1], pixels[i:i + 1]


def _chunk(first: int, frames: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(_FRAME.pack(kind, len(data)) + data for kind, data in frames)
    head = _CHUNK.pack(_GOP_MAGIC, first, len(frames), len(body))
    return head + _CRC.pack(zlib.crc32(head + body)) + body


def encode_frames(frames: Iterable[np.ndarray], width: int, height: int, fps: Fraction, point: Point,
                  device: str = "auto", gop: int = GOP, audio: bytes | None = None,
                  on_frame: Callable[[], None] | None = None, effort: int | None = None) -> bytes:
    """Compress H x W x 3 uint8 RGB frames (all width x height) to the bytes of a .vqz video.
    Key frames are searched at `effort` (search.py; None: search.VIDEO_DEFAULT_EFFORT); predicted frames take the
    decisions instead."""
    if not 1 <= gop <= 0xFFFF:
        raise InputError(f"--gop must be between 1 and 65535, not {gop}")
    if not (0 < fps.numerator < 1 << 31 and fps.denominator < 1 << 31):
        raise InputError(f"unsupported frame rate {fps}")
    dev = pick_device(device)
    if point.refine is not None:
        return _encode_refined(frames, width, height, fps, point, dev, gop, audio, on_frame, effort)
    m = get_model(point.model)
    tok = m.tokenizer.to(dev)
    bits = m.prior.cfg.token_bits
    # two threads running convolutions at once oversubscribe the cores (on 2 CPU cores, 9 times
    # slower): the decisions' decoding and the tokenizer take turns
    lock = threading.Lock()
    decider = None if point.lam is None else Decider(tok, point.lam, lock)
    chunks: list[bytes] = []
    current: list[tuple[int, bytes]] = []
    prev = prev_pixels = state = None
    count = 0
    size = scaled_size(width, height, point.scale)
    effort = search.effort_for(tok, search.check_effort(effort, search.VIDEO_DEFAULT_EFFORT), point.search_lambda)
    keep_pixels = decider is not None or effort > 0
    for tokens, target, pixels in _ahead(_tokenize(frames, tok, size, dev, keep_pixels, lock)):
        data = None
        if prev is not None and len(current) < gop:
            grid, grid_pixels = tokens, pixels
            if decider:
                grid, grid_pixels = decider.decide(target, tokens, pixels, prev, prev_pixels, state)
            data = encode_predicted(prev, grid, state)
            if len(data) * 8 > KEY_SHARE * bits * tokens.size:
                data = None
        if data is None:
            if current:
                chunks.append(_chunk(count - len(current), current))
            if effort:  # the whole GOP refers to its key frame
                with lock:
                    found = search.find_tokens(tok, m.float_prior.to(dev), target, effort, point.search_lambda)
                    pixels = tok.decode(found) if decider else None
                tokens = host(found[0])
            current, state = [(KEY, encode_tokens(m.exact_prior(dev), tokens))], TemporalState(bits)
            grid, grid_pixels = tokens, pixels
        else:
            current.append((PREDICTED, data))
        # the next frame refers to what the decoder will have: the coded grid, not the fresh one
        prev, prev_pixels, count = grid, grid_pixels, _counted(count, on_frame)
    chunks.append(_chunk(_first(count) - len(current), current))
    return _packed(m, point, (width, height), prev.shape, fps, count, gop, audio, chunks,
                   {"effort": effort} if effort else {})


def _counted(count: int, on_frame) -> int:
    """The frame count after one more frame (refused past MAX_FRAMES), told to the progress bar."""
    if count + 1 > MAX_FRAMES:
        raise InputError(f"the clip has more than {MAX_FRAMES} frames")
    if on_frame:
        on_frame()
    return count + 1


def _first(count: int) -> int:
    """`count` once the frames have run out: a clip without any is refused."""
    if count == 0:
        raise InputError("the clip has no frames")
    return count


def _packed(m, point: Point, size: tuple[int, int], grid: tuple[int, int], fps: Fraction, count: int, gop: int,
            audio: bytes | None, chunks: list[bytes], extra: dict, version: int | None = None) -> bytes:
    """The .vqz video: a header (`size` the frames', `grid` the coded token grid's shape, `extra`
    the format's own fields), then the audio and the GOP chunks."""
    audio = audio or b""
    header = container.Header(
        kind="video", model_id=point.model, weights_hash=m.weights_hash, width=size[0], height=size[1],
        mode="RGB", bit_depth=8, grid_h=grid[0], grid_w=grid[1],
        scale_num=point.scale.numerator, scale_den=point.scale.denominator,
        extra={"fps": [fps.numerator, fps.denominator], "frames": count, "gop": gop} | extra)
    return container.pack(header, _AUDIO.pack(len(audio), zlib.crc32(audio)) + audio + b"".join(chunks),
                          version=version)


def _prepared(frames: Iterable[np.ndarray], size: tuple[int, int], stride: int, dev) -> Iterator[torch.Tensor]:
    """Each frame at the coded size, as the networks take it; resizing releases the GIL, so with
    _ahead it overlaps the coding of the frame before."""
    for f in frames:
        yield to_tensor(resized(Image.fromarray(f), size), stride).to(dev)


def _encode_refined(frames: Iterable[np.ndarray], width: int, height: int, fps: Fraction, point: Point, dev,
                    gop: int, audio: bytes | None, on_frame, effort: int | None) -> bytes:
    """Format 4 (video_layers.py): refined key frames, inter-layer predicted frames. A GOP ends
    at `gop` frames or where a predicted frame would cost over KEY_SHARE_REFINED of its key frame
    (a scene cut). The key frames' refinement is searched at `effort` (refine_search.py; None: 0,
    the encoder's rounding)."""
    m = get_model(point.model)
    effort = search.check_effort(effort, search.VIDEO_DEFAULT_EFFORT)
    enc = FrameEncoder(m, point, dev, search.schedule(effort).refine_steps)
    size = scaled_size(width, height, point.scale)
    chunks: list[bytes] = []
    current: list[tuple[int, bytes]] = []
    count = key_bytes = 0
    for x in _ahead(_prepared(frames, size, m.tokenizer.stride, dev)):
        data = None
        if enc.reference is not None and len(current) < gop:
            data, y = enc.predicted(x)
            if len(data) > KEY_SHARE_REFINED * key_bytes:
                data = None
        if data is None:
            if current:
                chunks.append(_chunk(count - len(current), current))
            data, y = enc.key(x)
            current, key_bytes = [(RKEY, data)], len(data)
        else:
            current.append((INTER, data))
        enc.accept(y)
        count = _counted(count, on_frame)
    chunks.append(_chunk(_first(count) - len(current), current))
    stride = m.tokenizer.stride
    return _packed(m, point, (width, height), (-(-size[1] // stride), -(-size[0] // stride)), fps, count, gop,
                   audio, chunks, video_layers.header_extra(m, point) | ({"effort": effort} if effort else {}),
                   container.VIDEO_VERSION)


def refined(header: container.Header) -> bool:
    """Whether a video is of format 4 (video_layers.py): refined key frames, inter-layer predicted frames."""
    return "inter" in header.extra


@dataclass
class Parsed:
    header: container.Header
    fps: Fraction
    frames: int
    audio: bytes
    gops: list[tuple[int, list[tuple[int, bytes]]]]   # (first frame, [(frame type, coded tokens)])
    lost: list[tuple[int, int]]                       # [start, stop) frames a salvage skipped between intact GOPs
    ends_at: int = 0                                  # frames the file holds up to its last intact GOP
    audio_lost: bool = False                          # a salvage dropped damaged audio


def _corrupt(why: str) -> FormatError:
    return FormatError(f"file is corrupted ({why})")


def parse(data: bytes, salvage: bool = False) -> Parsed:
    """Split a .vqz video into its parts, checking every declared length and count first. With
    `salvage`, a damaged file gives every GOP that is still intact (and the audio if it is),
    `lost` names the frames skipped between them and `ends_at` where the last one ends; only a
    damaged header is fatal. A salvage never invents more frames than the skipped bytes could
    have held, so a forged frame count cannot make it fill out a huge video."""
    try:
        header, payload = container.unpack(data, verify=not salvage)
    except FormatError as e:
        if not salvage and ("corrupted" in str(e) or "truncated" in str(e)) and container.kind_of(data) == "video":
            raise FormatError(f"{e}; --salvage decodes the GOPs that are intact") from None
        raise
    if header.kind != "video":
        raise FormatError(f"this is an {header.kind} file, not a video")
    x = header.extra
    fps, frames = x.get("fps"), x.get("frames")
    if not (isinstance(fps, list) and len(fps) == 2 and all(type(v) is int and 0 < v < 1 << 31 for v in fps)):
        raise _corrupt("bad frame rate")
    if not (type(frames) is int and 1 <= frames <= MAX_FRAMES):
        raise _corrupt("bad frame count")
    audio, pos, audio_lost = _audio(payload, salvage)
    kinds = (RKEY, INTER) if refined(header) else (KEY, PREDICTED)
    gops, lost, seen = [], [], 0
    while pos < len(payload) and seen < frames:
        try:
            first, gop, end = _gop(payload, pos, frames, kinds)
            if first != seen:
                raise _corrupt(f"GOP of frame {first} where frame {seen} was due")
        except FormatError:
            if not salvage:
                raise
            pos, first = _next_gop(payload, pos, seen, frames, kinds)
            if first is None:
                break
            lost.append((seen, first))
            seen = first
            continue
        gops.append((first, gop))
        seen, pos = seen + len(gop), end
    if pos < len(payload) and not salvage:
        raise _corrupt(f"more frames than the {frames} declared")
    if seen != frames and not salvage:
        raise _corrupt(f"{seen} frames, {frames} declared")
    if not gops:
        raise _corrupt("no GOP is intact, nothing to salvage")
    return Parsed(header, Fraction(*fps), frames, audio, gops, lost, seen, audio_lost)


def _audio(payload: bytes, salvage: bool) -> tuple[bytes, int, bool]:
    """The audio bytes, where the GOPs start, and whether damaged audio was dropped (in a
    salvage, past a damaged audio block the GOP search starts right after its length field)."""
    if len(payload) < _AUDIO.size:
        raise _corrupt("no audio block")
    size, crc = _AUDIO.unpack_from(payload)
    audio = payload[_AUDIO.size:_AUDIO.size + size]
    if len(audio) == size and zlib.crc32(audio) == crc:
        return audio, _AUDIO.size + size, False
    if not salvage:
        raise _corrupt("the audio fails its CRC" if len(audio) == size else "audio runs past the end")
    return b"", _AUDIO.size, True


def _gop(payload: bytes, pos: int, frames: int, kinds: tuple[int, int]) -> tuple[int, list[tuple[int, bytes]], int]:
    """(first frame, frames, end offset) of the GOP chunk at `pos`; `kinds`: the file's frame
    types of a key frame and of a predicted one."""
    head_end = pos + _CHUNK.size + _CRC.size
    if head_end > len(payload):
        raise _corrupt("GOP header runs past the end")
    marker, first, count, size = _CHUNK.unpack_from(payload, pos)
    if marker != _GOP_MAGIC:
        raise _corrupt(f"no GOP marker at payload byte {pos}")
    body = payload[head_end:head_end + size]
    if len(body) != size:
        raise _corrupt("GOP runs past the end")
    (crc,) = _CRC.unpack_from(payload, pos + _CHUNK.size)
    if zlib.crc32(payload[pos:pos + _CHUNK.size] + body) != crc:
        raise _corrupt(f"the GOP of frame {first} fails its CRC")
    gop = _frames(body, first, kinds)
    if len(gop) != count or first + count > frames:
        raise _corrupt(f"the GOP of frame {first} holds {len(gop)} frames, not {count}")
    return first, gop, head_end + size


def _next_gop(payload: bytes, damaged: int, seen: int, frames: int, kinds: tuple[int, int]) -> tuple[int, int | None]:
    """Offset and first frame of the next intact GOP after the damaged one at byte `damaged` that
    continues the clip, or (end, None). Every frame takes at least a frame header, so a GOP further
    on than the skipped bytes could reach is not believed."""
    pos = payload.find(_GOP_MAGIC, damaged + 1)
    while pos >= 0:
        with contextlib.suppress(FormatError):
            first, _, _ = _gop(payload, pos, frames, kinds)
            if seen < first <= seen + (pos - damaged) // _FRAME.size + 1:
                return pos, first
        pos = payload.find(_GOP_MAGIC, pos + 1)
    return len(payload), None


def _frames(body: bytes, first: int, kinds: tuple[int, int]) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(body):
        if pos + _FRAME.size > len(body):
            raise _corrupt(f"frame {first + len(out)} header runs past its GOP")
        kind, size = _FRAME.unpack_from(body, pos)
        if kind != kinds[bool(out)]:
            raise _corrupt(f"frame {first + len(out)} has type {kind}")
        data = body[pos + _FRAME.size:pos + _FRAME.size + size]
        if len(data) != size:
            raise _corrupt(f"frame {first + len(out)} runs past its GOP")
        out.append((kind, data))
        pos += _FRAME.size + size
    if not out:
        raise _corrupt(f"empty GOP at frame {first}")
    return out


def decode_tokens_of(p: Parsed, max_pixels: int | None = None,
                     device: torch.device | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, token grid) of every frame that the file holds, in order (the lossless part
    of decoding; key frames' exact prior on `device` if it is CUDA, Model.exact_prior)."""
    m = model_for(p.header)
    check_header(p.header, m.tokenizer.stride, max_pixels)
    _tokens_only(p.header)
    for first, frames in p.gops:
        for index, tokens, _ in _gop_tokens(m, p.header, first, frames, prior=m.exact_prior(device)):
            yield index, tokens


def _gop_tokens(m, header: container.Header, first: int, frames: list[tuple[int, bytes]], measured: int = -1,
                prior=None):
    """(frame index, token grid, code lengths in bits or None) of one GOP's frames in order: the
    code lengths (entropy.code_lengths, temporal.code_lengths) of frame `measured` alone. Key
    frames are decoded by `prior` (default: the host's exact prior)."""
    prior = prior or m.prior
    state, prev = TemporalState(m.prior.cfg.token_bits), None
    for i, (kind, data) in enumerate(frames):
        bits, measure = None, first + i == measured
        if kind == KEY:
            grid = (header.grid_h, header.grid_w)
            prev, bits = code_lengths(prior, *grid, data) if measure else (decode_tokens(prior, *grid, data), None)
        else:
            prev, bits = temporal.code_lengths(prev, data, state) if measure else (decode_predicted(prev, data, state), None)
        yield first + i, prev, bits


def _tokens_only(header: container.Header):
    if refined(header):
        raise InputError("this video's frames are refined (format 4): they are not token grids alone")


def frame_code_lengths(p: Parsed, frame: int) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Frame `frame`'s token grid, each token's code length in bits, the frame's coded bytes and
    its type ("key" or "predicted"): the frames before it in its GOP are decoded, not measured."""
    m = model_for(p.header)
    check_header(p.header, m.tokenizer.stride)
    _tokens_only(p.header)
    first, frames = _gop_of(p, frame)
    for index, tokens, bits in _gop_tokens(m, p.header, first, frames[:frame - first + 1], frame):
        if index == frame:
            kind, data = frames[frame - first]
            return tokens, bits, len(data), "key" if kind == KEY else "predicted"


def _gop_of(p: Parsed, frame: int) -> tuple[int, list[tuple[int, bytes]]]:
    """The GOP that holds frame `frame`: its first frame's index and its frames."""
    for first, frames in p.gops:
        if first <= frame < first + len(frames):
            return first, frames
    raise InputError(f"--frame {frame}: the file has frames 0 to {p.frames - 1}")


def refined_frame_bits(p: Parsed, frame: int, device: str = "auto") -> tuple[np.ndarray, list, tuple[int, int], int, str]:
    """Of a refined (format 4) video: frame `frame` decoded (H x W x 3 uint8), where its bits went
    (FrameDecoder.bits: (bits (h, w), cell pixels) per part, in coded pixels), the coded size, the
    frame's bytes and its type ("key" or "predicted"). The frames before it in its GOP are
    decoded, not measured."""
    m = model_for(p.header)
    w, h = check_header(p.header, m.tokenizer.stride)
    first, frames = _gop_of(p, frame)
    dec = FrameDecoder(m, p.header, pick_device(device))
    for kind, data in frames[:frame - first]:
        dec.frame(*dec.symbols(kind, data))
    kind, data = frames[frame - first]
    coded, parts = dec.bits(kind, data)
    y = dec.frame(*coded)
    picture = np.asarray(resized(to_image(y, w, h), (p.header.width, p.header.height)))
    return picture, parts, (w, h), len(data), "predicted" if kind == INTER else "key"


def decode_frames(p: Parsed, device: str = "auto", max_pixels: int | None = None) -> Iterator[np.ndarray]:
    """The frames of a parsed video as H x W x 3 uint8 RGB arrays: p.ends_at of them, which is all
    p.frames unless a salvage found the end missing. A frame lost to damage between intact GOPs
    repeats the last good one (mid-grey before the first), so timing and audio stay in step."""
    m = model_for(p.header)
    w, h = check_header(p.header, m.tokenizer.stride, max_pixels)
    dev = pick_device(device)
    if refined(p.header):
        yield from _decode_refined(p, m, (w, h), dev)
        return
    tok = m.tokenizer.to(dev)
    size = (p.header.width, p.header.height)
    last = np.full((size[1], size[0], 3), 128, np.uint8)
    due = 0
    with ThreadPoolExecutor(BATCH) as pool:
        for batch in _batches(_ahead(decode_tokens_of(p, max_pixels, dev)), BATCH):
            x = tok.decode(torch.from_numpy(np.stack([t for _, t in batch])).to(dev))
            imgs = pool.map(lambda j: np.asarray(resized(to_image(x[j:j + 1], w, h), size)), range(len(batch)))
            for (index, _), img in zip(batch, imgs):
                while due < index:
                    yield last
                    due += 1
                last = img
                yield last
                due += 1


def _decode_refined(p: Parsed, m, coded: tuple[int, int], dev) -> Iterator[np.ndarray]:
    """decode_frames of a format 4 video: the symbols of every frame are decoded ahead, in a
    thread of their own (they need no pixels), while the frames are reconstructed in order."""
    dec = FrameDecoder(m, p.header, dev)
    size = (p.header.width, p.header.height)
    last = np.full((size[1], size[0], 3), 128, np.uint8)
    symbols = ((first + i, dec.symbols(kind, data)) for first, frames in p.gops for i, (kind, data) in enumerate(frames))
    due = 0
    for index, (kind, coded_frame) in _ahead(symbols, depth=4):
        y = dec.frame(kind, coded_frame)
        while due < index:
            yield last
            due += 1
        last = np.asarray(resized(to_image(y, *coded), size))
        yield last
        due += 1


def info(data: bytes) -> dict:
    """What `vqzip info` shows for a video: the header, rates, and bits per key and predicted frame."""
    p = parse(data)
    kinds = [(kind, len(d)) for _, frames in p.gops for kind, d in frames]
    key = [n for k, n in kinds if k in (KEY, RKEY)]
    pred = [n for k, n in kinds if k in (PREDICTED, INTER)]
    seconds = p.frames / p.fps
    out = container.describe(p.header) | {
        "fps": str(p.fps), "frames": p.frames, "seconds": float(seconds), "file_bytes": len(data),
        "kbps": len(data) * 8 / float(seconds) / 1000, "bpp": len(data) * 8 / (p.header.width * p.header.height * p.frames),
        "gops": len(p.gops), "key_frames": len(key), "predicted_frames": len(pred),
        "bits_per_key_frame": 8 * sum(key) / len(key),
        "bits_per_predicted_frame": 8 * sum(pred) / len(pred) if pred else None,
        "audio_bytes": len(p.audio), "effort": p.header.extra.get("effort", 0)}
    return out


def encode_file(src: Path, dst: Path, force: bool = False, model: str | None = None, quality: int | None = None,
                device: str = "auto", gop: int = GOP, audio: bool = True,
                on_frame: Callable[[], None] | None = None, effort: int | None = None) -> dict:
    from . import video_io  # PyAV only for files: the frame API runs where it is not installed
    media.refuse_overwrite(dst, force)  # before the work, not after
    v = video_io.probe(src)
    blob = video_io.extract_audio(src) if audio and v.has_audio else None
    data = encode_frames(video_io.read_frames(src), v.width, v.height, v.fps, resolve(model, quality, "video"),
                         device, gop, blob, on_frame, effort)
    media.atomic_write_bytes(dst, data, force)
    out = info(data) | {"input": str(src), "output": str(dst)}
    # A cut Matroska or AVI file decodes without an error, just shorter: say so rather than
    # silently coding part of a clip (a frame and half a second of slack for rounding).
    if v.seconds is not None and out["seconds"] + 1 / float(v.fps) < v.seconds - 0.5:
        out["warning"] = (f"{src}: the container declares {v.seconds:.2f} s but only {out['seconds']:.2f} s "
                          f"of frames could be decoded (a truncated file?)")
    return out


def decode_file(src: Path, dst: Path, force: bool = False, device: str = "auto", salvage: bool = False,
                max_pixels: int | None = None, on_frame: Callable[[], None] | None = None) -> dict:
    from . import video_io
    media.refuse_overwrite(dst, force)
    p = parse(media.read_input(src), salvage)
    h = p.header
    if p.audio:
        try:  # a forged file can carry a valid CRC around audio that is not Ogg Opus at all
            video_io.audio_duration(p.audio)
        except InputError:
            raise _corrupt("its audio is unreadable") from None
    with video_io.VideoWriter(dst, h.width, h.height, p.fps, p.audio or None, force) as out:
        for frame in decode_frames(p, device, max_pixels):
            out.write(frame)
            if on_frame:
                on_frame()
    out = {"input": str(src), "output": str(dst), "width": h.width, "height": h.height,
           "frames": p.ends_at, "fps": str(p.fps), "audio": bool(p.audio)}
    damage = []
    if p.lost:
        out["lost_frames"] = p.lost
        damage.append("frames " + ", ".join(f"{a}-{b - 1}" for a, b in p.lost) +
                      " were damaged and repeat the last good frame")
    if p.ends_at < p.frames:
        out["missing_from"] = p.ends_at
        damage.append(f"the video ends at frame {p.ends_at - 1} of {p.frames} (the rest is damaged or missing)")
    if p.audio_lost:
        out["audio_lost"] = True
        damage.append("the damaged audio was left out")
    if damage:
        out["warning"] = f"{src}: " + "; ".join(damage)
    return out
