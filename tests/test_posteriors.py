"""training.posteriors (hama's phone posteriors as more inputs of the offline opening model, a held-out screen), the
reading of the posteriors (motion.posterior_columns) and training.truth_noise's target smoothing. No shared data
needed."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub import motion
from training import posteriors, truth_noise


def test_posterior_columns_read_each_tap_smoothed_and_zero_outside():
    post = np.zeros((20, 3))  # per hop (speech.posteriors): hama's 20 ms frame 4 on hops 8 and 9
    post[8:10, 1] = 1.0
    cols = motion.posterior_columns(post, np.arange(30), (0.0, 0.04))
    assert cols.shape == (30, 6)
    # smoothed over ±1 frame, frames 3, 4 and 5 hold a third of it each
    assert cols[8, 1] == pytest.approx(1 / 3)  # hop 8's centre, 0.085 s, is in frame 4
    assert cols[6, 1] == pytest.approx(1 / 3) and cols[12, 1] == 0  # frames 3 and 6
    assert cols[4, 4] == pytest.approx(1 / 3) and cols[4, 1] == 0  # hop 4: frame 4 at tap 0.04 s, frame 2 at 0
    assert np.all(cols[20:, :] == 0) and np.all(cols[16:, 3:] == 0)  # past the posteriors: zeros


def test_a_model_with_columns_reads_the_kept_features_and_the_clips_extra_columns():
    class Inner:
        mel_context = (0,)

        def predict(self, x):
            return x.sum(1)
    x, extra = np.ones((4, 5)), np.full((4, 2), 10.0)
    model = posteriors.WithColumns(Inner(), np.array([0, 1]), extra)
    assert np.array_equal(model.predict(x), np.full(4, 22.0))
    with pytest.raises(ValueError, match="posterior rows"):
        model.predict(np.ones((3, 5)))


def test_variants_keep_or_drop_the_dominance_columns():
    class Speech:
        voiced, hop = np.ones(20, bool), 0.01
    samples = {"a": (None, None, Speech())}
    post = {"a": np.full((20, 13), 1 / 13)}
    keep, extra = posteriors.variant_inputs("plain", samples, post)
    assert extra["a"].shape == (20, 0) and keep[0] == 0
    keep, extra = posteriors.variant_inputs("post-nodom", samples, post)
    assert keep[0] == len(posteriors.FEATURE_LABELS) and extra["a"].shape == (20, 7 * 13)


def test_a_smoothed_target_leaves_its_gaps_and_does_not_spread_them():
    y = np.array([0.0, 0.0, 1.0, np.nan, 1.0, 0.0, 0.0])
    s = truth_noise.smoothed(y, 1.0)
    assert np.isnan(s[3]) and np.isfinite(np.delete(s, 3)).all()
    assert 0 < s[1] < s[2] < 1


def test_a_model_with_columns_runs_through_the_offline_motion():
    """The screens score their models through motion.mouth_track: the model must answer what learned_opening asks of
    an OpeningModel (its taps: none, it appends its own columns)."""
    from lipdub.motion.offline import learned_opening
    from lipdub.speech.track import Phone, SpeechTrack

    n = 30
    speech = SpeechTrack(n / 100, 0.01, np.ones(n, bool), np.full(n, 0.5, np.float32), np.full(n, 0.5, np.float32),
                         [Phone("AA", 0.0, n / 100)], "hama+align", None, np.zeros((n, 26), np.float32))

    class Inner:
        mel_context = motion.MEL_CONTEXT

        def predict(self, x):
            return x[:, -1]
    opening = learned_opening(speech, posteriors.WithColumns(Inner(), np.arange(3), np.full((n, 1), 0.7)))
    assert np.allclose(opening, 0.7)
