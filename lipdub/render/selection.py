"""selection: which atlas entry each output frame draws its mouth from, and the one cost both choices use.

Offline dubs choose by Viterbi over the whole clip (select_frames); live mode, which cannot wait for the future, takes
the cheapest of the nearest entries given the one before (render.live.LiveAppearance.choose). Both add up the same
terms, defined once here:

- match: squared distance between scaled mouth descriptors (opening, width, …) plus `pose_weight` × the squared
  head-pose difference, plus a per-entry penalty (blur_cost); the opening axis is stretched below a parted mouth
  (small_open_axis), offline and live; a mouth filmed much more open than wanted costs more (squeeze_cost);
- transition: continuing to the next real frame (sequence number +1 or +2) is free, holding a frame costs
  HOLD_SHARE × the jump cost, any other jump the jump cost;
- proximity (the clip's own atlas, offline): a mouth filmed far in time from the frame it is drawn over costs up to
  PROXIMITY_WEIGHT more (proximity_cost), so each frame prefers mouths filmed around it: they carry that moment's
  expression (a smile), light and stubble, and one mouth is no longer drawn all over the clip. Live sessions on a
  video file's prepared atlas could take it (and the filmed expression) too; tried, it did not make live dubs
  harder to tell (docs/RESULTS.md, Live mode with a profile), so live selection goes without.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from scipy.spatial import cKDTree

from lipdub.render.interior import CLOSED_LINE_OPENING
from lipdub.render.mouth import MouthModel

# the costs rendering chooses with, offline and live
JUMP_COST = 0.05
POSE_WEIGHT = 2.0
HOLD_SHARE = 0.15  # holding a frame costs this share of a jump
PROXIMITY_WEIGHT = 0.1  # the most a mouth filmed far from the frame it is drawn over costs
PROXIMITY_SECONDS = 1.0  # ... reached this far apart (quadratic up to there)
SMALL_OPEN_STRETCH = 2.0  # selection tells openings under a parted mouth's apart this much more
OPEN_PEERS = 0.1  # an entry's sharpness is judged against this share of the atlas nearest to it in opening
SQUEEZE_WEIGHT = 3.0  # cost of a mouth squeezed to e^-1 of its filmed opening beyond the tolerance (squeeze_cost)
SQUEEZE_TOLERANCE = 0.2  # log of filmed / wanted opening squeezed for free
SQUEEZE_FLOOR = 0.02  # canonical gap added to both openings: a shut mouth's ratio stays finite
SQUEEZE_FADE = (CLOSED_LINE_OPENING[1], 0.09)  # wanted openings (canonical) over which squeeze_cost fades out


def descriptor_scale(model: MouthModel) -> np.ndarray:
    """Weights of the (opening, width) descriptors: the speaker's wide-open gap counts as much as a third of the
    mouth's rest width."""
    return np.array([1 / model.open_max, 3 / model.rest_width])


def small_open_axis(desc: np.ndarray) -> np.ndarray:
    """(opening, width, …) descriptors with the opening axis stretched (1 + SMALL_OPEN_STRETCH)-fold below a parted
    mouth (CLOSED_LINE_OPENING's second gap) and shifted above it. A shut or barely parted mouth drawn from a more
    open one needs its lip line redrawn, the tell a detector catches most, so small openings are matched closely."""
    out = desc.astype(np.float64).copy()
    out[:, 0] += SMALL_OPEN_STRETCH * np.minimum(out[:, 0], CLOSED_LINE_OPENING[1])
    return out


def squeeze_cost(entry_open: np.ndarray, want_open: np.ndarray) -> np.ndarray:
    """Cost of drawing a mouth filmed at `entry_open` at the smaller `want_open` (canonical, broadcast): squared log
    of filmed over wanted opening (each plus SQUEEZE_FLOOR) beyond SQUEEZE_TOLERANCE, in full for wanted openings up
    to a parted mouth's, fading out over SQUEEZE_FADE. A more open mouth squeezed nearly shut keeps its lit teeth and
    inner lips where the speaker shows a shadowed gap (stop 35: 43 of woman_outdoor's 66 frames wanted under 0.06);
    the ratio, not the difference, charges it, so small openings are drawn from mouths near their own opening or
    from shut ones opened by the warp. Open mouths keep their choice (a stretch of their axis moved the detector
    from clip to clip), and a mouth drawn more open than filmed costs nothing here."""
    want = np.asarray(want_open, np.float64)
    ratio = np.log((np.asarray(entry_open, np.float64) + SQUEEZE_FLOOR) / (want + SQUEEZE_FLOOR))
    lo, hi = SQUEEZE_FADE
    return SQUEEZE_WEIGHT * np.clip((hi - want) / (hi - lo), 0.0, 1.0) * np.maximum(ratio - SQUEEZE_TOLERANCE, 0.0) ** 2


def typical_sharpness(sharpness: np.ndarray, opening: np.ndarray | None = None) -> np.ndarray:
    """Per entry, the sharpness of the atlas's typical mouth at its opening: the median over the OPEN_PEERS share of
    entries nearest to it in opening (the whole atlas's median without `opening`). The lips' Laplacian variance
    grows with what shows between them (teeth against a dark gap: it follows the opening with R² 0.54 on stNg), so
    against the whole atlas's median a shut or barely parted mouth counted as blurred, and selection drew small
    openings from more open, toothy mouths squeezed shut: a lit line of teeth where the speaker shows a shadowed gap."""
    sharp = np.asarray(sharpness, np.float64)
    n = len(sharp)
    if opening is None or n < 3:
        return np.full(n, float(np.median(sharp)) if n else 0.0)
    order = np.argsort(np.asarray(opening, np.float64), kind="stable")
    half = max(2, int(round(OPEN_PEERS * n / 2)))
    out = np.empty(n)  # a running median in opening order ('mirror' is numpy's 'reflect': d c b | a b c d)
    out[order] = median_filter(sharp[order], size=2 * half + 1, mode="mirror")
    return out


def blur_cost(sharpness: np.ndarray, opening: np.ndarray | None = None, split: int = 0) -> np.ndarray:
    """Penalty for atlas frames blurrier than the atlas's typical frame at their opening (typical_sharpness):
    motion blur ghosts the lips. `split` > 0: a mixed atlas (render.foreign) whose first `split` entries are a
    profile's, each source measured against its own typical mouth. Pooled, a profile's many sharper shut mouths made
    the shot's own shut mouths count as blurred, and its sharpest was drawn at most closures (cnn_anchor: one entry on
    14 of 22, read as dubbed with p 0.70; docs/RESULTS.md, stop 42)."""
    sharp = np.asarray(sharpness, np.float64)
    if split > 0:
        opening = [None, None] if opening is None else [opening[:split], opening[split:]]
        return np.concatenate([blur_cost(sharp[:split], opening[0]), blur_cost(sharp[split:], opening[1])])
    typical = typical_sharpness(sharp, opening)
    ok = typical > 0
    return np.where(ok, 0.3 * np.clip(1 - sharp / np.where(ok, typical, 1.0), 0, 1) ** 2, 0.0)


def search_space(desc: np.ndarray, pose: np.ndarray, pose_weight: float) -> np.ndarray:
    """Descriptors and pose features side by side, pose scaled so that a squared Euclidean distance here is
    squared_distance(): what the k-d trees search."""
    return np.concatenate([desc, np.sqrt(pose_weight) * pose], -1)


def squared_distance(desc: np.ndarray, pose: np.ndarray, want: np.ndarray, want_pose: np.ndarray,
                     pose_weight: float) -> np.ndarray:
    """Shape distance on scaled descriptors plus pose_weight × pose difference (both squared), per entry."""
    return ((desc - want) ** 2).sum(-1) + pose_weight * ((pose - want_pose) ** 2).sum(-1)


def match_cost(squared: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Cost of drawing from an entry at this squared distance with this per-entry penalty."""
    return squared + penalty


def proximity_cost(entry_time: np.ndarray, want_time: np.ndarray) -> np.ndarray:
    """Cost of drawing a mouth filmed at `entry_time` over a frame filmed at `want_time` (seconds, broadcast):
    quadratic in the distance, PROXIMITY_WEIGHT from PROXIMITY_SECONDS apart on."""
    return PROXIMITY_WEIGHT * np.minimum(1.0, ((entry_time - want_time) / PROXIMITY_SECONDS) ** 2)


def transition_cost(step: np.ndarray, jump_cost: float) -> np.ndarray:
    """Cost of moving between entries whose sequence numbers differ by `step`: continuing a real run is free,
    holding a frame costs a little, any other jump `jump_cost`."""
    trans = np.full(step.shape, jump_cost)
    trans[(step >= 1) & (step <= 2)] = 0.0
    trans[step == 0] = HOLD_SHARE * jump_cost
    return trans


def select_frames(atlas_desc: np.ndarray, atlas_pose: np.ndarray, atlas_seq: np.ndarray,
                  want: np.ndarray, want_pose: np.ndarray, k: int = 24, jump_cost: float = 0.6,
                  pose_weight: float = 1.0, atlas_cost: np.ndarray | None = None,
                  atlas_time: np.ndarray | None = None, want_time: np.ndarray | None = None,
                  atlas_open: np.ndarray | None = None, want_open: np.ndarray | None = None) -> np.ndarray:
    """Viterbi over the k best atlas candidates per output frame (unit selection).

    atlas_desc (A,D) and want (T,D) are weighted descriptors (opening, width, teeth…); atlas_cost (A,) is a per-entry
    penalty (blur); continuing to the next real frame (next sequence number) costs nothing, holding a frame costs a
    little, any other jump costs `jump_cost`. With atlas_time (A,) and want_time (T,) (when each entry and each
    output frame's source frame were filmed: the clip's own atlas), proximity_cost is added; with atlas_open (A,) and
    want_open (T,) (canonical openings, filmed and wanted), squeeze_cost. Candidates come from
    k-d trees, so the cost grows with log(A), not A: minutes of profile footage stay cheap."""
    T, A = len(want), len(atlas_desc)
    if A == 1:
        return np.zeros(T, np.int64)
    feats = search_space(atlas_desc, atlas_pose, pose_weight)
    query = search_space(want, want_pose, pose_weight)
    extra = atlas_cost if atlas_cost is not None else np.zeros(A)
    # the k nearest by descriptor, then re-ranked with the per-entry penalty among 2k; a block of output frames at a
    # time (an hour's 2k-wide temporaries took ~200 MB)
    kq, k = min(A, 2 * k), min(k, A)
    tree = cKDTree(feats)
    near = None
    if atlas_time is not None and want_time is not None:
        # a second search with time as one more (quadratic) axis finds the fitting mouths filmed nearby
        w = np.sqrt(PROXIMITY_WEIGHT) / PROXIMITY_SECONDS
        near = cKDTree(np.concatenate([feats, w * atlas_time[:, None]], 1))
        query_t = np.concatenate([query, w * np.asarray(want_time, np.float64)[:, None]], 1)
    cand, cost = np.zeros((T, k), np.int64), np.zeros((T, k))
    for t0 in range(0, T, 8192):
        dist, idx = tree.query(query[t0:t0 + 8192], k=kq)
        dist, idx = dist.reshape(-1, kq), idx.reshape(-1, kq)
        full = match_cost(dist ** 2, extra[idx])  # the tree's distance: squared_distance() over search_space()
        if near is not None:
            _, idx_t = near.query(query_t[t0:t0 + 8192], k=kq)
            idx = np.concatenate([idx, idx_t.reshape(-1, kq)], 1)
            idx.sort(axis=1)
            wt = np.asarray(want_time, np.float64)[t0:t0 + 8192, None]
            d2 = ((feats[idx] - query[t0:t0 + 8192, None, :]) ** 2).sum(-1)
            full = match_cost(d2, extra[idx]) + proximity_cost(atlas_time[idx], wt)
            full[:, 1:][idx[:, 1:] == idx[:, :-1]] = np.inf  # found by both searches: counted once
        if atlas_open is not None and want_open is not None:
            full = full + squeeze_cost(atlas_open[idx], np.asarray(want_open, np.float64)[t0:t0 + 8192, None])
        order = np.argsort(full, axis=1)[:, :k]
        cand[t0:t0 + 8192] = np.take_along_axis(idx, order, 1)
        cost[t0:t0 + 8192] = np.take_along_axis(full, order, 1)
    acc = cost[0].copy()
    back = np.zeros((T, k), np.int64)
    for t in range(1, T):
        step = atlas_seq[cand[t]][None, :] - atlas_seq[cand[t - 1]][:, None]
        tot = acc[:, None] + transition_cost(step, jump_cost)
        back[t] = np.argmin(tot, axis=0)
        acc = tot[back[t], np.arange(k)] + cost[t]
    path = np.zeros(T, np.int64)
    j = int(np.argmin(acc))
    for t in range(T - 1, -1, -1):
        path[t] = cand[t, j]
        j = back[t, j]
    return path
