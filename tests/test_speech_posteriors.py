"""Phone-class posteriors: kept by the speech analysis from the hama pass that recognises the phones (one more pass with
a transcript), saved in the JSON, read by the offline model that was trained with them; a mismatch fails loudly.

The analysis cases read ../shared/data (skipped when absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lipdub import motion
from lipdub.errors import DependencyError, InputError
from lipdub.motion import models
from lipdub.speech import Phone, SpeechTrack, analyse, analysis, posteriors, recognise, tokens
from lipdub.speech.acoustic import frame_rms

try:
    from conftest import require_data
except ImportError:  # pragma: no cover
    require_data = None


def grid_audio() -> np.ndarray:
    if require_data is None:
        pytest.skip("tests/conftest.py is not importable")
    root = require_data("video/grid_lbbc2a.mpg")
    from lipdub.media import load_audio

    return load_audio(root / "video/grid_lbbc2a.mpg", 16000)[0]


def counting_runs(monkeypatch) -> list:
    runs = []
    real = recognise._run

    def run(audio):
        runs.append(audio.size)
        return real(audio)
    monkeypatch.setattr(recognise, "_run", run)
    return runs


def test_the_posteriors_come_from_the_recognition_pass(monkeypatch):
    x = grid_audio()
    runs = counting_runs(monkeypatch)
    track = analyse(x, 16000)
    assert track.method == "hama+align" and len(runs) == 1  # one hama pass: words and posteriors
    post = track.posteriors
    assert post.shape == (track.n_frames, posteriors.N_COLUMNS) and post.dtype == np.float32
    assert np.allclose(post.sum(1), 1.0, atol=1e-4)
    # the same numbers as hama's posteriors of the whole clip summed into classes, each 20 ms frame on its two hops
    probs = recognise.frame_posteriors(x, 16000)
    want = np.repeat(posteriors.class_posteriors(probs), 2, axis=0)[:track.n_frames]
    assert np.array_equal(post[:len(want)], want)
    assert np.all(post[len(want):, posteriors.OTHER] == 1.0)
    # the vowels of "lay blue by c two again" show: the open-vowel class leads somewhere in speech
    assert (post[track.voiced].argmax(1) == posteriors.phone_class("AA")).any()
    # with a transcript: one more pass over the chunks recognition would have heard, the same posteriors
    runs.clear()
    with_text = analyse(x, 16000, transcript="lay blue by c two again")
    assert with_text.method == "forced-alignment" and len(runs) == 1
    assert np.array_equal(with_text.posteriors, post)


def test_hama_failing_leaves_no_posteriors(monkeypatch):
    x = grid_audio()

    def broken(*a, **k):
        raise RuntimeError("hama broken")
    monkeypatch.setattr(recognise, "recognise_with_posteriors", broken)
    monkeypatch.setattr(recognise, "frame_posteriors", broken)
    for track in (analyse(x, 16000), analyse(x, 16000, transcript="lay blue by c two again")):
        assert track.posteriors is None and track.components is None


def test_a_failed_alignment_falls_back_to_recognition_and_keeps_the_posteriors(monkeypatch):
    x = grid_audio()
    from lipdub.speech import align

    monkeypatch.setattr(align, "align_phones", lambda audio, tokens: None)
    track = analyse(x, 16000, transcript="lay blue by c two again")
    assert track.method == "allphone" and track.posteriors.shape == (track.n_frames, posteriors.N_COLUMNS)


def test_silence_has_only_the_other_column():
    tr = analyse(np.zeros(16000, np.float32), 16000)
    assert tr.posteriors.shape == (100, posteriors.N_COLUMNS) and np.all(tr.posteriors[:, posteriors.OTHER] == 1)


def test_chunks_past_30_s_place_each_chunk_at_its_hops():
    hop_tokens = tokens.unheard(10)
    probs = np.zeros((2, len(posteriors.token_classes())), np.float32)
    probs[:, list(posteriors.token_classes()).index(1)] = 1.0  # a p/b/m token in both frames
    tokens.place(hop_tokens, 5, probs)
    post = posteriors.class_posteriors(hop_tokens)
    assert list(post.argmax(1)) == [posteriors.OTHER] * 5 + [1] * 4 + [posteriors.OTHER]
    tokens.place(hop_tokens, 8, probs)  # frames past the end are dropped
    assert list(posteriors.class_posteriors(hop_tokens).argmax(1)[8:]) == [1, 1]


def test_the_columns_read_hama_frames_as_the_screen_did():
    """posterior_columns on the per-hop rows gives what the frame-level reading of training.posteriors gave (each tap
    the 20 ms frame holding hop centre + tap, smoothed over ±1 frame, zeros outside the audio)."""
    rng = np.random.default_rng(0)
    frames = rng.random((40, 13)).astype(np.float32)
    hops = np.repeat(frames, 2, axis=0)  # 80 hops, each 20 ms frame on its two
    taps = motion.OFFLINE_POSTERIOR_TAPS
    got = motion.posterior_columns(hops, np.arange(80), taps)
    smooth = frames.astype(np.float64)
    smooth[1:] += frames[:-1]
    smooth[:-1] += frames[1:]
    smooth /= 3.0
    centre = (np.arange(80) + 0.5) * 0.01
    for j, tap in enumerate(taps):
        f = np.round((centre + tap) / 0.02 - 0.5).astype(int)
        inside = (f >= 0) & (f < 40)
        want = np.zeros((80, 13))
        want[inside] = smooth[f[inside]]
        assert np.allclose(got[:, j * 13:(j + 1) * 13], want), tap


def test_json_keeps_the_posteriors_and_reads_version_1_files(tmp_path):
    n = 30
    rng = np.random.default_rng(2)
    post = rng.dirichlet(np.ones(13), n).astype(np.float32)
    tr = SpeechTrack(0.3, 0.01, rng.random(n) > 0.5, rng.random(n).astype(np.float32),
                     rng.random(n).astype(np.float32), [Phone("SIL", 0.0, 0.3)], "hama+align", None,
                     rng.random((n, 26)).astype(np.float32), post)
    tr.save(tmp_path / "s.json")
    back = SpeechTrack.load(tmp_path / "s.json")
    assert back.posteriors.shape == (n, 13) and np.allclose(back.posteriors, post, atol=5e-4)
    old = json.loads((tmp_path / "s.json").read_text())
    old["version"] = 1
    del old["posteriors"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert SpeechTrack.load(tmp_path / "old.json").posteriors is None
    old["posteriors"] = [[0.5, 0.5]] * n
    (tmp_path / "bad.json").write_text(json.dumps(old))
    with pytest.raises(InputError, match="posteriors"):
        SpeechTrack.load(tmp_path / "bad.json")


def _track(n: int, post) -> SpeechTrack:
    return SpeechTrack(n / 100, 0.01, np.ones(n, bool), np.full(n, 0.5, np.float32), np.full(n, 0.5, np.float32),
                       [Phone("AA", 0.0, n / 100)], "hama+align", None, np.zeros((n, 26), np.float32), post)


def test_a_model_trained_with_posteriors_needs_them():
    n = 50
    taps = motion.OFFLINE_POSTERIOR_TAPS
    plain = motion.model_features(_track(n, None))
    assert plain.shape[1] == len(motion.offline_feature_names())
    full = motion.model_features(_track(n, posteriors.silence(n)), posterior_taps=taps)
    assert full.shape[1] == len(motion.offline_feature_names(motion.MEL_CONTEXT, taps)) == plain.shape[1] + 65
    with pytest.raises(InputError, match="no phone posteriors.*--motion-model permissive"):
        motion.model_features(_track(n, None), posterior_taps=taps)
    assert motion.load_model("research").posterior_taps == taps  # the shipped model reads them
    with pytest.raises(InputError, match="no phone posteriors"):
        motion.check_speech_inputs(_track(n, None), "research")
    assert motion.load_model("permissive").posterior_taps == ()  # trained on GRID alone: its inputs as before
    motion.check_speech_inputs(_track(n, None), "permissive")


def test_a_model_file_declares_its_posterior_inputs(tmp_path):
    """The taps are in the file; a file whose width or card disagrees with them fails loudly."""
    taps = motion.OFFLINE_POSTERIOR_TAPS
    width = len(motion.offline_feature_names(motion.MEL_CONTEXT, taps))
    rng = np.random.default_rng(0)
    arrays = {"mean": np.zeros((1, width)), "std": np.ones((1, width)), "w1": rng.normal(size=(1, width, 4)),
              "b1": np.zeros((1, 4)), "w2": rng.normal(size=(1, 4)), "b2": np.zeros(1)}
    np.savez(tmp_path / "m.npz", **arrays, posterior_taps=np.array(taps))
    model = motion.load_opening_model(tmp_path / "m.npz")  # no card: an experiment's file
    assert model.posterior_taps == taps
    assert len(model.predict(motion.model_features(_track(20, posteriors.silence(20)), 0, None, model.mel_context,
                                                   model.posterior_taps))) == 20
    np.savez(tmp_path / "undeclared.npz", **arrays)  # the same weights, the taps not named
    with pytest.raises(DependencyError, match=f"takes {width} inputs .*builds {width - 65}"):
        motion.load_opening_model(tmp_path / "undeclared.npz")
    card = {"sha256": models.file_sha256(tmp_path / "m.npz"),
            "feature_schema": {"inputs": motion.offline_feature_names()}}  # a card of the plain inputs
    (tmp_path / "c.npz").write_bytes((tmp_path / "m.npz").read_bytes())
    card["sha256"] = models.file_sha256(tmp_path / "c.npz")
    models.card_path(tmp_path / "c.npz").write_text(json.dumps(card))
    with pytest.raises(DependencyError, match="trained on other inputs"):
        motion.load_opening_model(tmp_path / "c.npz")


def test_recognition_chunks_are_the_voiced_ones():
    x = np.zeros(16000 * 3, np.float32)
    x[16000:32000] = 0.3 * np.sin(np.arange(16000) * 2 * np.pi * 200 / 16000)
    voiced = np.zeros(300, bool)
    voiced[100:200] = True
    assert analysis.recognition_chunks(voiced, frame_rms(x)) == [(0, 300)]
    assert analysis.recognition_chunks(np.zeros(300, bool), frame_rms(x)) == []


def test_a_dub_with_a_saved_track_without_posteriors_fails_before_any_work(tmp_path):
    """An alignment saved before the posteriors (or with hama failing) and the research model: an input error that
    says what to do, before the face is tracked; the permissive model takes it."""
    if require_data is None:
        pytest.skip("tests/conftest.py is not importable")
    root = require_data("images/woman_frontal.png", "audio/en_jfk_11s.wav")
    import lipdub
    from lipdub.media import load_audio

    n = int(round(len(load_audio(root / "audio/en_jfk_11s.wav", 16000)[0]) / 160))
    out = tmp_path / "dub.mp4"
    with pytest.raises(InputError, match="no phone posteriors.*--save-alignment"):
        lipdub.dub(root / "images/woman_frontal.png", root / "audio/en_jfk_11s.wav", out, speech_track=_track(n, None))
    assert not out.exists()
