"""training.augment: perturbed copies of a clip's audio for training (speed, spectrum stretch, noise, reverb, EQ), and
their rows joining the MLP's training rows of their clip (scores stay on the clean clips)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FakeSpeech, P
from training import augment, train_motion

SR = 16000


def peaks(x: np.ndarray, k: int = 2) -> list[float]:
    spectrum = np.abs(np.fft.rfft(x))
    return sorted(float(f) for f in np.fft.rfftfreq(len(x), 1 / SR)[np.argsort(spectrum)[-k:]])


def tones() -> np.ndarray:
    t = np.arange(SR) / SR
    return (0.3 * np.sin(2 * np.pi * 500 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)


def test_speed_and_spectrum_stretch_move_the_partials_by_their_factor():
    rng = np.random.default_rng(0)
    fast = augment.perturb(tones(), "speed", 1.25, rng)
    assert len(fast) == SR // 1.25 and peaks(fast) == pytest.approx([625, 1875], abs=2)  # shorter and higher
    for value in (0.9, 1.1):
        stretched = augment.perturb(tones(), "vtlp", value, rng)
        assert len(stretched) == SR and peaks(stretched) == pytest.approx([500 * value, 1500 * value], abs=2)


def test_noise_is_mixed_at_the_asked_snr_and_nothing_clips():
    rng = np.random.default_rng(1)
    clean = tones()
    noisy = augment.perturb(clean, "noise", 10.0, rng)
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert snr == pytest.approx(10.0, abs=0.5)
    for kind, value in (("reverb", 0.4), ("eq", 12.0), ("babble", 0.0)):
        out = augment.perturb(clean * 3, kind, value, rng, other=clean[::-1].copy())
        assert len(out) == len(clean) and np.abs(out).max() <= 0.9 + 1e-6 and np.isfinite(out).all()


def test_a_variant_is_named_kind_colon_value():
    assert augment.parse("speed:0.9, vtlp:1.1") == [("speed", 0.9), ("vtlp", 1.1)]
    with pytest.raises(SystemExit, match="speed:VALUE"):
        augment.parse("pitch:2")


def test_the_acoustic_analysis_is_made_again_and_the_phones_kept():
    phones = [P("SIL", 0.0, 0.2), P("AA", 0.2, 0.6), P("SIL", 0.6, 1.0)]
    track = augment.acoustic_track(tones(), phones, "hama+align", "en")
    assert track.phones == phones and len(track.voiced) == len(track.mel) == 100 and track.mel.shape[1] == 26


def test_a_clips_perturbed_rows_join_its_training_rows_only(monkeypatch):
    n = 50
    speech = FakeSpeech([P("AA", 0.0, 0.5)], np.ones(n, bool), np.full(n, 0.5), np.full(n, 0.5), np.zeros((n, 26)))
    # the samples hold every column a recipe may read (SAMPLE_COLUMNS); the perturbed copies the plain recipe's
    plain = len(train_motion.recipe_columns())
    x, y = np.ones((10, len(train_motion.SAMPLE_COLUMNS))), np.full(10, 0.5)
    samples = {"a": (None, None, speech, x, y, None, None, 0), "b": (None, None, speech, x * 2, y, None, None, 0)}
    seen = []

    def fake_fit(xs, ys, members, epochs, **options):  # options: the recipe's own (its falling rate)
        seen.append((len(xs), float(xs.sum())))
    monkeypatch.setattr(train_motion, "fit_mlp", fake_fit)
    fit = train_motion.fitter_from(samples, extra={"a": [(np.ones((10, plain)) * 10, y)]})
    fit(["a"])
    fit(["b"])
    assert seen == [(20, 110.0 * plain), (10, 20.0 * plain)]  # a brings its copy; b has none
