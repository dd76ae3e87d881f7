"""training.tokens (a screen of more of hama's output as opening-model inputs): where each chunk's token
probabilities land, the per-phone sums, the taps, the model that appends a clip's columns. No shared data needed."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.core.constants import SR
from lipdub.speech import recognise
from lipdub.speech.posteriors import class_posteriors
from training import tokens


def test_each_chunks_token_probabilities_land_on_its_hops_and_blank_elsewhere(monkeypatch):
    n_tok = len(recognise.token_phones())
    blank = recognise._model().blank_id
    monkeypatch.setattr(tokens, "_recognition_chunks", lambda voiced, rms: [(10, 30), (50, 61)])
    heard = []

    def fake(audio, sr):  # one 20 ms frame per 320 samples, each frame's token: its index
        heard.append(len(audio))
        probs = np.zeros((len(audio) // 320, n_tok), np.float32)
        probs[np.arange(len(probs)), np.arange(len(probs))] = 1.0
        return probs
    monkeypatch.setattr(recognise, "frame_posteriors", fake)
    out = tokens.token_posteriors(np.zeros(SR, np.float32), 60)
    assert heard == [20 * 160, 11 * 160]
    assert out.shape == (60, n_tok)
    assert out[10, 0] == 1 and out[11, 0] == 1 and out[12, 1] == 1 and out[29, 9] == 1  # 2 hops per frame
    assert out[50, 0] == 1 and out[59, 4] == 1  # the second chunk, cut at the end of the audio
    assert np.all(out[:10, blank] == 1) and np.all(out[30:50, blank] == 1)  # unheard hops: blank


def test_tokens_summed_per_phone_add_up_to_the_class_sums():
    groups = tokens.phone_groups()
    phones = recognise.token_phones()
    assert len(groups) == len(phones) and groups.max() == len(set(p for p in phones if p))
    assert all(g == groups.max() for g, p in zip(groups, phones) if not p)  # blank, <wb>, ...: the last column
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(len(phones)), 7).astype(np.float32)
    per_phone = class_posteriors(p, groups)
    assert np.allclose(per_phone.sum(1), 1, atol=1e-5)
    assert np.allclose(class_posteriors(p).sum(1), per_phone.sum(1), atol=1e-5)


def test_shifted_reads_each_tap_and_zeros_outside():
    cols = np.arange(10, dtype=float)[:, None]
    out = tokens.shifted(cols, np.array([0, 5, 9]), (-0.02, 0.0, 0.04))
    assert out.tolist() == [[0, 0, 4], [3, 5, 9], [7, 9, 0]]


def test_the_extra_columns_model_reads_the_kept_features_and_its_clips_columns():
    class Inner:
        mel_context = (0,)

        def predict(self, x):
            return x.sum(1)
    model = tokens.ExtraColumns(Inner(), np.array([0, 1]), lambda name: np.full((4, 2), 10.0 if name == "a" else 1.0))
    assert np.array_equal(model.on("a").predict(np.ones((4, 5))), np.full(4, 22.0))
    assert np.array_equal(model.on("b").predict(np.ones((4, 5))), np.full(4, 4.0))
    with pytest.raises(ValueError, match="extra rows"):
        model.on("b").predict(np.ones((3, 5)))


def test_a_clips_learned_lag_is_measured_by_a_model_that_never_heard_its_speaker(monkeypatch):
    speaker = {f"c{i}": f"s{i // 2}" for i in range(12)}  # 6 speakers, 2 clips each
    monkeypatch.setattr(tokens, "speaker_of_name", lambda: speaker)
    fitted_on = []

    class Model:
        def __init__(self, names):
            self.names, self.clip = set(names), None

        def on(self, name):
            self.clip = name
            return self

    def fitter(variant, samples, toks, epochs):
        assert variant == "post5"
        return lambda names, members: fitted_on.append(set(names)) or Model(names)
    monkeypatch.setattr(tokens, "variant_fitter", fitter)

    def score(sample, model, params):
        assert params.advance == 0.0  # timed as clip_lag times the rules: no advance
        assert speaker[model.clip] not in {speaker[n] for n in model.names}
        return 0.5, int(model.clip[1:]) % 3, 0.4
    monkeypatch.setattr(tokens, "score_clip", score)
    names = [f"c{i}" for i in range(10)]  # c10, c11: a held-out fold's clips, never used
    lags = tokens.cross_fitted_lags({n: None for n in speaker}, names, 2, 1)
    assert sorted(lags) == sorted(names) and all(lags[n] == int(n[1:]) % 3 for n in names)
    assert len(fitted_on) == 2 and fitted_on[0] | fitted_on[1] == set(names)  # two halves, nothing held out
