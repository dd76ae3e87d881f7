"""speaker: what the filmed speaker's own mouth does, read off their tracked frames: the expression of each frame
(its corner lift, as a running median), how wide the mouth is at each opening and how much that varies, and how far
apart the lips are at rest. The renderer applies speech to these, so a dub keeps the speaker's smile, widths and
resting mouth."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import median_filter
from scipy.special import ndtr, ndtri

from lipdub import face
from lipdub.render.interior import CLOSED_LINE_OPENING
from lipdub.render.mouth import EXPRESSION_POINTS, corner_lift

EXPRESSION_SECONDS = 1.0  # the filmed expression: a running median of the corner lift this long
INNER_MIDDLE = [82, 87, 13, 14, 312, 317]  # inner-lip pairs (upper, lower) at the middle: the opening
# the speaker's rest mouth (rest_opening): the lower quartile of the filmed opening in the filmed pauses (breaths
# part the lips in most of them: their median was 0.11-0.15 on four talks, as open as mid-speech) when they add up
# to REST_PAUSE_SECONDS, else a low percentile of all filmed openings; closed under the lips' touch, and for a track
# of fewer than REST_MIN_FRAMES valid frames (a photo shows one mouth, not how its speaker rests)
REST_PAUSE_SECONDS, REST_PAUSE_PERCENTILE, REST_PERCENTILE, REST_MIN_FRAMES = 0.5, 25, 10, 25
# the speaker's widths at an opening (WidthCurve): the filmed widths of the WIDTH_WINDOW share of frames nearest in
# opening, at WIDTH_KNOTS quantiles of the filmed opening, as their quantiles at WIDTH_PROBS; fewer than
# WIDTH_MIN_FRAMES frames, or a still opening: the widths of all frames
WIDTH_KNOTS, WIDTH_WINDOW, WIDTH_MIN_FRAMES = 10, 0.2, 30
WIDTH_PROBS = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])


class WidthCurve(NamedTuple):
    """The filmed speaker's mouth widths against the opening (canonical units): per knot of the opening, the
    quantiles (WIDTH_PROBS) of the widths filmed there, straight between knots, the line fit's slope beyond them.
    A width is asked for by its rank there (a normal score: 0 the median, -1.28 the 10th percentile), so a dub's
    mouths at an opening are as wide, and vary as much, as the speaker's own at it. A line fit of width on opening
    with a shared spread wanted 0.58 at selfie_expressive's openings 0.18-0.24, where her own mouths are 0.55
    wide: most of her wide-open mouths are rounded (docs/RESULTS.md, stop 33)."""
    opening: np.ndarray  # (K,) increasing
    width: np.ndarray  # (K, len(WIDTH_PROBS)), each row non-decreasing
    slope: float

    def _rows(self, opening: np.ndarray) -> np.ndarray:
        """(N, len(WIDTH_PROBS)) width quantiles at openings (N,)."""
        o = np.asarray(opening, np.float64).ravel()
        rows = np.stack([np.interp(o, self.opening, col) for col in self.width.T], -1)
        lo, hi = self.opening[0], self.opening[-1]
        return rows + (self.slope * (np.minimum(o - lo, 0) + np.maximum(o - hi, 0)))[:, None]

    def __call__(self, opening: np.ndarray | float, score: np.ndarray | float = 0.0) -> np.ndarray:
        """The width at `opening` of rank `score` (normal scores, clipped to WIDTH_PROBS' range)."""
        o, z = np.broadcast_arrays(np.asarray(opening, np.float64), np.asarray(score, np.float64))
        rows = self._rows(o)
        u = np.clip(ndtr(z.ravel()), WIDTH_PROBS[0], WIDTH_PROBS[-1])
        i = np.clip(np.searchsorted(WIDTH_PROBS, u) - 1, 0, len(WIDTH_PROBS) - 2)
        f = (u - WIDTH_PROBS[i]) / (WIDTH_PROBS[i + 1] - WIDTH_PROBS[i])
        at = np.arange(len(u))
        return (rows[at, i] * (1 - f) + rows[at, i + 1] * f).reshape(o.shape)

    def score(self, opening: np.ndarray, width: np.ndarray) -> np.ndarray:
        """The rank of each filmed width among the speaker's widths at its opening, as a normal score."""
        rows = self._rows(opening)
        u = np.array([np.interp(w, row, WIDTH_PROBS) if np.ptp(row) > 0 else 0.5
                      for w, row in zip(np.asarray(width, np.float64).ravel(), rows)])
        return ndtri(u)

    @classmethod
    def line(cls, a: float, b: float) -> "WidthCurve":
        """width = a + b × opening at every rank."""
        return cls(np.array([0.0, 1.0]), np.array([[a] * len(WIDTH_PROBS), [a + b] * len(WIDTH_PROBS)]), float(b))


def width_curve(opening: np.ndarray, width: np.ndarray, slope: float) -> WidthCurve:
    """WidthCurve from filmed (opening, width) pairs: at WIDTH_KNOTS quantiles of the opening, the quantiles of the
    widths of the WIDTH_WINDOW share of frames nearest in opening order."""
    order = np.argsort(opening, kind="stable")
    o, w = opening[order], width[order]
    n = len(o)
    half = max(2, int(round(WIDTH_WINDOW * n / 2)))
    ranks = np.round((np.arange(WIDTH_KNOTS) + 0.5) / WIDTH_KNOTS * (n - 1)).astype(int)
    knots_o = np.array([np.median(o[max(0, r - half):r + half + 1]) for r in ranks])
    knots_w = np.stack([np.quantile(w[max(0, r - half):r + half + 1], WIDTH_PROBS) for r in ranks])
    keep = np.r_[True, np.diff(knots_o) > 1e-6]  # np.interp wants increasing knots (a still mouth repeats them)
    return WidthCurve(knots_o[keep], knots_w[keep], slope)


class FilmedMouth(NamedTuple):
    """Per track frame: the corner lift (a running median) and the canonical opening (nan without a face); the
    speaker's widths against the opening (`curve`)."""
    lift: np.ndarray
    curve: WidthCurve
    opening: np.ndarray | None


def filmed_mouth(track: face.FaceTrack, pose: face.Pose, rest_width: float) -> FilmedMouth:
    """The filmed speaker's expression and widths (FilmedMouth) from their track. Speech moves the corner lift back
    and forth within EXPRESSION_SECONDS, so its running median keeps the expression (a smile lifts)."""
    n = len(track)
    width, lift, opening = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for i in np.flatnonzero(track.valid):
        pts = pose.to_canonical(i, track.landmarks[i, EXPRESSION_POINTS + INNER_MIDDLE].astype(np.float64))
        width[i] = np.linalg.norm(pts[0, :2] - pts[1, :2])
        lift[i] = corner_lift(pts[:3])
        opening[i] = np.mean(pts[4::2, 1] - pts[3::2, 1])
    ok = np.isfinite(width)
    if not ok.any():
        return FilmedMouth(np.zeros(n), WidthCurve.line(rest_width, 0.0), None)
    if ok.sum() < WIDTH_MIN_FRAMES:  # a photo: its one mouth (too few to rank a width among)
        curve = WidthCurve.line(float(np.median(width[ok])), 0.0)
    else:  # a still opening has no slope and one knot: the widths of all frames
        b = float(np.polyfit(opening[ok], width[ok], 1)[0]) if np.std(opening[ok]) > 0.01 else 0.0
        curve = width_curve(opening[ok], width[ok], float(np.clip(b, -1.0, 1.0)))
    fps = (ok.sum() - 1) / max(float(np.ptp(track.times[ok])), 1e-6) if ok.sum() > 1 else 1.0
    size = max(1, int(round(EXPRESSION_SECONDS * fps)) | 1)
    lift_s = median_filter(lift[ok], size=size, mode="nearest")
    return FilmedMouth(np.interp(np.arange(n), np.flatnonzero(ok), lift_s), curve, opening)


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
