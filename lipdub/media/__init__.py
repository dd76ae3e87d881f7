"""Video/audio I/O, in-process with PyAV: probing, streaming decode, bounded random access, atomic H.264+AAC writing.

Conventions:
- Frame indices are 0-based in presentation order of the frames the decoder actually produces.
- `rotation` is the display-matrix rotation in counter-clockwise degrees, normalised to 0/90/180/270; frames are
  returned upright (np.rot90 applied). EXIF orientation of JPEG/WebP photos arrives the same way. Mirrored
  orientations (EXIF 2/4/5/7) are treated as their rotation only: PyAV exposes only the rotation component.
- Width/height are stored pixels after rotation; a non-square sample aspect ratio is not resampled.
- Colours: untagged YUV is read as BT.709 when HD (>= 1280x720), else BT.601 (what players assume); output is
  always written as BT.709 limited range and tagged so.
"""

from __future__ import annotations

import bisect
import math
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from lipdub.errors import InputError, OutputError, ParameterError

av.logging.set_level(None)  # PyAV's no-op callback: FFmpeg warnings about damaged packets never reach the user

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO_OUT_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".m4v"})
POLICIES = ("audio", "pingpong", "loop", "pad", "video")
IMAGE_FPS = 25.0
AAC_SR = 48000
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_BT709, _BT601, _MPEG_RANGE = 1, 5, 1


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


class Frame:
    """One decoded frame: index, time (s) and upright RGB pixels. Given a decoded PyAV frame instead of pixels, it
    converts on first use of `rgb`, so a pass that looks at every 12th frame (the speaker survey) or every Nth (a
    long clip's atlas) pays the colour conversion (2 ms per 1080p frame) only for those."""

    __slots__ = ("index", "time", "_rgb", "_decoded")

    def __init__(self, index: int, time: float, rgb: np.ndarray | None = None, decoded=None):
        self.index, self.time, self._rgb, self._decoded = index, time, rgb, decoded

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            f, self._decoded = self._decoded, None
            self._rgb = _to_rgb(f, _rot_k(f))
        return self._rgb


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


def _input_options() -> dict[str, str]:
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
        c = av.open(os.path.abspath(p), "r", container_options=_input_options())
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


def _video_stream(container, path):
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        container.close()
        raise InputError(f"{path} has no video stream; pass a video or a photo of a face")
    s = streams[0]
    s.thread_type = "AUTO"
    return s


def _decode(container, stream) -> Iterator[av.frame.Frame]:
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


def _rot_k(frame) -> int:
    return (int(round(frame.rotation / 90.0)) % 4) if frame.rotation else 0


def _rgb_kwargs(frame) -> dict:
    kw = {}
    if frame.format.name.startswith(("yuv", "nv", "p0", "p2")):
        if frame.colorspace == 2:  # unspecified
            kw["src_colorspace"] = _BT709 if (frame.width >= 1280 or frame.height >= 720) else _BT601
        if frame.color_range:
            kw["src_color_range"] = frame.color_range
    return kw


def _to_rgb(frame, k: int) -> np.ndarray:
    a = frame.to_ndarray(format="rgb24", **_rgb_kwargs(frame))
    return np.ascontiguousarray(np.rot90(a, k) if k else a)


def _planar_ok(frame) -> bool:
    """Whether `frame` can pass to the encoder as decoded: 8-bit 4:2:0, upright, even-sized, limited range, BT.709
    (tagged, or untagged HD, as _to_rgb reads it): the output's own format and colours."""
    return (frame.format.name == "yuv420p" and not _rot_k(frame) and frame.width % 2 == 0
            and frame.height % 2 == 0 and frame.color_range in (0, _MPEG_RANGE)
            and (frame.colorspace == _BT709 or (frame.colorspace == 2 and (frame.width >= 1280 or
                                                                         frame.height >= 720))))


# BT.709 limited range from 8-bit RGB: rows Y, Cb, Cr; the last column is the offset
_RGB_TO_YUV709 = np.array([[0.2126 * 219 / 255, 0.7152 * 219 / 255, 0.0722 * 219 / 255, 16.0],
                           [-0.2126 / 1.8556 * 224 / 255, -0.7152 / 1.8556 * 224 / 255, 0.5 * 224 / 255, 128.0],
                           [0.5 * 224 / 255, -0.7152 / 1.5748 * 224 / 255, -0.0722 / 1.5748 * 224 / 255, 128.0]],
                          np.float32)


class PlanarFrame:
    """A decoded frame kept as YUV 4:2:0 (one I420 array, as FFmpeg holds it), for the render stage: it converts only
    the box it draws in to RGB and writes back only the pixels it changed, so every other pixel reaches the encoder
    exactly as decoded. Whole-frame RGB round trips cost ~7 ms per 1080p frame and move luma by up to 5 levels."""

    __slots__ = ("i420", "width", "height", "colorspace", "color_range")

    def __init__(self, i420: np.ndarray, width: int, height: int, colorspace: int = _BT709,
                 color_range: int = _MPEG_RANGE):
        self.i420, self.width, self.height = i420, int(width), int(height)
        self.colorspace, self.color_range = int(colorspace), int(color_range)

    @classmethod
    def from_av(cls, frame) -> "PlanarFrame":
        return cls(frame.to_ndarray(), frame.width, frame.height, frame.colorspace, frame.color_range)

    @property
    def shape(self) -> tuple[int, int, int]:  # as the RGB frame it stands for
        return self.height, self.width, 3

    def copy(self) -> "PlanarFrame":
        return PlanarFrame(self.i420.copy(), self.width, self.height, self.colorspace, self.color_range)

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = self.height, self.width
        y = self.i420[:h]
        chroma = self.i420[h:].reshape(-1)  # U then V, each (h/2, w/2), packed into rows of width w (views)
        n = (h // 2) * (w // 2)
        return y, chroma[:n].reshape(h // 2, w // 2), chroma[n:2 * n].reshape(h // 2, w // 2)

    def box(self, roi: tuple[int, int, int, int], pad: int = 0) -> tuple[int, int, int, int]:
        """`roi` (x0, y0, x1, y1) grown by `pad` and to even edges (whole chroma samples), inside the frame."""
        x0, y0, x1, y1 = roi
        x0, y0 = max(0, (int(x0) - pad) // 2 * 2), max(0, (int(y0) - pad) // 2 * 2)
        x1, y1 = min(self.width, -(-(int(x1) + pad) // 2) * 2), min(self.height, -(-(int(y1) + pad) // 2) * 2)
        return x0, y0, max(x0, x1), max(y0, y1)

    def _frame(self, box):
        x0, y0, x1, y1 = box
        y, u, v = self.planes()
        h, w = y1 - y0, x1 - x0
        packed = np.concatenate([y[y0:y1, x0:x1].ravel(), u[y0 // 2:y1 // 2, x0 // 2:x1 // 2].ravel(),
                                 v[y0 // 2:y1 // 2, x0 // 2:x1 // 2].ravel()]).reshape(h * 3 // 2, w)
        f = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        f.colorspace, f.color_range = self.colorspace, self.color_range
        return f

    def rgb(self, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """RGB of `box` (even edges; default the whole frame): the same pixels as a whole-frame read gives there."""
        f = self._frame(box or (0, 0, self.width, self.height))
        return f.to_ndarray(format="rgb24", **_rgb_kwargs(f))

    def put_rgb(self, box: tuple[int, int, int, int], rgb: np.ndarray, changed: np.ndarray) -> None:
        """Write back the pixels of `rgb` (new RGB of `box`) where `changed` (bool, the box's shape) is set, as YUV;
        a chroma sample is rewritten where any of its 2x2 pixels changed."""
        import cv2

        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        if not len(rows):
            return
        # only the changed pixels' bounding box (even edges) is converted
        r0, c0 = rows[0] // 2 * 2, cols[0] // 2 * 2
        r1, c1 = min(changed.shape[0], rows[-1] // 2 * 2 + 2), min(changed.shape[1], cols[-1] // 2 * 2 + 2)
        x0, y0 = box[0] + c0, box[1] + r0
        x1, y1 = box[0] + c1, box[1] + r1
        sub = changed[r0:r1, c0:c1]
        yuv = cv2.transform(np.ascontiguousarray(rgb[r0:r1, c0:c1]), _RGB_TO_YUV709)  # rounded, saturated uint8
        y, u, v = self.planes()
        np.copyto(y[y0:y1, x0:x1], yuv[..., 0], where=sub)
        half = ((x1 - x0) // 2, (y1 - y0) // 2)
        # any of its 2x2 pixels (a mean of 0/4 and 4s: one changed pixel of four still averages to 1)
        block = cv2.resize(sub.view(np.uint8) * np.uint8(4), half, interpolation=cv2.INTER_AREA) > 0
        chroma = cv2.resize(yuv[..., 1:], half, interpolation=cv2.INTER_AREA)  # 2x2 means
        np.copyto(u[y0 // 2:y1 // 2, x0 // 2:x1 // 2], chroma[..., 0], where=block)
        np.copyto(v[y0 // 2:y1 // 2, x0 // 2:x1 // 2], chroma[..., 1], where=block)


def probe_video(path) -> VideoInfo:
    path = Path(path)
    c = open_input(path, "video")
    try:
        s = _video_stream(c, path)
        first = next(_decode(c, s), None)
        if first is None:
            raise InputError(f"{path}: no video frame could be decoded; the file is damaged or its codec unsupported")
        k = _rot_k(first)
        w, h = (first.height, first.width) if k % 2 else (first.width, first.height)
        c.close()
        c = open_input(path, "video")
        s = _video_stream(c, path)
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
        return VideoInfo(path, w, h, fps, n, duration, k * 90, is_image, bool(c.streams.audio))
    finally:
        c.close()


def iter_frames(path, start: int = 0) -> Iterator[Frame]:
    path = Path(path)
    c = open_input(path, "video")
    try:
        s = _video_stream(c, path)
        image = is_image_path(path)
        t0 = s.start_time
        tb = s.time_base
        fps = float(s.average_rate or IMAGE_FPS)
        for i, f in enumerate(_decode(c, s)):
            if t0 is None and f.pts is not None:
                t0 = f.pts
            if i >= start:
                t = float((f.pts - t0) * tb) if f.pts is not None and tb else i / fps
                yield Frame(i, t, decoded=f)
            if image:
                break
    finally:
        c.close()


class FrameReader:
    """Frame access by index with bounded memory (see module doc for index semantics).

    Forward reads stream through one decoder. A read behind the decoder seeks to the nearest keyframe already seen
    (or restarts from the beginning) and decodes up to the target, keeping the frames just before it in an LRU
    cache bounded by `cache_bytes`, so a following backward walk is mostly cache hits. Returned arrays are copies.
    If a damaged stream yields fewer frames than probed, indices past the end return the last decoded frame.
    """

    def __init__(self, path, info: VideoInfo | None = None, cache_bytes: int = 256 << 20, planar: bool = False):
        self.path = Path(path)
        self.planar = planar  # frames that can pass to the encoder as decoded come as PlanarFrame
        self.info = info or probe_video(self.path)
        self._frame_bytes = self.info.width * self.info.height * 3
        self._budget = max(int(cache_bytes), 2 * self._frame_bytes)
        self._window = max(1, self._budget // self._frame_bytes - 1)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._container = self._stream = self._gen = None
        self._next = 0  # index the decoder yields next
        self._pts: dict[int, int] = {}  # pts -> index of every frame seen
        self._idx_pts: dict[int, int] = {}
        self._keys = [0]  # indices of keyframes seen
        self._seekable = True
        self._end: int | None = None  # frames actually decodable, once the end was reached
        self._image: np.ndarray | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._container is not None:
            self._container.close()
        self._container = self._stream = self._gen = None
        self._cache.clear()

    def get(self, index: int) -> "np.ndarray | PlanarFrame":
        """Frame `index` as RGB, or (planar readers, where the frame allows) as a PlanarFrame; always a copy."""
        index = int(index)
        if self.info.is_image and index >= 0:
            if self._image is None:
                self._image = next(iter_frames(self.path)).rgb
            return self._image.copy()
        if not 0 <= index < self.info.n_frames:
            raise ParameterError(f"frame index {index} is outside 0..{self.info.n_frames - 1} of {self.path}")
        if self._end is not None:
            index = min(index, self._end - 1)
        for _ in range(2):  # a second round only when the stream ended before `index` (damaged packets)
            if index in self._cache:
                break
            if self._gen is None or index < self._next:
                self._rewind(index)
            self._advance(index)
            if self._end is not None:
                index = min(index, self._end - 1)
                if index < 0:
                    break
        if index not in self._cache:
            raise InputError(f"frame {index} of {self.path} could not be decoded; the file is damaged")
        self._cache.move_to_end(index)
        return self._cache[index].copy()

    def _restart(self):
        if self._container is not None:
            self._container.close()
        self._container = open_input(self.path, "video")
        self._stream = _video_stream(self._container, self.path)
        self._gen = _decode(self._container, self._stream)
        self._next = 0

    def _rewind(self, index: int):
        """Position the decoder at or before `index`: seek to the last known keyframe <= index if possible."""
        k = self._keys[bisect.bisect_right(self._keys, index) - 1]
        if k == 0 or not self._seekable or self._gen is None or k not in self._idx_pts:
            return self._restart()
        try:
            self._container.seek(self._idx_pts[k], stream=self._stream, backward=True)
        except av.FFmpegError:
            return self._restart()
        self._gen = _decode(self._container, self._stream)
        for f in self._gen:  # sync: frames before the keyframe (possibly broken leading B-frames) are skipped
            i = self._pts.get(f.pts) if f.pts is not None else None
            if i is None or i > k:
                break
            if i == k:
                self._store(k, f, index - self._window + 1)
                self._next = k + 1
                return None
        return self._restart()

    def _advance(self, index: int):
        lo = index - self._window + 1
        while self._next <= index:
            f = next(self._gen, None)
            if f is None:
                self._end = self._next
                return
            i = self._next
            if f.pts is not None:
                known = self._pts.get(f.pts)
                if known is not None and known >= i:
                    i = known  # frames were dropped before this one on an earlier pass
            self._store(i, f, lo)
            self._next = i + 1

    def _store(self, i: int, f, lo: int):
        if f.pts is not None and i not in self._idx_pts:
            if f.pts in self._pts:
                self._seekable = False  # duplicate timestamps: pts cannot identify frames after a seek
            self._pts.setdefault(f.pts, i)
            self._idx_pts[i] = f.pts
        if f.key_frame and i not in self._keys:
            bisect.insort(self._keys, i)
        if i >= lo and i not in self._cache:
            self._cache[i] = PlanarFrame.from_av(f) if self.planar and _planar_ok(f) else _to_rgb(f, _rot_k(f))
            while len(self._cache) * self._frame_bytes > self._budget:
                self._cache.popitem(last=False)


def load_audio(path, sr: int | None = 16000, mono: bool = True) -> tuple[np.ndarray, int]:
    """Samples as float32 in [-1, 1] at `sr` (None: the file's rate): (N,) when mono (plain channel mean), else
    (C, N) with C = 1 or 2: more channels (5.1, 7.1, ...) are downmixed to stereo by FFmpeg's matrix."""
    blocks = audio_blocks(path, sr, mono)
    rate, est = next(blocks)
    bufs: list[np.ndarray] = []  # one per channel, grown in place (ndarray.resize: realloc, which remaps the pages
    n = 0  # of a large block): long audio is never held twice
    for a in blocks:
        if not bufs:
            bufs[:] = [np.zeros(max(int(est * rate * 1.01) + 4096, a.shape[1]), np.float32) for _ in a]
        if n + a.shape[1] > bufs[0].size:
            for b in bufs:
                b.resize(max(2 * b.size, n + a.shape[1]), refcheck=False)
        for b, ch in zip(bufs, a):
            b[n:n + a.shape[1]] = ch
        n += a.shape[1]
    if not bufs or n == 0:
        raise InputError(f"{path}: the audio track holds no decodable samples; pass another audio file")
    for b in bufs:
        b.resize(n, refcheck=False)
    return (bufs[0] if mono else np.stack(bufs)), rate


def audio_blocks(path, sr: int | None = 16000, mono: bool = True) -> Iterator:
    """load_audio's samples as a stream: first (rate, estimated duration in s), then float32 (1 or C, m) blocks that
    join into exactly what load_audio returns, holding only one decoded frame at a time."""
    path = Path(path)
    if sr is not None and (not isinstance(sr, (int, np.integer)) or sr <= 0):
        raise ParameterError(f"audio sample rate must be a positive integer, got {sr!r}")
    c = open_input(path, "audio")
    try:
        if not c.streams.audio:
            raise InputError(f"{path} has no audio track; pass an audio file or a video with sound")
        s = c.streams.audio[0]
        s.thread_type = "AUTO"
        est = float(s.duration * s.time_base) if s.duration and s.time_base else (c.duration or 0) / 1e6
        frames = _decode(c, s)
        first = next(frames, None)
        rate = sr or (first.sample_rate if first is not None else 16000)
        yield rate, est
        if first is None:
            return
        # keep the channel layout; downmix to mono ourselves (plain mean, no gain tricks)
        layout = first.layout if mono or first.layout.nb_channels <= 2 else "stereo"
        resampler = setup = None

        def converted(out):
            for r in out:
                a = r.to_ndarray()
                if a.shape[1]:
                    # float files may hold NaN/inf (a broken export): silence and full scale, not poison for the
                    # speech analysis
                    a = np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0).astype(
                        np.float32, copy=False)
                    yield a.mean(axis=0, keepdims=True) if mono else a

        for f in __import__("itertools").chain([first], frames):
            if (f.format.name, f.layout.name, f.sample_rate) != setup:
                # first frame, or the stream changed rate/channels midway (concatenated files): a new resampler to
                # the same output layout and rate
                if resampler is not None:
                    yield from converted(resampler.resample(None))
                resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
                setup = (f.format.name, f.layout.name, f.sample_rate)
            yield from converted(resampler.resample(f))
        yield from converted(resampler.resample(None))
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


def video_audio(path, sr: int = 16000) -> np.ndarray | None:
    """A video's own sound as mono float32 at `sr` on the video's clock (sample 0 = the first frame's time: leading
    audio is cut, late audio is preceded by silence); None when the file has no audio track."""
    with open_input(Path(path), "video") as c:
        if not c.streams.audio:
            return None
    samples, sr = load_audio(path, sr)
    v0, a0 = stream_starts(path)
    shift = int(round((a0 - v0) * sr))  # > 0: the audio starts after the first frame
    if shift > 0:
        return np.concatenate([np.zeros(shift, np.float32), samples])
    return samples[-shift:]


def output_schedule(n_src_frames: int, src_fps: float, duration: float | None, policy: str = "audio") -> np.ndarray:
    if policy not in POLICIES:
        raise ParameterError(f"unknown loop policy {policy!r}; use one of: {', '.join(POLICIES)}")
    n = int(n_src_frames)
    if n < 1:
        raise ParameterError("the source has no frames; pass a video with at least one frame or a photo")
    if not src_fps or src_fps <= 0 or not math.isfinite(src_fps):
        raise ParameterError(f"frame rate must be positive, got {src_fps!r}")
    if policy == "video":
        n_out = n
    else:
        if duration is None or not math.isfinite(duration) or duration <= 0:
            raise ParameterError(f"audio duration must be positive, got {duration!r}; is the audio empty?")
        n_out = max(1, round(duration * src_fps))
    k = np.arange(n_out, dtype=np.int64)
    if n == 1:
        return np.zeros(n_out, dtype=np.int64)
    if policy in ("audio", "pingpong"):
        k %= 2 * (n - 1)
        return np.where(k < n, k, 2 * (n - 1) - k)
    if policy == "loop":
        return k % n
    return np.minimum(k, n - 1)  # pad; for "video" this is the identity


def _as_rate(fps) -> Fraction:
    """Exact frame rate: NTSC-style x/1.001 rates become N*1000/1001, others the closest fraction (den <= 1001)."""
    if isinstance(fps, Fraction):
        return fps
    f = float(fps)
    ntsc = round(f * 1.001)
    if ntsc >= 1 and abs(f - ntsc * 1000 / 1001) < 1e-3 and abs(f - ntsc) > 1e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(f).limit_denominator(1001)


class AudioFile:
    """An audio file's samples streamed at AAC_SR as float32 (channels, n) blocks, for muxing a long sound track
    without holding it: `audio_blocks(path, AAC_SR, mono=False)` (mono stays mono, more channels become stereo;
    NaN/inf become silence/full scale) read on demand; reads past the end return zeros."""

    def __init__(self, path):
        self.path = Path(path)
        self._blocks = audio_blocks(self.path, AAC_SR, mono=False)
        next(self._blocks)  # opens the file: InputError here when it has no sound
        self._pending: list[np.ndarray] = []
        self._have = 0
        self._done = False
        self._pull()  # the first block tells mono or stereo
        self.channels = self._pending[0].shape[0] if self._pending else 1

    def _pull(self) -> None:
        x = next(self._blocks, None) if self._blocks is not None else None
        if x is None:
            self.close()
        else:
            self._pending.append(x)
            self._have += x.shape[1]

    def read(self, n: int) -> np.ndarray:
        """The next `n` samples (channels, n), zero-padded past the end of the file."""
        while self._have < n and not self._done:
            self._pull()
        out = np.zeros((self.channels, n), np.float32)
        got = 0
        while got < n and self._pending:
            x = self._pending[0]
            m = min(n - got, x.shape[1])
            out[:, got:got + m] = x[:, :m]
            got += m
            if m == x.shape[1]:
                self._pending.pop(0)
            else:
                self._pending[0] = x[:, m:]
        self._have -= got
        return out

    def close(self) -> None:
        self._done = True
        if self._blocks is not None:
            self._blocks.close()  # closes the file
            self._blocks = None


def _audio_source(audio, sr):
    """VideoWriter/join_segments `audio`: a file path (streamed by AudioFile) or an array (prepared in memory)."""
    if isinstance(audio, (str, os.PathLike)):
        return AudioFile(audio)
    return VideoWriter._prepare_audio(audio, sr)


class _AudioTrack:
    """An AAC stream fed in 1024-sample frames up to a given sample, zero-padded past the audio's end (the audio
    lasts exactly as long as the video), from a (channels, samples) array at AAC_SR or an AudioFile."""

    def __init__(self, container, audio):
        self.audio = audio
        self.layout = "mono" if (audio.channels if isinstance(audio, AudioFile) else audio.shape[0]) == 1 \
            else "stereo"
        self.stream = container.add_stream("aac", rate=AAC_SR, layout=self.layout)
        self.stream.bit_rate = 96000 if self.layout == "mono" else 128000
        self.sent = 0

    def _samples(self, m: int) -> np.ndarray:
        if isinstance(self.audio, AudioFile):
            return self.audio.read(m)
        chunk = np.zeros((self.audio.shape[0], m), np.float32)
        have = self.audio[:, self.sent:self.sent + m]
        chunk[:, :have.shape[1]] = have
        return chunk

    def packets(self, end: int, final: bool):
        """Encoded packets of the samples up to `end` (a whole number of AAC frames unless `final`)."""
        if not final:
            end -= end % 1024
        while self.sent < end:
            m = min(1024, end - self.sent)
            af = av.AudioFrame.from_ndarray(self._samples(m), format="fltp", layout=self.layout)
            af.sample_rate, af.pts, af.time_base = AAC_SR, self.sent, Fraction(1, AAC_SR)
            yield from self.stream.encode(af)
            self.sent += m
        if final:
            yield from self.stream.encode(None)
            if isinstance(self.audio, AudioFile):
                self.audio.close()


def publish(tmp, path) -> None:
    """Move a finished temporary file into place with ordinary permissions (mkstemp creates it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


class VideoWriter:
    """H.264 + AAC writer that replaces the destination atomically in close().

    Pixel format: yuv420p when width and height are both even; otherwise yuv444p, because H.264 4:2:0 cannot code
    an odd size (its cropping works in 2-pixel units) and the output must keep the source resolution. yuv444p
    (High 4:4:4 profile) plays in FFmpeg-based players (VLC, mpv) but not in browsers or QuickTime.
    Audio is muxed progressively as frames arrive and ends exactly at n_frames/fps (zero-padded or trimmed); `audio`
    is an array ((N,) or (C, N) at `audio_sr`) or an audio file's path, streamed from the file (long sound tracks).
    """

    def __init__(self, path, width: int, height: int, fps: float, audio=None,
                 audio_sr: int = 16000, crf: float = 16, preset: str = "veryfast", repeatable: bool = False,
                 segment: bool = False):
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_OUT_SUFFIXES:
            raise OutputError(f"cannot write {self.path.suffix!r} files; name the output .mp4, .mov, .mkv or .m4v")
        if int(width) < 1 or int(height) < 1:
            raise ParameterError(f"video size must be positive, got {width}x{height}")
        if not fps or float(fps) <= 0 or not math.isfinite(float(fps)):
            raise ParameterError(f"frame rate must be positive, got {fps!r}")
        if not 0 <= float(crf) <= 51:
            raise ParameterError(f"crf must be between 0 and 51, got {crf}")
        if preset not in X264_PRESETS:
            raise ParameterError(f"unknown x264 preset {preset!r}; use one of: {', '.join(X264_PRESETS)}")
        self.width, self.height, self.rate = int(width), int(height), _as_rate(fps)
        self.n_frames = 0
        self._audio = _audio_source(audio, audio_sr)
        self._container = None
        try:
            fd, tmp = tempfile.mkstemp(suffix=self.path.suffix, prefix=f".{self.path.stem}.", dir=self.path.parent)
        except OSError as e:
            raise OutputError(f"cannot create a file in {self.path.parent} ({e.strerror}); "
                              "check that the folder exists and is writable") from None
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            opts = {"movflags": "+faststart"} if self.path.suffix.lower() != ".mkv" else {}
            self._container = av.open(tmp, "w", options=opts)
            v = self._container.add_stream("libx264", rate=self.rate)
            v.width, v.height = self.width, self.height
            v.pix_fmt = "yuv420p" if self.width % 2 == 0 and self.height % 2 == 0 else "yuv444p"
            cc = v.codec_context
            cc.colorspace = cc.color_primaries = cc.color_trc = _BT709
            cc.color_range = _MPEG_RANGE
            v.options = {"crf": f"{float(crf):g}", "preset": str(preset)}
            params = []
            if repeatable or segment:  # with x264's macroblock-tree rate control the same frames do not always
                # encode to the same stream (measured, with one encoder thread too); without it they do, ~1.5x larger
                params.append("mbtree=0")
            if segment:  # a piece of a longer video (resumable dubs): no B-frames, so decode order = display order
                # and pieces join by shifting timestamps
                params.append("bframes=0")
            if params:
                v.options = {**v.options, "x264-params": ":".join(params)}
            self._v = v
            self._a = _AudioTrack(self._container, self._audio) if self._audio is not None else None
        except av.FFmpegError as e:
            self.abort()
            raise OutputError(f"cannot start writing {self.path} ({e}); check the preset/crf and disk space") from None
        except BaseException:
            self.abort()
            raise

    @staticmethod
    def _prepare_audio(audio, sr):
        if audio is None:
            return None
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] not in (1, 2):
            raise ParameterError(f"audio must have shape (N,) or (C, N) with 1 or 2 channels, got {np.shape(audio)}")
        if not sr or sr <= 0:
            raise ParameterError(f"audio sample rate must be positive, got {sr!r}")
        x = np.nan_to_num(x)
        if sr != AAC_SR:
            from scipy.signal import resample_poly

            g = math.gcd(int(sr), AAC_SR)
            x = resample_poly(x, AAC_SR // g, int(sr) // g, axis=1).astype(np.float32)
        return np.ascontiguousarray(np.clip(x, -1.0, 1.0))

    def write(self, rgb: "np.ndarray | PlanarFrame") -> None:
        if self._container is None:
            raise OutputError(f"{self.path}: writer is already closed")
        if isinstance(rgb, PlanarFrame):
            if (rgb.width, rgb.height) == (self.width, self.height) and self._v.pix_fmt == "yuv420p":
                return self._encode(av.VideoFrame.from_ndarray(rgb.i420, format="yuv420p"))
            rgb = rgb.rgb()
        rgb = np.asarray(rgb)
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ParameterError(f"frame must be uint8 of shape {(self.height, self.width, 3)}, "
                                 f"got {rgb.dtype} {rgb.shape}")
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        self._encode(f.reformat(format=self._v.pix_fmt, dst_colorspace=_BT709, dst_color_range=_MPEG_RANGE))

    def _encode(self, f) -> None:
        f.pts, f.time_base = self.n_frames, 1 / self.rate
        try:
            self._mux(self._v.encode(f))
            self.n_frames += 1
            self._send_audio(final=False)
        except av.FFmpegError as e:
            raise OutputError(f"encoding {self.path} failed ({e}); check disk space and the encoder options") from None

    def _send_audio(self, final: bool):
        if self._a is not None:
            self._mux(self._a.packets(round(self.n_frames * AAC_SR / self.rate), final))

    def _mux(self, packets):
        for p in packets:
            self._container.mux(p)

    def close(self) -> None:
        if self._container is None:
            return
        try:
            if self.n_frames == 0:
                raise OutputError(f"no frames were written to {self.path}; nothing to save")
            self._mux(self._v.encode(None))
            self._send_audio(final=True)
            self._container.close()
            self._container = None
            publish(self._tmp, self.path)
        except (av.FFmpegError, OSError) as e:
            self.abort()
            raise OutputError(f"could not write {self.path} ({e}); check free disk space and permissions") from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the file is discarded anyway
                pass
            self._container = None
        if isinstance(self._audio, AudioFile):
            self._audio.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        if getattr(self, "_container", None) is not None:
            self.abort()


def join_segments(segments: list, path, fps: float, audio=None, audio_sr: int = 16000) -> int:
    """Write the video pieces `segments` (VideoWriter(segment=True) files, in order) one after the other into `path`
    without re-encoding, with `audio` (array or file path, as VideoWriter's) muxed alongside; atomic like VideoWriter.
    Returns the number of frames."""
    path = Path(path)
    rate = _as_rate(fps)
    audio = _audio_source(audio, audio_sr)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, prefix=f".{path.stem}.", dir=path.parent)
    os.close(fd)
    out = None
    try:
        opts = {"movflags": "+faststart"} if path.suffix.lower() != ".mkv" else {}
        out = av.open(tmp, "w", options=opts)
        frames = 0
        v_out = a_out = None
        for seg in segments:
            with av.open(str(seg)) as c:
                s_in = c.streams.video[0]
                if v_out is None:
                    v_out = out.add_stream_from_template(s_in)
                    a_out = _AudioTrack(out, audio) if audio is not None else None
                tb = s_in.time_base
                shift = int(round(frames / rate / tb))  # this piece starts where the previous ones end
                n = 0
                for pkt in c.demux(s_in):
                    if pkt.dts is None:
                        continue
                    pkt.pts += shift
                    pkt.dts += shift
                    pkt.stream = v_out
                    out.mux(pkt)
                    n += 1
                frames += n
                if a_out is not None:
                    out.mux(list(a_out.packets(round(frames * AAC_SR / rate), final=False)))
        if v_out is None or frames == 0:
            raise OutputError(f"no frames to write to {path}")
        if a_out is not None:
            out.mux(list(a_out.packets(round(frames * AAC_SR / rate), final=True)))
        out.close()
        out = None
        publish(tmp, path)
        return frames
    except (av.FFmpegError, OSError) as e:
        raise OutputError(f"could not write {path} ({e}); check free disk space and permissions") from None
    finally:
        if isinstance(audio, AudioFile):
            audio.close()
        if out is not None:
            try:
                out.close()
            except Exception:  # discarded anyway
                pass
        Path(tmp).unlink(missing_ok=True)


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
