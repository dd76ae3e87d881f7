"""Measures shared by the product and its evaluation: Pearson r at the best lag, amplitude ratio, flicker, and the
resampling of a curve onto other frame times."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from lipdub.core.landmarks import OUTER_LOWER, OUTER_UPPER

MAX_LAG = 5  # frames of the truth grid
MIN_PAIRS = 8  # fewer valid pairs than this at a lag: r is undefined there
BOX_GROW = 0.30  # mouth box for flicker: lip landmarks' bounding box grown by 30 % (15 % each side)


def _pearson(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Pearson r over the pairs where both are finite, and how many pairs that was (r is NaN if undefined)."""
    m = np.isfinite(a) & np.isfinite(b)
    n = int(m.sum())
    if n < MIN_PAIRS:
        return math.nan, n
    x, y = a[m] - a[m].mean(), b[m] - b[m].mean()
    den = math.sqrt(float(x @ x) * float(y @ y))
    if den <= 1e-12:
        return math.nan, n
    return float(x @ y) / den, n


def _shifted(a: np.ndarray, b: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a[i + lag], b[i]): with positive lag, a is compared with earlier b, i.e. a is late."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if lag >= 0:
        return a[lag:], b[: n - lag]
    return a[: n + lag], b[-lag:]


def pearson_at_best_lag(a: Sequence[float], b: Sequence[float], max_lag: int = MAX_LAG) -> tuple[float, int, float]:
    """Pearson r of `a` (the dub) against `b` (the truth) at the lag in [-max_lag, max_lag] that maximises it.

    Returns (r, lag, r0): lag > 0 means `a` is late (a[i + lag] matches b[i]); r0 is r at lag 0. NaN entries are
    left out pairwise; a lag with fewer than MIN_PAIRS valid pairs is skipped. (nan, 0, nan) if nothing is defined.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    r0, _ = _pearson(*_shifted(a, b, 0))
    best_r, best_lag = math.nan, 0
    for lag in sorted(range(-max_lag, max_lag + 1), key=abs):  # ties go to the smaller |lag|
        if abs(lag) >= min(len(a), len(b)):
            continue
        r, _ = _pearson(*_shifted(a, b, lag))
        if math.isfinite(r) and (not math.isfinite(best_r) or r > best_r + 1e-12):
            best_r, best_lag = r, lag
    return best_r, best_lag, r0


def amplitude_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """std(a) / std(b) over the entries finite in both (NaN if fewer than MIN_PAIRS or b is constant)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    m = np.isfinite(a) & np.isfinite(b)
    if m.sum() < MIN_PAIRS:
        return math.nan
    sb = float(np.std(b[m]))
    return float(np.std(a[m])) / sb if sb > 1e-12 else math.nan


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def flicker(frames_iter: Iterable, boxes: Sequence) -> float:
    """Mean absolute frame-to-frame grayscale difference inside per-frame boxes.

    `frames_iter` yields RGB arrays (or objects with `.rgb`), `boxes[k]` is (x0, y0, x1, y1) in pixels for frame k or
    None where there is no face. The pair (k-1, k) is compared at the same pixels, those of box k; pairs where either
    frame has no box are skipped. Returns the mean over pairs of the per-pair mean |difference| (gray levels), NaN
    if no pair counts.
    """
    prev, prev_ok = None, False
    total, count = 0.0, 0
    for k, fr in enumerate(frames_iter):
        rgb = getattr(fr, "rgb", fr)
        box = boxes[k] if k < len(boxes) else None
        ok = box is not None
        if ok and prev_ok:
            h, w = rgb.shape[:2]
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            if x1 > x0 and y1 > y0:
                diff = _gray(rgb[y0:y1, x0:x1]) - _gray(prev[y0:y1, x0:x1])
                total += float(np.mean(np.abs(diff)))
                count += 1
        prev, prev_ok = rgb, ok
    return total / count if count else math.nan


def mouth_boxes(landmarks: np.ndarray, valid: np.ndarray, grow: float = BOX_GROW) -> list:
    """Per frame: the lip landmarks' bounding box grown by `grow` (x0, y0, x1, y1), or None without a face."""
    lips = sorted(set(OUTER_UPPER + OUTER_LOWER))
    out: list = []
    for lm, ok in zip(landmarks, valid):
        if not ok:
            out.append(None)
            continue
        x0, y0 = lm[lips, 0].min(), lm[lips, 1].min()
        x1, y1 = lm[lips, 0].max(), lm[lips, 1].max()
        gx, gy = (x1 - x0) * grow / 2, (y1 - y0) * grow / 2
        out.append((float(x0 - gx), float(y0 - gy), float(x1 + gx), float(y1 + gy)))
    return out


def resample(t_src: np.ndarray, y_src: np.ndarray, t_dst: np.ndarray) -> np.ndarray:
    """Linear interpolation of y_src(t_src) at t_dst; NaN where a bracketing sample is NaN or t_dst lies more than
    half a source frame outside the source's span."""
    t_src = np.asarray(t_src, np.float64)
    y_src = np.asarray(y_src, np.float64)
    t_dst = np.asarray(t_dst, np.float64)
    out = np.full(len(t_dst), np.nan)
    if len(t_src) == 0:
        return out
    if len(t_src) == 1:
        out[np.abs(t_dst - t_src[0]) <= 0.02] = y_src[0]
        return out
    order = np.argsort(t_src, kind="stable")
    t_src, y_src = t_src[order], y_src[order]
    half = 0.5 * float(np.median(np.diff(t_src)))
    inside = (t_dst >= t_src[0] - half) & (t_dst <= t_src[-1] + half)
    tc = np.clip(t_dst, t_src[0], t_src[-1])
    hi = np.clip(np.searchsorted(t_src, tc, side="left"), 1, len(t_src) - 1)
    lo = hi - 1
    span = t_src[hi] - t_src[lo]
    w = np.where(span > 0, (tc - t_src[lo]) / np.where(span > 0, span, 1.0), 0.0)
    ylo, yhi = y_src[lo], y_src[hi]
    # an exact hit on a valid sample needs only that sample
    val = np.where(w <= 1e-9, ylo, np.where(w >= 1 - 1e-9, yhi, ylo * (1 - w) + yhi * w))
    return np.where(inside, val, np.nan)
