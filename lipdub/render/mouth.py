"""mouth: the speaker's mouth in canonical units, its descriptors (opening, width) and the shape at a wanted opening.

Also the control points of the lower-face warp (CONTROL) and where the lip contours sit among them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.core.landmarks import INNER_LOWER, INNER_UPPER, JAW, LOWER_FACE, OUTER_LOWER, OUTER_UPPER, UPPER_EDGE

LIPS = sorted(set(OUTER_UPPER + OUTER_LOWER + INNER_UPPER + INNER_LOWER))
CONTROL = sorted(set(LIPS + JAW + UPPER_EDGE + LOWER_FACE))
INNER_PAIRS = list(zip(INNER_UPPER[1:-1], INNER_LOWER[1:-1]))  # vertically opposite inner-lip points
OUTER_PAIRS = list(zip(OUTER_UPPER[1:-1], OUTER_LOWER[1:-1]))

# positions within the control points, looked up once rather than on every frame
INNER_RING = [CONTROL.index(i) for i in INNER_UPPER + INNER_LOWER[::-1][1:-1]]
OUTER_RING = [CONTROL.index(i) for i in OUTER_UPPER + OUTER_LOWER[::-1][1:-1]]
INNER_UPPER_POS = [CONTROL.index(i) for i in INNER_UPPER]
INNER_LOWER_POS = [CONTROL.index(i) for i in INNER_LOWER]
LIPS_POS = [CONTROL.index(i) for i in LIPS]
OUTER_LIPS_POS = [CONTROL.index(i) for i in OUTER_UPPER + OUTER_LOWER]
JAW_POS = [CONTROL.index(i) for i in JAW]
UPPER_EDGE_POS = [CONTROL.index(i) for i in UPPER_EDGE]

@dataclass
class MouthModel:
    """The speaker's mouth in canonical units (eye-corner distance = 1)."""

    canonical: np.ndarray  # (478, 3) mean face
    open_max: float  # inner-lip gap of the speaker's wide-open mouth
    rest_width: float  # corner-to-corner width at rest

    def __post_init__(self):
        c = self.canonical
        xs = np.array([c[u, 0] for u, _ in INNER_PAIRS])
        half = max(0.5 * abs(c[308, 0] - c[78, 0]), 1e-3)
        # gap profile of an opening mouth whose source is closed: widest at the centre, zero at the corners
        self.closed_profile = np.clip(1 - ((xs - 0.5 * (c[78, 0] + c[308, 0])) / half) ** 2, 0, 1) ** 0.9
        self.jaw_weight = self._jaw_weight()

    def _jaw_weight(self) -> np.ndarray:
        """How much each point follows a jaw drop (0 skull .. ~0.85 chin), from its canonical position."""
        c = self.canonical
        mc = 0.5 * (c[13] + c[14])
        corner_y = 0.5 * (c[61, 1] + c[291, 1])
        half_jaw = 0.5 * (c[JAW, 0].max() - c[JAW, 0].min())
        dx = np.abs(c[:, 0] - mc[0]) / half_jaw
        below = np.clip((c[:, 1] - corner_y) / 0.12, 0.0, 1.0)
        w = 0.85 * np.clip(1 - dx ** 1.5, 0, 1) * below
        return w


def descriptors(norm: np.ndarray) -> np.ndarray:
    """(…, 478, 3) canonical landmarks → (…, 2): inner opening, mouth width."""
    gap = np.mean([norm[..., lo, 1] - norm[..., up, 1] for up, lo in INNER_PAIRS[3:6]], axis=0)
    width = np.linalg.norm(norm[..., 61, :2] - norm[..., 291, :2], axis=-1)
    return np.stack([np.maximum(gap, 0.0), width], axis=-1)


EXPRESSION_POINTS = [61, 291, 13]  # the mouth corners and the upper inner lip's middle


def corner_lift(pts: np.ndarray) -> np.ndarray:
    """How far the mouth corners sit above the upper lip's middle (canonical units; a smile lifts them), from
    (…, 478, 2|3) canonical landmarks or (…, 3, 2|3) EXPRESSION_POINTS."""
    if pts.shape[-2] != len(EXPRESSION_POINTS):
        pts = pts[..., EXPRESSION_POINTS, :]
    return pts[..., 2, 1] - 0.5 * (pts[..., 0, 1] + pts[..., 1, 1])


def build_mouth_model(canonical: np.ndarray, norm: np.ndarray, valid: np.ndarray) -> MouthModel:
    d = descriptors(norm[valid]) if valid.any() else np.zeros((0, 2))
    if len(d) >= 100 and np.percentile(d[:, 0], 95) > 0.06:
        # seconds of speech show how wide this speaker opens (some anchors barely do: asking for more than they
        # ever show gives oversized, painted mouths)
        open_max = float(np.clip(np.percentile(d[:, 0], 97), 0.09, 0.45))
    elif len(d) >= 10 and np.percentile(d[:, 0], 95) > 0.08:
        open_max = float(np.clip(np.percentile(d[:, 0], 97), 0.16, 0.45))
    else:  # a photo or a clip that never opens: a typical speaker's wide-open mouth
        open_max = 0.26
    closed = d[d[:, 0] < 0.04, 1] if len(d) else np.zeros(0)
    rest_width = float(np.median(closed)) if len(closed) >= 3 else float(np.median(d[:, 1])) if len(d) else 0.9
    return MouthModel(canonical, open_max, rest_width)


def target_shape(model: MouthModel, source: np.ndarray, opening: float, width: float) -> np.ndarray:
    """Move `source` (478,3 canonical) so its inner-lip gap is `opening` and its width `width` (canonical units).

    Each inner-lip pair gets exactly the wanted gap (keeping the source's gap profile when it has one); the outer
    lower lip follows its inner partner; chin and jaw follow the centre of the lower lip through jaw_weight."""
    out = source.astype(np.float64).copy()
    ups = [u for u, _ in INNER_PAIRS]
    los = [l for _, l in INNER_PAIRS]
    src_gap = source[los, 1] - source[ups, 1]
    centre_gap = max(float(descriptors(source)[0]), 0.0)
    if centre_gap > 0.03:
        profile = np.clip(src_gap, 0, None) / centre_gap
    else:
        profile = model.closed_profile
    want = opening * profile
    raise_up = 0.08 * (want - np.clip(src_gap, 0, None))  # the upper lip lifts a little as the mouth opens
    out[ups, 1] -= raise_up
    new_lo = out[ups, 1] + want
    drop = new_lo - source[los, 1]
    centre_drop = float(drop[len(drop) // 2])
    jaw = model.jaw_weight * centre_drop
    jaw[LIPS] = 0.0
    out[:, 1] += jaw
    out[los, 1] = new_lo
    outer_lo = [l for _, l in OUTER_PAIRS]
    out[outer_lo, 1] = source[outer_lo, 1] + 0.9 * drop
    outer_up = [u for u, _ in OUTER_PAIRS]
    out[outer_up, 1] -= 0.7 * raise_up
    for corner in (61, 291, 78, 308):
        out[corner, 1] += 0.3 * centre_drop
    # width: corners and nearby lip/cheek points slide horizontally, fading with vertical distance
    cur_w = float(np.linalg.norm(out[61, :2] - out[291, :2]))
    dw = width - cur_w
    mc = 0.5 * (out[13] + out[14])
    rel = np.clip((out[:, 0] - mc[0]) / max(0.5 * cur_w, 1e-3), -1.3, 1.3)
    fall = np.exp(-((out[:, 1] - mc[1]) / 0.22) ** 2) * np.exp(-np.maximum(np.abs(rel) - 1, 0) / 0.3)
    fall *= np.clip((out[:, 1] - model.canonical[2, 1]) / 0.08, 0.0, 1.0)  # nothing above the nose base moves
    out[:, 0] += 0.5 * dw * rel * fall
    return out


