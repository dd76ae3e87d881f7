"""training.clip_loss (the opening MLP fitted with a per-clip correlation loss) and training.post_fit (the motion's
post-processing screened on precomputed openings). No shared data needed."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub import motion
from lipdub.motion.offline import MouthTrack, learned_opening
from lipdub.speech.track import Phone, SpeechTrack
from training import clip_loss, fit, post_fit, tokens


@pytest.mark.parametrize("mix", [0.0, 0.3, 1.0])
def test_the_per_piece_loss_gradient_matches_finite_differences(mix):
    rng = np.random.default_rng(1)
    pred, y = rng.normal(size=40), rng.normal(size=40)
    starts = np.array([0, 9, 25])
    _, grad = clip_loss.per_piece_loss(pred, y, starts, mix, 0.4)
    step = 1e-6
    numeric = np.array([(clip_loss.per_piece_loss(pred + e, y, starts, mix, 0.4)[0]
                         - clip_loss.per_piece_loss(pred - e, y, starts, mix, 0.4)[0]) / (2 * step)
                        for e in np.eye(len(pred)) * step])
    assert np.allclose(grad, numeric, atol=1e-7)


def test_the_correlation_term_ignores_each_pieces_scale_and_offset():
    rng = np.random.default_rng(2)
    y = rng.normal(size=30)
    starts = np.array([0, 12])
    moved = np.concatenate([3 * y[:12] + 5, 0.5 * y[12:] - 1])  # each piece's own line of the target
    loss, grad = clip_loss.per_piece_loss(moved, y, starts, 0.0, 1.0)
    assert loss == pytest.approx(0.0, abs=1e-9) and np.allclose(grad, 0, atol=1e-9)
    assert clip_loss.per_piece_loss(moved, y, np.array([0]), 0.0, 1.0)[0] > 0.01  # one piece: not a line of y
    assert clip_loss.per_piece_loss(moved, y, starts, 1.0, 1.0)[0] > 1  # the squared error sees the offsets


def test_a_pass_covers_every_row_once_in_pieces_of_one_clip():
    lengths = [700, 100, 40, 300]
    clip_of = np.repeat(np.arange(len(lengths)), lengths)
    batches = clip_loss.clip_batches(lengths, np.random.default_rng(0))
    rows = np.concatenate([b for b, _ in batches])
    assert np.array_equal(np.sort(rows), np.arange(sum(lengths)))
    for batch, starts in batches:
        for piece in np.split(batch, starts[1:]):
            assert len(set(clip_of[piece])) == 1 and np.all(np.diff(piece) == 1)  # consecutive rows of one clip
            assert len(piece) <= clip_loss.PIECE_ROWS + clip_loss.MIN_PIECE_ROWS


def test_the_correlation_fit_learns_and_is_put_on_the_targets_scale():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 4))
    y = 0.3 * np.tanh(x[:, 0]) + 0.5 + 0.02 * rng.normal(size=600)
    model = clip_loss.fit_mlp_per_clip(x, y, [250, 350], 0.0, members=1, epochs=40)
    pred = model.predict(x)
    assert np.corrcoef(pred, y)[0, 1] > 0.95
    assert pred.mean() == pytest.approx(y.mean(), abs=0.01) and pred.std() == pytest.approx(y.std(), rel=0.1)
    with pytest.raises(ValueError, match="clip lengths"):
        clip_loss.fit_mlp_per_clip(x, y, [250, 300], 0.0, members=1, epochs=1)


def test_every_loss_variant_names_a_mix():
    assert set(tokens.LOSS_VARIANTS) <= set(tokens.VARIANTS)
    for variant in tokens.LOSS_VARIANTS:
        assert any(s in clip_loss.MIX_OF_SUFFIX for s in variant.split("-"))


def _speech(n: int) -> SpeechTrack:
    return SpeechTrack(n / 100, 0.01, np.ones(n, bool), np.full(n, 0.5, np.float32), np.full(n, 0.5, np.float32),
                       [Phone("AA", 0.0, n / 200), Phone("M", n / 200, n / 200 + 0.06), Phone("AA", n / 200 + 0.06,
                                                                                               n / 100)],
                       "hama+align", None, np.zeros((n, 26), np.float32))


def test_a_precomputed_opening_gives_the_models_motion():
    n = 300
    speech = _speech(n)
    wave = 0.5 + 0.4 * np.sin(np.arange(n) / 7)

    class Model:  # the opening at every hop from the hop's position (a feature every block carries: none), stateless
        mel_context, reach, posterior_taps, component_taps = motion.MEL_CONTEXT, 0, (), ()

        def __init__(self):
            self.at = 0

        def predict(self, x):
            out = wave[self.at:self.at + len(x)]
            self.at += len(x)
            return out
    times = np.arange(0, n / 100, 0.04)
    direct = motion.mouth_track(speech, times, params=motion.MotionParams(model=Model())).opening
    opening = learned_opening(speech, Model())
    fixed = post_fit.FixedOpening(opening, motion.MEL_CONTEXT)
    again = motion.mouth_track(speech, times, params=motion.MotionParams(model=fixed)).opening
    assert np.array_equal(direct, again)
    twice = motion.mouth_track(speech, times, params=motion.MotionParams(model=fixed)).opening  # reusable
    assert np.array_equal(direct, twice)
    mapped = post_fit.FixedOpening(opening, motion.MEL_CONTEXT, post_fit.gamma_curve(2.0))
    squared = motion.mouth_track(speech, times, params=motion.MotionParams(model=mapped)).opening
    assert not np.allclose(squared, direct)


def test_the_asymmetric_timing_opens_early_closes_late_and_keeps_closures():
    times = np.arange(5.0)
    early = MouthTrack(times, np.array([0.2, 0.8, 0.5, 0.1, 0.6]), np.zeros(5), np.array([0, 0, 0, 0, 1], bool))
    late = MouthTrack(times, np.array([0.0, 0.4, 0.9, 0.3, 0.2]), np.zeros(5), np.zeros(5, bool))
    wide = post_fit.asymmetric_opening(early, late, 0.06, 0.02)
    assert wide.tolist() == [0.2, 0.8, 0.9, 0.3, 0.2]  # the larger, but the frame shut on one track: the smaller
    narrow = post_fit.asymmetric_opening(early, late, 0.02, 0.06)
    assert narrow.tolist() == [0.0, 0.4, 0.5, 0.1, 0.2]


def test_the_whole_quantile_curve_is_monotone_and_takes_the_filmed_quantiles():
    rng = np.random.default_rng(4)
    predicted = rng.uniform(0.3, 0.6, 2000)
    filmed = rng.uniform(0.0, 1.0, 2000) ** 2
    curve = post_fit.quantile_curve(predicted, filmed)
    grid = np.linspace(0, 1, 101)
    assert np.all(np.diff(curve(grid)) >= 0)
    knots = np.quantile(predicted, fit.CURVE_QUANTILES)
    assert np.allclose(curve(knots), np.quantile(filmed, fit.CURVE_QUANTILES), atol=1e-3)
    assert not np.allclose(curve(knots), knots, atol=0.01)  # not a straight line
    half = post_fit.quantile_curve(predicted, filmed, strength=0.5)  # half way from the identity
    assert np.allclose(half(knots), (knots + curve(knots)) / 2, atol=1e-3)


def test_the_curve_leaves_openings_below_its_start_alone_and_meets_them_there():
    rng = np.random.default_rng(5)
    predicted = rng.uniform(0.3, 0.6, 2000)
    filmed = rng.uniform(0.0, 1.0, 2000) ** 2
    whole = post_fit.quantile_curve(predicted, filmed)
    curve = post_fit.quantile_curve(predicted, filmed, start=0.5)
    at = np.quantile(predicted, 0.5)
    below = np.linspace(0.0, at, 50)
    assert np.allclose(curve(below), below)  # quiet and shut openings as the model draws them
    assert curve(at + 1e-7) == pytest.approx(at, abs=1e-5)  # continuous where the identity ends
    grid = np.linspace(0, 1, 201)
    assert np.all(np.diff(curve(grid)) >= 0)
    above = np.quantile(predicted, [0.6, 0.8, 0.95])  # above it: the whole map's shape, shifted to meet it
    assert np.allclose(curve(above) - whole(above), at - whole(at), atol=1e-5)
    assert curve(above[-1]) - curve(above[0]) > 1.5 * (above[-1] - above[0])  # spread, not the identity
    # capped: nothing past the larger of its input and the cap quantile's opening
    capped = post_fit.quantile_curve(predicted, filmed, start=0.5, cap=0.9)
    top = np.quantile(predicted, 0.9)
    assert np.all(capped(grid) <= np.maximum(grid, top) + 1e-9)
    assert curve(above[-1]) > top + 0.05 and capped(above[-1]) == pytest.approx(max(above[-1], top), abs=1e-3)
    assert np.allclose(capped(below), below) and np.all(np.diff(capped(grid)) >= 0)


def test_a_models_curve_maps_its_learned_opening_and_a_model_without_one_is_unchanged():
    n = 200
    speech = _speech(n)
    rng = np.random.default_rng(7)
    arrays = {"mean": np.zeros((1, 3)), "std": np.ones((1, 3)), "w1": rng.normal(size=(1, 3, 4)),
              "b1": np.zeros((1, 4)), "w2": rng.normal(size=(1, 4)), "b2": np.array([0.5])}
    plain = motion.OpeningModel(arrays)
    x = rng.normal(size=(n, 3))
    assert np.array_equal(plain.shaped(x[:, 0]), x[:, 0])
    predicted = np.clip(plain.predict(x), 0, 1.2)
    filmed = rng.uniform(0, 1, n) ** 3
    curved = motion.OpeningModel({**arrays, **fit.opening_curve(predicted, filmed)})
    mapped = curved.shaped(predicted)
    assert np.all(np.diff(mapped[np.argsort(predicted)]) >= -1e-12)  # monotone
    quiet = predicted < np.quantile(predicted, fit.CURVE_START or 0.0)
    assert np.allclose(mapped[quiet], predicted[quiet])  # the curve starts where the shipped one does
    width = motion.model_features(speech, mel_context=plain.mel_context).shape[1]
    wide = {"mean": np.zeros((1, width)), "std": np.ones((1, width)), "w1": rng.normal(size=(1, width, 4))}
    plain, curved = (motion.OpeningModel({**m.arrays, **wide}) for m in (plain, curved))
    base = learned_opening(speech, plain)
    assert np.ptp(base) > 0.01 and not np.allclose(curved.shaped(base), base)  # the motion reads the curve
    assert np.allclose(learned_opening(speech, curved), np.clip(curved.shaped(base), 0, 1.2))


def test_a_saved_models_curve_is_loaded_with_it(tmp_path):
    width = len(motion.offline_feature_names())
    arrays = {"mean": np.zeros((1, width)), "std": np.ones((1, width)), "w1": np.ones((1, width, 3)),
              "b1": np.zeros((1, 3)), "w2": np.ones((1, 3)), "b2": np.zeros(1), "curve_in": np.array([0.0, 0.5, 1.2]),
              "curve_out": np.array([0.0, 0.2, 1.2])}
    motion.OpeningModel(arrays).save(tmp_path / "m.npz")
    loaded = motion.load_opening_model(tmp_path / "m.npz")
    assert loaded.shaped(np.array([0.5]))[0] == pytest.approx(0.2)


def test_a_decayed_rate_starts_at_the_rate_and_changes_only_the_later_passes():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 4)), rng.random(300)
    one = [fit.fit_mlp(x, y, members=1, epochs=1, decay=d).arrays["w1"] for d in (False, True)]
    assert np.array_equal(*one)  # the first pass runs at the full rate
    two = [fit.fit_mlp(x, y, members=1, epochs=2, decay=d).arrays["w1"] for d in (False, True)]
    assert not np.allclose(*two)
    decayed = clip_loss.net_fitter(["xlag", "decay"])(x, y, [300], 1, 2)  # the screen's -decay suffix reaches the fit
    assert np.array_equal(decayed.arrays["w1"], two[1])


def test_the_rate_falls_from_its_start_to_its_floor_along_a_line_or_a_cosine():
    lr = 3e-3
    assert [fit.pass_rate(lr, k, 4) for k in range(4)] == [lr] * 4  # no fall
    assert [fit.pass_rate(lr, k, 4, True) for k in range(4)] == [lr * (1 - k / 4) for k in range(4)]  # as shipped
    assert fit.pass_rate(lr, 2, 4, "linear") == pytest.approx(lr / 2)
    assert fit.pass_rate(lr, 2, 4, "linear", floor=0.1) == pytest.approx(lr * (0.1 + 0.9 / 2))
    cosine = [fit.pass_rate(lr, k, 8, "cosine") for k in range(8)]
    assert cosine[0] == lr and cosine[4] == pytest.approx(lr / 2)
    assert cosine[1] > fit.pass_rate(lr, 1, 8, True) and cosine[7] < fit.pass_rate(lr, 7, 8, True)
    assert fit.pass_rate(lr, 7, 8, "cosine", floor=0.25) > 0.25 * lr
    with pytest.raises(ValueError):
        fit.pass_rate(lr, 1, 8, "step")


def test_a_variants_suffixes_name_its_rate_and_passes():
    assert clip_loss.rate_schedule(["xlag"]) == {}
    assert clip_loss.rate_schedule(["xlag", "decay"]) == {"decay": True}
    assert clip_loss.rate_schedule(["xlag", "decay", "cos"]) == {"decay": "cosine"}
    assert clip_loss.rate_schedule(["xlag", "decay", "floor10", "lr6", "e240", "x2"]) == {
        "decay": True, "floor": 0.1, "lr": 6e-3, "epochs": 240}
    for variant in tokens.DECAY_VARIANTS:  # each varies the shipped fall
        suffix = variant.split("-")[1:]
        assert variant in tokens.VARIANTS and "decay" in suffix
        assert clip_loss.rate_schedule(suffix) != {"decay": True} or suffix[-1] in tokens.NETS_TIMES
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 4)), rng.random(300)
    # the suffixes reach the fit: -e3 is three passes whatever the screen's count, -floor50 a slower fall than -decay
    three = clip_loss.net_fitter(["xlag", "decay", "e3"])(x, y, [300], 1, 2)
    assert np.array_equal(three.arrays["w1"], fit.fit_mlp(x, y, members=1, epochs=3, decay=True).arrays["w1"])
    floor = clip_loss.net_fitter(["xlag", "decay", "floor50"])(x, y, [300], 1, 2)
    assert np.array_equal(floor.arrays["w1"], fit.fit_mlp(x, y, members=1, epochs=2, decay=True, floor=0.5)
                          .arrays["w1"])
    assert not np.allclose(floor.arrays["w1"], fit.fit_mlp(x, y, members=1, epochs=2, decay=True).arrays["w1"])
