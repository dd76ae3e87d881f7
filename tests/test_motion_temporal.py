"""The temporal opening model (a dilated 1-D convolution over per-hop units; training.fit.fit_temporal, numpy forward
in OpeningModel.predict_hops): it learns from context other hops hold, its blocks join exactly, it travels with its
taps in the feature schema, and the offline motion runs with it."""

from __future__ import annotations

import numpy as np

from conftest import FakeSpeech, P
from lipdub import motion
from lipdub.motion import models, offline
from training.fit import fit_mlp, fit_temporal


def sequences(seed=1):
    """Two clips of random per-hop features whose target is feature 0 eight hops later and feature 1 twelve earlier:
    nothing in the hop's own row says it."""
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(300, 6)), rng.normal(size=(200, 6))]
    centres = [np.arange(0, 300, 4), np.arange(3, 200, 4)]
    targets = [np.tanh(f[np.clip(c + 8, 0, len(f) - 1), 0]) + 0.5 * f[np.clip(c - 12, 0, len(f) - 1), 1]
               for f, c in zip(feats, centres)]
    return feats, centres, targets


def test_the_temporal_model_learns_what_neighbouring_hops_hold():
    feats, centres, targets = sequences()
    model = fit_temporal(feats, centres, targets, taps=(-12, -8, -4, 0, 4, 8, 12), members=1, hidden=8, hidden2=8,
                         l2=1e-4, epochs=100)
    pred = np.concatenate([model.predict_hops(f)[c] for f, c in zip(feats, centres)])
    y = np.concatenate(targets)
    assert np.corrcoef(pred, y)[0, 1] > 0.95
    # one frame's features alone cannot: the same data through the MLP
    flat = fit_mlp(np.concatenate([f[c] for f, c in zip(feats, centres)]), y, members=1, epochs=100)
    assert np.corrcoef(flat.predict(np.concatenate([f[c] for f, c in zip(feats, centres)])), y)[0, 1] < 0.6
    # unseen clips of the same law: it generalises
    feats2, centres2, targets2 = sequences(seed=2)
    held = np.concatenate([model.predict_hops(f)[c] for f, c in zip(feats2, centres2)])
    assert np.corrcoef(held, np.concatenate(targets2))[0, 1] > 0.9


def test_blocks_with_their_margins_give_the_rows_of_the_whole():
    feats, centres, targets = sequences()
    model = fit_temporal(feats, centres, targets, taps=(-6, 0, 6), members=2, hidden=4, hidden2=4, epochs=1)
    assert model.reach == 6
    whole = model.predict_hops(feats[0])
    assert np.array_equal(model.predict_hops(feats[0][44:126], 6, 76), whole[50:120])
    assert np.array_equal(model.predict_hops(feats[0][:16], 0, 10), whole[:10])  # the clip's start: clamped the same
    assert np.array_equal(model.predict_hops(feats[0], chunk=7), whole)


def test_offline_motion_runs_a_temporal_model_block_by_block(tmp_path, monkeypatch):
    n = 400
    rng = np.random.default_rng(0)
    voiced = np.zeros(n, bool)
    voiced[50:350] = True
    phones = [P("SIL", 0, 0.5), P("AA", 0.5, 1.5), P("M", 1.5, 1.6), P("IY", 1.6, 3.5),
              P("SIL", 3.5, 4.0)]
    speech = FakeSpeech(phones, voiced, voiced * 0.6, voiced * 0.5, rng.normal(size=(n, motion.MEL_BANDS)))
    x = motion.model_features(speech)
    centres = np.arange(0, n, 4)
    model = fit_temporal([x], [centres], [voiced[centres] * 0.7], taps=(-8, 0, 8), members=1, hidden=4, hidden2=4,
                         epochs=2)
    path = tmp_path / "temporal.npz"
    model.save(path)
    loaded = models.load_opening_model(path)  # an experiment's file without a card: its widths are checked
    assert loaded.reach == 8 and models.opening_schema(loaded)["taps"] == [-8, 0, 8]
    assert "taps" not in models.opening_schema(motion.load_model())  # the row-wise MLP's schema is as before
    whole = offline.learned_opening(speech, loaded)
    monkeypatch.setattr(offline, "FEATURE_BLOCK", 64)  # hour-long audio: blocks with their margins, same numbers
    assert np.allclose(offline.learned_opening(speech, loaded), whole, atol=1e-12)
    track = motion.mouth_track(speech, np.arange(0, 4.0, 0.04), params=motion.MotionParams(model=loaded))
    assert np.isfinite(track.opening).all() and track.opening[(track.times > 0.7) & (track.times < 1.3)].max() > 0


def test_the_training_script_fits_either_model_and_screens_by_folds(monkeypatch, tmp_path):
    from training import train_motion

    rng = np.random.default_rng(0)
    width = len(motion.offline_feature_names())
    samples = {}
    for i in range(6):
        feats = rng.normal(size=(120, width))
        centres = np.arange(0, 120, 4)
        samples[f"clip{i}"] = (None, None, None, feats[centres], rng.normal(size=len(centres)), feats, centres, 0)
    monkeypatch.setattr(train_motion, "speaker_of_name", lambda: {f"clip{i}": f"spk{i // 2}" for i in range(6)})
    temporal = train_motion.fitter_from(samples, "temporal")(list(samples), members=1)
    # it reads log-mel at the hop only (TEMPORAL_MEL): its file names those taps, and the schema's width is its own
    assert temporal.mel_context == train_motion.TEMPORAL_MEL and temporal.reach == 24
    assert temporal.n_features == len(models.opening_schema(temporal)["inputs"]) < width
    assert train_motion.fitter_from(samples, "mlp")(list(samples), members=1).n_features == width
    fitted = []
    fit = train_motion.fitter_from(samples, "mlp")
    monkeypatch.setattr(train_motion, "LOSO_DIR", tmp_path / "loso")
    held = train_motion.heldout_models(samples, lambda names, m: fitted.append(names) or fit(names, m), 1, folds=3,
                                       out=None)
    assert len(fitted) == 3 and set(held) == {"spk0", "spk1", "spk2"} and not (tmp_path / "loso").exists()
    for names in fitted:  # each fold's model learned from the other folds' speakers only
        assert len({n[-1] for n in names}) == 4 and len(set(held.values())) == 3
    for group, model in held.items():
        i = list(held.values()).index(model)
        assert all(int(n[-1]) // 2 != int(group[-1]) for n in fitted[i])


def test_hop_targets_fill_the_hops_between_frames_and_skip_lost_faces():
    from training.train_motion import hop_samples

    feats = np.arange(40, dtype=float)[:, None] * np.ones((1, 3))
    centres = np.array([0, 4, 8, 20, 24])  # the face was lost between hops 8 and 20
    target = np.array([0.0, 0.4, 0.0, 1.0, 0.5])
    x, y = hop_samples((None, None, None, None, target, feats, centres, 0))
    assert list(x[:, 0]) == [0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 23]
    assert np.allclose(y, [0, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2, 0.1, 1.0, 0.875, 0.75, 0.625])
