"""speaker: what the filmed speaker's own mouth does, read off their tracked frames: the expression of each frame
(its width and corner lift above the speaker's own fits of each against the opening, as running medians), how far the
width moves from frame to frame in speech, and how far apart the lips are at rest. The renderer applies speech to
these, so a dub keeps the speaker's smile, spread and resting mouth."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import median_filter

from lipdub import face
from lipdub.render.interior import CLOSED_LINE_OPENING
from lipdub.render.mouth import EXPRESSION_POINTS, corner_lift

EXPRESSION_SECONDS = 1.0  # the filmed expression: a running median of mouth width and corner lift this long
INNER_MIDDLE = [82, 87, 13, 14, 312, 317]  # inner-lip pairs (upper, lower) at the middle: the opening
# the speaker's rest mouth (rest_opening): the lower quartile of the filmed opening in the filmed pauses (breaths
# part the lips in most of them: their median was 0.11-0.15 on four talks, as open as mid-speech) when they add up
# to REST_PAUSE_SECONDS, else a low percentile of all filmed openings; closed under the lips' touch, and for a track
# of fewer than REST_MIN_FRAMES valid frames (a photo shows one mouth, not how its speaker rests)
REST_PAUSE_SECONDS, REST_PAUSE_PERCENTILE, REST_PERCENTILE, REST_MIN_FRAMES = 0.5, 25, 10, 25


class FilmedMouth(NamedTuple):
    """Per track frame: the width and corner lift above their fits on the opening (running medians), the fits (a, b)
    of width = a + b × opening and of lift = a + b × opening, the canonical opening (nan without a face) and the
    width's frame-to-frame spread (None: not measured)."""
    offset: np.ndarray
    lift: np.ndarray
    fit: np.ndarray
    opening: np.ndarray | None
    width_fast: float | None
    lift_fit: np.ndarray


def opening_fit(opening: np.ndarray, value: np.ndarray, slope_max: float) -> np.ndarray:
    """(a, b) of value = a + b × opening over a track's valid frames; the median and no slope for a photo or a
    still mouth (fewer than 30 frames, or openings spread under 0.01)."""
    fit = np.array([float(np.median(value)), 0.0])
    if len(value) >= 30 and np.std(opening) > 0.01:
        b, a = np.polyfit(opening, value, 1)
        fit = np.array([a, float(np.clip(b, -slope_max, slope_max))])
    return fit


def filmed_mouth(track: face.FaceTrack, pose: face.Pose, rest_width: float) -> FilmedMouth:
    """The filmed speaker's expression and width spread (FilmedMouth) from their track. Speech moves width and lift
    back and forth within EXPRESSION_SECONDS, so the running medians keep the expression (a smile widens and lifts).
    The corner lift falls as the mouth opens (the upper lip's middle rises: r −0.68 to −0.96 over seven talking
    clips), so like the width it is kept over its fit on the opening: a lift without it asked the speaker's median
    lift of every mouth, and selection drew middle and wide openings from the atypical mouths with that lift (thin,
    dark gaps between the lips on small faces; docs/RESULTS.md, stop 38)."""
    n = len(track)
    width, lift, opening = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for i in np.flatnonzero(track.valid):
        pts = pose.to_canonical(i, track.landmarks[i, EXPRESSION_POINTS + INNER_MIDDLE].astype(np.float64))
        width[i] = np.linalg.norm(pts[0, :2] - pts[1, :2])
        lift[i] = corner_lift(pts[:3])
        opening[i] = np.mean(pts[4::2, 1] - pts[3::2, 1])
    ok = np.isfinite(width)
    if not ok.any():
        return FilmedMouth(np.zeros(n), np.zeros(n), np.array([rest_width, 0.0]), None, None, np.zeros(2))
    fit = opening_fit(opening[ok], width[ok], 1.0)
    lift_fit = opening_fit(opening[ok], lift[ok], 1.0)
    fps = (ok.sum() - 1) / max(float(np.ptp(track.times[ok])), 1e-6) if ok.sum() > 1 else 1.0
    size = max(1, int(round(EXPRESSION_SECONDS * fps)) | 1)
    idx = np.flatnonzero(ok)
    raw = width[ok] - fit[0] - fit[1] * opening[ok]
    resid = median_filter(raw, size=size, mode="nearest")
    lift_s = median_filter(lift[ok] - lift_fit[0] - lift_fit[1] * opening[ok], size=size, mode="nearest")
    at = np.arange(n)
    return FilmedMouth(np.interp(at, idx, resid), np.interp(at, idx, lift_s), fit, opening, float(np.std(raw - resid)),
                       lift_fit)


def resting(openings: np.ndarray) -> float:
    """A speaker's rest from filmed openings (canonical units) without their pauses: a low percentile, as one who
    never shuts the lips while talking does not rest shut either; closed under the lips' touch and with fewer than
    REST_MIN_FRAMES openings (a photo shows one mouth, not how its speaker rests)."""
    if len(openings) < REST_MIN_FRAMES:
        return 0.0
    rest = float(np.percentile(openings, REST_PERCENTILE))
    return rest if rest >= CLOSED_LINE_OPENING[0] else 0.0


def rest_opening(opening: np.ndarray | None, times: np.ndarray, pauses: np.ndarray | None) -> float:
    """How far the speaker's lips are apart at rest (canonical units; 0 = closed) from the filmed openings per track
    frame (nan without a face): the lower quartile of those in the filmed pauses (`pauses`, per frame), or without
    enough of them resting()."""
    opening = np.zeros(0) if opening is None else opening
    ok = np.isfinite(opening)
    rest = resting(opening[ok])
    if ok.sum() >= REST_MIN_FRAMES and pauses is not None:
        paused = np.zeros(len(ok), bool)
        paused[:min(len(ok), len(pauses))] = np.asarray(pauses, bool)[:len(ok)]
        paused &= ok
        fps = (ok.sum() - 1) / max(float(np.ptp(times[ok])), 1e-6)
        if paused.sum() >= REST_PAUSE_SECONDS * fps:
            rest = float(np.percentile(opening[paused], REST_PAUSE_PERCENTILE))
            rest = rest if rest >= CLOSED_LINE_OPENING[0] else 0.0
    return rest
