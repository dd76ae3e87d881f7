"""The realism benchmark's parts (bench/realism.py, bench/realism_detect.py) on small generated data; one check on the
shared clips' list where they are present."""

from __future__ import annotations

import numpy as np
import pytest

from bench import realism
from bench import realism_detect as det
from conftest import require_data


def test_matched_sample_gives_both_sides_one_opening_distribution():
    rng = np.random.default_rng(1)
    a = rng.gamma(2.0, 0.05, 400)  # mostly closed
    b = rng.uniform(0, 0.5, 300)  # often wide open
    ia, ib = det.matched_sample(a, b, bins=8, seed=3)
    assert len(ia) == len(ib) > 50
    assert len(set(ia)) == len(ia) and len(set(ib)) == len(ib)
    edges = np.quantile(np.r_[a, b], np.linspace(0, 1, 9))
    ha, _ = np.histogram(a[ia], edges)
    hb, _ = np.histogram(b[ib], edges)
    assert np.array_equal(ha, hb)
    # unmatched, the shapes differ a lot; matched, the means are close
    assert abs(a.mean() - b.mean()) > 0.1
    assert abs(a[ia].mean() - b[ib].mean()) < 0.03


def test_block_folds_keep_each_block_in_one_fold():
    blocks = np.repeat(np.arange(12), 7)
    folds = det.block_folds(np.r_[blocks, blocks[::-1]], k=5, seed=0)
    for b in range(12):
        assert len(np.unique(folds[np.r_[blocks, blocks[::-1]] == b])) == 1
    assert set(folds) == set(range(5))


def test_balanced_accuracy_ignores_class_sizes():
    y = np.r_[np.zeros(90), np.ones(10)].astype(bool)
    assert det.balanced_accuracy(y, np.zeros(100, bool)) == 0.5  # "always real" is chance, not 0.9
    assert det.balanced_accuracy(y, y) == 1.0


def _two_classes(shift: float, n: int = 240, d: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n, d))
    y = np.r_[np.zeros(n), np.ones(n)]
    X[y == 1, :3] += shift
    blocks = np.r_[np.arange(n) // 24, np.arange(n) // 24]  # 10 blocks, each with both classes
    return X, y, blocks


def test_cross_validation_tells_separable_classes_and_not_identical_ones():
    acc, p = det.cross_validate(*_two_classes(2.0))
    assert acc > 0.9 and np.isfinite(p).all()
    acc_same, _ = det.cross_validate(*_two_classes(0.0))
    assert 0.35 < acc_same < 0.65


def test_cross_validation_per_fold_tells_each_model_the_blocks_it_scores():
    X, y, blocks = _two_classes(2.0)
    held, scored = [], []

    class Spy(det.Logistic):
        def __init__(self, test_blocks):
            super().__init__()
            held.append(set(test_blocks.tolist()))

        def proba(self, Xt):
            scored.append({int(b) for b in blocks[np.isin(X[:, 0], Xt[:, 0])]})
            return super().proba(Xt)

    acc, _ = det.cross_validate(X, y, blocks, make=Spy, per_fold=True)
    assert acc > 0.9 and held == scored  # each model was told exactly the blocks it then scored
    assert set().union(*held) == set(blocks.tolist()) and sum(len(h) for h in held) == len(set(blocks.tolist()))


def test_stacked_puts_the_drawn_rows_of_both_sides_in_order_with_their_seconds():
    fa, fb = np.arange(10.0)[:, None], 100 + np.arange(6.0)[:, None]
    ta, tb = np.arange(10) * 0.4, np.arange(6) * 0.7
    X, y, blocks = det.stacked(fa, fb, ta, tb, np.array([1, 5, 9]), np.array([0, 4]))
    assert X[:, 0].tolist() == [1, 5, 9, 100, 104] and y.tolist() == [0, 0, 0, 1, 1]
    assert blocks.tolist() == [0, 2, 3, 0, 2]  # 0.4, 2.0, 3.6 s; 0.0, 2.8 s


def test_column_summary_leaves_out_missing_and_none_values():
    rows = [{"a": 0.5, "b": None}, {"a": 0.7}, {"a": 0.6, "b": 0.4}]
    s = realism.column_summary(rows, ("a", "b", "c"))
    assert s["a"] == {"n": 3, "mean": 0.6, "min": 0.5, "max": 0.7}
    assert s["b"] == {"n": 1, "mean": 0.4, "min": 0.4, "max": 0.4} and s["c"] == {"n": 0}


def test_cross_validation_needs_two_blocks():
    X, y, _ = _two_classes(1.0, n=20)
    with pytest.raises(ValueError):
        det.cross_validate(X, y, np.zeros(len(y), int))


def test_logistic_regularisation_shrinks_weights():
    X, y, _ = _two_classes(1.0)
    weak, strong = det.Logistic(l2=0.1).fit(X, y), det.Logistic(l2=1000).fit(X, y)
    assert np.abs(strong.w[:-1]).sum() < np.abs(weak.w[:-1]).sum()
    assert ((weak.proba(X) > 0.5) == y).mean() > 0.75


def _face_crop(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((det.CROP, det.CROP, 3), (180, 120, 100), np.uint8)
    img[50:78, 30:98] = (120, 40, 50)  # lips
    img[60:68, 36:92] = (30, 10, 10)  # mouth gap
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def test_features_see_blur_colour_and_motion():
    import cv2

    sharp = _face_crop()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    X = det.features([sharp, blurred, blurred], [False, True, True])
    assert X.shape[0] == 3 and np.isfinite(X).all()
    sharpness, change = X[:, -2], X[:, -1]
    assert sharpness[0] > sharpness[1] + 1
    assert change[1] > change[2]  # sharp -> blurred changed more than blurred -> the same blurred frame
    assert change[0] == np.median(change[1:])  # missing (no frame before): the side's median
    redder = sharp.copy()
    redder[..., 0] = np.clip(redder[..., 0].astype(int) + 30, 0, 255)
    lab = det.features([sharp, redder], [False, False])[:, -8:-5]  # Lab means
    assert lab[1, 1] > lab[0, 1] + 5  # a* (red-green) rises


def test_cut_is_centred_on_the_mouth_and_survives_the_frame_edge():
    lms = np.zeros((478, 3), np.float32)
    lms[33, :2], lms[263, :2] = (100, 100), (200, 100)  # eye corners: 100 px apart
    for i in det.MOUTH_POINTS:
        lms[i, :2] = (150, 180)
    cx, cy, side = det.mouth_box(lms)
    assert (cx, cy) == (150, 180) and side == pytest.approx(det.BOX_SCALE * 100)
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[170:190, 140:160] = 255  # a white patch on the mouth centre
    crop = det.cut(frame, (cx, cy, side))
    assert crop.shape == (det.CROP, det.CROP, 3)
    assert crop[det.CROP // 2, det.CROP // 2].min() > 200 and crop[5, 5].max() == 0
    edge = det.cut(frame, (290, 195, 80))  # mostly outside the frame
    assert edge.shape == (det.CROP, det.CROP, 3)


def test_blind_pairs_key_says_where_the_real_crop_is():
    real = [np.zeros((det.CROP, det.CROP, 3), np.uint8)] * 6
    dubbed = [np.full((det.CROP, det.CROP, 3), 255, np.uint8)] * 6
    sheet, key = det.blind_pairs(real, dubbed, seed=4, gap=8)
    assert len(key) == 6 and set(key) == {"left", "right"}  # shuffled, not all one side
    for r, side in enumerate(key):
        y = r * (det.CROP + 8) + det.CROP // 2
        left_dark = sheet[y, det.CROP // 2].max() == 0
        assert left_dark == (side == "left")


def test_sync_follows_the_looped_speech():
    # a 3 s speech looped under an 8 s dub: the dub that opens with the looped truth scores ~1, a shuffled one not
    rng = np.random.default_rng(4)
    t_truth = np.arange(75) / 25.0
    truth = 0.1 + np.convolve(rng.normal(0, 0.02, 75), np.ones(3) / 3, mode="same")
    t_dub = np.arange(200) / 25.0
    looped = np.interp(np.mod(t_dub, 3.0), t_truth, truth)
    assert realism.sync_r(t_dub, looped, t_truth, truth, 3.0) > 0.99
    assert realism.sync_r(t_dub, rng.permutation(looped), t_truth, truth, 3.0) < 0.3
    # the loop matters: read with the wrong period the same dub matches only its first pass
    assert realism.sync_r(t_dub, looped, t_truth, truth, 2.0) < 0.7
    assert realism.sync_r(t_dub, np.full(200, np.nan), t_truth, truth, 3.0) is None


def test_pairing_is_fixed_and_never_gives_a_clip_its_own_speech():
    names = [f"clip{i}" for i in range(9)]
    p = realism.pairing(names)
    assert p == realism.pairing(list(names))
    assert sorted(p) == names and sorted(p.values()) == names
    assert all(a != b for a, b in p.items())


def test_trim_copies_the_first_seconds_and_decoding_keeps_colours(tmp_path):
    from lipdub import media

    colour = np.array([200, 60, 40], np.uint8)
    src = tmp_path / "src.mp4"
    with media.VideoWriter(src, 64, 48, 25) as w:
        for i in range(100):  # 4 s
            frame = np.zeros((48, 64, 3), np.uint8) + colour
            frame[:, i % 64] = 255
            w.write(frame)
    cut = realism.trim(src, tmp_path / "cut.mp4", 1.0)
    frames = list(media.iter_frames(cut))
    assert 25 <= len(frames) <= 55  # 1 s and at most 1 s more
    assert np.array_equal(frames[10].rgb, next(f for f in media.iter_frames(src) if f.index == 10).rgb)
    # tagged BT.709: read back as written (a BT.601 reading would move red by ~20 levels)
    assert np.abs(frames[0].rgb[:, 20:40].reshape(-1, 3).mean(0) - colour).max() < 4


def test_control_encode_reads_back_the_same_frames_at_the_same_times(tmp_path):
    # the control's second encode starts with a copy of the first frame (its frame types then fall differently) and
    # is read with that copy left out: each crop must be the same source frame at the same time as the re-encode's
    from types import SimpleNamespace

    from lipdub import media

    n = 20
    src = tmp_path / "src.mp4"
    with media.VideoWriter(src, 64, 48, 25) as w:
        for i in range(n):  # each frame its own level, so a crop says which frame it is
            w.write(np.full((48, 64, 3), 40 + 9 * i, np.uint8))
    lms = np.zeros((n + realism.CONTROL_LEAD, 478, 3), np.float32)
    lms[:, 33, :2], lms[:, 263, :2] = (16, 24), (48, 24)
    lms[:, list(det.MOUTH_POINTS), :2] = (32, 36)
    track = SimpleNamespace(valid=np.ones(len(lms), bool), landmarks=lms)
    plain = realism.read_side(realism.reencode(src, tmp_path / "a.mp4"), 0.6, track)
    again = realism.reencode(src, tmp_path / "b.mp4", lead=realism.CONTROL_LEAD)
    twin = realism.read_side(again, 0.6, track, skip=realism.CONTROL_LEAD)
    level = lambda side: np.array([c.mean() for c in side.crops])  # noqa: E731
    assert len(plain.crops) == len(twin.crops) == 15  # 0.6 s at 25 fps
    assert np.allclose(plain.times, twin.times) and twin.times[0] == 0.0
    assert np.abs(level(plain) - level(twin)).max() < 2  # one frame apart would be 9 levels
    assert twin.follows == plain.follows and not twin.follows[0]
    unskipped = realism.read_side(again, 0.6, track)
    assert np.abs(level(unskipped)[1:] - level(plain)[:-1]).max() < 2  # the check can fail: unskipped, a frame late


def test_clips_without_speech_are_listed_with_the_reason():
    data = require_data("video/selfie_noaudio_12s.mp4")
    clips = {c.name: c for c in realism.find_clips(data)}
    assert clips["selfie_noaudio_12s"].skip and "no speech" in clips["selfie_noaudio_12s"].skip
    assert clips["cnn_anchor_71s"].skip is None
    assert clips["stNg_talk1_25s"].speech.suffix == ".wav"  # the paired sound


def test_profile_footage_carries_its_paired_speech(tmp_path):
    # bench.realism_profile builds profiles from footage whose speech is a paired .wav (the video has no sound track):
    # the cut must carry that speech over the same span, or the profile learns no articulation
    from bench import realism_profile
    from lipdub import media

    data = require_data("train/stNg_talk2_27s.mp4", "train/stNg_talk2_27s.wav")
    assert not media.probe_video(data / "train/stNg_talk2_27s.mp4").has_audio
    out = realism_profile.footage_clip(data, "train/stNg_talk2_27s.mp4", 1.0, 3.0, tmp_path / "f.mp4")
    info = media.probe_video(out)
    assert info.has_audio and abs(info.duration - 2.0) < 0.1
    cut, sr = media.load_audio(out, 16000)
    wav, _ = media.load_audio(data / "train/stNg_talk2_27s.wav", 16000)
    ref = wav[sr:3 * sr]
    n = min(len(cut), len(ref)) - 2000  # (AAC's priming and tail)
    assert np.corrcoef(cut[1000:1000 + n], ref[1000:1000 + n])[0, 1] > 0.9


def _side(n: int, brighter: int, seed: int) -> realism.Side:
    rng = np.random.default_rng(seed)
    base = np.full((det.FEATURE_SIZE, det.FEATURE_SIZE, 3), 120, np.uint8)
    crops = [np.clip(base.astype(int) + brighter + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
             for _ in range(n)]
    return realism.Side(np.arange(n) / 25.0, rng.uniform(0, 0.3, n), crops, [i > 0 for i in range(n)])


def test_compare_over_several_seeds_averages_and_keeps_the_first_draw_for_the_pairs():
    real, same, other = _side(100, 0, 1), _side(100, 0, 2), _side(100, 25, 3)
    one = realism.compare(real, same)
    several = realism.compare(real, same, seeds=3)
    assert "accuracy_sd" not in one and several["seeds"] == 3 and several["accuracy_sd"] >= 0
    assert 0.3 < several["accuracy"] < 0.7  # the same look on both sides: chance, on average
    assert all(np.array_equal(a, b) for a, b in zip(one["_matched"], several["_matched"]))
    told = realism.compare(real, other, seeds=2)
    assert told["accuracy"] > 0.9 and told["by_features"]["colour"] > 0.9


# ------------------------------------------------------------------------------------------------ bench.smile

def _face(lift: float, opening: float, angle: float) -> np.ndarray:
    """478 landmarks: eyes 100 px apart, mouth corners `lift` eye distances above the upper inner lip's middle, the
    inner lips `opening` apart, the whole face turned by `angle` (radians) about the origin."""
    lms = np.zeros((478, 3))
    lms[33, :2], lms[263, :2] = (-50, 0), (50, 0)
    lms[61, :2], lms[291, :2] = (-25, 100 - 100 * lift), (25, 100 - 100 * lift)
    for up, lo in ((82, 87), (13, 14), (312, 317)):
        lms[up, :2], lms[lo, :2] = (0, 100), (0, 100 + 100 * opening)
    c, s = np.cos(angle), np.sin(angle)
    lms[:, :2] = lms[:, :2] @ np.array([[c, s], [-s, c]])
    return lms


def test_smile_lift_is_per_eye_distance_in_the_faces_own_axes():
    from bench import smile

    for angle in (0.0, 0.4, -0.3):
        assert smile.corner_lift_2d(_face(0.03, 0.1, angle)) == pytest.approx(0.03)
        assert smile.corner_lift_2d(_face(-0.02, 0.1, angle)) == pytest.approx(-0.02)


def test_smile_by_opening_shows_a_wide_mouth_drawn_where_the_speaker_rounds():
    from bench import smile

    rng = np.random.default_rng(2)
    opening = rng.uniform(0.0, 0.3, 300)
    real = {"opening": opening, "width": np.where(opening > 0.2, 0.50, 0.65)}  # her wide-open mouths are round
    dub = {"opening": opening, "width": np.full(300, 0.65)}
    rows = smile.by_opening(real, dub)
    assert len(rows) == 4 and all(r["real_frames"] == r["dub_frames"] for r in rows)
    assert rows[0]["real_width"] == rows[0]["dub_width"] == [0.65] * 3
    assert rows[-1]["real_width"][1] == 0.5 and rows[-1]["dub_width"][1] == 0.65
    assert rows[-1]["real_round"][1] > rows[-1]["dub_round"][1]


def test_smile_fullness_tells_an_elliptic_opening_from_a_lens():
    from bench import smile
    from lipdub.core.landmarks import INNER_LOWER, INNER_UPPER

    def mouth(profile) -> np.ndarray:  # inner lips 0.6 wide, 0.2 apart in the middle, the gap `profile` along x
        lms = np.zeros((478, 3))
        xs = np.linspace(-0.3, 0.3, len(INNER_UPPER))
        half = 0.1 * profile(np.abs(xs) / 0.3)
        lms[INNER_UPPER, 0], lms[INNER_UPPER, 1] = xs, -half
        lms[INNER_LOWER, 0], lms[INNER_LOWER, 1] = xs, half
        return lms

    lens = smile.opening_fullness(mouth(lambda u: 1 - u ** 2))
    oval = smile.opening_fullness(mouth(lambda u: np.sqrt(np.clip(1 - u ** 2, 0, 1))))
    assert lens == pytest.approx(2 / 3, abs=0.02) and oval == pytest.approx(np.pi / 4, abs=0.03)
    assert np.isnan(smile.opening_fullness(mouth(lambda u: 0 * u)))


def test_smile_expression_is_what_is_left_over_the_opening():
    # the corners drop as the mouth opens (lift = 0.02 - 0.3 × opening); the dub opens to other speech but keeps
    # the filmed expression: its lift differs frame by frame, its lift over the original's fit does not
    from bench import smile

    rng = np.random.default_rng(0)
    smiling = np.repeat([0.0, 0.02], 50)
    real_open, dub_open = rng.uniform(0, 0.3, 100), rng.uniform(0, 0.3, 100)
    series = []
    for opening, expression in ((real_open, smiling), (dub_open, smiling), (dub_open, np.zeros(100))):
        lms = np.stack([_face(0.02 - 0.3 * o + e, o, 0.1) for o, e in zip(opening, expression)])
        lift = smile.corner_lift_2d(lms)
        series.append({"opening": real_open if opening is real_open else dub_open, "lift": lift,
                       "width": np.full(100, 0.5) + rng.normal(0, 0.01, 100),
                       "lift_slow": lift, "width_slow": np.full(100, 0.5)})
    real, kept, dropped = series
    row_kept, row_dropped = smile.compare(dict(real), kept)["all"], smile.compare(dict(real), dropped)["all"]
    assert row_kept["lift"]["r"] < 0.5  # per frame the speech alone sets the lift apart ...
    assert row_kept["lift_expr"]["r"] > 0.95  # ... over the opening the smile is kept
    assert row_dropped["lift_expr"]["r"] is None or row_dropped["lift_expr"]["r"] < 0.3


def test_repeats_find_a_mouth_shown_again_and_not_a_moving_one():
    rng = np.random.default_rng(0)
    times = np.arange(60) / 25.0
    moving = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in times]
    looped = [moving[i % 10] for i in range(60)]  # the same ten mouths again every 0.4 s
    real, fake = det.nearest_earlier(moving, times), det.nearest_earlier(looped, times)
    assert np.isnan(real[:2]).all() and np.isfinite(real[2:]).all()
    assert det.repeat_share(real, real) == pytest.approx(0.1, abs=0.03)
    assert det.repeat_share(real, fake) > 0.8
    # a repeat further back than the window is not one
    slow = det.nearest_earlier(looped[:12], times[:12] * 10, seconds=1.0)  # the loop comes back after 4 s
    assert fake[10:12].max() == 0 and slow[10:12].min() > 10


def test_weight_map_puts_each_hog_value_on_its_cell():
    from skimage.feature import hog

    from bench import realism_map

    v = np.zeros(det.HOG_SIZE)
    v.reshape(3, 3, 2, 2, 9)[1, 2, 1, 0, 4] = 1.0  # block (1, 2), its lower-left cell: crop cell (2, 2)
    cells = realism_map.hog_cells(v)
    assert cells.shape == (4, 4, 9) and cells[2, 2, 4] == 1.0 and cells.sum() == 1.0
    # skimage's layout: a bright square inside the crop's bottom-left cell (all its edges there) weighs most there
    grey = np.zeros((det.FEATURE_SIZE, det.FEATURE_SIZE))
    grey[52:60, 4:12] = 1.0
    energy = realism_map.hog_cells(hog(grey, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2),
                                       feature_vector=True)).sum(-1)
    assert np.unravel_index(np.argmax(energy), energy.shape) == (3, 0)


def test_weight_map_finds_the_cell_that_tells_the_sides_apart():
    from bench import realism_map

    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, det.HOG_SIZE + 8))
    y = np.r_[np.zeros(150), np.ones(150)]
    tell = np.zeros(det.HOG_SIZE)
    tell.reshape(3, 3, 2, 2, 9)[0, 0, 0, 0, :] = 1.0  # only in block (0, 0): crop cell (0, 0), the top-left corner
    X[:, :det.HOG_SIZE] += np.outer(y, tell) * 1.5
    share = realism_map.weight_share(det.Logistic().fit(X[:, :det.HOG_SIZE], y))
    assert np.unravel_index(np.argmax(share), share.shape) == (0, 0) and abs(share.sum() - 1) < 1e-9
    diff = realism_map.cell_difference(X[y == 0], X[y == 1])
    assert diff[0, 0] > 1.0 and np.abs(np.delete(diff.ravel(), 0)).max() < 0.5


def test_pose_only_sees_matched_samples_from_other_head_poses():
    from bench import realism_map

    rng = np.random.default_rng(5)
    n = 400
    times = np.arange(n) / 25.0
    turn = times / times[-1] - 0.5  # the head turns slowly from one side to the other
    pose = np.stack([turn, 0.5 * turn], -1) + rng.normal(0, 0.05, (n, 2))
    real = (pose, rng.uniform(0, 0.2, n), times)
    first = turn < 0  # a dub whose faces (or open mouths) all come from the first half: turned one way
    fake = (pose[first] + rng.normal(0, 0.02, (first.sum(), 2)), rng.uniform(0, 0.2, first.sum()), times[first])
    assert realism_map.pose_only(real, fake, seeds=2) > 0.62
    same = (pose + rng.normal(0, 0.02, (n, 2)), rng.uniform(0, 0.2, n), times)  # the same poses throughout
    assert realism_map.pose_only(real, same, seeds=2) < 0.56


# ------------------------------------------------------------------------------------- pose-matched sampling

def _head(yaw: float, nod: float, roll: float, scale: float = 100.0, at=(300.0, 200.0)) -> np.ndarray:
    """478 landmarks: eye corners `scale` apart, the nose tip `yaw` eye distances along the eye line from their
    midpoint and 0.6 + `nod` across it, the whole face turned `roll` radians and moved to `at`."""
    lms = np.zeros((478, 3))
    lms[33, :2], lms[263, :2] = (-0.5, 0.0), (0.5, 0.0)
    lms[1, :2] = (yaw, 0.6 + nod)
    c, s = np.cos(roll), np.sin(roll)
    lms[:, :2] = scale * lms[:, :2] @ np.array([[c, s], [-s, c]]) + at
    return lms


def test_head_pose_reads_turn_and_nod_whatever_the_roll_size_and_place():
    for roll, scale, at in ((0.0, 100, (0, 0)), (0.3, 60, (500, 80)), (-0.5, 220, (40, 900))):
        roll_read, turn, nod = det.head_pose(_head(0.12, -0.05, roll, scale, at))
        assert roll_read == pytest.approx(roll) and turn == pytest.approx(0.12) and nod == pytest.approx(0.55)


def test_pose_matched_sample_gives_both_sides_one_joint_distribution_of_opening_and_pose():
    rng = np.random.default_rng(2)
    n = 300
    open_a, open_b = rng.uniform(0, 0.15, n), rng.uniform(0, 0.15, n)
    pose_a = np.column_stack([rng.normal(0, 0.02, n), rng.uniform(-0.1, 0.1, n), rng.normal(0.6, 0.01, n)])
    pose_b = pose_a.copy()
    # the dub opens its mouth where the head is turned right
    pose_b[:, 1] = np.where(open_b > 0.075, rng.uniform(0.0, 0.1, n), rng.uniform(-0.1, 0.1, n))
    ia, ib = det.matched_sample(open_a, open_b, seed=1)
    wide_a, wide_b = ia[open_a[ia] > 0.075], ib[open_b[ib] > 0.075]
    assert pose_b[wide_b, 1].mean() - pose_a[wide_a, 1].mean() > 0.04  # opening alone: other poses when open
    ja, jb = det.pose_matched_sample(open_a, pose_a, open_b, pose_b, seed=1)
    assert len(ja) == len(jb) > n // 2 and len(set(ja)) == len(ja) and len(set(jb)) == len(jb)
    wide_a, wide_b = ja[open_a[ja] > 0.075], jb[open_b[jb] > 0.075]
    assert abs(pose_b[wide_b, 1].mean() - pose_a[wide_a, 1].mean()) < 0.01
    assert abs(open_b[jb].mean() - open_a[ja].mean()) < 0.005
    # a side at poses the other never shows gives no pairs; other seeds, other pairs
    far = pose_b + [0, 1.0, 0]
    assert len(det.pose_matched_sample(open_a, pose_a, open_b, far, seed=1)[0]) == 0
    assert not np.array_equal(det.pose_matched_sample(open_a, pose_a, open_b, pose_b, seed=2)[1], jb)
    with pytest.raises(ValueError):
        det.sample("pose", open_a, open_b, seed=1)


def _posed_side(yaw: np.ndarray, seed: int, defect: bool = False) -> realism.Side:
    """Mouth crops whose nose-base blob moves with the head's turn (as HOG of a filmed crop sees the pose), the mouth
    opening drawn; `defect`: the mouth drawn flat grey (a dub's obvious tell)."""
    rng = np.random.default_rng(seed)
    n = len(yaw)
    opening = rng.uniform(0, 0.15, n)
    crops = []
    for o, t in zip(opening, yaw):
        img = np.full((det.FEATURE_SIZE, det.FEATURE_SIZE, 3), (180, 120, 100), np.float64)
        x = int(round(32 + 80 * t))
        img[4:14, max(0, x - 6):x + 6] = (120, 70, 60)  # the nose base
        h = int(round(4 + 80 * o))
        img[32 - h // 2:32 + h // 2 + 2, 18:46] = (120, 120, 120) if defect else (40, 10, 10)
        crops.append(np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8))
    pose = np.column_stack([np.zeros(n), yaw, np.full(n, 0.6)]) + rng.normal(0, 0.01, (n, 3))
    return realism.Side(np.arange(n) / 25.0, opening, crops, [i > 0 for i in range(n)], pose)


def test_pose_sampling_leaves_the_mouths_look_and_still_sees_a_defect():
    rng = np.random.default_rng(7)
    real = _posed_side(rng.uniform(-0.2, 0.2, 300), seed=1)
    turned = rng.uniform(-0.2, 0.05, 300)  # the dub's frames drawn more from one side of the head's turn
    dub = _posed_side(turned, seed=2)
    assert realism.compare(real, dub, seeds=2)["accuracy"] > 0.6  # opening alone: the pose tells them apart
    fair = realism.compare(real, dub, seeds=2, sampling="pose")
    assert fair["accuracy"] < 0.57 and fair["samples"] > 150
    bad = realism.compare(real, _posed_side(turned, seed=2, defect=True), seeds=2, sampling="pose")
    assert bad["accuracy"] > 0.9  # the detector is not blinded by the matching


def test_pose_only_falls_to_chance_when_the_sides_are_pose_matched():
    from bench import realism_map

    rng = np.random.default_rng(6)
    n = 400
    times = np.arange(n) / 25.0
    turn = 0.1 * np.sin(times / 3)  # the head turns slowly one way and back
    head = np.column_stack([np.zeros(n), turn, np.full(n, 0.6)]) + rng.normal(0, 0.005, (n, 3))
    crop = np.column_stack([head[:, 1], 0.5 * head[:, 1]]) + rng.normal(0, 0.01, (n, 2))  # the crop sees the turn
    real = (crop, rng.uniform(0, 0.1, n), times, head)
    first = turn < 0.03  # the dub's frames mostly from one side of the turn
    fake = (crop[first] + rng.normal(0, 0.005, (first.sum(), 2)), rng.uniform(0, 0.1, first.sum()), times[first],
            head[first])
    assert realism_map.pose_only(real, fake, seeds=2) > 0.6
    assert realism_map.pose_only(real, fake, seeds=2, sampling="pose") < 0.56
def test_realism_map_reads_realism_and_realism_profile_folders(tmp_path):
    from bench import realism_map

    plain = tmp_path / "r" / "work" / "clip_a"
    plain.mkdir(parents=True)
    for f in ("original.mp4", "dubbed.mp4"):
        (plain / f).write_bytes(b"")
    assert realism_map.clip_videos(tmp_path / "r", "clip_a") == (plain / "original.mp4", plain / "dubbed.mp4")
    case = tmp_path / "p" / "work" / "stNg_talk1"
    case.mkdir(parents=True)
    for f in ("original.mp4", "dubbed_own.mp4", "dubbed_profile.mp4"):
        (case / f).write_bytes(b"")
    assert realism_map.clip_videos(tmp_path / "p", "stNg_talk1_profile") == (case / "original.mp4",
                                                                             case / "dubbed_profile.mp4")
    assert realism_map.clip_videos(tmp_path / "p", "stNg_talk1_own")[1] == case / "dubbed_own.mp4"
    with pytest.raises(FileNotFoundError):
        realism_map.clip_videos(tmp_path / "p", "stNg_talk1_live")


def test_realism_map_by_voice_splits_the_dubs_frames_at_its_silences():
    from bench import realism_map

    voiced = np.array([True, True, False, False, True, False])
    p_sum = np.array([0.4, 1.0, 1.8, 0.9, 0.0, 0.7])  # summed over the samples that drew each frame
    p_count = np.array([1, 2, 2, 1, 0, 0])  # the last two never sampled: left out
    out = realism_map.by_voice(voiced, p_sum, p_count)
    assert out["silence"] == {"frames": 2, "p": round(2.7 / 3, 3)}
    assert out["speech"] == {"frames": 2, "p": round(1.4 / 3, 3)}
    assert realism_map.by_voice(np.zeros(3, bool), np.ones(3), np.ones(3))["speech"] == {"frames": 0, "p": None}


def test_realism_map_by_departure_bins_the_dubs_frames_by_the_drawn_less_the_filmed_opening():
    from bench import realism_map

    real_t = np.arange(8) / 25
    real_open = np.full(8, 0.10)
    fake_t = real_t[[0, 1, 2, 3, 4, 5, 6, 7]] + 0.001  # the same frames, read a little apart in time
    fake_open = np.array([0.02, 0.05, 0.08, 0.10, 0.11, 0.14, 0.18, 0.30])  # departures −0.08 … +0.20
    p_sum = np.array([0.9, 0.8, 0.5, 0.4, 0.5, 0.6, 1.4, 0.0])
    p_count = np.array([1, 1, 1, 1, 1, 1, 2, 0])  # the last frame never sampled: left out
    out = realism_map.by_departure(real_t, real_open, fake_t, fake_open, p_sum, p_count, bins=2)
    assert [b["frames"] for b in out] == [3, 4]  # split at the median departure, 0 (it opens the upper bin)
    assert out[0]["p"] == round((0.9 + 0.8 + 0.5) / 3, 3) and out[1]["p"] == round((0.4 + 0.5 + 0.6 + 0.7) / 4, 3)
    assert out[0]["departure"][0] == -0.08 and out[1]["departure"][1] == 0.08
    # a dub frame with no original frame at its time is not paired
    assert realism_map.by_departure(real_t, real_open, fake_t + 1.0, fake_open, p_sum, p_count) is None


# ------------------------------------------------------------------------------------------ bench.interior_stats

def _mouth_frame(teeth: bool):
    """A 400 × 400 frame and its 478 landmarks: eyes 100 px apart, red lips between two ellipses (outer 40 × 20 px,
    inner 30 × 10) around (200, 200), the inner ellipse's upper half white (teeth, if `teeth`) and the rest dark."""
    from lipdub.core.landmarks import EYE_OUTER, INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER

    lms = np.zeros((478, 3))
    lms[EYE_OUTER[0], :2], lms[EYE_OUTER[1], :2] = (150, 100), (250, 100)
    t = np.linspace(np.pi, 0, len(INNER_UPPER))  # corner to corner
    for idx, (rx, ry), sign in ((INNER_UPPER, (30, 10), -1), (INNER_LOWER, (30, 10), 1),
                                (OUTER_UPPER, (40, 20), -1), (OUTER_LOWER, (40, 20), 1)):
        lms[idx, 0], lms[idx, 1] = 200 + rx * np.cos(t), 200 + sign * ry * np.sin(t)
    rgb = np.full((400, 400, 3), (200, 150, 130), np.uint8)
    yy, xx = np.mgrid[:400, :400]
    rgb[((xx - 200) / 40) ** 2 + ((yy - 200) / 20) ** 2 <= 1] = (180, 60, 70)
    inner = ((xx - 200) / 30) ** 2 + ((yy - 200) / 10) ** 2 <= 1
    rgb[inner] = (30, 15, 15)
    if teeth:
        rgb[inner & (yy < 200)] = (240, 240, 235)
    return rgb, lms


def test_interior_stats_counts_the_upper_teeth_per_eye_distance():
    from bench import interior_stats

    rgb, lms = _mouth_frame(teeth=True)
    m = interior_stats.interior(rgb, lms)
    half = np.pi * 30 * 10 / 2 / 100  # the inner ellipse's upper half, per (eye distance / 10)²
    assert m["teeth"] == pytest.approx(half, rel=0.15)
    assert m["upper"] == pytest.approx(m["teeth"], rel=0.05)
    assert m["teeth_L"] > 1.5  # white against red lips
    dark = interior_stats.interior(*_mouth_frame(teeth=False))
    assert dark["teeth"] == 0 and np.isnan(dark["teeth_L"])
    assert dark["gap"] < 0.5 < m["gap"]


def test_interior_stats_bins_by_opening():
    from bench import interior_stats

    opening = np.array([0.01, 0.02, 0.025, 0.1, 0.1, 0.11, 0.5])
    values = np.tile(np.arange(len(opening), dtype=float)[:, None], (1, len(interior_stats.FIELDS)))
    bins = interior_stats.by_opening(opening, values)
    assert [b["opening"] for b in bins] == [(0.0, 0.03), (0.09, 0.12)]  # the lone 0.5 is under 3 frames
    assert bins[0]["n"] == 3 and bins[0]["gap"] == pytest.approx(1.0) and bins[1]["teeth"] == pytest.approx(4.0)


def test_realism_texture_reads_a_thinner_darker_gap_and_sharper_chroma():
    import cv2

    from bench import realism_texture as tex
    lips = np.full((60, 60, 3), (170, 110, 110), np.uint8)
    sharp = lips.copy()
    sharp[30:33] = (40, 25, 25)  # a 3-row dark line between the lips
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.5)  # the same line as a blurrier camera shows it
    (dark_sharp, rows_sharp), (dark_soft, rows_soft) = tex.gap(sharp), tex.gap(soft)
    assert rows_sharp == 3 and rows_soft > rows_sharp  # the valley widens ...
    assert dark_sharp < 0.3 < dark_soft  # ... and its darkest row lightens
    assert tex.gap(lips)[0] == 1.0  # no line: the darkest row is the median
    # a red edge: blurred, its a* and V sharpness fall, their contrast and the mean a* stay; paler, the contrast
    # falls and the sharpness stays
    edge = lips.copy()
    edge[:, 30:] = (220, 60, 80)
    t_sharp, t_soft = tex.texture(edge), tex.texture(cv2.GaussianBlur(edge, (0, 0), 1.5))
    for plane in ("a", "V"):
        assert t_soft[f"{plane}_sharpness"] < 0.8 * t_sharp[f"{plane}_sharpness"]
        assert t_soft[f"{plane}_contrast"] == pytest.approx(t_sharp[f"{plane}_contrast"], rel=0.1)
    assert abs(t_soft["a_mean"] - t_sharp["a_mean"]) < 1.0
    pale = lips.copy()
    pale[:, 30:] = (195, 85, 95)
    t_pale = tex.texture(pale)
    assert t_pale["a_contrast"] < 0.7 * t_sharp["a_contrast"]
    assert t_pale["a_sharpness"] == pytest.approx(t_sharp["a_sharpness"], rel=0.1)
