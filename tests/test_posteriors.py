"""training.posteriors (hama's phone posteriors as more inputs of the offline opening model, a held-out screen) and
training.truth_noise's target smoothing. No shared data needed: hama is replaced by a fake that says which frame of
the whole audio each of its frames is."""

from __future__ import annotations

import numpy as np
import pytest

from training import posteriors, truth_noise
from training.posteriors import POSTERIOR_FRAME, SR

FRAME = int(round(POSTERIOR_FRAME * SR))


def fake_hama(n_tokens: int):
    """posteriors(audio, sr) whose frame f is one-hot on token (the absolute frame it hears) % n_tokens: the audio
    holds each sample's absolute index, so a window knows where it is."""
    def posteriors_of(audio, sr):
        first = int(round(audio[0])) // FRAME
        frames = int(np.ceil(len(audio) / FRAME))
        out = np.zeros((frames, n_tokens), np.float32)
        out[np.arange(frames), (first + np.arange(frames)) % n_tokens] = 1.0
        return out
    return posteriors_of


def test_windows_cover_long_audio_and_each_frame_comes_from_the_right_place(monkeypatch):
    n_tokens = len(posteriors.hama_token_classes())
    seconds = 2.5 * posteriors.POST_WINDOW  # three windows, the last one short
    audio = np.arange(int(seconds * SR), dtype=np.float64)
    out = posteriors.windowed_posteriors(audio, fake_hama(n_tokens))
    frames = int(np.ceil(len(audio) / FRAME))
    classes = posteriors.hama_token_classes()
    expected = classes[np.arange(frames) % n_tokens]
    assert out.shape[1] == classes.max() + 1 and len(out) >= frames
    assert np.array_equal(out[:frames].argmax(1), expected)  # no frame from another place, none left empty
    assert np.allclose(out[:frames].sum(1), 1.0)


def test_posterior_columns_read_each_tap_smoothed_and_zero_outside():
    post = np.zeros((10, 3))
    post[4, 1] = 1.0  # frame 4: [0.08, 0.10) s
    cols = posteriors.posterior_columns(post, 30, 0.01, (0.0, 0.04))
    assert cols.shape == (30, 6)
    # smoothed over ±1 frame, frames 3, 4 and 5 hold a third of it each
    assert cols[8, 1] == pytest.approx(1 / 3)  # hop 8's centre, 0.085 s, is in frame 4
    assert cols[6, 1] == pytest.approx(1 / 3) and cols[12, 1] == 0  # frames 3 and 6
    assert cols[4, 4] == pytest.approx(1 / 3) and cols[4, 1] == 0  # hop 4: frame 4 at tap 0.04 s, frame 2 at 0
    assert np.all(cols[25:, 3:] == 0)  # past the posteriors: zeros


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
    post = {"a": np.full((11, 13), 1 / 13)}
    keep, extra = posteriors.variant_inputs("plain", samples, post)
    assert extra["a"].shape == (20, 0) and keep[0] == 0
    keep, extra = posteriors.variant_inputs("post-nodom", samples, post)
    assert keep[0] == len(posteriors.FEATURE_LABELS) and extra["a"].shape == (20, 7 * 13)


def test_a_smoothed_target_leaves_its_gaps_and_does_not_spread_them():
    y = np.array([0.0, 0.0, 1.0, np.nan, 1.0, 0.0, 0.0])
    s = truth_noise.smoothed(y, 1.0)
    assert np.isnan(s[3]) and np.isfinite(np.delete(s, 3)).all()
    assert 0 < s[1] < s[2] < 1
