"""Offline smoothing of a FaceTrack: zero-phase filtering inside each run of frames with the same face."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from lipdub.core.landmarks import INNER_LOWER, INNER_UPPER, JAW, OUTER_LOWER, OUTER_UPPER
from lipdub.face.track import BLOCK, FaceTrack, landmark_array, release_pages


def segments(valid: np.ndarray, lms: np.ndarray) -> list[tuple[int, int]]:
    """Runs of valid frames, split at jumps (scene cuts, re-detections of a different face)."""
    runs, start = [], None
    for i in range(len(valid) + 1):
        if i % BLOCK == BLOCK - 1:
            release_pages(lms)  # a fast sweep: give the pages back as it goes (see landmark_array)
        cut = False
        if i < len(valid) and valid[i] and start is not None and i > 0 and valid[i - 1]:
            size = np.ptp(lms[i - 1, :, 0])
            cut = np.linalg.norm(lms[i, 1, :2] - lms[i - 1, 1, :2]) > 0.25 * max(size, 1.0)
        if start is not None and (i == len(valid) or not valid[i] or cut):
            runs.append((start, i))
            start = None
        if i < len(valid) and valid[i] and start is None:
            start = i
    return runs


def smooth_track(track: FaceTrack, sigma_stable: float = 1.5, sigma_mouth: float = 0.8) -> FaceTrack:
    """Zero-phase Gaussian smoothing inside each segment: heavier for the rigid head, lighter for lips and jaw so
    closures survive. MediaPipe jitters ~0.4 px on still faces; the rendered mouth inherits any head jitter.

    Filtered in blocks of BLOCK frames with enough neighbours on each side that every output equals filtering the
    whole segment at once (the filter's reach is 4 sigma); the result goes to a new landmark_array."""
    src = track.landmarks
    lms = landmark_array(len(src))
    for a in range(0, len(src), BLOCK):
        lms[a:a + BLOCK] = src[a:a + BLOCK]
        release_pages(lms)
        release_pages(src)
    mouth = np.zeros(478, bool)
    mouth[OUTER_UPPER + OUTER_LOWER + INNER_UPPER + INNER_LOWER + JAW] = True
    reach = int(4.0 * max(sigma_stable, sigma_mouth) + 0.5) + 1  # gaussian_filter1d's radius (truncate=4), plus one
    for a, b in segments(track.valid, src):
        if b - a < 3:
            continue
        for s0 in range(a, b, BLOCK):
            s1 = min(b, s0 + BLOCK)
            w0, w1 = max(a, s0 - reach), min(b, s1 + reach)
            seg = np.asarray(src[w0:w1])
            keep = slice(s0 - w0, s1 - w0)
            lms[s0:s1, ~mouth] = gaussian_filter1d(seg[:, ~mouth], sigma_stable, axis=0, mode="nearest")[keep]
            lms[s0:s1, mouth] = gaussian_filter1d(seg[:, mouth], sigma_mouth, axis=0, mode="nearest")[keep]
            release_pages(lms)
            release_pages(src)
    return FaceTrack(track.times, lms, track.valid, track.width, track.height, dict(track.meta))

