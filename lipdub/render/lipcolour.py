"""lipcolour: the drawn lips' chroma matched to the lips filmed in the frames they are drawn over.

A mouth drawn from another moment of the clip carries that moment's lip colour, and the colour match of the lower
face (compose.ColourMatcher) measures only the skin at the mask's border. Dubbed lips came out less red than filmed
ones at every opening (CIELAB a, lips against the skin around them: 20 clips, 18 of them lower, by 0.3 on average,
0.7 on a speaker wearing lipstick; docs/RESULTS.md, "The drawn lips' colour"): the entries selection draws lean to
less red ones, and each resampling of 4:2:0 chroma softens the lips' edges. The frame's own lips, filmed at that
very moment, say what colour they should be; one frame's median of them jitters with its tracked contours, so the
target is their median over the last TARGET_SECONDS of the run (LipColour, in frame order)."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from lipdub.render.mouth import INNER_RING, OUTER_RING

LIP_CHROMA_LIMIT = 6.0  # CIELAB levels (a, b) the drawn lips may move: a hand or microphone over the filmed lips
# fewer lip pixels than this leave the lips as drawn: a small face's lip median is mostly its contour's jitter (the
# frame's against the drawn mouth's: sd 2.4 levels of a a frame on 240-pixel lips, 1.7 on 620), and matched to it
# the lips of a 160-pixel face read worse (bench.realism 0.580 -> 0.617, 8 seeds)
MIN_LIP_PIXELS = 400
# the filmed lips' median is taken over this long a stretch of the run drawn so far: one frame's jitters with its
# tracked contours (sd 0.4-1.3 levels of a frame to frame), a lighting change takes longer
TARGET_SECONDS = 1.0
# share of the way from the drawn lips' chroma to the target moved: half way read better than all the way
# (bench.realism, 8 seeds; docs/RESULTS.md, "The drawn lips' colour matched to a second of filmed lips")
LIP_MATCH_STRENGTH = 0.5

LipChroma = tuple[np.ndarray | None, np.ndarray | None]  # (the frame's filmed lips', the drawn lips') median (a, b)


def lip_chroma(rgb: np.ndarray, control: np.ndarray) -> np.ndarray | None:
    """Median CIELAB (a, b) of the lips (between the outer and inner lip contours of `control`, control points in
    `rgb`'s pixels) in `rgb`; None where too few lip pixels lie inside it."""
    outer, inner = control[OUTER_RING, :2], control[INNER_RING, :2]
    h, w = rgb.shape[:2]
    x0, y0 = np.maximum(np.floor(outer.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(outer.max(0)).astype(int) + 1, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((outer - [x0, y0]) * 16).astype(np.int32)], 1, shift=4)
    cv2.fillPoly(mask, [np.round((inner - [x0, y0]) * 16).astype(np.int32)], 0, shift=4)
    if int(mask.sum()) < MIN_LIP_PIXELS:
        return None
    lab = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]).astype(np.float32) * (1 / 255.0), cv2.COLOR_RGB2LAB)
    return np.median(lab[mask > 0][:, 1:], axis=0)


def shift_lip_chroma(patch: np.ndarray, shift: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`patch` (uint8 RGB) with its CIELAB (a, b) moved by `shift` × `weight` (float32, the patch's shape: the lips'
    weight, compose.lip_weight); changed in place, only in the box where the weight is set."""
    bx, by, bw, bh = cv2.boundingRect((weight > 0).view(np.uint8))
    if not bw or not np.any(shift):
        return patch
    r, c = slice(by, by + bh), slice(bx, bx + bw)
    lab = cv2.cvtColor(patch[r, c].astype(np.float32) * (1 / 255.0), cv2.COLOR_RGB2LAB)
    lab[..., 1:] += weight[r, c, None] * shift.astype(np.float32)
    rgb = np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    patch[r, c] = np.where(weight[r, c, None] > 0, rgb, patch[r, c])  # (unweighted pixels exactly as they were)
    return patch


def matched_lips(patch: np.ndarray, have: np.ndarray, target: np.ndarray, weight: np.ndarray,
                 strength: float = LIP_MATCH_STRENGTH) -> np.ndarray:
    """The drawn lips in `patch` (their median chroma `have`) moved `strength` of the way to `target`, by at most
    LIP_CHROMA_LIMIT, faded with the lips' `weight` into the skin around them."""
    return shift_lip_chroma(patch, strength * np.clip(target - have, -LIP_CHROMA_LIMIT, LIP_CHROMA_LIMIT), weight)


class LipColour:
    """The drawn lips matched, in frame order, to the median chroma of the lips filmed over the last TARGET_SECONDS
    of the run (reset() where the run breaks: a shot change, a loop jump, a frame without the speaker)."""

    def __init__(self) -> None:
        self._filmed: deque[tuple[float, np.ndarray]] = deque()

    def reset(self) -> None:
        self._filmed.clear()

    def __call__(self, patch: np.ndarray, t: float, lips: LipChroma | None, weight: np.ndarray | None) -> np.ndarray:
        """`patch` drawn over the frame filmed at `t` (seconds) with its lips' chroma matched; `lips` as LipChroma
        (None: not the clip's own atlas, left as drawn), `weight` the lips' (compose.lip_weight)."""
        if lips is None or weight is None:
            return patch
        filmed, have = lips
        if filmed is not None:
            self._filmed.append((t, filmed))
        while self._filmed and self._filmed[0][0] < t - TARGET_SECONDS:
            self._filmed.popleft()
        if have is None or not self._filmed:
            return patch
        return matched_lips(patch, have, np.median([c for _, c in self._filmed], axis=0), weight)
