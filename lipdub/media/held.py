"""The decoded frames one dub's passes share (frames_held): the first whole pass's frames kept where they fit, else
its FrameIndex, with which a pass from a later frame seeks instead of decoding the frames before it."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from lipdub.media.probe import VideoInfo, is_image_path


class FrameIndex:
    """Every frame of a video as a whole pass from its first frame decoded it: pts, time and whether it is a
    keyframe, so a later pass from frame `start` can seek to the keyframe before it instead of decoding (and
    throwing away) every frame before `start`."""

    def __init__(self, pts: np.ndarray, times: np.ndarray, keys: np.ndarray):
        self.pts, self.times, self.keys = pts, times, keys  # keys: the keyframes' indices, ascending
        self._of_pts = {int(p): i for i, p in enumerate(pts)}

    def __len__(self) -> int:
        return len(self.pts)

    def key_before(self, index: int) -> int:
        """The last keyframe at or before `index` (0 when there is none)."""
        k = int(np.searchsorted(self.keys, index, side="right")) - 1
        return int(self.keys[k]) if k >= 0 else 0

    def index_of(self, pts: int) -> int | None:
        return self._of_pts.get(int(pts))


class IndexBuilder:
    """A FrameIndex filled frame by frame; done() gives None where pts cannot identify frames after a seek (a frame
    without pts, or two with the same)."""

    def __init__(self):
        self.pts: list[int] = []
        self.times: list[float] = []
        self.keys: list[int] = []
        self.seekable = True

    def add(self, pts: int | None, t: float, key: bool) -> None:
        if pts is None:
            self.seekable = False
            return
        if key:
            self.keys.append(len(self.pts))
        self.pts.append(int(pts))
        self.times.append(t)

    def done(self) -> FrameIndex | None:
        if not self.seekable or len(set(self.pts)) != len(self.pts):
            return None
        return FrameIndex(np.array(self.pts, np.int64), np.array(self.times, np.float64),
                          np.array(self.keys, np.int64))


# A first dub reads its video three times before rendering it: the speaker survey, the tracking pass (two halves,
# the second decoder decoding the first half for nothing) and the atlas. Where the whole video's decoded frames fit
# HELD_BYTES, the survey's are kept and the other passes read them: 2.5 decodes fewer (~1.2 s of CPU for 8 s of
# 720p, 276 MB held). Frames are kept as decoded (YUV, ~1.5 bytes a pixel), so every pass sees the same pixels.
# Where they do not fit, the first whole pass leaves a FrameIndex, and a pass from a later frame (a second half)
# seeks to the keyframe before it instead of decoding the frames before it for nothing.
HELD_BYTES = 320 << 20
_HELD: dict[Path, "_Held"] = {}
_HELD_LOCK = threading.Lock()


class _Held:
    """The decoded frames of one video, filled by the first pass that reads it from its start (none where `budget`
    is None), and its FrameIndex, left by the first pass that decodes it whole."""

    def __init__(self, budget: int | None):
        self.frames: list[tuple[int, float, av.VideoFrame]] = []
        self.budget, self.bytes, self.complete, self._claimed = budget, 0, False, budget is None
        self.index: FrameIndex | None = None
        self._lock = threading.Lock()

    def claim(self) -> bool:
        """True for the one pass that fills these frames (never where none are kept)."""
        with self._lock:
            claimed, self._claimed = self._claimed, True
            return not claimed

    def add(self, i: int, t: float, f) -> bool:
        """Keep frame `f`; False (and nothing kept) once the frames pass the budget."""
        self.bytes += sum(p.buffer_size for p in f.planes)
        if self.bytes > self.budget:
            self.frames.clear()
            return False
        self.frames.append((i, t, f))
        return True


def held_for(path: Path) -> "_Held | None":
    """What frames_held keeps of the video `path` (None outside its block)."""
    return _HELD.get(path)


@contextmanager
def frames_held(path, info: VideoInfo, budget: int = HELD_BYTES) -> Iterator[None]:
    """Within this block, the first pass of iter_frames over the video `path` from its start keeps the decoded
    frames, and the passes after it read them, when the whole video fits `budget` bytes (as the probe counts its
    frames, 8-bit 4:2:0; a decoder that gives more or larger frames stops the keeping). Where they do not, passes
    from a later frame seek once a whole pass has indexed the frames (FrameIndex). A photo is read as before."""
    path = Path(path)
    fits = info.n_frames * info.width * info.height * 3 // 2 <= budget
    held = _Held(budget if fits else None)
    with _HELD_LOCK:  # (two dubs of one video at once: the first keeps its frames, the second reads them too)
        if is_image_path(path) or path in _HELD:
            held = None
        else:
            _HELD[path] = held
    try:
        yield
    finally:
        if held is not None:
            with _HELD_LOCK:
                del _HELD[path]
