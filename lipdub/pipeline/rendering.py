"""The render loop shared by a whole dub and its pieces: source frames read in schedule order, rendered, written."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from lipdub import media
from lipdub.core.memory import trim_heap

TRIM_EVERY = 100  # rendered frames between heap trims
# frames drawn ahead on the drawing thread: while it draws the next mouths, this thread decodes, puts the drawn mouth
# into its frame and hands it to the encoder. Each frame ahead holds a decoded frame and a drawn patch, so only
# frames up to AHEAD_BYTES go ahead: a 4K frame (12 MB as decoded) is drawn in turn, as a 4K dub's peak memory is
# what is short (measured one frame ahead: 1114 MB against 1056 MB in turn, one run each)
AHEAD = 2
AHEAD_BYTES = 8 << 20


class FrameDrawer:
    """A render_one that draws in two steps: `draw(k, j, frame)` (no state changed: it runs on a second thread, frames
    ahead) and `finish(j, frame, drawn)` -> (frame, rendered), in frame order (colour smoothing carries over)."""

    def __init__(self, draw: Callable, finish: Callable):
        self.draw, self.finish = draw, finish

    def __call__(self, k: int, j: int, frame) -> tuple:
        return self.finish(j, frame, self.draw(k, j, frame))


def source(reader, schedule, k: int, last: np.ndarray | None = None) -> tuple[int, object]:
    """Output frame k's source frame j = int(schedule[k]) as read; a fractional schedule (--length fit's held
    frames) blends in that fraction of frame j + 1. Where `last[k]` (last_reads) the reader gives its own frame."""
    j = int(schedule[k])
    frame = reader.take(j) if last is not None and last[k] else reader.get(j)
    weight = float(schedule[k]) - j
    if weight > 0:
        frame = media.blend(frame, reader.get(j + 1), weight)
    return j, frame


def last_reads(schedule) -> np.ndarray:
    """Per output frame k: whether its source frame int(schedule[k]) is read for the last time there (no later
    output frame shows it or blends it in)."""
    schedule = np.asarray(schedule, np.float64)
    ks = np.arange(len(schedule))
    if not len(ks):
        return np.zeros(0, bool)
    j = schedule.astype(np.int64)  # as int(): the schedule is never negative
    blended = schedule > j
    last = np.full(int(j.max()) + 2, -1, np.int64)
    np.maximum.at(last, np.concatenate([j, j[blended] + 1]), np.concatenate([ks, ks[blended]]))
    return last[j] == ks


def render_frames(ks, schedule, reader, render_one, sink, progress, last: np.ndarray | None = None) -> int:
    """Render output frames `ks` (source frame schedule[k] each) into `sink`; returns how many had a face. A
    FrameDrawer draws up to AHEAD frames ahead on a second thread (drawing is mostly OpenCV and numpy, which release
    the GIL), frames over AHEAD_BYTES in turn; the frames come out the same, in the same order. `last`
    (last_reads(schedule), when nothing reads the frames after these) marks where the reader gives its own frame
    instead of a copy."""
    faces = 0

    def done(k: int, frame, rendered: bool) -> None:
        nonlocal faces
        faces += rendered
        sink.write(frame)
        if k % TRIM_EVERY == TRIM_EVERY - 1:
            trim_heap()
        if progress:
            progress("render", k + 1, len(schedule))

    if not isinstance(render_one, FrameDrawer):
        for k in ks:
            j, frame = source(reader, schedule, k, last)
            done(k, *render_one(k, j, frame))
        return faces
    pending: deque = deque()
    ahead = AHEAD
    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-draw") as pool:
        try:
            for k in ks:
                j, frame = source(reader, schedule, k, last)
                if not pending:
                    size = frame.i420.nbytes if isinstance(frame, media.PlanarFrame) else np.asarray(frame).nbytes
                    ahead = min(AHEAD, AHEAD_BYTES // max(size, 1))
                if not ahead:
                    done(k, *render_one(k, j, frame))
                    continue
                pending.append((k, j, frame, pool.submit(render_one.draw, k, j, frame)))
                if len(pending) > ahead:
                    k0, j0, frame0, drawn = pending.popleft()
                    done(k0, *render_one.finish(j0, frame0, drawn.result()))
            while pending:
                k0, j0, frame0, drawn = pending.popleft()
                done(k0, *render_one.finish(j0, frame0, drawn.result()))
        finally:
            for *_, drawn in pending:  # an error: drop what is still queued
                drawn.cancel()
    return faces


def frame_reader(video: Path, info, schedule: np.ndarray, back: int = 0, planar: bool = False) -> media.FrameReader:
    """The source frames in `schedule` order: a cache for the backward walks of a looped (pingpong) schedule, only
    the last `back` + 2 frames when the schedule only moves forward (a 1080p frame is 6 MB)."""
    forward = len(schedule) < 2 or bool((np.diff(schedule) >= 0).all())
    frame_bytes = info.width * info.height * 3
    return media.FrameReader(video, info, cache_bytes=(back + 2) * frame_bytes if forward else 256 << 20,
                             planar=planar)
