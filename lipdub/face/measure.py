"""What a track measures: the speaker's mean face in a canonical frame, the head pose on every frame, landmarks with
the pose removed, and the mouth's opening and width."""

from __future__ import annotations

import numpy as np

from lipdub.core.geometry import Pose, umeyama
from lipdub.core.landmarks import EYE_OUTER, STABLE
from lipdub.face.track import BLOCK, FaceTrack, release_pages, take_rows


def canonical_shape(track: FaceTrack) -> np.ndarray:
    """The track's mean face in a canonical frame: eye corners 1 unit apart, upright, centred on the nose bridge."""
    idx = np.flatnonzero(track.valid)
    if len(idx) == 0:
        raise ValueError("no valid frames")
    sample = take_rows(track.landmarks, idx[:: max(1, len(idx) // 200)])
    ref = sample[len(sample) // 2].astype(np.float64)
    for _ in range(2):  # generalised Procrustes, two rounds are plenty
        aligned = []
        for lm in sample:
            s, r, t = umeyama(lm[STABLE].astype(np.float64), ref[STABLE])
            aligned.append(s * lm @ r.T + t)
        ref = np.mean(aligned, axis=0)
    # upright: eye line horizontal; unit: outer eye-corner distance; origin: nose bridge (168)
    left, right = ref[EYE_OUTER[0]], ref[EYE_OUTER[1]]
    angle = np.arctan2(right[1] - left[1], right[0] - left[0])
    c, s_ = np.cos(-angle), np.sin(-angle)
    rz = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
    ref = (ref - ref[168]) @ rz.T
    return ref / np.linalg.norm(ref[EYE_OUTER[1], :2] - ref[EYE_OUTER[0], :2])


def estimate_pose(track: FaceTrack, canonical: np.ndarray) -> Pose:
    n = len(track)
    scale = np.ones(n)
    rot = np.tile(np.eye(3), (n, 1, 1))
    trans = np.zeros((n, 3))
    for c, i in enumerate(np.flatnonzero(track.valid)):
        scale[i], rot[i], trans[i] = umeyama(canonical[STABLE], track.landmarks[i, STABLE].astype(np.float64))
        if c % BLOCK == BLOCK - 1:
            release_pages(track.landmarks)
    return Pose(scale, rot, trans)


def normalised_landmarks(track: FaceTrack, pose: Pose) -> np.ndarray:
    """(T, 478, 3) landmarks with head pose removed (canonical units: eye-corner distance = 1)."""
    out = np.zeros_like(track.landmarks, dtype=np.float32)
    for i in np.flatnonzero(track.valid):
        out[i] = pose.to_canonical(i, track.landmarks[i].astype(np.float64))
    return out


# --------------------------------------------------------------------------------------------------- mouth measures

def inner_opening(lms: np.ndarray) -> np.ndarray:
    """Inner-lip gap over eye-corner distance, from (…, 478, 2|3) landmarks: the sync measure used everywhere."""
    gap = np.mean([np.linalg.norm(lms[..., a, :2] - lms[..., b, :2], axis=-1)
                   for a, b in ((82, 87), (13, 14), (312, 317))], axis=0)
    iod = np.linalg.norm(lms[..., EYE_OUTER[0], :2] - lms[..., EYE_OUTER[1], :2], axis=-1)
    return gap / np.maximum(iod, 1e-6)


def mouth_width(lms: np.ndarray) -> np.ndarray:
    iod = np.linalg.norm(lms[..., EYE_OUTER[0], :2] - lms[..., EYE_OUTER[1], :2], axis=-1)
    return np.linalg.norm(lms[..., 61, :2] - lms[..., 291, :2], axis=-1) / np.maximum(iod, 1e-6)

