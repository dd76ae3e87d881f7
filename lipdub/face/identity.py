"""Several tracked faces in one shot: is each track the same person throughout?

Each track follows its face by position (face.follow). Where that can go wrong: two faces cross (both tracks sit on
one face, or come out of it swapped), a face leaves and another takes its place, a cut puts someone else where the
face was. So the frames where two tracks' faces overlap, and those where a track's face does not look like the person
it showed first (after a crossing, a shot change or a loss of the face: skin colour at the cheeks and forehead), are
"in doubt": the caller leaves them as filmed and warns.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from lipdub.core.landmarks import LEFT_CHEEK, RIGHT_CHEEK
from lipdub.face.detect import face_box, iou
from lipdub.face.track import FaceTrack

OVERLAP_IOU = 0.3  # two tracks' boxes overlapping this much on a frame: one of them (or both) is on the wrong face
SAME_FACE_SHARE = 0.5  # two tracks on the same face on this share of their common frames: one face bound twice
SKIN = RIGHT_CHEEK + LEFT_CHEEK + [10, 151, 9]  # cheeks and forehead: skin that speech does not move
COLOUR_LIMIT = 12.0  # mean RGB difference (0..255) of a segment's skin from the track's main one: someone else
CUT_CHANGE = 20.0  # mean grey change (0..255) between consecutive frames that is a shot change ...
CUT_RATIO = 6.0  # ... when it is also this many times the clip's typical change
LOST_S = 0.5  # s without the face: what comes after may be someone else
SAMPLE_STEP_S = 0.2  # appearance is sampled this often (s)


def boxes(track: FaceTrack) -> np.ndarray:
    out = np.zeros((len(track), 4), np.float32)
    for i in np.flatnonzero(track.valid):
        out[i] = face_box(track.landmarks[i])
    return out


def same_face(a: FaceTrack, b: FaceTrack) -> bool:
    """Whether two tracks mostly follow one face (two bindings that name the same person)."""
    both = np.flatnonzero(a.valid[:len(b)] & b.valid[:len(a)])
    if len(both) == 0:
        return False
    ba, bb = boxes(a), boxes(b)
    return np.mean([iou(ba[i], bb[i]) > 0.5 for i in both]) > SAME_FACE_SHARE


def overlaps(tracks: list[FaceTrack]) -> list[np.ndarray]:
    """Per track, the frames where its face box overlaps another track's (IoU > OVERLAP_IOU)."""
    bs = [boxes(t) for t in tracks]
    out = [np.zeros(len(t), bool) for t in tracks]
    for a in range(len(tracks)):
        for b in range(a + 1, len(tracks)):
            n = min(len(tracks[a]), len(tracks[b]))
            for i in np.flatnonzero(tracks[a].valid[:n] & tracks[b].valid[:n]):
                if iou(bs[a][i], bs[b][i]) > OVERLAP_IOU:
                    out[a][i] = out[b][i] = True
    return out


def _skin(rgb: np.ndarray, lms: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    pts = np.clip(np.round(lms[SKIN, :2]).astype(int), 2, [w - 3, h - 3])
    return np.mean([rgb[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(0) for x, y in pts], axis=0)


def _thumb(rgb: np.ndarray) -> np.ndarray:
    """A 32-pixel-wide grey thumbnail: enough to see a shot change, cheap on every frame."""
    h, w = rgb.shape[:2]
    k = max(1, w // 32)
    return rgb[::k, ::k].mean(axis=2, dtype=np.float32)


def appearance_doubts(tracks: list[FaceTrack], frames: Iterable, fps: float,
                      crossing: list[np.ndarray] | None = None) -> tuple[list[np.ndarray], list[dict]]:
    """Per track, the frames where its face may be someone else; and per track what was measured.

    A track is cut into segments at shot changes (a jump of the whole picture), where its face was lost for more
    than LOST_S, and where it overlapped another track (`crossing`, from overlaps(): two faces that cross may come
    out of it swapped). Within one segment a face is the same person (the follower only takes the face that continues it);
    across segments, each segment's skin colour (median over samples every SAMPLE_STEP_S) is compared with that of
    the track's first segment of at least a second (its longest when none is), and a segment that differs by more
    than COLOUR_LIMIT is in doubt. (Per-frame
    colour and face proportions were tried first: within one continuous shot they varied as much as between two
    people, with pose and light, and flagged good frames.) `frames` yields objects with .index and .rgb (every
    frame of the video, in order)."""
    n = max((len(t) for t in tracks), default=0)
    step = max(1, int(round(SAMPLE_STEP_S * fps)))
    picks = set()
    for t in tracks:
        picks.update(np.flatnonzero(t.valid)[::step].tolist())
    change = np.zeros(n, np.float32)  # mean absolute change of the picture from the frame before
    colour: list[dict[int, np.ndarray]] = [{} for _ in tracks]
    prev = None
    for fr in frames:
        if fr.index >= n:
            break
        thumb = _thumb(fr.rgb)
        if prev is not None and prev.shape == thumb.shape:
            change[fr.index] = float(np.abs(thumb - prev).mean())
        prev = thumb
        if fr.index in picks:
            for k, t in enumerate(tracks):
                if fr.index < len(t) and t.valid[fr.index]:
                    colour[k][fr.index] = _skin(fr.rgb, t.landmarks[fr.index])
    typical = float(np.median(change[1:])) if n > 1 else 0.0
    cuts = np.flatnonzero(change > max(CUT_CHANGE, CUT_RATIO * typical))
    doubts, measured = [], []
    lost = max(1, int(round(LOST_S * fps)))
    for k, t in enumerate(tracks):
        doubt = np.zeros(len(t), bool)
        seen, breaks = t.valid, cuts
        if crossing is not None and crossing[k].any():  # the overlap itself is in doubt; after it, a new segment
            cross = crossing[k][:len(t)]
            seen = t.valid & ~cross
            breaks = np.union1d(cuts, np.flatnonzero(cross[:-1] & ~cross[1:]) + 1)
        segments = _segments(seen, breaks, lost)
        info: dict = {"shot_changes": [int(c) for c in cuts], "segments": len(segments), "colour_differences": []}
        if len(segments) > 1:
            medians = []
            for a, b in segments:
                got = [c for i, c in colour[k].items() if a <= i < b]
                medians.append(np.median(got, axis=0) if got else None)
            # the person as first seen for a while is the one bound (a face index or box names a face in the shot
            # as it starts); a shot without such a stretch: its longest
            long = [n for n, (a, b) in enumerate(segments) if b - a >= fps and medians[n] is not None]
            ref = long[0] if long else int(np.argmax([b - a for a, b in segments]))
            for (a, b), m in zip(segments, medians):
                if m is None or medians[ref] is None:
                    continue
                diff = float(np.abs(m - medians[ref]).mean())
                info["colour_differences"].append(round(diff, 1))
                if diff > COLOUR_LIMIT:
                    doubt[a:b] = True
        doubts.append(doubt & t.valid)
        measured.append(info)
    return doubts, measured


def _segments(valid: np.ndarray, cuts: np.ndarray, lost: int) -> list[tuple[int, int]]:
    """[start, stop) stretches of a track between shot changes and losses of its face longer than `lost` frames."""
    out: list[tuple[int, int]] = []
    bounds = set(int(c) for c in cuts)
    start, gap = None, 0
    for i in range(len(valid)):
        if i in bounds and start is not None:
            out.append((start, i))
            start = None
        if valid[i]:
            if start is None:
                start = i
            gap = 0
        elif start is not None:
            gap += 1
            if gap > lost:
                out.append((start, i - gap + 1))
                start = None
    if start is not None:
        out.append((start, len(valid)))
    return out
