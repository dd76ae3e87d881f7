"""The cross-dub metrics on synthetic curves and frames (fast, no media), plus one short end-to-end case (slow)."""

import json
import math

import numpy as np
import pytest

from training import evaluate as ev

from conftest import require_data


def mouth_like(n=200, seed=0):
    """A smooth, speech-like opening curve: band-limited noise, clipped at zero (closed mouth)."""
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.normal(size=n + 20), np.hanning(9), mode="same")[10:-10]
    return np.clip(x, 0, None) * 0.1


# ----------------------------------------------------------------------------------------------- pearson / lag

def test_shifted_copy_has_best_lag_and_r_one():
    truth = mouth_like()
    dub = np.roll(truth, 2)  # dub[i] = truth[i - 2]: the dub is 2 frames late
    r, lag, r0 = ev.pearson_at_best_lag(dub, truth, 5)
    assert lag == 2
    assert r > 1 - 1e-9  # the 2 wrapped frames fall outside the compared range
    assert r0 < r


def test_early_dub_has_negative_lag():
    truth = mouth_like(seed=1)
    dub = np.roll(truth, -3)  # dub[i] = truth[i + 3]: early
    r, lag, _ = ev.pearson_at_best_lag(dub, truth, 5)
    assert lag == -3 and r > 0.999


def test_lag_outside_window_is_not_found():
    truth = mouth_like(seed=2)
    dub = np.roll(truth, 9)
    _, lag, _ = ev.pearson_at_best_lag(dub, truth, 5)
    assert abs(lag) <= 5


def test_identical_curves_lag_zero():
    truth = mouth_like(seed=3)
    assert ev.pearson_at_best_lag(truth, truth, 5) == (pytest.approx(1.0), 0, pytest.approx(1.0))


def test_r_is_scale_and_offset_free_and_sign_aware():
    truth = mouth_like(seed=4)
    r, lag, _ = ev.pearson_at_best_lag(3 * truth + 7, truth, 0)
    assert r == pytest.approx(1.0) and lag == 0
    r, _, r0 = ev.pearson_at_best_lag(-truth, truth, 0)
    assert r == pytest.approx(-1.0) and r0 == pytest.approx(-1.0)


def test_matches_numpy_corrcoef_at_lag_zero():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=100), rng.normal(size=100)
    _, _, r0 = ev.pearson_at_best_lag(a, b, 3)
    assert r0 == pytest.approx(np.corrcoef(a, b)[0, 1])


def test_independent_noise_scores_near_zero():
    rng = np.random.default_rng(6)
    rs = [ev.pearson_at_best_lag(rng.normal(size=400), rng.normal(size=400), 0)[0] for _ in range(20)]
    assert abs(np.mean(rs)) < 0.05


def test_nans_are_left_out_pairwise():
    truth = mouth_like(seed=7)
    dub = np.roll(truth, 1).copy()
    dub[[10, 11, 12, 50]] = np.nan
    t2 = truth.copy()
    t2[[80, 81]] = np.nan
    r, lag, _ = ev.pearson_at_best_lag(dub, t2, 5)
    assert lag == 1 and r > 0.999


def test_undefined_cases_give_nan():
    r, lag, r0 = ev.pearson_at_best_lag(np.full(50, np.nan), mouth_like(50), 5)
    assert math.isnan(r) and math.isnan(r0) and lag == 0
    r, _, _ = ev.pearson_at_best_lag(np.ones(50), mouth_like(50), 5)  # constant: no correlation defined
    assert math.isnan(r)
    r, _, _ = ev.pearson_at_best_lag(np.arange(4.0), np.arange(4.0), 1)  # too few pairs
    assert math.isnan(r)


def test_unequal_lengths_use_the_common_prefix():
    truth = mouth_like(120, seed=8)
    dub = np.roll(truth, 2)[:100]
    r, lag, _ = ev.pearson_at_best_lag(dub, truth, 5)
    assert lag == 2 and r > 0.999


# ----------------------------------------------------------------------------------------------- amplitude

def test_amplitude_ratio_of_scaled_copy():
    truth = mouth_like(seed=9)
    assert ev.amplitude_ratio(0.5 * truth + 1.0, truth) == pytest.approx(0.5)
    assert ev.amplitude_ratio(2 * truth, truth) == pytest.approx(2.0)


def test_amplitude_ratio_uses_common_valid_frames():
    truth = mouth_like(seed=10)
    dub = 2 * truth
    dub[:20] = np.nan
    truth2 = truth.copy()
    truth2[:20] = 100.0  # would dominate the std if not masked with the dub's NaNs
    assert ev.amplitude_ratio(dub, truth2) == pytest.approx(2.0)
    assert math.isnan(ev.amplitude_ratio(dub, np.zeros_like(truth)))


# ----------------------------------------------------------------------------------------------- flicker

def frames(n=10, h=40, w=50, noise=0.0, seed=11):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(h, w, 3)).astype(np.float32)
    for _ in range(n):
        yield np.clip(base + rng.normal(scale=noise, size=base.shape), 0, 255).astype(np.uint8) if noise else \
            base.astype(np.uint8)


def test_flicker_of_constant_sequence_is_zero():
    boxes = [(5, 5, 30, 30)] * 10
    assert ev.flicker(frames(noise=0), boxes) == 0.0


def test_flicker_grows_with_noise():
    boxes = [(5, 5, 30, 30)] * 10
    low = ev.flicker(frames(noise=2), boxes)
    high = ev.flicker(frames(noise=10), boxes)
    assert 0 < low < high


def test_flicker_exact_value_and_region():
    a = np.zeros((20, 20, 3), np.uint8)
    b = a.copy()
    b[0:10, 0:10] = 100  # the change is inside the box
    b[15:, 15:] = 255  # and outside it (ignored)
    assert ev.flicker([a, b, a], [(0, 0, 10, 10)] * 3) == pytest.approx(100.0, rel=1e-4)
    # half the box changes: half the mean
    assert ev.flicker([a, b], [(0, 0, 10, 20)] * 2) == pytest.approx(50.0, rel=1e-4)


def test_flicker_skips_frames_without_a_face_and_accepts_frame_objects():
    class F:
        def __init__(self, rgb):
            self.rgb = rgb

    a = np.zeros((20, 20, 3), np.uint8)
    b = np.full((20, 20, 3), 200, np.uint8)
    seq = [F(a), F(a), F(b), F(a), F(a)]
    boxes = [(0, 0, 10, 10), (0, 0, 10, 10), None, (0, 0, 10, 10), (0, 0, 10, 10)]
    assert ev.flicker(seq, boxes) == 0.0  # both jumps touch the faceless frame
    assert math.isnan(ev.flicker([a, b], [None, None]))


def test_mouth_boxes_grow_lip_box():
    lms = np.zeros((2, 478, 3), np.float32)
    lms[:, :, 0], lms[:, :, 1] = 50, 50
    from lipdub.face import OUTER_LOWER, OUTER_UPPER

    lms[0, OUTER_UPPER, 0] = np.linspace(40, 60, len(OUTER_UPPER))  # lips span x 40..60, y 45..55
    lms[0, OUTER_UPPER, 1] = 45
    lms[0, OUTER_LOWER, 0] = np.linspace(40, 60, len(OUTER_LOWER))
    lms[0, OUTER_LOWER, 1] = 55
    lms[0, 61, 1] = lms[0, 291, 1] = 50
    boxes = ev.mouth_boxes(lms, np.array([True, False]))
    assert boxes[1] is None
    assert boxes[0] == pytest.approx((37.0, 43.5, 63.0, 56.5))


# ----------------------------------------------------------------------------------------------- resampling

def test_a_dubs_sync_is_its_retracked_mouth_on_the_truths_times(monkeypatch, tmp_path):
    # the dub re-tracked (never from the cache) at twice the truth's frame rate, 2 truth frames late and twice as wide
    t_truth = np.arange(200) / 25.0
    y_truth = mouth_like()
    t_dub = np.arange(400) / 50.0
    y_dub = 2 * np.interp(t_dub - 2 / 25.0, t_truth, y_truth)
    asked = []

    def tracked(path, start=None, end=None, cache=True, per_frame=False):
        asked.append((path, cache))
        return t_dub, y_dub
    monkeypatch.setattr(ev, "mouth_curve", tracked)
    r, lag, amp = ev.dub_sync(tmp_path / "dub.mp4", (t_truth, y_truth))
    assert asked == [(tmp_path / "dub.mp4", False)]
    assert lag == 2 and r > 0.99
    assert amp == pytest.approx(2.0, rel=0.02)


def test_resample_between_frame_rates():
    t30 = np.arange(90) / 30.0
    t25 = np.arange(75) / 25.0
    y = np.sin(2 * np.pi * 1.3 * t30)
    out = ev.resample(t30, y, t25)
    assert np.nanmax(np.abs(out - np.sin(2 * np.pi * 1.3 * t25))) < 0.03
    assert np.isfinite(out).all()


def test_resample_identity_and_nan_propagation():
    t = np.arange(10) / 25.0
    y = np.arange(10.0)
    y[4] = np.nan
    out = ev.resample(t, y, t)
    assert np.array_equal(np.isnan(out), np.isnan(y))
    assert np.allclose(out[~np.isnan(y)], y[~np.isnan(y)])
    mid = ev.resample(t, y, (t[:-1] + t[1:]) / 2)
    assert np.isnan(mid[3]) and np.isnan(mid[4]) and mid[5] == pytest.approx(5.5)
    far = ev.resample(t, np.arange(10.0), np.array([-1.0, 9.4 / 25.0, 5.0]))
    assert np.isnan(far[0]) and far[1] == pytest.approx(9.0) and np.isnan(far[2])


# ----------------------------------------------------------------------------------------------- report

def test_cases_are_the_documented_ones():
    assert set(ev.CASES) == {"cnn_anchor", "grid_bbaf2n", "grid_lbax4n", "hdtf_katiehill", "woman_bluebg"}
    assert ev.CASES["cnn_anchor"].video_range == (0.0, 30.0) and ev.CASES["cnn_anchor"].clip_range == (40.0, 70.0)


def test_table_and_json_handle_nan_and_errors(tmp_path, monkeypatch):
    row = {"case": "x", "r": 0.5, "lag": 1, "r0": 0.4, "amp": float("nan"), "flicker": 1.1, "base_r": 0.1,
           "base_r0": 0.05, "seconds": 2.0}
    text = ev.format_table([row, {"case": "y", "error": "RuntimeError: boom"}])
    assert "mean" in text and "nan" in text and "y: ERROR RuntimeError: boom" in text
    monkeypatch.setattr(ev, "evaluate", lambda names, data, max_seconds=None, echo=True: [dict(row)])
    monkeypatch.setattr(ev, "require_data", lambda root, paths=None: root)  # no clips in tmp_path
    out = tmp_path / "r.json"
    code = ev.main(["--data", str(tmp_path), "--cases", "grid_bbaf2n", "--json", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["cases"][0]["amp"] is None and doc["mean"]["r"] == 0.5
    monkeypatch.setattr(ev, "evaluate", lambda names, data, max_seconds=None, echo=True: [{"case": "y", "error": "e"}])
    assert ev.main(["--data", str(tmp_path)]) == 1


def test_unknown_case_is_a_parameter_error(tmp_path):
    from lipdub.errors import ParameterError

    with pytest.raises(ParameterError):
        ev.main(["--data", str(tmp_path), "--cases", "nope"])


def test_without_the_data_the_evaluation_says_what_it_needs(tmp_path):
    from lipdub.errors import InputError, ParameterError

    with pytest.raises(ParameterError, match="needs a checkout with the shared clips"):
        ev.main(["--data", str(tmp_path / "absent")])
    with pytest.raises(InputError, match="need the shared clips"):
        ev.main(["--data", str(tmp_path), "--cases", "grid_bbaf2n"])


# ----------------------------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_short_cross_dub_runs_end_to_end(tmp_path, monkeypatch):
    data = require_data("video/grid_bbaf2n.mpg", "video/grid_brbk7n.mpg")
    monkeypatch.setenv("LIPDUB_CACHE", str(tmp_path / "cache"))
    row = ev.run_case("grid_bbaf2n", data=data, max_seconds=1.2)
    assert row["truth_frames"] == 30 and row["dub_frames"] == 30
    assert row["truth_valid"] >= 25 and row["dub_valid"] >= 25
    for key in ("r", "r0", "amp", "flicker", "base_r"):
        assert math.isfinite(row[key]), key
    assert -5 <= row["lag"] <= 5 and -1 <= row["r"] <= 1 and row["r"] >= row["r0"]


@pytest.mark.slow
@pytest.mark.parametrize("case,px,seconds", [("hdtf_katiehill", 66.0, 5.0), ("woman_bluebg", 64.0, 8.0)])
def test_wide_shot_keeps_sync(tmp_path, monkeypatch, case, px, seconds):
    # issue 22: a face 60-80 px wide in a 720p frame (a standing speaker) dubs with r within 0.1 of the same clip at
    # full size, every dubbed frame re-tracked. woman_bluebg at 64 px over 8 s is the case that fell out of it with
    # the phone posteriors (0.725 / 0.600 at 3f4dfee; this test fails there; at 5 s it passed)
    from bench import wide_shot

    require_data(ev.CASES[case].video, ev.CASES[case].audio_clip)
    monkeypatch.setenv("LIPDUB_CACHE", str(tmp_path / "cache"))
    row = wide_shot.run(case, px, (1280, 720), max_seconds=seconds, keep=None)
    assert 60 <= row["face_px_wide"] <= 80 and row["face_px_full"] > 180
    assert row["wide_dub_valid"] == row["wide_dub_frames"] == row["full_dub_frames"]
    assert row["wide_r"] >= row["full_r"] - 0.1 and row["wide_r"] > 0.45, row


def test_wide_shot_of_a_grid_clip_is_written_as_mp4(tmp_path):
    # bench.wide_shot wrote the wide shot with the source's suffix, and the writer refuses GRID's .mpg
    from bench import wide_shot
    from lipdub import media

    data = require_data("video/grid_bbaf2n.mpg")
    out = tmp_path / wide_shot.wide_name("video/grid_bbaf2n.mpg")
    out.parent.mkdir(parents=True)
    scaled = wide_shot.make_wide_shot(data / "video/grid_bbaf2n.mpg", out, 0.5, 320, 240)
    info = media.probe_video(out)
    assert out.suffix == ".mp4" and (info.width, info.height) == (320, 240) and info.n_frames == 75
    assert scaled == (180, 144)  # GRID's 360x288 halved
