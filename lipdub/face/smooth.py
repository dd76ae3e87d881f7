"""Smoothing of face landmarks over time: zero-phase filtering inside each run of frames with the same face, of a
whole FaceTrack (offline) or of frames arriving one by one with a few frames of their future (live)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from lipdub.core.landmarks import INNER_LOWER, INNER_UPPER, JAW, OUTER_LOWER, OUTER_UPPER
from lipdub.face.track import BLOCK, FaceTrack, landmark_array, release_pages


SIGMA_STABLE = 1.5  # frames: the rigid head's filter
SIGMA_MOUTH = 0.8  # frames: lips and jaw, lighter so closures survive
_MOUTH = np.zeros(478, bool)
_MOUTH[OUTER_UPPER + OUTER_LOWER + INNER_UPPER + INNER_LOWER + JAW] = True
REACH = int(4.0 * max(SIGMA_STABLE, SIGMA_MOUTH) + 0.5) + 1  # gaussian_filter1d's radius (truncate=4), plus one


def is_cut(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether two consecutive frames' landmarks (478, 2|3) show different faces (a scene cut, a re-detection)."""
    size = np.ptp(before[:, 0])
    return bool(np.linalg.norm(after[1, :2] - before[1, :2]) > 0.25 * max(size, 1.0))


def segments(valid: np.ndarray, lms: np.ndarray) -> list[tuple[int, int]]:
    """Runs of valid frames, split at jumps (scene cuts, re-detections of a different face)."""
    runs, start = [], None
    for i in range(len(valid) + 1):
        if i % BLOCK == BLOCK - 1:
            release_pages(lms)  # a fast sweep: give the pages back as it goes (see landmark_array)
        cut = False
        if i < len(valid) and valid[i] and start is not None and i > 0 and valid[i - 1]:
            cut = is_cut(lms[i - 1], lms[i])
        if start is not None and (i == len(valid) or not valid[i] or cut):
            runs.append((start, i))
            start = None
        if i < len(valid) and valid[i] and start is None:
            start = i
    return runs


def _filtered(seg: np.ndarray) -> np.ndarray:
    """(T, 478, 3) consecutive frames of one face, each point filtered along time (the ends held, mode nearest)."""
    out = np.empty(seg.shape, np.float32)
    out[:, ~_MOUTH] = gaussian_filter1d(seg[:, ~_MOUTH], SIGMA_STABLE, axis=0, mode="nearest")
    out[:, _MOUTH] = gaussian_filter1d(seg[:, _MOUTH], SIGMA_MOUTH, axis=0, mode="nearest")
    return out


def smooth_track(track: FaceTrack) -> FaceTrack:
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
    for a, b in segments(track.valid, src):
        if b - a < 3:
            continue
        for s0 in range(a, b, BLOCK):
            s1 = min(b, s0 + BLOCK)
            w0, w1 = max(a, s0 - REACH), min(b, s1 + REACH)
            lms[s0:s1] = _filtered(np.asarray(src[w0:w1]))[s0 - w0:s1 - w0]
            release_pages(lms)
            release_pages(src)
    return FaceTrack(track.times, lms, track.valid, track.width, track.height, dict(track.meta))



class AheadSmoother:
    """smooth_track's filter for frames arriving one by one (live): a frame is released once `ahead` frames after it
    have arrived (or its face's run ended: the face lost or another face, or the stream's end), filtered over the
    past frames of its run that the filter reaches and those `ahead` frames, the run's ends held as smooth_track
    holds a segment's. With `ahead` ≥ REACH a frame comes out exactly as smooth_track gives it; with fewer, the
    filter's far future is its nearest known frame (the head's filter weighs frames 3 and 4 ahead at ~13 % and ~3 %
    of its centre). A causal filter instead lags the face it is drawn on: the live tracker's one-euro filter put the
    lips and jaw the drawn mouth is moved from and blended onto behind the filmed face (docs/RESULTS.md, stop 42)."""

    def __init__(self, ahead: int):
        self.ahead = max(0, int(ahead))
        self._run: list[np.ndarray] = []  # the current run's landmarks: REACH released frames, then the pending
        self._pending: list[tuple[int, object]] = []  # (index, payload) of frames not yet released, oldest first

    def push(self, index: int, lms: np.ndarray | None, payload=None) -> list[tuple[int, np.ndarray | None, object]]:
        """Frame `index`'s landmarks (478, 3; None without a face) and what travels with it; returns the frames now
        released, in order: (index, smoothed landmarks or None, payload)."""
        out = []
        if lms is None or (self._run and is_cut(self._run[-1], lms)):
            out = self.flush()
        if lms is None:
            return out + [(index, None, payload)]
        self._run.append(np.asarray(lms, np.float32))
        self._pending.append((index, payload))
        if len(self._pending) > self.ahead:
            out.append(self._release())
        return out

    def flush(self) -> list[tuple[int, np.ndarray | None, object]]:
        """Every pending frame (the stream or the face's run ended); the next frame starts a new run."""
        out = [self._release() for _ in range(len(self._pending))]
        self._run = []
        return out

    def _release(self) -> tuple[int, np.ndarray, object]:
        index, payload = self._pending.pop(0)
        at = len(self._run) - len(self._pending) - 1  # the released frame's place in the run
        start = max(0, at - REACH)
        smoothed = _filtered(np.stack(self._run[start:]))[at - start]
        del self._run[:max(0, at + 1 - REACH)]  # keep REACH frames of past for the next one
        return index, smoothed, payload
