"""Opening inputs and probing them: the demuxer whitelist (one local media file, nothing it names), the video stream,
decoding with damaged packets skipped, the probed facts of a video (VideoInfo), stream start times, and the checks on
an output path."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av

from lipdub.errors import InputError, OutputError
from lipdub.media.colour import BT709, matrix_of

av.logging.set_level(None)  # PyAV's no-op callback: FFmpeg warnings about damaged packets never reach the user

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_OUT_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".m4v"})
IMAGE_FPS = 25.0
LARGE_FRAME = 1920 * 1088  # pixels: above this (past 1080p) decoders and the encoder trade speed for memory


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float
    n_frames: int
    duration: float
    rotation: int
    is_image: bool
    has_audio: bool
    matrix: int = BT709  # the YUV matrix the frames are in (FFmpeg's code; untagged: as players guess, see colour)
    # a photo scaled down to width x height (the output size): its own upright size; None when read as stored
    source_size: tuple[int, int] | None = None

    @property
    def scaled_to(self) -> tuple[int, int] | None:
        """(width, height) a scaled photo is read at (media.iter_frames' `scaled_to`); None when not scaled."""
        return (self.width, self.height) if self.source_size is not None else None


def photo_size(width: int, height: int, max_size: int) -> tuple[int, int] | None:
    """The size a `width` x `height` photo is dubbed at: its long side at most `max_size` (0: the photo's own size,
    exactly), both sides even, the aspect kept; None when it keeps its own size. A photo under the limit with an odd
    side loses its last row or column (photo_rgb crops it, nothing is resampled): an odd size can only be written as
    H.264 4:4:4, which browsers and most players refuse."""
    if not max_size or min(width, height) < 2:
        return None
    if max(width, height) <= max_size:
        even = (width - width % 2, height - height % 2)
        return None if even == (width, height) else even
    scale = max_size / max(width, height)
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def is_image_path(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


# Demuxers never used on an input: those that open further files or URLs named inside the input (playlists, concat
# scripts, manifests, stream descriptions, subtitle companions), capture devices and filter graphs, script hosts,
# and text renderers. An input is one local media file and nothing else.
_REFUSED_DEMUXERS = frozenset({
    "hls", "applehttp", "concat", "dash", "imf", "webm_dash_manifest", "sdp", "rtp", "rtsp", "sap", "vobsub",
    "ffmetadata", "tty", "lavfi", "avisynth", "vapoursynth", "dvdvideo", "alsa", "fbdev", "kmsgrab", "oss", "pulse",
    "jack", "openal", "sndio", "video4linux2", "v4l2", "x11grab", "xcbgrab", "gdigrab", "dshow", "vfwcap",
    "avfoundation", "android_camera", "decklink", "iec61883", "libcdio", "libdc1394",
})
_PLAYLIST_HEADS = (b"#EXTM3U", b"ffconcat version", b"<?xml", b"<MPD", b"v=0", b"[playlist]")
_WHITELIST: str | None = None  # built on first use


def _format_whitelist() -> str:
    """Every demuxer FFmpeg has minus the refused ones, as FFmpeg's `format_whitelist` option: FFmpeg checks it
    after probing and before the demuxer reads anything, so a refused demuxer never opens what an input names."""
    global _WHITELIST
    if _WHITELIST is None:
        names = set()
        for n in av.formats_available:
            try:
                parts = av.ContainerFormat(n, "r").name.split(",")
            except (ValueError, av.FFmpegError):
                continue  # an output-only format
            if not _REFUSED_DEMUXERS.intersection(parts):
                names.update(parts)
        _WHITELIST = ",".join(sorted(names))
    return _WHITELIST


def input_options() -> dict[str, str]:
    return {
        "protocol_whitelist": "file",  # the input itself and anything a demuxer opens: local files only
        "format_whitelist": _format_whitelist(),
        "pattern_type": "none",  # image2: "pic%d.jpg" is that file, not a sequence of other files
        "enable_drefs": "0",  # mov: no external data references
        "safe": "1",  # concat (refused anyway): no absolute or parent paths
    }


def open_input(path, kind: str) -> av.container.InputContainer:
    """Open one local media file. Only the file protocol is allowed, and demuxers that follow references to other
    files or URLs (HLS playlists, concat scripts, image sequences...) are refused before they read anything."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{kind} file not found: {p}; check the path")
    if not p.is_file():
        raise InputError(f"{kind} path is not a file: {p}; pass a media file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(64)
    except OSError as e:
        raise InputError(f"cannot read {kind} file {p} ({e.strerror}); check its permissions") from None
    if not head:
        raise InputError(f"{kind} file {p} is empty; pass a media file")
    try:
        # an absolute path: a name such as "http:x" or "concat:a|b" is a file name here, never a protocol
        c = av.open(os.path.abspath(p), "r", container_options=input_options())
    except (av.FFmpegError, OSError, ValueError) as e:
        if head.lstrip().startswith(_PLAYLIST_HEADS):
            raise InputError(f"{kind} file {p} is a playlist or list of other files; lipdub reads only a single "
                             "media file: pass the video or audio file itself") from None
        reason = getattr(e, "strerror", None) or str(e)  # FFmpeg's words without the errno and the path again
        raise InputError(f"cannot read {kind} file {p} ({reason}); is it a supported, undamaged media file?") from None
    if _REFUSED_DEMUXERS.intersection(c.format.name.split(",")):  # the whitelist already excludes these
        c.close()
        raise InputError(f"{kind} file {p} is a {c.format.name} file, which refers to other files; "
                         "pass the video or audio file itself")
    return c


def video_stream(container, path, threads: int = 0):
    """The video stream to decode, with `threads` decoding threads (0: FFmpeg's choice, frame and slice threads)."""
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        container.close()
        raise InputError(f"{path} has no video stream; pass a video or a photo of a face")
    s = streams[0]
    if threads:
        s.codec_context.thread_count = threads
    else:
        s.thread_type = "AUTO"
    return s


def decode_frames(container, stream) -> Iterator[av.frame.Frame]:
    """Decoded frames of `stream` (video or audio). A packet the decoder rejects is skipped; a demuxer error ends
    the stream after flushing what the decoder holds."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError:  # damaged container data: keep what was decoded, flush below
            packet = None
        try:
            frames = stream.decode(packet)
        except av.FFmpegError:
            frames = []
        yield from frames
        if packet is None:
            break



def quarter_turns(frame) -> int:
    return (int(round(frame.rotation / 90.0)) % 4) if frame.rotation else 0



# The decoded frame of the last photo probe_video scaled, kept for the first read of it (take_probed_photo): a large
# photo is decoded once. One photo at most; the reader takes it away.
_PROBED_PHOTO: dict = {}
_PROBED_LOCK = threading.Lock()


def file_identity(path) -> tuple[str, int, int]:
    p = Path(path).resolve()
    st = p.stat()
    return str(p), st.st_size, st.st_mtime_ns


def take_probed_photo(path):
    """The decoded frame probe_video kept of the photo at `path` (None when it kept none, or another file's)."""
    with _PROBED_LOCK:
        key, frame = _PROBED_PHOTO.pop("frame", (None, None))
    return frame if key == file_identity(path) else None


def probe_video(path, max_size: int = 0) -> VideoInfo:
    """The facts of the video or photo at `path`. A photo whose long side is over `max_size` (0: no limit) is read at
    `photo_size` from then on (VideoInfo.scaled_to): the width and height given are those."""
    path = Path(path)
    c = open_input(path, "video")
    try:
        s = video_stream(c, path)
        first = next(decode_frames(c, s), None)
        if first is None:
            raise InputError(f"{path}: no video frame could be decoded; the file is damaged or its codec unsupported")
        k = quarter_turns(first)
        w, h = (first.height, first.width) if k % 2 else (first.width, first.height)
        matrix = matrix_of(first.colorspace, first.width, first.height)
        c.close()
        c = open_input(path, "video")
        s = video_stream(c, path)
        n, lo, hi = 0, None, None
        try:  # demux only: count packets (those a mov edit list drops are flagged is_discard) and their time span
            for p in c.demux(s):
                if p.size and not p.is_discard:
                    n += 1
                    if p.pts is not None and p.duration:
                        lo = p.pts if lo is None else min(lo, p.pts)
                        hi = p.pts + p.duration if hi is None else max(hi, p.pts + p.duration)
        except av.FFmpegError:
            pass
        is_image = is_image_path(path) or n <= 1
        n = max(n, 1)
        if is_image:
            fps, duration = IMAGE_FPS, n / IMAGE_FPS
        else:
            if hi is not None and hi > lo:
                duration = float((hi - lo) * s.time_base)
            else:
                duration = float(s.duration * s.time_base) if s.duration else (c.duration or 0) / 1e6
            avg = float(s.average_rate) if s.average_rate else 0.0
            if duration > 0 and not (avg > 0 and abs(n / duration - avg) <= 0.01 * avg):
                fps = n / duration  # VFR or no usable average rate
            else:
                fps = avg or float(s.guessed_rate or IMAGE_FPS)
            if duration <= 0:
                duration = n / fps
        matrix = BT709 if is_image else matrix
        scaled = photo_size(w, h, max_size) if is_image_path(path) else None
        if scaled is not None:
            with _PROBED_LOCK:
                _PROBED_PHOTO["frame"] = (file_identity(path), first)
            return VideoInfo(path, *scaled, fps, n, duration, k * 90, is_image, bool(c.streams.audio), matrix,
                             source_size=(w, h))
        return VideoInfo(path, w, h, fps, n, duration, k * 90, is_image, bool(c.streams.audio), matrix)
    finally:
        c.close()


def stream_starts(path) -> tuple[float, float]:
    """Start times (s) of the first video and audio streams (0 where unknown)."""
    with open_input(Path(path), "media") as c:
        def start(streams):
            for s in streams:
                if s.start_time is not None and s.time_base:
                    return float(s.start_time * s.time_base)
            return 0.0
        return start(c.streams.video), start(c.streams.audio)



def check_output_path(out, inputs: list) -> Path:
    out = Path(out).expanduser()
    resolved = out.resolve()
    if resolved.suffix.lower() not in VIDEO_OUT_SUFFIXES:
        raise OutputError(f"output {out} must end in .mp4, .mov, .mkv or .m4v")
    if resolved.is_dir():
        raise OutputError(f"output {out} is a folder; give a file name such as {out / 'dubbed.mp4'}")
    parent = resolved.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"output folder {parent} is a file, not a folder; choose another output path")
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {parent} is not writable; choose another location")
    for inp in inputs:
        if inp is None:
            continue
        p = Path(inp).expanduser().resolve()
        if p == resolved or (p.exists() and resolved.exists() and os.path.samefile(p, resolved)):
            raise OutputError(f"output {out} would overwrite the input {inp}; choose another output name")
    return resolved
