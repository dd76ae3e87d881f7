"""training.tokens (a screen of more of hama's output as opening-model inputs): the per-phone sums, the taps, the model
that appends a clip's columns, the learned lags (training.train_motion.cross_fitted_lags). No shared data needed."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub import motion
from lipdub.speech import recognise
from lipdub.speech.posteriors import class_posteriors
from training import tokens, train_motion


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


def test_component_columns_read_each_tap_and_zeros_outside():
    cols = np.arange(10, dtype=float)[:, None]
    out = motion.component_columns(cols, np.array([0, 5, 9]), (-0.02, 0.0, 0.04))
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
    monkeypatch.setattr(train_motion, "speaker_of_name", lambda: speaker)
    fitted_on = []

    class Model:
        def __init__(self, names):
            self.names, self.clip = set(names), None

    def fit(names, members):
        assert members == 2
        fitted_on.append(set(names))
        return Model(names)

    def bind(model, name):
        model.clip = name
        return model

    def score(sample, model, params):
        assert params.advance == 0.0  # timed as clip_lag times the rules: no advance
        assert speaker[model.clip] not in {speaker[n] for n in model.names}
        return 0.5, int(model.clip[1:]) % 3, 0.4
    monkeypatch.setattr(train_motion, "score_clip", score)
    names = [f"c{i}" for i in range(10)]  # c10, c11: a held-out fold's clips, never used
    lags = train_motion.cross_fitted_lags({n: None for n in speaker}, names, fit, 2, bind)
    assert sorted(lags) == sorted(names) and all(lags[n] == int(n[1:]) % 3 for n in names)
    assert len(fitted_on) == 2 and fitted_on[0] | fitted_on[1] == set(names)  # two halves, nothing held out


def test_utterance_normalisation_takes_the_voiced_hops_mean_and_spread():
    cols = np.array([[1.0, 10.0], [3.0, 30.0], [100.0, -5.0], [5.0, 50.0]] * 5)
    voiced = np.array([True, True, False, True] * 5)
    centred = tokens.utterance_normalised(cols, voiced, scale=False)
    assert np.allclose(centred[voiced].mean(0), 0) and centred[2, 0] == pytest.approx(97.0)
    z = tokens.utterance_normalised(cols, voiced, scale=True)
    assert np.allclose(z[voiced].std(0), 1, atol=1e-4)
    few = np.array([True] + [False] * 19)  # under 10 voiced hops: the whole utterance is the reference
    assert np.allclose(tokens.utterance_normalised(cols, few, scale=False).mean(0), 0)


def test_local_means_average_each_span_and_count_hops_outside_as_zeros():
    comps = np.arange(40, dtype=float)[:, None]
    out = tokens.local_means(comps, np.array([20, 0]), ((-0.02, 0.01), (0.0, 0.0)))
    assert out[0].tolist() == [np.mean([18, 19, 20, 21]), 20.0]
    assert out[1].tolist() == [(0 + 1) / 4, 0.0]  # hops -2 and -1 are outside: zeros


def test_per_clip_standardised_targets_keep_each_shape_on_the_overall_scale():
    targets = {"a": np.array([0.0, 1.0, 2.0]), "b": np.array([5.0, 5.5, 6.0])}
    out = tokens.per_clip_standardised(targets)
    every = np.concatenate(list(targets.values()))
    assert np.allclose(out["a"], out["b"])  # the same shape, the same numbers once each clip is standardised
    assert np.corrcoef(out["b"], targets["b"])[0, 1] == pytest.approx(1.0)
    assert np.concatenate(list(out.values())).mean() == pytest.approx(every.mean())


def test_every_screened_variant_names_a_recipe_the_fitter_knows():
    assert set(tokens.SHIPPED_RECIPE_VARIANTS) <= set(tokens.VARIANTS)
    for variant in tokens.SHIPPED_RECIPE_VARIANTS:
        head, *suffix = variant.split("-")
        assert head.startswith("pca32") and "xlag" in suffix
        assert set(suffix) <= {"xlag", "cmean", "cz", "pmean", "norm", "zt"} | set(tokens.NETS_TIMES)
        assert head[5:] in ("", "lm") or head[5:] in tokens.WIDE_TAPS


def test_another_split_seed_puts_the_speaker_groups_in_other_folds(monkeypatch):
    speaker = {f"c{i}": f"s{i}" for i in range(12)}
    monkeypatch.setattr(train_motion, "speaker_of_name", lambda: speaker)

    def folds_of(split):
        fitted = []
        train_motion.heldout_models({n: None for n in speaker}, lambda names, m: fitted.append(frozenset(names)), 1,
                                    folds=3, out=None, split=split)
        return {frozenset(speaker) - names for names in fitted}  # each fold: the groups its model never heard
    assert folds_of(0) == folds_of(0) and folds_of(0) != folds_of(1)
    assert all(len(fold) == 4 for fold in folds_of(1))
