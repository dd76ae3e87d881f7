"""compose: put a rendered lower face back into the frame without seams.

Mask = hull of the old and the new lower face (so a raised chin covers the old one), feathered inwards so every pixel
outside the hull stays byte-identical. Colour is matched on the mask's border band (LAB mean shift, smoothed over
time so it cannot flicker), then a plain alpha blend: it drifted less than Poisson blending and is faster. Inside the
mask only the lips and what shows between them are the drawn mouth's; the skin around them is the frame's own, moved
with the new mouth (with_frame_skin).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


def region_of_interest(points: np.ndarray, width: int, height: int, margin: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(points[:, :2].min(0)).astype(int) - margin
    x1, y1 = np.ceil(points[:, :2].max(0)).astype(int) + margin
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def feathered_mask(hull_points: np.ndarray, roi: tuple[int, int, int, int], feather: float) -> np.ndarray:
    """float32 alpha in roi: 1 well inside the hull, falling to 0 at its edge (never outside)."""
    x0, y0, x1, y1 = roi
    hard = np.zeros((y1 - y0, x1 - x0), np.uint8)
    hull = cv2.convexHull(np.round((hull_points[:, :2] - [x0, y0]) * 16).astype(np.int32))
    cv2.fillConvexPoly(hard, hull, 255, lineType=cv2.LINE_8, shift=4)
    # computed in the hull's box and a pixel of zeros around it, often half the roi (the mesh's ring lies outside
    # the hull): outside it the alpha is 0, inside the same values, since the distance to the nearest zero is a
    # shortest path that never needs to leave the box. The box starts at a multiple of 16 columns: OpenCV's (IPP's)
    # distances differ in the last bit by a column's place in its vector loop (measured: 4 columns aligned suffice)
    bx, by, bw, bh = cv2.boundingRect(hard)
    out = np.zeros(hard.shape, np.float32)
    if bw == 0:
        return out
    rows, cols = slice(max(0, by - 1), by + bh + 1), slice(max(0, bx - 1) // 16 * 16, bx + bw + 1)
    # distance to the edge gives a feather that stays inside the hull
    dist = cv2.distanceTransform(hard[rows, cols], cv2.DIST_L2, 3)
    alpha = dist / max(feather, 1.0)  # float64 (feather is): in place from here, the same results in 2/3 the time
    np.clip(alpha, 0.0, 1.0, out=alpha)
    ramp = 3 - 2 * alpha
    alpha *= alpha  # smoothstep
    alpha *= ramp
    out[rows, cols] = alpha
    return out


class ColourMatcher:
    """Per-channel correction of the rendered patch towards the frame, measured on the mask's border band and smoothed
    over time so it cannot flicker.

    From the same clip the differences are small lighting drifts: a median RGB offset is enough. From an actor
    profile (another shot, other lighting) the change is multiplicative, so `gain=True` fits a per-channel gain on the
    band (teeth and lips then darken or brighten with the skin)."""

    def __init__(self, smoothing: float = 0.7, gain: bool = False):
        self.smoothing = smoothing
        self.gain = gain
        self.offset: np.ndarray | None = None

    def reset(self) -> None:
        self.offset = None

    def __call__(self, patch: np.ndarray, target: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        band = (alpha > 0.02) & (alpha < 0.9)
        n = int(band.sum())
        if n < 30:
            return patch
        idx = np.flatnonzero(band)
        if n > 4000:  # a large face: every 4th band pixel gives the same median, 4x cheaper
            idx = idx[::4]
        t = np.take(target.reshape(-1, 3), idx, axis=0).astype(np.float32)
        p = np.take(patch.reshape(-1, 3), idx, axis=0).astype(np.float32)
        if self.gain:
            off = np.clip(np.median(t, axis=0) / np.maximum(np.median(p, axis=0), 1.0), 0.5, 2.0)
        else:
            off = np.median(t - p, axis=0)
        if self.offset is None:
            self.offset = off
        else:
            self.offset = self.smoothing * self.offset + (1 - self.smoothing) * off
        # applied through a per-channel lookup table: the same rounding as float arithmetic, a tenth of its time
        levels = np.arange(256, dtype=np.float32)[:, None]
        mapped = levels * self.offset if self.gain else levels + self.offset
        lut = np.clip(np.floor(mapped + 0.5), 0, 255).astype(np.uint8)
        return cv2.LUT(patch, lut.reshape(256, 1, 3))


def blend(frame: np.ndarray, patch: np.ndarray, alpha: np.ndarray, roi: tuple[int, int, int, int],
          inplace: bool = False) -> np.ndarray:
    """frame with patch alpha-blended into roi: a new array, or `frame` itself changed when `inplace`. Where alpha is
    0 the result is exactly the frame."""
    x0, y0, x1, y1 = roi
    out = frame if inplace else frame.copy()
    out[y0:y1, x0:x1] = cv2.blendLinear(patch, frame[y0:y1, x0:x1], alpha, 1.0 - alpha)
    return out


SKIN_RIM = 0.04  # canonical units the lips' weight reaches past their outer contour before it fades
# The rim does not grow with the change of opening: a wider rim (0.04 + the change, up to 0.15) showed the drawn
# frame's skin around the lips, which the detector told apart on smooth-skinned faces with or without a profile
# (bench.realism_profile own mouths 0.58 without it, 0.61 with it) for no sync gain on the merged code (make eval
# 0.674 without, 0.670 with); a softer edge, a shading match or growth below the lower lip alone each kept part of
# that cost (docs/RESULTS.md, "The rim without its growth").


def lip_weight(outer_lips: np.ndarray, roi: tuple[int, int, int, int], px_per_unit: float) -> np.ndarray:
    """float32 weight in roi: 1 on the lips (outer contour `outer_lips`, frame px, in ring order) and a rim of
    SKIN_RIM around them, falling smoothly to 0 on the skin."""
    x0, y0, x1, y1 = roi
    grow = max(1, int(round(SKIN_RIM * px_per_unit)))
    sigma = max(0.7, 0.4 * grow)
    # drawn in the lips' box grown by the rim and the blur's reach (the same values as over the whole roi, a
    # fraction of the work): outside it the weight is 0
    reach = grow + int(np.ceil(4 * sigma)) + 2
    bx0, by0 = np.maximum(np.floor(outer_lips[:, :2].min(0)).astype(int) - reach, [x0, y0])
    bx1, by1 = np.minimum(np.ceil(outer_lips[:, :2].max(0)).astype(int) + reach + 1, [x1, y1])
    out = np.zeros((y1 - y0, x1 - x0), np.float32)
    if bx1 <= bx0 or by1 <= by0:
        return out
    hard = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
    cv2.fillPoly(hard, [np.round((outer_lips[:, :2] - [bx0, by0]) * 16).astype(np.int32)], 255, lineType=cv2.LINE_8,
                 shift=4)
    grown = dilate_ellipse(hard, grow).astype(np.float32)  # (1.0 where 255 / 255.0 is: the same values)
    out[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = cv2.GaussianBlur(grown, (0, 0), sigma)
    return out


@functools.lru_cache(maxsize=64)
def _ellipse_rows(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's elliptic structuring element of this radius as (row offsets, half-widths of their centred spans)."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)) > 0
    rows = np.flatnonzero(k.any(1))
    return rows - radius, k[rows].sum(1) // 2


def dilate_ellipse(mask: np.ndarray, radius: int) -> np.ndarray:
    """bool: `mask` (nonzero = set) dilated by cv2's MORPH_ELLIPSE of side 2 radius + 1, the pixels cv2.dilate sets,
    in time linear in the spans of the mask's rows (cv2.dilate visits every pixel of the element, ~10x slower here).
    Each row span of the mask, widened by each element row's half-width, is an interval of the output row that
    row's offset away; the output is their union, counted with a difference array."""
    h, w = mask.shape
    dys, half = _ellipse_rows(radius)
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask != 0
    edges = np.diff(padded, axis=1).ravel()  # rows of w + 1: +1 where a span starts, -1 just past its end
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    row = starts // (w + 1)
    first, last = starts - row * (w + 1), ends - row * (w + 1) - 1
    rows = (row[:, None] + dys[None, :]).ravel()
    lo = np.maximum((first[:, None] - half[None, :]).ravel(), 0)
    hi = np.minimum((last[:, None] + half[None, :]).ravel(), w - 1)
    keep = (rows >= 0) & (rows < h)
    at = rows[keep] * (w + 1)
    n = h * (w + 1)
    count = np.bincount(at + lo[keep], minlength=n) - np.bincount(at + hi[keep] + 1, minlength=n)[:n]
    return np.cumsum(count.reshape(h, w + 1), axis=1)[:, :w] > 0


def with_frame_skin(patch: np.ndarray, skin: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """`patch` (the drawn mouth) with its skin taken from `skin` = (the frame's own pixels moved to the new mouth,
    lip weight): the frame's grain, stubble and chin edges stay its own and change with every frame as filmed; the
    drawn texture shows only on the lips and between them. The frame's pixels in `skin` are changed in place."""
    if skin is None:
        return patch
    own, lips = skin
    c0, r0, bw, bh = cv2.boundingRect((lips != 0).view(np.uint8))
    if not bw:
        return own
    # the frame's skin where the lips' weight is 0 (blendLinear gives exactly it there), blended only in their box
    r1, c1 = r0 + bh, c0 + bw
    w = lips[r0:r1, c0:c1]
    own[r0:r1, c0:c1] = cv2.blendLinear(patch[r0:r1, c0:c1], own[r0:r1, c0:c1], w, 1.0 - w)
    return own
