"""The render loop shared by a whole dub and its pieces: source frames read in schedule order, rendered, written."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lipdub import media
from lipdub.core.memory import trim_heap

TRIM_EVERY = 100  # rendered frames between heap trims


def source(reader, schedule, k: int) -> tuple[int, object]:
    """Output frame k's source frame j = int(schedule[k]) as read; a fractional schedule (--length fit's held
    frames) blends in that fraction of frame j + 1."""
    j = int(schedule[k])
    frame = reader.get(j)
    weight = float(schedule[k]) - j
    if weight > 0:
        frame = media.blend(frame, reader.get(j + 1), weight)
    return j, frame


def render_frames(ks, schedule, reader, render_one, sink, progress) -> int:
    """Render output frames `ks` (source frame schedule[k] each) into `sink`; returns how many had a face."""
    faces = 0
    for k in ks:
        j, frame = source(reader, schedule, k)
        frame, rendered = render_one(k, j, frame)
        faces += rendered
        sink.write(frame)
        if k % TRIM_EVERY == TRIM_EVERY - 1:
            trim_heap()
        if progress:
            progress("render", k + 1, len(schedule))
    return faces


def frame_reader(video: Path, info, schedule: np.ndarray, back: int = 0, planar: bool = False) -> media.FrameReader:
    """The source frames in `schedule` order: a cache for the backward walks of a looped (pingpong) schedule, only
    the last `back` + 2 frames when the schedule only moves forward (a 1080p frame is 6 MB)."""
    forward = len(schedule) < 2 or bool((np.diff(schedule) >= 0).all())
    frame_bytes = info.width * info.height * 3
    return media.FrameReader(video, info, cache_bytes=(back + 2) * frame_bytes if forward else 256 << 20,
                             planar=planar)
