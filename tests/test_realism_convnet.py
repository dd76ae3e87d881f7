"""The realism benchmark's second detector (bench/realism_convnet.py) on generated mouth-crop-like images: a planted
grain that HOG with the logistic misses, chance on one distribution, the occlusion map pointing at the grain, and its
place in bench.realism's rows."""

from __future__ import annotations

import cv2
import numpy as np

from bench import realism
from bench import realism_convnet as cnnet
from bench import realism_detect as det

SIZE = det.FEATURE_SIZE
PATCH = slice(20, 44)  # where the grain is planted (rows and columns)


def _noise(rng, size: int, sigma: float) -> np.ndarray:
    n = cv2.GaussianBlur(rng.normal(size=(size, size)).astype(np.float32), (0, 0), sigma)
    return n / n.std()


def _gradient_energy(p: np.ndarray) -> float:
    """RMS of the centred differences HOG's gradients are."""
    gx, gy = p[1:-1, 2:] - p[1:-1, :-2], p[2:, 1:-1] - p[:-2, 1:-1]
    return float(np.sqrt((gx ** 2).mean() + (gy ** 2).mean()))


def _crops(n: int, grain: float, seed: int) -> list[np.ndarray]:
    """Varied face-like crops (smooth light, a dark lip band at a jittered place), each with an isotropic grain of
    blur `grain` px in its middle, scaled to one gradient energy whatever its scale: HOG's orientation histograms see
    the same edges either way; only the grain's size differs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    out = []
    for _ in range(n):
        img = 120 + 40 * _noise(rng, SIZE, 6)
        centre = SIZE / 2 + rng.normal(0, 3)
        img -= 50 * np.exp(-((yy - centre) / rng.uniform(3, 6)) ** 2) * (np.abs(xx - SIZE / 2) < 22)
        patch = _noise(rng, PATCH.stop - PATCH.start, grain)
        img[PATCH, PATCH] += patch * 6.0 / _gradient_energy(patch)
        img += rng.normal(0, 2, img.shape)
        g = np.clip(img, 0, 255).astype(np.uint8)
        out.append(np.dstack([g, g, g]))
    return out


def _score(a: list, b: list, features, make) -> float:
    X = np.vstack([features(a), features(b)])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    blocks = np.r_[np.arange(len(a)) // 10, np.arange(len(b)) // 10]  # a block's frames of both sides share a fold
    return det.cross_validate(X, y, blocks, seed=0, make=make)[0]


def _hog(crops: list) -> np.ndarray:
    return det.features(crops, [False] * len(crops))[:, det.FEATURE_GROUPS["hog"]]


def test_the_net_sees_a_planted_grain_that_hog_misses_and_nothing_in_one_distribution():
    fine, coarse, fine_again = _crops(100, 0.7, 1), _crops(100, 1.4, 2), _crops(100, 0.7, 3)
    assert _score(fine, coarse, _hog, det.Logistic) < 0.62  # HOG + logistic: near chance on the grain
    assert _score(fine, coarse, cnnet.crop_features, cnnet.AugmentedLogistic) > 0.85
    assert 0.35 < _score(fine, fine_again, cnnet.crop_features, cnnet.AugmentedLogistic) < 0.65


def test_feature_groups_cover_every_column_once():
    cols = np.zeros(cnnet.N_FEATURES, int)
    for s in cnnet.FEATURE_GROUPS.values():
        cols[s] += 1
    assert (cols == 1).all()
    F = cnnet.crop_features(_crops(3, 1.0, 0))
    assert F.shape == (3, len(cnnet.SHIFTS) * cnnet.N_FEATURES) and np.isfinite(F).all()
    # the first reading is the unshifted crop; a shifted one differs
    assert np.allclose(F[:, :cnnet.N_FEATURES], cnnet.plane_features(np.stack([cnnet.lab_planes(c)
                                                                               for c in _crops(3, 1.0, 0)])))
    assert not np.allclose(F[:, :cnnet.N_FEATURES], F[:, cnnet.N_FEATURES:2 * cnnet.N_FEATURES])


def test_augmented_logistic_trains_on_every_reading_and_predicts_from_the_unshifted_one():
    rng = np.random.default_rng(0)
    n, w = 200, 6
    y = np.r_[np.zeros(n // 2), np.ones(n // 2)]
    unshifted = rng.normal(size=(n, w)) + 3 * y[:, None] * np.eye(w)[0]
    moved = unshifted + rng.normal(0, 0.3, (n, w)) + 5.0  # a second reading of the same class, moved
    model = cnnet.AugmentedLogistic(width=w).fit(np.hstack([unshifted, moved]), y)
    assert np.allclose(model.mu, np.vstack([unshifted, moved]).mean(0))  # fitted on both readings
    p = model.proba(np.hstack([unshifted, moved]))
    assert det.balanced_accuracy(y, p > 0.5) > 0.9
    assert np.allclose(p, model.proba(np.hstack([unshifted, rng.normal(size=(n, w))])))  # the second is not read


def _jpeg(crop: np.ndarray, quality: int = 50) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_UNCHANGED)


def test_the_controls_encode_differences_are_taken_out_and_a_real_tell_is_kept():
    """The control's second encode as a codec's quantisation of the same frames (JPEG: fine detail rounded away the
    same way on every frame): the raw net tells the two encodes apart; with the encode differences of the training
    folds' frames projected out it reads chance, and still tells a coarser grain (the dub) from the real side."""
    def side(crops):
        return realism.Side(np.arange(len(crops)) / 25.0, np.linspace(0, 0.3, len(crops)), crops,
                            [i > 0 for i in range(len(crops))])
    frames = _crops(80, 0.7, 6)
    real, twin, dub = side(frames), side([_jpeg(c) for c in frames]), side(_crops(80, 1.4, 7))
    times, D = cnnet.encode_differences(real, twin)
    assert len(times) == 80 and np.allclose(D, twin.cnn_features() - real.cnn_features())
    raw = cnnet.compare(real, twin, 0, groups=False, twin=twin, rank=0)
    clean = cnnet.compare(real, twin, 0, groups=False, twin=twin)
    assert raw["accuracy"] > 0.9 and raw["codec_rank"] == 0
    assert clean["accuracy"] < 0.65 and clean["codec_rank"] == cnnet.CODEC_RANK and clean["codec_pairs"] == 80
    assert cnnet.compare(real, dub, 0, groups=False, twin=twin)["accuracy"] > 0.8


def test_encode_differences_pair_frames_by_time_and_leave_out_the_unpaired():
    crops = _crops(6, 1.0, 0)
    real = realism.Side(np.arange(6) / 25.0, np.zeros(6), crops, [True] * 6)
    twin = realism.Side(np.array([0, 2, 3, 5]) / 25.0 + 0.001, np.zeros(4), [crops[i] for i in (0, 2, 3, 5)],
                        [True] * 4)  # frames 1 and 4 without a face in the second encode
    times, D = cnnet.encode_differences(real, twin)
    assert np.allclose(times, np.array([0, 2, 3, 5]) / 25.0) and np.abs(D).max() < 1e-9


class _Features:
    """A side whose net features are given (cnnet.SideLike)."""

    def __init__(self, times: np.ndarray, features: np.ndarray):
        self.times, self.opening, self.crops, self.pose, self._f = times, np.linspace(0, 0.3, len(times)), [], None, \
            features

    def cnn_features(self) -> np.ndarray:
        return self._f


def test_the_codec_directions_are_fitted_on_the_training_blocks_only(monkeypatch):
    """An encode difference from a held-out block must not reach the model that scores it: only the frames of one
    second (block 9) differ between the two encodes, along one column; every fold that trains on block 9 takes that
    column out, the one fold that scores it does not know of it."""
    rng = np.random.default_rng(0)
    n = 100
    times = np.arange(n) / 10.0  # 10 one-second blocks
    real = rng.normal(size=(n, cnnet.N_FEATURES))
    D = rng.normal(0, 0.01, real.shape)
    D[times >= 9, 3] += 5.0
    seen = []

    class Spy(cnnet.AugmentedLogistic):
        def fit(self, X, y):
            super().fit(X, y)
            seen.append(float(np.abs(self.codec[:, 3]).max()))
            return self

    monkeypatch.setattr(cnnet, "AugmentedLogistic", Spy)
    out = cnnet.compare(_Features(times, real), _Features(times, rng.normal(size=real.shape)), 0, groups=False,
                        twin=_Features(times, real + D), rank=1)
    assert out["codec_pairs"] == n and len(seen) == 5  # 5 folds of two blocks
    assert sum(v > 0.99 for v in seen) == 4 and sum(v < 0.5 for v in seen) == 1


def test_occlusion_map_points_at_the_planted_grain():
    fine, coarse = _crops(60, 0.7, 4), _crops(60, 1.4, 5)
    y = np.r_[np.zeros(60), np.ones(60)]
    blocks = np.r_[np.arange(60) // 10, np.arange(60) // 10]
    heat, p = cnnet.occlusion_map(fine + coarse, y, blocks, seed=0)
    starts = np.arange(0, SIZE - cnnet.OCCLUDE + 1, cnnet.OCCLUDE_STEP)
    inside = (starts >= PATCH.start - cnnet.OCCLUDE // 2) & (starts + cnnet.OCCLUDE <= PATCH.stop + cnnet.OCCLUDE // 2)
    assert det.balanced_accuracy(y, p > 0.5) > 0.8
    assert heat[np.ix_(inside, inside)].mean() > 3 * max(heat[~inside][:, ~inside].mean(), 0.01)


def test_realism_rows_carry_the_nets_accuracy_on_the_dub_and_the_control():
    def side(crops, seed):
        rng = np.random.default_rng(seed)
        n = len(crops)
        return realism.Side(np.arange(n) / 25.0, rng.uniform(0, 0.3, n), crops, [i > 0 for i in range(n)])
    real, dub, twin = side(_crops(80, 0.7, 6), 1), side(_crops(80, 1.4, 7), 2), side(_crops(80, 0.7, 8), 3)
    row = realism.cnn_scores(real, dub, twin, seeds=1)
    assert row["accuracy_cnn"] > 0.8 and 0.3 < row["control_cnn"] < 0.7
    assert set(row["cnn_detail"]["by_features"]) == set(cnnet.FEATURE_GROUPS)
    full = {**row, "clip": "c", "speech": "s", "size": "64x64", "main": {"samples": 80}, "control_detail": {},
            "accuracy": 0.5, "control": 0.5}
    s = realism.summary([full])
    assert s["accuracy_cnn"]["mean"] == row["accuracy_cnn"]
    table = realism.table([full], [])
    assert table.splitlines()[2].endswith(f"| {row['accuracy_cnn']:.3f} | {row['control_cnn']:.3f} |")
    assert f"accuracy_cnn: mean {row['accuracy_cnn']:.3f}" in table


def test_dub_minus_real_puts_a_raised_feature_on_its_group_and_cell():
    from bench.realism_cnn import dub_minus_real
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, len(cnnet.SHIFTS) * cnnet.N_FEATURES))
    fake = rng.normal(size=real.shape)
    dog = cnnet.FEATURE_GROUPS["dog"]
    fake[:, dog.start + cnnet.GRID + 2] += 3.0  # the first map's cell (1, 2)
    d = dub_minus_real(real, fake)
    assert d["dog"][1][2] > 1.2  # 3 sd on one of the group's two maps
    assert abs(np.array(d["dog"])).sum() - d["dog"][1][2] < 1.0
    assert all(abs(np.array(v)).max() < 0.2 for g, v in d.items() if g != "dog")
