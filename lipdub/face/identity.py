"""Several tracked faces in one shot: is each track the same person throughout?

Each track follows its face by position (face.follow). Where that can go wrong: two faces cross (both tracks sit on
one face), a face leaves and another takes its place, a cut puts someone else where the face was. A track is split
into runs where its face jumps or is lost; each run's appearance (skin colour at the cheeks and forehead, and the
face's proportions) is compared with the track's longest run. A run that looks like someone else, and frames where
two tracks overlap, are "in doubt": the caller leaves them as filmed and warns.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from lipdub.core.landmarks import EYE_OUTER, LEFT_CHEEK, RIGHT_CHEEK
from lipdub.face.detect import face_box, iou
from lipdub.face.track import FaceTrack

OVERLAP_IOU = 0.3  # two tracks' boxes overlapping this much on a frame: one of them (or both) is on the wrong face
SAME_FACE_SHARE = 0.5  # two tracks on the same face on this share of their common frames: one face bound twice
JUMP = 0.35  # face-width shift of the face centre between consecutive frames that starts a new run
SKIN = RIGHT_CHEEK + LEFT_CHEEK + [10, 151, 9]  # cheeks and forehead: skin that speech does not move
# proportions that speech does not change, each over the eye-corner distance: nose bridge to tip, brow to chin is
# left out (the jaw moves), face width at the cheekbones, eye-corner to nose-tip on each side
PROPORTIONS = ((168, 1), (234, 454), (33, 1), (263, 1))
COLOUR_LIMIT = 28.0  # mean RGB difference (0..255) between runs beyond which a run is someone else
PROPORTION_LIMIT = 0.18  # relative difference in proportions beyond which a run is someone else
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


def runs(track: FaceTrack) -> list[tuple[int, int]]:
    """[start, stop) runs of valid frames without a jump of the face centre."""
    bs = boxes(track)
    centre = bs[:, :2] + bs[:, 2:] / 2
    out, start = [], None
    for i in range(len(track)):
        if not track.valid[i]:
            if start is not None:
                out.append((start, i))
                start = None
            continue
        if start is not None and np.linalg.norm(centre[i] - centre[i - 1]) > JUMP * max(bs[i - 1][2], 1.0):
            out.append((start, i))
            start = None
        if start is None:
            start = i
    if start is not None:
        out.append((start, len(track)))
    return out


def _proportions(lms: np.ndarray) -> np.ndarray:
    eye = np.linalg.norm(lms[EYE_OUTER[0], :2] - lms[EYE_OUTER[1], :2])
    return np.array([np.linalg.norm(lms[a, :2] - lms[b, :2]) for a, b in PROPORTIONS]) / max(eye, 1e-6)


def _skin(rgb: np.ndarray, lms: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    pts = np.clip(np.round(lms[SKIN, :2]).astype(int), 2, [w - 3, h - 3])
    return np.mean([rgb[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(0) for x, y in pts], axis=0)


def appearance_doubts(tracks: list[FaceTrack], frames: Iterable, fps: float) -> tuple[list[np.ndarray], list[dict]]:
    """Per track, the frames of runs that do not look like the track's longest run; and per track what was measured
    (each run's colour and proportion difference). `frames` yields objects with .index and .rgb (every frame of the
    video, in order; only some are looked at)."""
    step = max(1, int(round(SAMPLE_STEP_S * fps)))
    track_runs = [runs(t) for t in tracks]
    wanted: list[dict[int, int]] = []  # per track: frame -> run number, for the frames sampled
    for rs in track_runs:
        pick: dict[int, int] = {}
        for r, (a, b) in enumerate(rs if len(rs) > 1 else ()):  # one run: nothing to compare it with
            for i in list(range(a, b, step)) + [(a + b - 1) // 2]:
                pick[i] = r
        wanted.append(pick)
    every = set().union(*[set(p) for p in wanted]) if wanted else set()
    colour = [[[] for _ in rs] for rs in track_runs]
    shape = [[[] for _ in rs] for rs in track_runs]
    last = max(every) if every else -1
    for fr in (frames if every else ()):
        if fr.index > last:
            break
        if fr.index not in every:
            continue
        for k, t in enumerate(tracks):
            r = wanted[k].get(fr.index)
            if r is not None:
                colour[k][r].append(_skin(fr.rgb, t.landmarks[fr.index]))
                shape[k][r].append(_proportions(t.landmarks[fr.index]))
    doubts, measured = [], []
    for k, t in enumerate(tracks):
        doubt = np.zeros(len(t), bool)
        rs = track_runs[k]
        info: dict = {"runs": len(rs), "doubtful_runs": []}
        if len(rs) > 1:
            ref = int(np.argmax([b - a for a, b in rs]))
            c0, s0 = np.median(colour[k][ref], axis=0), np.median(shape[k][ref], axis=0)
            for r, (a, b) in enumerate(rs):
                if r == ref or not colour[k][r]:
                    continue
                dc = float(np.abs(np.median(colour[k][r], axis=0) - c0).mean())
                ds = float(np.abs(np.median(shape[k][r], axis=0) / s0 - 1).max())
                if dc > COLOUR_LIMIT or ds > PROPORTION_LIMIT:
                    doubt[a:b] = True
                    info["doubtful_runs"].append({"frames": [a, b], "colour": round(dc, 1), "proportion":
                                                  round(ds, 3)})
        doubts.append(doubt)
        measured.append(info)
    return doubts, measured
