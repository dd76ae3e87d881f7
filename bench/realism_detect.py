"""The realism benchmark's detector (bench/realism.py runs it): mouth crops, their features, sampling with the same
distribution of mouth opening on both sides, a regularised logistic regression and its cross-validation over
1-second blocks, and the blind-pair sheet. Pure numpy + OpenCV + scikit-image: tested on generated data.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.feature import hog

from lipdub.core.landmarks import EYE_OUTER

CROP = 128  # mouth crops are cut at this size (the blind pairs show them); features use FEATURE_SIZE
FEATURE_SIZE = 64
BOX_SCALE = 1.1  # crop side in eye-corner distances, centred on the mouth
MOUTH_POINTS = (13, 14, 61, 291, 0, 17)  # inner-lip middle, corners, outer-lip middle
POSE_POINTS = (1, 4, 6, 168, 33, 263, 133, 362, 234, 454, 10)  # nose, eye corners, the face's sides, forehead
NOSE_TIP = 1
HOG_SIZE = 324  # (64/16 - 1)^2 blocks x 2x2 cells x 9 orientations
# the columns of `features`: HOG, Lab mean + std, sharpness, frame-to-frame change
FEATURE_GROUPS = {"hog": slice(0, HOG_SIZE), "colour": slice(HOG_SIZE, HOG_SIZE + 6),
                  "sharpness": slice(HOG_SIZE + 6, HOG_SIZE + 7), "change": slice(HOG_SIZE + 7, HOG_SIZE + 8)}


def mouth_box(lms: np.ndarray, scale: float = BOX_SCALE) -> tuple[float, float, float]:
    """(cx, cy, side) of the square mouth crop from one frame's (478, 2|3) landmarks: side from the eye distance."""
    iod = float(np.linalg.norm(lms[EYE_OUTER[0], :2] - lms[EYE_OUTER[1], :2]))
    cx, cy = lms[list(MOUTH_POINTS), :2].mean(0)
    return float(cx), float(cy), scale * iod


def cut(rgb: np.ndarray, box: tuple[float, float, float], size: int = CROP) -> np.ndarray:
    """The square `box` of `rgb` resized to size x size (edge pixels repeated where the box leaves the frame)."""
    cx, cy, side = box
    half = side / 2
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    n = max(2, int(round(side)))
    h, w = rgb.shape[:2]
    xs = np.clip(np.arange(x0, x0 + n), 0, w - 1)
    ys = np.clip(np.arange(y0, y0 + n), 0, h - 1)
    patch = rgb[ys[:, None], xs[None, :]]
    interp = cv2.INTER_AREA if n > size else cv2.INTER_CUBIC
    return cv2.resize(patch, (size, size), interpolation=interp)


def crop_pose(lms: np.ndarray) -> np.ndarray:
    """(22,) where POSE_POINTS sit in one frame's mouth crop (offsets from its centre, per crop side): what HOG sees of
    the head's pose. The crop's centre is the mouth's, so a mouth drawn elsewhere in the face moves these too."""
    cx, cy, side = mouth_box(lms)
    return ((lms[list(POSE_POINTS), :2] - [cx, cy]) / side).ravel()


def head_pose(lms: np.ndarray) -> np.ndarray:
    """(3,) the head's pose from points no drawn mouth moves: roll (the eye line's angle, radians), and the nose tip's
    offset from the eyes' midpoint along and across the eye line, in eye distances (turn and nod)."""
    a, b = lms[EYE_OUTER[0], :2], lms[EYE_OUTER[1], :2]
    axis = b - a
    iod = float(np.linalg.norm(axis)) + 1e-9
    u = axis / iod
    v = np.array([-u[1], u[0]])
    nose = lms[NOSE_TIP, :2] - (a + b) / 2
    return np.array([np.arctan2(axis[1], axis[0]), nose @ u / iod, nose @ v / iod])


# ------------------------------------------------------------------------------------------------------ features

def frame_features(crop: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """One crop's features: gradient-orientation histograms of the grey crop (HOG), Lab colour mean/std, sharpness
    (log variance of the Laplacian) and the change from the previous frame's crop (mean absolute grey difference)."""
    small = cv2.resize(crop, (FEATURE_SIZE, FEATURE_SIZE), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    h = hog(grey, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2), feature_vector=True)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    sharp = np.log(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var() + 1e-3)
    if previous is None:
        change = np.nan
    else:
        prev = cv2.cvtColor(cv2.resize(previous, (FEATURE_SIZE, FEATURE_SIZE), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_RGB2GRAY)
        change = float(np.abs(grey.astype(np.float64) - prev).mean())
    return np.concatenate([h, lab.mean(0), lab.std(0), [sharp, np.log1p(change) if change == change else np.nan]])


def features(crops: list[np.ndarray], follows: list[bool]) -> np.ndarray:
    """(N, D) features of a side's crops in time order; follows[i]: crop i-1 is the frame just before crop i (else the
    change feature is missing and filled with the side's median)."""
    rows = [frame_features(c, crops[i - 1] if i and follows[i] else None) for i, c in enumerate(crops)]
    X = np.array(rows, np.float64)
    last = X[:, -1]
    fill = np.nanmedian(last) if np.isfinite(last).any() else 0.0
    X[~np.isfinite(last), -1] = fill
    return X


# ------------------------------------------------------------------------------------------------------ sampling

def matched_sample(open_a: np.ndarray, open_b: np.ndarray, bins: int = 8,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices into a and b with the same number of each in every mouth-opening bin (quantile bins of the pooled
    openings), so the two sides share one distribution of opening."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([open_a, open_b])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)))
    ba = np.clip(np.searchsorted(edges, open_a, side="right") - 1, 0, len(edges) - 2)
    bb = np.clip(np.searchsorted(edges, open_b, side="right") - 1, 0, len(edges) - 2)
    keep_a, keep_b = [], []
    for k in range(max(1, len(edges) - 1)):
        ia, ib = np.flatnonzero(ba == k), np.flatnonzero(bb == k)
        n = min(len(ia), len(ib))
        if n:
            keep_a.append(rng.choice(ia, n, replace=False))
            keep_b.append(rng.choice(ib, n, replace=False))
    if not keep_a:
        return np.zeros(0, int), np.zeros(0, int)
    return np.sort(np.concatenate(keep_a)), np.sort(np.concatenate(keep_b))


# pose-matched pairs: the distance's unit per column (opening, roll in radians, turn and nod in eye distances: ~1 px
# of opening and ~2 px of the nose's place at the features' 64 px; a still anchor's whole spread, 0.015 rad, 0.014 and
# 0.024, is inside one), fixed so a still head's jitter is not matched as if it were pose; pairs further apart than
# POSE_CALIPER units are dropped
POSE_UNITS = (0.02, 0.05, 0.03, 0.03)
POSE_CALIPER = 1.0
SAMPLINGS = ("opening", "pose")  # matched_sample's, pose_matched_sample's


def pose_matched_sample(open_a: np.ndarray, pose_a: np.ndarray, open_b: np.ndarray, pose_b: np.ndarray,
                        seed: int = 0, caliper: float = POSE_CALIPER) -> tuple[np.ndarray, np.ndarray]:
    """Matched pairs of a and b frames of near the same mouth opening AND head pose (head_pose), so the two sides
    share one joint distribution of both: every b frame, in a seeded random order, takes the nearest a frame not yet
    taken (Euclidean, in POSE_UNITS); pairs further apart than `caliper` are left out (b frames at poses or openings
    the a side never shows). Returns sorted indices into a and b, as many of each."""
    A = np.column_stack([open_a, pose_a]) / POSE_UNITS
    B = np.column_stack([open_b, pose_b]) / POSE_UNITS
    if not len(A) or not len(B):
        return np.zeros(0, int), np.zeros(0, int)
    dist = np.sqrt(sum((A[:, k, None] - B[None, :, k]) ** 2 for k in range(A.shape[1])))  # (na, nb)
    taken = np.zeros(len(A), bool)
    keep_a, keep_b = [], []
    for j in np.random.default_rng(seed).permutation(len(B)):
        d = np.where(taken, np.inf, dist[:, j])
        i = int(np.argmin(d))
        if d[i] <= caliper:
            taken[i] = True
            keep_a.append(i)
            keep_b.append(j)
    return np.sort(np.array(keep_a, int)), np.sort(np.array(keep_b, int))


def sample(sampling: str, open_a: np.ndarray, open_b: np.ndarray, pose_a: np.ndarray | None = None,
           pose_b: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The two sides' sample indices by one of SAMPLINGS: "opening" (matched_sample: opening bins only; the head's
    pose left as each side's footage has it) or "pose" (pose_matched_sample: opening and head pose)."""
    if sampling == "opening":
        return matched_sample(open_a, open_b, seed=seed)
    if sampling == "pose":
        if pose_a is None or pose_b is None:
            raise ValueError("pose sampling needs both sides' head poses")
        return pose_matched_sample(open_a, pose_a, open_b, pose_b, seed=seed)
    raise ValueError(f"unknown sampling {sampling!r} (one of {', '.join(SAMPLINGS)})")


# ---------------------------------------------------------------------------------------------------- classifier

class Logistic:
    """L2-regularised logistic regression on standardised features, fitted by Newton's method (IRLS)."""

    def __init__(self, l2: float = 10.0, iterations: int = 50):
        self.l2, self.iterations = float(l2), iterations

    def fit(self, X: np.ndarray, y: np.ndarray) -> "Logistic":
        self.mu = X.mean(0)
        self.sd = X.std(0) + 1e-9
        Z = np.hstack([(X - self.mu) / self.sd, np.ones((len(X), 1))])
        w = np.zeros(Z.shape[1])
        reg = np.full(Z.shape[1], self.l2)
        reg[-1] = 1e-6  # the intercept is not shrunk
        for _ in range(self.iterations):
            p = 1 / (1 + np.exp(-np.clip(Z @ w, -30, 30)))
            grad = Z.T @ (p - y) + reg * w
            H = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(reg)
            step = np.linalg.solve(H, grad)
            w -= step
            if np.abs(step).max() < 1e-7:
                break
        self.w = w
        return self

    def proba(self, X: np.ndarray) -> np.ndarray:
        Z = np.hstack([(X - self.mu) / self.sd, np.ones((len(X), 1))])
        return 1 / (1 + np.exp(-np.clip(Z @ self.w, -30, 30)))


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of the true-positive and true-negative rates (0.5 = chance whatever the class sizes)."""
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    return float((pred[y].mean() + (~pred[~y]).mean()) / 2)


def block_folds(blocks: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold of each sample: whole blocks go to one fold (blocks shuffled with `seed`, dealt round-robin)."""
    ids = np.unique(blocks)
    order = np.random.default_rng(seed).permutation(ids)
    fold_of = {b: i % k for i, b in enumerate(order)}
    return np.array([fold_of[b] for b in blocks], int)


def stacked(features_a: np.ndarray, features_b: np.ndarray, times_a: np.ndarray, times_b: np.ndarray,
            ia: np.ndarray, ib: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The drawn rows of both sides as one (X, y, blocks) for cross_validate: side a is class 0, side b class 1,
    each frame's block its whole second (times in seconds)."""
    X = np.vstack([features_a[ia], features_b[ib]])
    y = np.r_[np.zeros(len(ia)), np.ones(len(ib))]
    return X, y, np.floor(np.r_[times_a[ia], times_b[ib]]).astype(int)


def cross_validate(X: np.ndarray, y: np.ndarray, blocks: np.ndarray, k: int = 5, seed: int = 0,
                   make=Logistic, per_fold: bool = False) -> tuple[float, np.ndarray]:
    """Balanced accuracy of out-of-fold predictions over min(k, number of blocks) folds of whole blocks (a block's
    real and dubbed samples always share a fold); returns (accuracy, out-of-fold probability of class 1).
    `per_fold`: `make` is called with the fold's held-out blocks, for a model that also learns from data beside X
    (the control's encode differences) and must leave those blocks out of it too."""
    k = min(k, len(np.unique(blocks)))
    if k < 2:
        raise ValueError("cross-validation needs at least two blocks")
    folds = block_folds(blocks, k, seed)
    p = np.full(len(y), np.nan)
    for f in range(k):
        test = folds == f
        train = ~test
        if len(np.unique(y[train])) < 2:
            p[test] = 0.5
            continue
        model = make(np.unique(blocks[test])) if per_fold else make()
        p[test] = model.fit(X[train], y[train]).proba(X[test])
    return balanced_accuracy(y, p > 0.5), p


# -------------------------------------------------------------------------------------------------------- repeats

REPEAT_SIZE = 32  # crops compared for repeats at this size (codec grain and a pixel of tracking jitter averaged out)


def nearest_earlier(crops: list[np.ndarray], times: np.ndarray, seconds: float = 2.0) -> np.ndarray:
    """(N,) per crop, the smallest mean absolute grey difference (levels) to any crop 2 frames to `seconds` earlier
    (the frame just before is motion, not a repeat); NaN where there is none."""
    grey = np.stack([cv2.cvtColor(cv2.resize(c, (REPEAT_SIZE, REPEAT_SIZE), interpolation=cv2.INTER_AREA),
                                  cv2.COLOR_RGB2GRAY).astype(np.float32) for c in crops]) if crops else np.zeros(0)
    out = np.full(len(crops), np.nan)
    for i in range(len(crops)):
        earlier = np.flatnonzero((times < times[i] - 1.5 * _frame_step(times)) & (times >= times[i] - seconds))
        if len(earlier):
            out[i] = float(np.abs(grey[earlier] - grey[i]).mean((1, 2)).min())
    return out


def _frame_step(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.04


def repeat_share(real: np.ndarray, fake: np.ndarray, quantile: float = 10.0) -> float | None:
    """Share of the dub's frames (nearest_earlier distances `fake`) nearer an earlier frame than the real clip's
    closest `quantile` % are (`real`): the real clip itself scores quantile / 100, a dub showing the same mouth
    again more."""
    real, fake = real[np.isfinite(real)], fake[np.isfinite(fake)]
    if not len(real) or not len(fake):
        return None
    return round(float(np.mean(fake < np.percentile(real, quantile))), 3)


# ---------------------------------------------------------------------------------------------------- blind pairs

def blind_pairs(real: list[np.ndarray], dubbed: list[np.ndarray], seed: int = 0,
                gap: int = 8) -> tuple[np.ndarray, list[str]]:
    """A sheet of rows [left | right], each row one real and one dubbed crop; the real crop is on the left in a seeded
    random half of the rows. Returns (RGB image, which side is real per row: "left" or "right")."""
    n = min(len(real), len(dubbed))
    lefts = np.random.default_rng(seed).permutation(np.arange(n) < (n + 1) // 2)
    rows, key = [], []
    for a, b, real_left in zip(real, dubbed, lefts):
        left, right = (a, b) if real_left else (b, a)
        pad = np.full((a.shape[0], gap, 3), 255, np.uint8)
        rows.append(np.hstack([left, pad, right]))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
        key.append("left" if real_left else "right")
    if not rows:
        return np.full((CROP, 2 * CROP + gap, 3), 255, np.uint8), key
    return np.vstack(rows[:-1]), key
