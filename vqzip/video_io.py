"""Video files in and out, through PyAV (FFmpeg).

Frames are H x W x 3 uint8 RGB and stream one at a time, so a clip is never held in memory.
Audio travels separately as an Opus blob (an in-memory Ogg file): extract_audio() makes it from
the input and VideoWriter muxes it into the output, interleaved with the video. Bad input raises
InputError with a one-line message; writes are atomic and never overwrite unless forced.
"""
from __future__ import annotations

import contextlib
import io
import os
import secrets
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image

from .coding.container import MAX_SIDE
from .errors import InputError
from .media import MAX_PIXELS, VIDEO_EXTS, VIDEO_INPUT_EXTS, _one_line, is_video, refuse_overwrite  # noqa: F401 - is_video and VIDEO_INPUT_EXTS are part of video_io's API


@dataclass(frozen=True)
class VideoOutput:
    """How one output extension is written."""
    format: str                 # FFmpeg muxer
    codec: str
    pix_fmt: str                # odd sizes: see VideoWriter._add_video_stream
    options: dict = field(default_factory=dict)
    audio: str | None = "opus"  # "opus": the blob's packets are copied; another codec: re-encoded; None: no audio


_X264 = {"crf": "16", "preset": "medium"}
VIDEO_OUTPUT_EXTS = {
    ".mp4": VideoOutput("mp4", "libx264", "yuv420p", _X264),
    # Apple players take AAC, not Opus; FFmpeg's mov muxer refuses Opus outright.
    ".mov": VideoOutput("mov", "libx264", "yuv420p", _X264, "aac"),
    ".m4v": VideoOutput("mp4", "libx264", "yuv420p", _X264, "aac"),
    # FFV1 is lossless and 8-bit RGB only as bgr0: decoding gives back the exact pixels.
    ".mkv": VideoOutput("matroska", "ffv1", "bgr0"),
    ".webm": VideoOutput("webm", "libvpx-vp9", "yuv420p",
                         {"crf": "15", "b": "0", "deadline": "good", "cpu-used": "2", "row-mt": "1"}),
    # AVI has no Opus; PCM keeps the duration exact where MP3 would round it up to whole frames.
    ".avi": VideoOutput("avi", "ffv1", "bgr0", audio="pcm_s16le"),
    ".gif": VideoOutput("gif", "gif", "pal8", audio=None),
}


@dataclass(frozen=True)
class VideoInfo:
    """What probe() reads from the headers; `fps` is the rate the container states, exactly, and
    `seconds` the duration it declares (None if it declares none)."""
    width: int
    height: int
    fps: Fraction
    has_audio: bool
    seconds: float | None = None


def _open(path: Path):
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or _one_line(e)})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video")
    if size == 0:
        raise InputError(f"{path}: empty file")
    try:
        # Tags in a legacy 8-bit encoding would otherwise fail the whole open.
        return av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as e:
        raise InputError(f"{path}: not a readable video ({e.strerror or _one_line(e)})") from None


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise InputError(f"{path}: no video stream")
    stream = container.streams.video[0]
    w, h = stream.codec_context.width, stream.codec_context.height
    if w < 1 or h < 1:
        raise InputError(f"{path}: video stream of unknown size (unsupported codec?)")
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise InputError(f"{path}: video too large ({w}x{h}; the limits are {MAX_PIXELS} pixels "
                         f"and {MAX_SIDE} per side)")
    return stream


def _frame_rate(stream) -> Fraction:
    rates = [stream.average_rate, stream.guessed_rate, stream.base_rate]
    if stream.container.format.name == "gif":
        # GIF stores per-frame delays in whole centiseconds. FFmpeg's average is the first delay
        # alone (33.3 fps for 29.97); its guess fits a rate to all the delays it probes.
        rates = rates[1:] + rates[:1]
    # FFmpeg's own default when a stream states no rate at all.
    return next((Fraction(r) for r in rates if r and r > 0), Fraction(25))


def probe(path) -> VideoInfo:
    """Size, frame rate and audio presence of the video at `path`, from its headers."""
    path = Path(path)
    with _open(path) as c:
        v = _video_stream(c, path)
        seconds = c.duration / av.time_base if c.duration and c.duration > 0 else None
        return VideoInfo(v.codec_context.width, v.codec_context.height, _frame_rate(v),
                         bool(c.streams.audio), seconds)


def read_frames(path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode the first video stream of `path` as H x W x 3 uint8 RGB frames, at most
    `max_frames` of them. Frames whose size changes mid-stream are scaled to the first size.
    A generator: errors surface on iteration, and the file is open until it is exhausted or
    closed. A truncated file is an error only where the container shows it (MP4 keeps its index
    at the end); a cut Matroska or AVI file simply ends early, as in any player."""
    path = Path(path)
    with _open(path) as c:
        v = _video_stream(c, path)
        w, h = v.codec_context.width, v.codec_context.height
        v.thread_type = "AUTO"
        n = 0
        try:
            for frame in c.decode(v):
                if max_frames is not None and n >= max_frames:
                    return
                # reformat honours the frame's colorspace and range tags
                yield frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
                n += 1
        except av.FFmpegError as e:
            raise InputError(f"{path}: cannot decode video frame {n} "
                             f"({e.strerror or _one_line(e)})") from None
    if n == 0:
        raise InputError(f"{path}: no video frames could be decoded")


def extract_audio(path) -> bytes | None:
    """The first audio stream of `path` as Opus (48 kHz, mono or stereo as the source, about
    96 kbit/s) in an in-memory Ogg file, or None when there is none. The audio is taken to start
    with the first video frame: a leading offset between the two is dropped."""
    path = Path(path)
    buf = io.BytesIO()
    with _open(path) as c:
        if not c.streams.audio:
            return None
        src = c.streams.audio[0]
        try:
            with av.open(buf, "w", format="ogg") as out:
                enc = out.add_stream("libopus", rate=48000, bit_rate=96000,
                                     layout="mono" if src.codec_context.channels == 1 else "stereo")
                start = None
                for frame in _audio_frames(c, src, path):
                    if frame.pts is not None:
                        start = frame.pts if start is None else start
                        frame.pts -= start
                    for p in enc.encode(frame):
                        out.mux(p)
                for p in enc.encode(None):
                    out.mux(p)
        except av.FFmpegError as e:
            raise InputError(f"{path}: cannot read its audio ({e.strerror or _one_line(e)})") from None
    return buf.getvalue()


def _audio_frames(container, stream, path: Path):
    """Decode `stream`, reading the file once (the video packets are skipped, not decoded).
    Undecodable packets before the first good one are skipped, as FFmpeg does: a clip cut in
    the middle of an audio frame (Megamind.avi's AC3) starts with one. Later damage is an error."""
    started = False
    for packet in container.demux(stream):
        try:
            frames = stream.decode(packet)
        except av.FFmpegError as e:
            if started:
                at = "" if packet.pts is None else f" at {float(packet.pts * packet.time_base):.2f} s"
                raise InputError(f"{path}: cannot decode its audio{at} "
                                 f"({e.strerror or _one_line(e)})") from None
            continue
        started = started or bool(frames)
        yield from frames
    if not started:
        raise InputError(f"{path}: its audio stream has no decodable audio")


def audio_duration(blob: bytes) -> float:
    """Seconds of audio in a media file held in memory (such as extract_audio's blob), from its
    packet timestamps. The codec delay (Opus pre-skip, AAC priming) shows as negative time and
    is not counted."""
    try:
        with av.open(io.BytesIO(blob)) as c:
            if not c.streams.audio:
                raise InputError("audio blob: no audio stream")
            stream = c.streams.audio[0]
            start = end = None
            for p in c.demux(stream):
                if p.pts is not None:  # the demuxer's final flush packet has none
                    start = p.pts if start is None else start
                    end = p.pts + p.duration
            return 0.0 if end is None else float(max(end - max(start, 0), 0) * stream.time_base)
    except av.FFmpegError as e:
        raise InputError(f"audio blob: unreadable ({e.strerror or _one_line(e)})") from None


class VideoWriter:
    """Write RGB frames to a video file whose format follows the extension of `path` (see
    VIDEO_OUTPUT_EXTS), at exactly `fps`, with the Opus `audio` blob as its sound track.

        with VideoWriter(path, w, h, fps, audio) as out:
            for frame in frames:
                out.write(frame)

    The file appears only when the `with` block completes; on an exception nothing is left.
    Refuses to overwrite an existing file unless `force`. GIF has no audio: a given blob is
    dropped with a warning.

    The frame count always survives, and the rate exactly in MP4, MOV and AVI. Matroska (.mkv,
    .webm) keeps times in whole milliseconds and the frame duration in whole nanoseconds, from
    which FFmpeg reads back a nearby simple fraction: 30000/1001 and 2997/125 exactly,
    1000000/66667 as 15 (5 ppm off). GIF delays are whole centiseconds: FFmpeg spreads the
    rounding so the total duration stays within 10 ms of the true one.
    """

    def __init__(self, path, width: int, height: int, fps: Fraction, audio: bytes | None = None,
                 force: bool = False):
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in VIDEO_OUTPUT_EXTS:
            raise InputError(f"{self.path}: unsupported video output format {ext or '(no extension)'} "
                             f"(use {', '.join(VIDEO_OUTPUT_EXTS)})")
        refuse_overwrite(self.path, force)
        self.out = VIDEO_OUTPUT_EXTS[ext]
        if audio is not None and self.out.audio is None:
            warnings.warn(f"{self.path}: {ext} cannot hold audio; the sound track is dropped",
                          stacklevel=2)
            audio = None
        self.width, self.height, self.fps, self.audio = width, height, Fraction(fps), audio
        self.frames_written = 0
        self._tmp = self._file = self._container = self._audio_src = self._audio = self._next_audio = None

    def __enter__(self) -> VideoWriter:
        # The temporary name hides the extension, so the muxer is named explicitly.
        self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        with self._cleaned_up_on_error():
            self._file = open(self._tmp, "xb")  # "x": never clobber
            self._container = av.open(self._file, "w", format=self.out.format)
            self._video = self._add_video_stream()
            if self.audio is not None:
                self._audio = self._add_audio_stream()
                self._next_audio = next(self._audio, None)
        return self

    def _add_video_stream(self):
        pix_fmt = self.out.pix_fmt
        if self.out.codec == "libx264" and (self.width % 2 or self.height % 2):
            # H.264 4:2:0 cannot code an odd size (it crops in whole chroma samples); 4:4:4
            # keeps the exact size, at the cost of players that only decode 4:2:0.
            pix_fmt = "yuv444p"
        # time_base = 1/fps, so frame i has pts i and every frame lasts exactly one tick.
        s = self._container.add_stream(self.out.codec, rate=self.fps, time_base=1 / self.fps,
                                       options=self.out.options)
        s.width, s.height, s.pix_fmt = self.width, self.height, pix_fmt
        if pix_fmt.startswith("yuv"):
            # Tag what _to_video_frame converts with, so players do not guess BT.601 vs BT.709.
            ctx = s.codec_context
            ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # BT.709
            ctx.color_range = 1  # limited ("MPEG") range
        return s

    def _to_video_frame(self, rgb: np.ndarray) -> av.VideoFrame:
        fmt = self._video.pix_fmt
        if fmt == "pal8":
            # FFmpeg's own RGB -> 8-bit conversion uses one fixed 3-3-2 palette; Pillow picks
            # 256 colours per frame, which the GIF encoder stores as local colour tables.
            im = Image.fromarray(rgb).quantize(256)
            rgb_pal = np.asarray(im.getpalette(), np.uint8).reshape(-1, 3)
            argb = np.zeros((256, 4), np.uint8)
            argb[:, 0] = 255
            argb[:len(rgb_pal), 1:] = rgb_pal
            return av.VideoFrame.from_ndarray((np.asarray(im), argb), format="pal8")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if fmt.startswith("yuv"):
            return frame.reformat(format=fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
        return frame.reformat(format=fmt)

    def _add_audio_stream(self):
        """Add the output audio stream and return an iterator over its packets, in time order:
        the blob's packets copied where the container takes Opus, re-encoded otherwise."""
        self._audio_src = av.open(io.BytesIO(self.audio))
        opus = self._audio_src.streams.audio[0]
        if self.out.audio == "opus":
            stream = self._container.add_stream_from_template(opus)
            return _copied(self._audio_src.demux(opus), stream)
        stream = self._container.add_stream(self.out.audio, rate=opus.rate, layout=opus.layout.name)
        return _encoded(self._audio_src.decode(opus), stream)

    def _mux_audio(self, until: Fraction | None = None) -> None:
        """Mux the audio packets that start before `until` seconds (all when None), so that
        sound and pictures sit side by side in the file rather than one after the other."""
        while self._next_audio is not None and (
                until is None or self._next_audio.pts * self._next_audio.time_base < until):
            self._container.mux(self._next_audio)
            self._next_audio = next(self._audio, None)

    def write(self, frame: np.ndarray) -> None:
        """Append one H x W x 3 uint8 RGB frame."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a {self.height}x{self.width}x3 uint8 frame, "
                             f"got {frame.shape} {frame.dtype}")
        vf = self._to_video_frame(np.ascontiguousarray(frame))
        vf.pts = self.frames_written
        with self._cleaned_up_on_error():
            for p in self._video.encode(vf):
                self._container.mux(p)
            self.frames_written += 1
            self._mux_audio(until=self.frames_written / self.fps)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            with self._cleaned_up_on_error():
                for p in self._video.encode(None):  # B-frames and lookahead hold frames back
                    self._container.mux(p)
                self._mux_audio()
                self._container.close()  # writes the trailer (MP4's index)
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                os.replace(self._tmp, self.path)
                self._tmp = None
        self._close()

    @contextlib.contextmanager
    def _cleaned_up_on_error(self):
        """On any error, leave nothing behind; a failed write (disk full, ...) is an InputError."""
        try:
            yield
        except BaseException as e:
            self._close()
            if isinstance(e, (OSError, av.FFmpegError)):
                raise InputError(f"cannot write {self.path}: {e.strerror or _one_line(e)}") from None
            raise

    def _close(self) -> None:
        """Close everything and delete the temporary file if it is still there; never raises."""
        for closeable in (self._audio_src, self._container, self._file):
            if closeable is not None:
                with contextlib.suppress(Exception):
                    closeable.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()


def _copied(packets, stream):
    for p in packets:
        if p.dts is not None:  # skip the demuxer's empty flush packet
            p.stream = stream
            yield p


def _encoded(frames, stream):
    for frame in frames:
        yield from stream.encode(frame)
    yield from stream.encode(None)
