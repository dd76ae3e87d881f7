"""The realism benchmark's second detector: a fixed-filter convolutional net on the same mouth crops, samples and
1-second block folds as bench/realism_detect.py's logistic on HOG, so it can see what HOG cannot.

HOG keeps, per 16 px cell, how much gradient points each way, normalised per block: it is blind to a texture's scale
(fine grain against a coarser one of the same edge energy) and to anything its normalisation divides away. Here the
crop's lightness (FEATURE_SIZE, Lab's L) goes through one layer of fixed filters: quadrature Gabor pairs at three
wavelengths and four orientations (their energy: a phase-free "complex cell", what a first conv layer learns),
differences of Gaussians at two scales, and seeded random 5 x 5 filters rectified both ways; every map is
average-pooled over a GRID x GRID grid of cells and logged, and det.Logistic (heavier L2) reads the result. Nothing
is trained but the logistic, so a clip of ~150 frames a side cannot overfit its filters, and a clip scores in seconds.
The chroma is left out: the same filters on a* and b* (and the cells' mean Lab) told the control's two encodes of
the same frames apart (0.70 on two of four clips; docs/RESULTS.md, "A second detector"): x264's chroma differs from
one encode to the next, and the dub is an encode of its own.

Cleaned of the codec: the control's two encodes of the same frames (bench.realism's re-encode and its twin) differ
only by x264's noise, and the raw net told them apart (0.56-0.68 on five of 24 clips; docs/RESULTS.md, "The second
detector cleaned of the codec"). Given the twin, every fold takes the CODEC_RANK directions along which the training
blocks' frame-by-frame encode differences spread most out of the features before the logistic reads them (on the
dub and on the control alike; a held-out block's differences are never used).

Training folds are augmented with the same crops shifted by SHIFT px each way, both sides alike (a tell that moved by
two pixels must still read; none is invented); test crops are read unshifted. Pure numpy + OpenCV; tested on
generated data (tests/test_realism_convnet.py: a planted grain HOG misses, and chance on one distribution).
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from bench import realism_detect as det

SIZE = det.FEATURE_SIZE  # crops are read at this size, as HOG reads them
GRID = 4  # pooling cells per side (16 px at 64: HOG's cells)
WAVELENGTHS = (3.0, 5.0, 9.0)  # Gabor wavelengths in px at SIZE: fine grain, lip lines, the mouth's parts
ORIENTATIONS = 4
DOG_SIGMAS = (1.0, 2.5)  # differences of Gaussians (sigma, 1.6 sigma) on L
RANDOM_FILTERS = 8  # seeded random zero-mean 5 x 5 filters on L, each rectified both ways
FILTER_SEED = 17
SHIFT = 2  # px at SIZE; training crops also read shifted by this much left, right, up and down
SHIFTS = ((0, 0), (SHIFT, 0), (-SHIFT, 0), (0, SHIFT), (0, -SHIFT))
L2 = 30.0  # the logistic's shrinkage: 480 features against ~250 training frames (x5 readings)
CODEC_RANK = 32  # directions of the control's encode differences taken out of the features (AugmentedLogistic)


def _gabor_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for lam in WAVELENGTHS:
        sigma = 0.5 * lam
        k = int(2 * np.ceil(2.5 * sigma) + 1)
        for o in range(ORIENTATIONS):
            theta = np.pi * o / ORIENTATIONS
            even = cv2.getGaborKernel((k, k), sigma, theta, lam, 1.0, 0.0, ktype=cv2.CV_32F)
            odd = cv2.getGaborKernel((k, k), sigma, theta, lam, 1.0, np.pi / 2, ktype=cv2.CV_32F)
            even -= even.mean()  # no response to flat light: the grain, not the level
            pairs.append((even / np.abs(even).sum(), odd / np.abs(odd).sum()))
    return pairs


def _random_filters() -> list[np.ndarray]:
    rng = np.random.default_rng(FILTER_SEED)
    out = []
    for _ in range(RANDOM_FILTERS):
        f = rng.normal(size=(5, 5)).astype(np.float32)
        f -= f.mean()
        out.append(f / np.abs(f).sum())
    return out


GABORS = _gabor_pairs()
RANDOMS = _random_filters()
# the columns of `crop_features`, by what they read (each map pooled over GRID x GRID cells)
_CELLS = GRID * GRID
_SIZES = {f"gabor_{lam:g}px": ORIENTATIONS * _CELLS for lam in WAVELENGTHS}
_SIZES |= {"dog": len(DOG_SIGMAS) * _CELLS, "random": 2 * RANDOM_FILTERS * _CELLS}
FEATURE_GROUPS: dict[str, slice] = {}
_at = 0
for _name, _n in _SIZES.items():
    FEATURE_GROUPS[_name] = slice(_at, _at + _n)
    _at += _n
N_FEATURES = _at


PAD = 16  # reflected margin around a plane before the FFT (the widest kernel's half is 12): no wrap-around
_P = SIZE + 2 * PAD


def _spectrum(kernel: np.ndarray, real: bool) -> np.ndarray:
    """The kernel's transform on the padded plane, centred at the origin (convolving = multiplying by this)."""
    k = np.zeros((_P, _P), np.complex128 if not real else np.float64)
    h, w = kernel.shape
    k[:h, :w] = kernel
    k = np.roll(k, (-(h // 2), -(w // 2)), (0, 1))
    return np.fft.rfft2(k) if real else np.fft.fft2(k)


def _dog(sigma: float) -> np.ndarray:
    k = int(2 * np.ceil(3 * 1.6 * sigma) + 1)
    g = lambda s: cv2.getGaussianKernel(k, s) @ cv2.getGaussianKernel(k, s).T  # noqa: E731
    return g(sigma) - g(1.6 * sigma)


GABOR_SPECTRA = np.stack([_spectrum(e + 1j * o, real=False) for e, o in GABORS])  # one complex kernel per pair
DOG_SPECTRA = np.stack([_spectrum(_dog(s), real=True) for s in DOG_SIGMAS])
RANDOM_SPECTRA = np.stack([_spectrum(f, real=True) for f in RANDOMS])
BATCH = 128  # crops transformed together


def _pool(m: np.ndarray) -> np.ndarray:
    """(N, SIZE, SIZE) maps -> (N, GRID * GRID) cell means."""
    c = SIZE // GRID
    return m.reshape(len(m), GRID, c, GRID, c).mean((2, 4))


def _inner(m: np.ndarray) -> np.ndarray:
    return m[..., PAD:PAD + SIZE, PAD:PAD + SIZE]


def lab_planes(crop: np.ndarray, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(3, SIZE, SIZE) float32 Lab of an RGB crop at SIZE (L in 0..1, a and b centred, same scale), moved by `shift`
    (dx, dy) px at SIZE first (edge pixels repeated, as det.cut repeats them)."""
    small = cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA) if crop.shape[0] != SIZE else crop
    if shift != (0, 0):
        m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
        small = cv2.warpAffine(small, m, (SIZE, SIZE), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32) / 255.0
    lab[..., 1:] -= 128 / 255.0
    return np.ascontiguousarray(lab.transpose(2, 0, 1))


def plane_features(labs: np.ndarray) -> np.ndarray:
    """(N, N_FEATURES) the net's pooled maps of crops' Lab planes ((N, 3, SIZE, SIZE), lab_planes; the lightness
    read), in FEATURE_GROUPS' order: one layer of fixed filters (convolved through the FFT, a batch at a time), their
    energy or rectified response average-pooled over the cells, logged."""
    if len(labs) > BATCH:
        return np.vstack([plane_features(labs[i:i + BATCH]) for i in range(0, len(labs), BATCH)])
    n = len(labs)
    padded = np.pad(labs, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)), mode="reflect")
    log = lambda v: np.log(v + 1e-4)  # noqa: E731
    out = []
    L = np.fft.fft2(padded[:, 0])
    for k in GABOR_SPECTRA:
        out.append(log(_pool(np.abs(_inner(np.fft.ifft2(L * k))))))
    lightness = np.fft.rfft2(padded[:, 0])
    for k in DOG_SPECTRA:
        out.append(log(_pool(np.abs(_inner(np.fft.irfft2(lightness * k, s=(_P, _P)))))))
    for k in RANDOM_SPECTRA:
        r = _inner(np.fft.irfft2(lightness * k, s=(_P, _P)))
        out.append(log(_pool(np.maximum(r, 0))))
        out.append(log(_pool(np.maximum(-r, 0))))
    return np.concatenate([o.reshape(n, -1) for o in out], axis=1)


def crop_features(crops: list[np.ndarray], shifts=SHIFTS) -> np.ndarray:
    """(N, len(shifts) * N_FEATURES) each crop's features read at every shift (the unshifted first), side by side:
    the layout AugmentedLogistic unpacks."""
    if not crops:
        return np.zeros((0, len(shifts) * N_FEATURES))
    return np.hstack([plane_features(np.stack([lab_planes(c, s) for c in crops])) for s in shifts])


class AugmentedLogistic:
    """det.Logistic on the net's features, fitted on every shifted reading of the training crops (both classes
    alike), predicting from the unshifted reading. Rows hold len(shifts) readings of `width` columns each
    (crop_features' layout); `columns` picks a group within each reading.

    `differences` (rows in the same layout: the control's second encode minus the first, frame by frame, from the
    training blocks only; encode_differences): the `rank` directions along which they spread most (uncentred, so
    their mean difference too; in the training features' sd units) are projected out of every reading before the
    logistic reads it, so nothing that only the codec moves between two encodes of the same frames can tell the
    sides apart."""

    def __init__(self, width: int = N_FEATURES, columns: slice | None = None, l2: float = L2,
                 differences: np.ndarray | None = None, rank: int = CODEC_RANK):
        self.width, self.columns, self.l2 = width, columns if columns is not None else slice(None), l2
        self.differences, self.rank = differences, rank

    def _readings(self, X: np.ndarray) -> np.ndarray:
        return X.reshape(len(X), -1, self.width)[..., self.columns]

    def _clean(self, R: np.ndarray) -> np.ndarray:
        """Single readings R (n, columns) standardised and with the codec's directions taken out."""
        Z = (R - self.mu) / self.sd
        return Z - (Z @ self.codec.T) @ self.codec

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AugmentedLogistic":
        R = self._readings(X)
        R = R.reshape(-1, R.shape[-1])
        self.mu, self.sd = R.mean(0), R.std(0) + 1e-9
        self.codec = np.zeros((0, R.shape[1]))
        if self.differences is not None and self.rank > 0 and len(self.differences):
            D = self._readings(self.differences)
            D = D.reshape(-1, D.shape[-1]) / self.sd
            self.codec = np.linalg.svd(D, full_matrices=False)[2][:self.rank]
        self.model = det.Logistic(l2=self.l2).fit(self._clean(R), np.repeat(y, X.shape[1] // self.width))
        return self

    def proba(self, X: np.ndarray) -> np.ndarray:
        return self.model.proba(self._clean(self._readings(X)[:, 0]))

    def logit(self, F: np.ndarray) -> np.ndarray:
        """The fitted model's log-odds of class 1 for unshifted single readings F (n, width)."""
        m = self.model
        return np.hstack([(self._clean(F[:, self.columns]) - m.mu) / m.sd, np.ones((len(F), 1))]) @ m.w


def encode_differences(real: "SideLike", twin: "SideLike") -> tuple[np.ndarray, np.ndarray]:
    """(times, D): for every frame both sides hold (the same time within a quarter frame; the control's two encodes
    of the same frames), the twin's cnn_features minus the real side's, every reading: what only the codec moves."""
    if not len(real.times) or not len(twin.times):
        return np.zeros(0), np.zeros((0, real.cnn_features().shape[1]))
    step = float(np.median(np.diff(real.times))) if len(real.times) > 1 else 0.04
    j, last = np.searchsorted(twin.times, real.times), len(twin.times) - 1
    lo, hi = np.clip(j - 1, 0, last), np.clip(j, 0, last)
    j = np.where(np.abs(twin.times[lo] - real.times) <= np.abs(twin.times[hi] - real.times), lo, hi)
    ok = np.abs(twin.times[j] - real.times) < 0.25 * step
    return real.times[ok], twin.cnn_features()[j[ok]] - real.cnn_features()[ok]


# ------------------------------------------------------------------------------------------------------ scoring

class SideLike(Protocol):
    times: np.ndarray
    opening: np.ndarray
    crops: list
    pose: np.ndarray | None

    def cnn_features(self) -> np.ndarray: ...


def compare(real: SideLike, fake: SideLike, seed: int, seeds: int = 1, sampling: str = "opening",
            min_samples: int = 20, groups: bool = True, twin: SideLike | None = None, rank: int = CODEC_RANK) -> dict:
    """bench.realism.compare with this detector: balanced accuracy telling `fake` (class 1) from `real`, both sides
    drawn by det.sample(`sampling`) with the same seeds as the logistic's, cross-validated over the same 1-second
    block folds (det.cross_validate: a block's frames never train the model that scores them); mean over `seeds`
    draws; `by_features`: the same on one filter group at a time. `twin`: the control's second encode of `real`'s
    frames (for the control itself, `fake`): its `rank` directions of encode differences, from the training folds'
    blocks only, are taken out of the features (AugmentedLogistic); None or rank 0: the features as they are."""
    draw = lambda s: det.sample(sampling, real.opening, fake.opening, real.pose, fake.pose, seed=s)  # noqa: E731
    ia, ib = draw(seed)
    if len(ia) < min_samples:
        return {"accuracy": None, "note": f"only {len(ia)} {sampling}-matched frames per side"}
    Fa, Fb = real.cnn_features(), fake.cnn_features()
    times, D = encode_differences(real, twin) if twin is not None and rank > 0 else (np.zeros(0), None)
    within = np.floor(times).astype(int)

    def net(columns: slice | None = None):
        return lambda held: AugmentedLogistic(columns=columns, rank=rank,
                                              differences=None if D is None else D[~np.isin(within, held)])

    accs, by = [], {g: [] for g in FEATURE_GROUPS}
    try:
        for s in range(seed, seed + max(1, seeds)):
            ja, jb = (ia, ib) if s == seed else draw(s)
            X, y, blocks = det.stacked(Fa, Fb, real.times, fake.times, ja, jb)
            accs.append(det.cross_validate(X, y, blocks, seed=s, make=net(), per_fold=True)[0])
            for g, cols in (FEATURE_GROUPS.items() if groups else ()):
                by[g].append(det.cross_validate(X, y, blocks, seed=s, make=net(cols), per_fold=True)[0])
    except ValueError as exc:
        return {"accuracy": None, "note": str(exc)}
    out = {"accuracy": round(float(np.mean(accs)), 3), "samples": int(len(ia)),
           "codec_pairs": int(len(times)), "codec_rank": rank if D is not None else 0}
    if len(accs) > 1:
        out["accuracy_sd"] = round(float(np.std(accs)), 3)
    if groups:
        out["by_features"] = {g: round(float(np.mean(v)), 3) for g, v in by.items()}
    return out


# -------------------------------------------------------------------------------------------------- where it looks

OCCLUDE = 16  # px at SIZE: the side of the square greyed out
OCCLUDE_STEP = 8


def occlusion_map(crops: list[np.ndarray], y: np.ndarray, blocks: np.ndarray, seed: int, k: int = 5,
                  codec: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where the out-of-fold detector finds its evidence: per fold, the model fitted on the other folds; each test
    crop's OCCLUDE px squares (OCCLUDE_STEP apart) in turn replaced by the training crops' mean there; the map is the
    mean drop of the log-odds of the crop's true class (positive: that square told the model the right answer).
    `codec`: encode_differences' (times, D), taken out of the features as compare takes them (training blocks only).
    Returns (map (n, n) over the crop, out-of-fold probability of class 1 per crop)."""
    labs = np.stack([lab_planes(c) for c in crops])
    F = crop_features(crops)
    folds = det.block_folds(blocks, min(k, len(np.unique(blocks))), seed)
    starts = range(0, SIZE - OCCLUDE + 1, OCCLUDE_STEP)
    heat = np.zeros((len(starts), len(starts)))
    p = np.full(len(crops), 0.5)
    sign = np.where(y > 0, 1.0, -1.0)
    for f in np.unique(folds):
        test, train = folds == f, folds != f
        if len(np.unique(y[train])) < 2:
            continue
        held = np.unique(blocks[test])
        D = None if codec is None else codec[1][~np.isin(np.floor(codec[0]).astype(int), held)]
        model = AugmentedLogistic(differences=D).fit(F[train], y[train])
        base = model.logit(F[test, :N_FEATURES])
        p[test] = 1 / (1 + np.exp(-np.clip(base, -30, 30)))
        mean = labs[train].mean(0)
        for r, y0 in enumerate(starts):
            for c, x0 in enumerate(starts):
                hidden = labs[test].copy()
                hidden[:, :, y0:y0 + OCCLUDE, x0:x0 + OCCLUDE] = mean[:, y0:y0 + OCCLUDE, x0:x0 + OCCLUDE]
                after = model.logit(plane_features(hidden))
                heat[r, c] += float(((base - after) * sign[test]).sum())
    return heat / len(crops), p
