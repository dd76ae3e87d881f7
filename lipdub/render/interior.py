"""interior: what shows between the lips (real teeth from a donor frame, or a synthetic cavity) and the lip line
of a mouth closed over an open source."""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.core.landmarks import INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER
from lipdub.render.mouth import CONTROL, INNER_LOWER_POS, INNER_RING, INNER_UPPER_POS, OUTER_RING

_INNER_TO_OUTER = [(CONTROL.index(i), CONTROL.index(o)) for i, o in
                   zip(INNER_UPPER[1:-1] + INNER_LOWER[1:-1], OUTER_UPPER[1:-1] + OUTER_LOWER[1:-1])]


def pull_inner_lips(control: np.ndarray, amount: float) -> np.ndarray:
    """Move the inner-lip control points `amount` of the way towards the outer contour (control-point order)."""
    out = control.copy()
    for i, o in _INNER_TO_OUTER:
        out[i] = control[i] + amount * (control[o] - control[i])
    return out


def rounded(poly: np.ndarray, iterations: int = 2, closed: bool = True) -> np.ndarray:
    """Chaikin corner cutting: the 20-point lip contour becomes a smooth outline instead of a polygon; an open
    polyline (`closed=False`) keeps its end points."""
    for _ in range(iterations):
        nxt = np.roll(poly, -1, axis=0) if closed else poly[1:]
        cut = np.stack([0.75 * poly[:len(nxt)] + 0.25 * nxt, 0.25 * poly[:len(nxt)] + 0.75 * nxt], 1).reshape(-1, 2)
        poly = cut if closed else np.concatenate([poly[:1], cut, poly[-1:]])
    return poly


LIP_LINE_DEPTH = (0.25, 0.5)  # a closed lip line is this much darker than the lips: middle, corners
CLOSED_LINE_OPENING = (0.02, 0.04)  # canonical gaps: squeezed lips below the first touch, above the second part


def soften_lip_line(patch: np.ndarray, control: np.ndarray, roi: tuple[int, int, int, int], px_per_unit: float,
                    amount: float, gap_px: float = 0.0) -> np.ndarray:
    """Lips shut over an open source meet along a hard, pixel-stepped line (the collapsed gap takes its
    neighbours' maps pixel by pixel, and strips of the source's teeth survive in it): blur a thin band along the
    line and draw the soft, dark line that closed lips show there (`gap_px` wide when they are barely parted).
    `amount` 0..1; patch is changed in place and returned."""
    if amount <= 0:
        return patch
    x0, y0 = roi[:2]
    line = 0.5 * (control[INNER_UPPER_POS, :2] + control[INNER_LOWER_POS, :2]) - [x0, y0]
    line = rounded(line, closed=False)
    half = max(3.0, 0.04 * px_per_unit + gap_px)
    bx0, by0 = np.maximum(np.floor(line.min(0) - half).astype(int), 0)
    bx1, by1 = np.minimum(np.ceil(line.max(0) + half).astype(int) + 1, patch.shape[1::-1])
    if bx1 - bx0 < 3 or by1 - by0 < 3:
        return patch
    sub = patch[by0:by1, bx0:bx1].astype(np.float32)
    pts = np.round((line - [bx0, by0]) * 16).astype(np.int32)

    def stroke(thickness: float, sigma: float) -> np.ndarray:
        m = np.zeros(sub.shape[:2], np.uint8)
        cv2.polylines(m, [pts], False, 255, thickness=max(1, int(round(thickness))), lineType=cv2.LINE_AA, shift=4)
        m = cv2.GaussianBlur(m.astype(np.float32), (0, 0), sigma)
        return m / max(float(m.max()), 1e-6)

    band = stroke(max(2.0, 0.02 * px_per_unit + gap_px), max(0.8, 0.006 * px_per_unit))
    crease = stroke(max(1.0, gap_px), max(0.6, 0.003 * px_per_unit))
    lips = sub[(band > 0.3) & (crease < 0.2)]
    lip_colour = np.median(lips, axis=0) if len(lips) else np.median(sub.reshape(-1, 3), axis=0)
    soft = cv2.GaussianBlur(sub, (0, 0), max(0.8, 0.005 * px_per_unit))
    a = (amount * band)[..., None]
    sub = sub * (1 - a) + soft * a
    # the line itself is painted (whatever the squeezed source left there, teeth included): a dark shade of the
    # lips' colour, deepest at the corners, lighter where filmed closed lips press together in the middle
    xs = np.arange(sub.shape[1], dtype=np.float32) + bx0
    rel = (xs - 0.5 * (line[0, 0] + line[-1, 0])) / max(0.5 * abs(line[-1, 0] - line[0, 0]), 1.0)
    depth = LIP_LINE_DEPTH[0] + (LIP_LINE_DEPTH[1] - LIP_LINE_DEPTH[0]) * np.clip(np.abs(rel), 0, 1) ** 2
    target = lip_colour[None, None, :] * (1 - depth)[None, :, None]
    c = (amount * crease)[..., None]
    sub = sub * (1 - c) + target * c
    patch[by0:by1, bx0:bx1] = np.clip(sub + 0.5, 0, 255).astype(np.uint8)
    return patch


def inner_lip_mask(control: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """float32 mask of the mouth opening (inside the inner lip contour, corners rounded) in roi, soft-edged."""
    x0, y0, x1, y1 = roi
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    poly = np.round((rounded(control[INNER_RING, :2]) - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(mask, [poly], 255, lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask, (5, 5), 0).astype(np.float32) / 255.0


def synthetic_cavity(patch: np.ndarray, control: np.ndarray, roi: tuple[int, int, int, int],
                     px_per_unit: float | None = None, teeth: bool = True,
                     visible: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """A mouth interior for faces whose footage never shows one (a closed-mouth photo): a shaded cavity tinted like
    the lips, with a tongue towards the bottom and, when `teeth`, a row of upper teeth under the upper lip (and the
    lower teeth's edges once the mouth is wide open), lit like the face and receding into shadow at the sides."""
    # only the lips' box matters (the result is used inside the inner lip contour): on a large photo the whole
    # lower-face window would cost a quarter second a frame
    full = patch
    rx0, ry0, rx1, ry1 = roi
    outer = control[OUTER_RING, :2]
    bx0, by0 = np.maximum(np.floor(outer.min(0)).astype(int) - 3, [rx0, ry0])
    bx1, by1 = np.minimum(np.ceil(outer.max(0)).astype(int) + 4, [rx1, ry1])
    if bx1 - bx0 < 2 or by1 - by0 < 2:
        return full.copy()
    patch = full[by0 - ry0:by1 - ry0, bx0 - rx0:bx1 - rx0]
    roi = (bx0, by0, bx1, by1)
    x0, y0, x1, y1 = roi
    h, w = patch.shape[:2]
    lips = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lips, [np.round(control[OUTER_RING, :2] - [x0, y0]).astype(np.int32)], 255)
    inner = inner_lip_mask(control, roi) > 0.5
    ring = (lips > 0) & ~inner
    tint = np.median(patch[ring], axis=0).astype(np.float32) if ring.any() else np.array([150, 70, 70], np.float32)
    grey = float(np.ptp(np.median(patch.reshape(-1, 3), axis=0))) < 4  # a black-and-white picture stays grey
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    up = control[INNER_UPPER_POS, :2] - [x0, y0]
    lo = control[INNER_LOWER_POS, :2] - [x0, y0]
    order = np.argsort(up[:, 0])
    y_up = np.interp(xs[0], up[order, 0], up[order, 1])[None, :]  # upper inner lip per column
    order = np.argsort(lo[:, 0])
    y_lo = np.interp(xs[0], lo[order, 0], lo[order, 1])[None, :]
    gap = np.maximum(y_lo - y_up, 1.0)
    depth = np.clip((ys - y_up) / gap, 0, 1)  # 0 under the upper lip .. 1 at the lower lip
    if visible is not None:  # (top, bottom) rows per roi column of what shows between the real teeth
        top, bottom = (np.asarray(v, np.float32)[bx0 - rx0:bx1 - rx0][None, :] + ry0 - y0 for v in visible)
        depth = np.clip((ys - top) / np.maximum(bottom - top, 1.0), 0, 1)
    shade = (0.14 + 0.30 * depth ** 1.5)[..., None]
    tongue = np.array([1.0, 1.0, 1.0] if grey else [1.0, 0.75, 0.75], np.float32)  # redder than the lips' tint
    out = tint[None, None, :] * tongue * shade
    if teeth and px_per_unit:
        left, right = control[CONTROL.index(78), :2] - [x0, y0], control[CONTROL.index(308), :2] - [x0, y0]
        cx, half = 0.5 * (left[0] + right[0]), max(0.5 * abs(right[0] - left[0]), 1.0)
        rel = (xs - cx) / half  # -1 .. 1 corner to corner
        light = float(np.clip(np.mean(tint) / 140.0, 0.55, 1.15))
        enamel = np.array([226, 226, 226] if grey else [232, 226, 212], np.float32) * light
        # crowns: about 0.05 face units tall, never more than 55 % of the gap; darker away from the front
        crown = np.minimum(0.05 * px_per_unit, 0.55 * gap)
        in_upper = np.clip((y_up + crown - ys) / 1.5, 0, 1) * (ys >= y_up - 1)
        lower_crown = np.minimum(0.03 * px_per_unit, np.maximum(gap - 0.11 * px_per_unit, 0) * 0.5)
        in_lower = np.clip((ys - (y_lo - lower_crown)) / 1.5, 0, 1) * (ys <= y_lo + 1)
        recede = np.clip(1 - 0.65 * np.abs(rel) ** 1.6, 0.2, 1)
        # gaps between teeth: incisors ~0.085 units wide, then narrower towards the canines
        edges = np.array([0.0, 0.085, 0.155, 0.215, 0.265, 0.31]) * px_per_unit
        dist = np.min(np.abs(np.abs(xs - cx)[..., None] - edges[None, None, :]), axis=-1)
        seam = 1 - 0.25 * np.exp(-(dist / max(0.006 * px_per_unit, 0.6)) ** 2)
        # a little shade under the lip and towards the biting edge
        top_shadow = np.clip((ys - y_up) / max(0.012 * px_per_unit, 1.0), 0.55, 1.0)
        t_up = (enamel * (recede * seam * top_shadow)[..., None])
        t_lo = enamel * 0.8 * (recede * seam)[..., None]
        m_up = (in_upper * np.clip(1.3 - np.abs(rel), 0, 1))[..., None]
        m_lo = (in_lower * np.clip(1.2 - np.abs(rel), 0, 1))[..., None]
        out = out * (1 - m_up) + t_up * m_up
        out = out * (1 - m_lo) + t_lo * m_lo
    out = cv2.GaussianBlur(np.clip(out, 0, 255).astype(np.float32), (0, 0), 0.6)
    result = full.copy()
    result[by0 - ry0:by1 - ry0, bx0 - rx0:bx1 - rx0] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return result


SPLIT_RANGE = (0.2, 0.9)  # where between its inner lips (0 upper .. 1 lower) a source mouth may be split


def split_rows(rgb: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Per column of `rgb` (a mouth drawn at its filmed opening), the row to split its interior at when a jaw moves
    it: one share of the way from its inner lips `top` to `bottom` (rows per column) all along the mouth, the median
    over the columns of where their darkest row lies (where the upper teeth end and the mouth behind them shows).
    The midway row cut the upper teeth of a mouth whose teeth filled more than half its gap, and their lower edge
    rode down with the lower lip: a grey bar over the lower lip. Midway where no column is 4 px open."""
    gap = bottom - top
    ok, r0, r1 = split_window(top, bottom, rgb.shape[0])
    if ok.any():
        grey = cv2.blur(cv2.cvtColor(rgb[r0:r1], cv2.COLOR_RGB2GRAY).astype(np.float32), (1, 3))
        rows = np.arange(r0, r1, dtype=np.float32)[:, None]
        inside = (rows >= top + SPLIT_RANGE[0] * gap) & (rows <= top + SPLIT_RANGE[1] * gap)
        ok &= inside.any(0)
    if not ok.any():
        return (top + 0.5 * gap).astype(np.float32)
    dark = np.where(inside, grey, np.inf)[:, ok].argmin(0) + r0
    share = float(np.clip(np.median((dark - top[ok]) / gap[ok]), *SPLIT_RANGE))
    return (top + share * gap).astype(np.float32)


def split_window(top: np.ndarray, bottom: np.ndarray, height: int) -> tuple[np.ndarray, int, int]:
    """What split_rows reads of its image: the columns (bool) at least 4 px open, and rows r0..r1 of them (the rows
    between the lips, and one either side for the blur; 0, 0 where no column is open)."""
    ok = bottom - top >= 4
    if not ok.any():
        return ok, 0, 0
    return ok, max(int(np.floor(top[ok].min())) - 1, 0), min(int(np.ceil(bottom[ok].max())) + 2, height)


def inner_polygon(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points[INNER_UPPER], points[INNER_LOWER[::-1][1:-1]]])[:, :2]


GAP_SAMPLE = 64  # atlas entries (spread over their openings) the gap's lightness is measured on
GAP_GAIN_MIN = 0.6  # a squeezed mouth's gap is darkened at most this far
GAP_REMEASURE = 1.25  # a growing atlas's gap lightness is measured again once it holds this many times more entries
GAP_MEASURE_VERSION = 1  # of gap_lightness's values: bump when they change (caches of another are measured again)


def gap_lightness(crop: np.ndarray, ctrl: np.ndarray) -> float:
    """How light what shows between the lips is: the mean grey inside the inner lip contour over the lips' mean grey
    (a share, so another light or colour match leaves it); nan where under 3 pixels are open. `ctrl`: the crop's
    control points (crop pixels)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    inner = np.zeros(grey.shape, np.uint8)
    outer = np.zeros(grey.shape, np.uint8)
    cv2.fillPoly(inner, [np.round(ctrl[INNER_RING, :2] * 16).astype(np.int32)], 1, shift=4)
    cv2.fillPoly(outer, [np.round(ctrl[OUTER_RING, :2] * 16).astype(np.int32)], 1, shift=4)
    inside, lips = inner > 0, (outer > 0) & (inner == 0)
    if inside.sum() < 3 or lips.sum() < 10:
        return float("nan")
    return float(grey[inside].mean()) / max(float(grey[lips].mean()), 1.0)


def stored_gap_lightness(atlas, a: int) -> float:
    """gap_lightness of atlas entry a, measured on its stored image (Atlas.stored: a share, so the same where that
    is the region as filmed)."""
    image, _ = atlas.stored(a)
    return gap_lightness(image, atlas.stored_points(a, atlas.src_controls[a]))


class GapLight:
    """A speaker's gap lightness (gap_lightness) by opening: a running median over atlas entries in opening order.
    A narrow gap is a shadow; the wider the mouth, the more light reaches the teeth (stNg: the filmed gap's grey 116
    at openings 0.04-0.09, 132 at 0.09-0.12, 142 at 0.12-0.16, lips 141 throughout)."""

    def __init__(self, openings: np.ndarray, ratios: np.ndarray):
        ok = np.isfinite(ratios)
        order = np.argsort(openings[ok], kind="stable")
        self.opening = np.asarray(openings[ok][order], np.float64)
        r = np.asarray(ratios[ok][order], np.float64)
        half = max(1, len(r) // 10)
        self.ratio = np.array([np.median(r[max(0, i - half):i + half + 1]) for i in range(len(r))])

    @classmethod
    def of_atlas(cls, atlas, entries: np.ndarray, openings: np.ndarray, measure=None) -> "GapLight":
        """Measured on up to GAP_SAMPLE of `entries` (atlas indices), spread evenly over their `openings` (all
        entries' canonical openings); `measure(a)`: an entry's stored_gap_lightness (a memo of it)."""
        entries = np.asarray(entries, np.int64)
        entries = entries[np.argsort(openings[entries], kind="stable")]
        pick = entries[np.unique(np.linspace(0, len(entries) - 1, min(len(entries), GAP_SAMPLE)).round().astype(int))
                       ] if len(entries) else entries
        measure = measure or (lambda a: stored_gap_lightness(atlas, a))
        ratios = np.array([measure(int(a)) for a in pick])
        return cls(openings[pick], ratios)

    @property
    def ok(self) -> bool:
        return len(self.ratio) >= 5

    def __call__(self, opening: float) -> float:
        return float(np.interp(opening, self.opening, self.ratio))


class GapMatch:
    """How light a mouth's gap should be drawn at an opening (GapMatch.target), for an atlas's entries: the shot's
    own gap lightness there (GapLight of its own entries; on a mixed atlas, render.foreign, the entries after its
    `n_foreign` profile ones) times how much lighter or darker the entry's gap is than its footage's typical one at
    the opening it was filmed at (the profile's footage for a profile mouth). A mouth squeezed from a more open one
    kept its lit teeth where the speaker shows a shadowed gap (stNg rests at 0.066: drawn 129 grey, filmed 119)."""

    def __init__(self, atlas):
        self.atlas = atlas
        self._curves: tuple[GapLight, GapLight, int, int] | None = None  # own, source, n_foreign, entries measured
        self._entry: dict[int, float] = {}  # stored_gap_lightness per entry measured (curves' samples, entries drawn)

    def _measured(self, a: int) -> float:
        entry = self._entry.get(a)
        if entry is None:
            entry = self._entry[a] = stored_gap_lightness(self.atlas, a)
        return entry

    def measured(self, openings: np.ndarray) -> dict[int, float]:
        """Every entry's gap lightness the curves are measured on (and those measured so far): kept with a cached
        atlas, a prepared video's dubs read them (remember) instead of decoding and measuring up to GAP_SAMPLE
        entries again (~0.1 s of CPU a dub)."""
        self._measure_curves(openings)
        return dict(self._entry)

    def remember(self, measured: dict[int, float]) -> None:
        """Entries' gap lightness measured before (measured(), on this atlas's stored images)."""
        self._entry.update(measured)

    def _measure_curves(self, openings: np.ndarray) -> None:
        n = len(openings)
        if self._curves is None or n > GAP_REMEASURE * self._curves[3]:  # (live mode's atlas grows as frames come)
            n_foreign = int(getattr(self.atlas, "n_foreign", 0))
            own = GapLight.of_atlas(self.atlas, np.arange(n_foreign, n), openings, self._measured)
            foreign = GapLight.of_atlas(self.atlas, np.arange(n_foreign), openings, self._measured) if n_foreign \
                else own
            self._curves = own, foreign, n_foreign, n

    def target(self, a: int, opening: float, openings: np.ndarray) -> float:
        """Entry a's gap lightness drawn at `opening`; nan where not measured. `openings`: every entry's canonical
        opening (the renderer's index of the atlas)."""
        self._measure_curves(openings)
        own, foreign, n_foreign, _ = self._curves
        source = foreign if a < n_foreign else own
        if not (own.ok and source.ok):
            return float("nan")
        entry = self._measured(a)
        return own(opening) * (entry / source(float(openings[a])) if np.isfinite(entry) else 1.0)


def darken_gap(patch: np.ndarray, control: np.ndarray, roi: tuple[int, int, int, int], gain: float) -> np.ndarray:
    """`patch` with what shows between its lips (control points `control`, frame pixels) darkened by `gain`."""
    m = (inner_lip_mask(control, roi) * (1.0 - gain)).astype(np.float32)
    return cv2.blendLinear(np.zeros_like(patch), patch, m, 1.0 - m)
