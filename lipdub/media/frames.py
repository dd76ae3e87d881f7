"""Decoded frames: Frame (RGB on first use), PlanarFrame (YUV 4:2:0 as decoded, for drawing in place), the colour
conversions, streaming decode (iter_frames) and bounded random access (FrameReader)."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np

from lipdub.errors import InputError, ParameterError
from lipdub.media.colour import (BT709, JPEG_RANGE, MPEG_RANGE, SMPTE170M, chroma_420, frame_to_rgb, is_full_range,
                                 matrix_of, rgb_to_yuv, to_levels, yuv_to_rgb)
from lipdub.media.held import FrameIndex, IndexBuilder, held_for
from lipdub.media.probe import (IMAGE_FPS, LARGE_FRAME, VideoInfo, decode_frames, file_identity, is_image_path,
                                open_input, probe_video, quarter_turns, take_probed_photo, video_stream)


class Frame:
    """One decoded frame: index, time (s) and upright RGB pixels. Given a decoded PyAV frame instead of pixels, it
    converts on first use of `rgb`, so a pass that looks at every 12th frame (the speaker survey) or every Nth (a
    long clip's atlas) pays the colour conversion for those only."""

    __slots__ = ("index", "time", "_rgb", "_decoded")

    def __init__(self, index: int, time: float, rgb: np.ndarray | None = None, decoded=None):
        self.index, self.time, self._rgb, self._decoded = index, time, rgb, decoded

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            f, self._decoded = self._decoded, None
            self._rgb = to_rgb(f, quarter_turns(f))
        return self._rgb

    @property
    def width(self) -> int:  # upright
        return self._size()[0]

    @property
    def height(self) -> int:
        return self._size()[1]

    def _size(self) -> tuple[int, int]:
        if self._rgb is not None:
            return self._rgb.shape[1], self._rgb.shape[0]
        f = self._decoded
        return (f.height, f.width) if quarter_turns(f) % 2 else (f.width, f.height)

    def rgb_box(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """RGB of the box x0, y0, x1, y1 (upright pixels, inside the frame): the same pixels as `rgb[y0:y1, x0:x1]`,
        converting only the box when the frame is still as decoded (upright planar YUV)."""
        x0, y0, x1, y1 = box
        f = self._decoded
        if self._rgb is None and f is not None and not quarter_turns(f):
            a = frame_to_rgb(f, box)
            if a is not None:
                return a
        return self.rgb[y0:y1, x0:x1]


def to_rgb(frame, k: int) -> np.ndarray:
    """Upright RGB of a decoded frame: YUV in its tagged (or, untagged, the players') matrix and range (see
    media.colour); other formats (RGB, grey, palettes, NV12) through FFmpeg."""
    a = frame_to_rgb(frame)
    if a is None:
        kw = {}
        if frame.format.name.startswith(("yuv", "nv", "p0", "p2")):
            kw = {"src_colorspace": matrix_of(frame.colorspace, frame.width, frame.height),
                  "src_color_range": JPEG_RANGE if is_full_range(frame) else MPEG_RANGE}
        a = frame.to_ndarray(format="rgb24", **kw)
    return np.ascontiguousarray(np.rot90(a, k) if k else a)


def passes_as_decoded(frame) -> bool:
    """Whether `frame` can pass to the encoder as decoded: 8-bit 4:2:0, upright, even-sized, limited range, in
    BT.709 or BT.601 (tagged, or untagged as to_rgb reads it): a format the output can be written in as it is (the
    writer writes in the source's matrix; see VideoWriter)."""
    return (frame.format.name == "yuv420p" and not quarter_turns(frame) and frame.width % 2 == 0
            and frame.height % 2 == 0 and not is_full_range(frame)
            and matrix_of(frame.colorspace, frame.width, frame.height) in (BT709, 5, SMPTE170M))


class PlanarFrame:
    """A decoded frame kept as YUV 4:2:0 (one I420 array, as FFmpeg holds it), for the render stage: it converts only
    the box it draws in to RGB and writes back only the pixels it changed, so every other pixel reaches the encoder
    exactly as decoded. Whole-frame RGB round trips cost ~7 ms per 1080p frame and move luma by up to 5 levels."""

    __slots__ = ("i420", "width", "height", "colorspace", "color_range")

    def __init__(self, i420: np.ndarray, width: int, height: int, colorspace: int = BT709,
                 color_range: int = MPEG_RANGE):
        self.i420, self.width, self.height = i420, int(width), int(height)
        # the matrix the samples are in (an untagged frame's as its whole size says: a box alone cannot tell)
        self.colorspace, self.color_range = matrix_of(int(colorspace), self.width, self.height), int(color_range)

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

    def rgb(self, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """RGB of `box` (even edges; default the whole frame): the same pixels as a whole-frame read gives there."""
        x0, y0, x1, y1 = box or (0, 0, self.width, self.height)
        y, u, v = self.planes()
        return yuv_to_rgb(y[y0:y1, x0:x1], u[y0 // 2:y1 // 2, x0 // 2:x1 // 2], v[y0 // 2:y1 // 2, x0 // 2:x1 // 2],
                          self.colorspace)

    def put_blend(self, box: tuple[int, int, int, int], rgb: np.ndarray, roi: tuple[int, int, int, int],
                  alpha: np.ndarray) -> None:
        """Write back what a blend into `roi` (frame px, inside `box`) with `alpha` (roi's shape) took of its patch:
        `rgb` is the new RGB of `box` (even edges, as box() gives)."""
        (x0, y0, x1, y1), (rx0, ry0, rx1, ry1) = box, roi
        changed = np.zeros((y1 - y0, x1 - x0), bool)
        changed[ry0 - y0:ry1 - y0, rx0 - x0:rx1 - x0] = alpha > 0
        self.put_rgb(box, rgb, changed)

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
        yuv = rgb_to_yuv(rgb[r0:r1, c0:c1], self.colorspace)  # the matrix rgb() read with, unrounded
        y, u, v = self.planes()
        np.copyto(y[y0:y1, x0:x1], to_levels(yuv[..., 0]), where=sub)
        half = ((x1 - x0) // 2, (y1 - y0) // 2)
        # any of its 2x2 pixels (a mean of 0/4 and 4s: one changed pixel of four still averages to 1)
        block = cv2.resize(sub.view(np.uint8) * np.uint8(4), half, interpolation=cv2.INTER_AREA) > 0
        chroma = chroma_420(yuv)  # 2x2 means
        np.copyto(u[y0 // 2:y1 // 2, x0 // 2:x1 // 2], chroma[..., 0], where=block)
        np.copyto(v[y0 // 2:y1 // 2, x0 // 2:x1 // 2], chroma[..., 1], where=block)


_PHOTO_LOCK = threading.Lock()
_PHOTO: dict = {}  # "last": (file identity, size, RGB) of the last scaled photo read


def blend(a, b, weight: float):
    """`a` and `b` (RGB arrays or PlanarFrames of one size) mixed, `weight` of `b`: an in-between frame."""
    if isinstance(a, PlanarFrame):
        return PlanarFrame(blend(a.i420, b.i420, weight), a.width, a.height, a.colorspace, a.color_range)
    mixed = a.astype(np.float32) * (1.0 - weight) + b.astype(np.float32) * weight
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def photo_rgb(path, size: tuple[int, int]) -> np.ndarray:
    """The photo at `path` (upright) scaled to `size` (width, height) with INTER_AREA (or, one pixel smaller, cropped
    to it): decoded once (the frame
    probe_video kept, else decoded here) and kept for the next read (the last photo only). Never holds more than the
    decoded frame and one full-size RGB copy at a time; returns a copy."""
    import cv2

    path = Path(path)
    key = (file_identity(path), tuple(int(v) for v in size))
    with _PHOTO_LOCK:
        last = _PHOTO.get("last")
        if last is not None and last[0] == key:
            return last[1].copy()
        _PHOTO.clear()
        f = take_probed_photo(path)
        if f is None:
            c = open_input(path, "video")
            try:
                f = next(decode_frames(c, video_stream(c, path)), None)
            finally:
                c.close()
            if f is None:
                raise InputError(f"{path}: no picture could be decoded; the file is damaged or its format unsupported")
        k = quarter_turns(f)
        w, h = key[1] if k % 2 == 0 else key[1][::-1]  # scaled as stored, then turned upright (one small copy)
        full = to_rgb(f, 0)
        del f
        if 0 <= full.shape[1] - w <= 1 and 0 <= full.shape[0] - h <= 1:  # an odd side made even: crop, never blur
            rgb = np.ascontiguousarray(full[:h, :w])
        else:
            rgb = cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA)
        del full
        rgb = np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb
        rgb.flags.writeable = False
        _PHOTO["last"] = (key, rgb)
        return rgb.copy()


def large_frame_threads(width: int, height: int) -> int:
    """Decoding threads of a lone decoder: one past 1080p, where FFmpeg's frame threads each hold frames of their own
    (measured on 4K: 138 MB with FFmpeg's choice, 89 MB with one thread, at the same CPU; one thread decodes 4K far
    faster than a 4K frame renders); else FFmpeg's choice (0)."""
    return 1 if width * height > LARGE_FRAME else 0


def beside_decoder_threads(width: int, height: int) -> int:
    """Decoding threads for one of two decoders that run side by side (a pass split in halves): one for frames
    larger than 1080p, where each of FFmpeg's frame threads holds frames of its own (measured on 4K: two decoders
    with their own threads +280 MB, with one each +120 MB; two decoders already keep both cores busy); else
    FFmpeg's choice (0)."""
    return 1 if width * height > LARGE_FRAME else 0


def shared_decoder(width: int, height: int) -> bool:
    """Whether a pass on two threads reads frames of this size with one decoder feeding both (up to 1080p: two
    decoders, one per half, decode the first half twice, as iter_frames(start) decodes from the first frame unless
    frames_held's FrameIndex lets it seek) rather
    than one decoder per half with a thread each (larger frames: see beside_decoder_threads; one decoder would need
    FFmpeg's frame threads, each holding frames of its own, to keep up)."""
    return width * height <= LARGE_FRAME


def iter_frames(path, start: int = 0, scaled_to: tuple[int, int] | None = None, threads: int = 0) -> Iterator[Frame]:
    """The frames of `path` from index `start`, decoded as they are read (`threads`: see probe.video_stream).
    `scaled_to` (VideoInfo.scaled_to): a photo read at that size (photo_rgb). Inside frames_held(path), the passes
    after the first read the first one's decoded frames instead."""
    path = Path(path)
    if scaled_to is not None and is_image_path(path):
        if start == 0:
            yield Frame(0, 0.0, photo_rgb(path, scaled_to))
        return
    held = held_for(path)
    if held is not None and held.complete:
        for i, t, f in held.frames[start:]:
            yield Frame(i, t, decoded=f)
        return
    if held is not None and held.index is not None and start > 0:
        for i, t, f in _decoded_from(path, start, threads, held.index):
            yield Frame(i, t, decoded=f)
        return
    keep = held is not None and start == 0 and held.claim()
    index = IndexBuilder() if held is not None and held.index is None else None
    for i, t, f in _decoded(path, threads):
        if keep:
            keep = held.add(i, t, f)
        if index is not None:
            index.add(f.pts, t, f.key_frame)
        if i >= start:
            yield Frame(i, t, decoded=f)
    if keep:  # every frame seen (a pass that stops early leaves the held ones incomplete, hence unused)
        held.complete = True
    if index is not None and held.index is None:
        held.index = index.done()


def _decoded(path: Path, threads: int) -> Iterator[tuple[int, float, "av.VideoFrame"]]:
    """(index, time, decoded frame) of every frame of `path` (a photo: its first)."""
    c = open_input(path, "video")
    try:
        s = video_stream(c, path, threads)
        image = is_image_path(path)
        t0 = s.start_time
        tb = s.time_base
        fps = float(s.average_rate or IMAGE_FPS)
        for i, f in enumerate(decode_frames(c, s)):
            if t0 is None and f.pts is not None:
                t0 = f.pts
            yield i, float((f.pts - t0) * tb) if f.pts is not None and tb else i / fps, f
            if image:
                break
    finally:
        c.close()


def seek_key(container, stream, key_pts: int, index_of_pts, key: int):
    """Seek the decoder to keyframe `key` (index), whose pts is `key_pts`: (the decoder's frame iterator, the
    keyframe's decoded frame), or None when the frames after the seek cannot be matched to indices
    (`index_of_pts(pts)`: the index of a frame seen before, or None); then the caller decodes from the start. Frames
    the decoder gives before the keyframe (possibly broken leading B-frames) are skipped."""
    try:
        container.seek(int(key_pts), stream=stream, backward=True)
    except av.FFmpegError:
        return None
    decoded = decode_frames(container, stream)
    for f in decoded:
        i = index_of_pts(f.pts) if f.pts is not None else None
        if i is None or i > key:
            return None
        if i == key:
            return decoded, f
    return None


def _decoded_from(path: Path, start: int, threads: int, index: FrameIndex
                  ) -> Iterator[tuple[int, float, "av.VideoFrame"]]:
    """_decoded's frames from index `start` on, the decoder started at the keyframe before `start` (`index`: a whole
    pass's). Each frame after the seek must carry the pts the whole pass saw at its index, and the decoder must end
    where the whole pass ended; else the frames not yet given are decoded again from the first frame, so the frames
    are those of a pass from the start in every case."""
    given = start  # the next index to give
    key = index.key_before(start)
    if key > 0:
        c = open_input(path, "video")
        try:
            s = video_stream(c, path, threads)
            found = seek_key(c, s, index.pts[key], index.index_of, key)
            if found is not None:
                decoded, f = found
                i = key
                while f is not None and i < len(index) and f.pts == index.pts[i]:
                    if i >= given:
                        yield i, float(index.times[i]), f
                        given = i + 1
                    i += 1
                    f = next(decoded, None)
                if f is None and i == len(index):
                    return
        finally:
            c.close()
    for i, t, f in _decoded(path, threads):
        if i >= given:
            yield i, t, f


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
            return self._photo().copy()
        return self._cache[self._decoded_to(index)].copy()

    def take(self, index: int) -> "np.ndarray | PlanarFrame":
        """As get(), for a frame read for the last time: the cached frame itself, which the cache lets go, instead
        of a copy of it (a whole-frame copy between decoder and encoder); reading it again decodes it again."""
        index = int(index)
        if self.info.is_image and index >= 0:
            return self._photo().copy()
        return self._cache.pop(self._decoded_to(index))

    def read_ahead(self, count: int, stop: Callable[[], bool] | None = None) -> int:
        """Decode the first `count` frames now (until `stop()` says to stop), kept until read: a dub decodes them
        while it waits for its speech analysis, when a core would idle. The cache's bound grows to hold them (a
        forward read takes each frame at its last read, so it stays that full at most). Returns the frames held."""
        if self.info.is_image or count <= 0 or self._next or (stop is not None and stop()):
            return 0
        count = min(int(count), self.info.n_frames)
        self._budget = max(self._budget, (count + 1) * self._frame_bytes)
        self._window = max(self._window, count)
        while self._next < count and (self._end is None or self._next < self._end) and not (stop and stop()):
            self._decoded_to(self._next)
        return len(self._cache)

    def _photo(self) -> np.ndarray:
        if self._image is None:
            self._image = (photo_rgb(self.path, self.info.scaled_to) if self.info.scaled_to is not None
                           else next(iter_frames(self.path)).rgb)
        return self._image

    def _decoded_to(self, index: int) -> int:
        """Decode up to frame `index` (a damaged stream's last frame past its end) and return the index it is
        cached under."""
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
        return index

    def _restart(self):
        if self._container is not None:
            self._container.close()
        self._container = open_input(self.path, "video")
        self._stream = video_stream(self._container, self.path, large_frame_threads(self.info.width, self.info.height))
        self._gen = decode_frames(self._container, self._stream)
        self._next = 0

    def _rewind(self, index: int):
        """Position the decoder at or before `index`: seek to the last known keyframe <= index if possible."""
        k = self._keys[bisect.bisect_right(self._keys, index) - 1]
        if k == 0 or not self._seekable or self._gen is None or k not in self._idx_pts:
            return self._restart()
        found = seek_key(self._container, self._stream, self._idx_pts[k], self._pts.get, k)
        if found is None:
            return self._restart()
        self._gen, f = found
        self._store(k, f, index - self._window + 1)
        self._next = k + 1
        return None

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
            self._cache[i] = (PlanarFrame.from_av(f) if self.planar and passes_as_decoded(f)
                              else to_rgb(f, quarter_turns(f)))
            while len(self._cache) * self._frame_bytes > self._budget:
                self._cache.popitem(last=False)


